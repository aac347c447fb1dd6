// Package cloud is the domain of varco-cloud, the CRM service of varco:
// tenants (a club or a chain) with their sites, gates and operators; members
// with credentials, memberships, instalments, bookings and consents, and
// their CSV import jobs; the per-tenant CRM configuration; CRM actions, some
// of which block or warn a member at the turnstile; message templates and
// communications over e-mail, SMS and app push, with the ports their
// gateways implement; and the pure computations: a member's access record,
// a message rendered for a member (PlanMessage).
//
// The package follows the "standard package layout": it holds the types, the
// rules and the service interfaces, and knows nothing of SQL or HTTP. The
// PostgreSQL implementation lives in cloud/postgres, the JSON API in
// cloud/http and the wiring in cmd/varco-cloud.
//
// Every service method takes the acting operator from the context (see
// NewContextWithOperator); the tenant of a request is always that operator's
// tenant, never a value taken from the request.
package cloud
