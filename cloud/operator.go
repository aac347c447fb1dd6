package cloud

import (
	"context"
	"net/mail"
	"strings"
	"time"
)

// Role is what an operator may do.
type Role string

// Operator roles.
const (
	RoleAdmin      Role = "admin"       // everything, including operators, sites and gates
	RoleCRMManager Role = "crm_manager" // CRM configuration, private actions of everyone
	RoleOperator   Role = "operator"    // members and their own CRM actions
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleCRMManager || r == RoleOperator }

// SeesPrivate reports whether the role sees every private CRM action. Admins
// do, as the club's owners of the data.
func (r Role) SeesPrivate() bool { return r == RoleAdmin || r == RoleCRMManager }

// Operator is a member of staff who logs in to the console or the API.
type Operator struct {
	ID        int64     `json:"id"`
	TenantID  int64     `json:"-"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	Active    bool      `json:"active"`
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Validate checks an operator and normalises its e-mail.
func (o *Operator) Validate() error {
	o.Email = strings.ToLower(strings.TrimSpace(o.Email))
	if a, err := mail.ParseAddress(o.Email); err != nil || a.Address != o.Email {
		return Invalid("email", "A valid e-mail address is required.")
	}
	if strings.TrimSpace(o.Name) == "" {
		return Invalid("name", "Name is required.")
	}
	if !o.Role.Valid() {
		return Invalid("role", "Role must be admin, crm_manager or operator.")
	}
	return nil
}

// ValidatePassword checks a new password.
func ValidatePassword(p string) error {
	if len(p) < 10 {
		return Invalid("password", "Password must be at least 10 characters.")
	}
	if len(p) > 256 {
		return Invalid("password", "Password must be at most 256 characters.")
	}
	return nil
}

// OperatorUpdate holds the fields of an operator that can change.
type OperatorUpdate struct {
	Name     *string `json:"name"`
	Role     *Role   `json:"role"`
	Active   *bool   `json:"active"`
	Password *string `json:"password"`
}

// APIToken describes a bearer token. The secret itself is only shown once,
// when it is created; the store keeps a hash.
type APIToken struct {
	ID         int64      `json:"id"`
	OperatorID int64      `json:"operator_id"`
	Name       string     `json:"name"`
	Kind       string     `json:"kind"` // "session" (from login) or "api"
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
}

// AuthService logs operators in and resolves bearer tokens.
type AuthService interface {
	// Login checks e-mail and password and returns a session token.
	// Returns EUNAUTHORIZED for any mismatch, without saying which.
	Login(ctx context.Context, email, password string) (token string, op *Operator, err error)
	// Authenticate returns the active operator owning token, or EUNAUTHORIZED.
	Authenticate(ctx context.Context, token string) (*Operator, error)
	// CreateAPIToken creates a long-lived token for the operator in ctx.
	CreateAPIToken(ctx context.Context, name string) (token string, t *APIToken, err error)
	// Logout revokes token.
	Logout(ctx context.Context, token string) error
}

// OperatorService manages operators. Writes need the admin role.
type OperatorService interface {
	// CreateOperator returns ECONFLICT when the e-mail is taken.
	CreateOperator(ctx context.Context, op *Operator, password string) error
	FindOperators(ctx context.Context) ([]*Operator, error)
	FindOperatorByID(ctx context.Context, id int64) (*Operator, error)
	UpdateOperator(ctx context.Context, id int64, version int, upd OperatorUpdate) (*Operator, error)
}

// AuditEntry is one change recorded in the audit trail, written in the same
// transaction as the change.
type AuditEntry struct {
	ID         int64          `json:"id"`
	OperatorID *int64         `json:"operator_id"`
	At         time.Time      `json:"at"`
	Action     string         `json:"action"` // e.g. "member.update"
	Entity     string         `json:"entity"` // e.g. "member"
	EntityID   int64          `json:"entity_id"`
	Data       map[string]any `json:"data,omitempty"`
}

// AuditFilter selects audit entries, newest first.
type AuditFilter struct {
	Entity   string
	EntityID int64
	Cursor   int64 // return entries with ID < Cursor
	Limit    int
}

// AuditService reads the audit trail. Admins and CRM managers only.
type AuditService interface {
	FindAudit(ctx context.Context, f AuditFilter) ([]*AuditEntry, error)
}
