package cloud

import (
	"context"
	"fmt"
	"time"

	"varco.dev/protocol/sync"
)

// OfflineLimit is one limit of a tenant's offline policy as the API shows
// it: rule ("block", "membership", "credential", "suspended") switches to
// mode ("fail-open", "fail-closed") once an edge has been out of sync for
// more than AfterSeconds.
type OfflineLimit struct {
	Rule         string `json:"rule"`
	Mode         string `json:"mode"`
	AfterSeconds uint32 `json:"after_seconds"`
}

// OfflinePolicy is a tenant's policy for decisions its edges take from a
// stale cache (protocol/sync OfflinePolicy). It applies to every site of the
// tenant and travels with the state: the next delta of every site after a
// change carries it, and every snapshot. A tenant that never set one has
// version 0 and no limits: every rule applies as the cache says.
type OfflinePolicy struct {
	Limits    []OfflineLimit `json:"limits"`
	Version   int            `json:"version"`
	UpdatedAt *time.Time     `json:"updated_at,omitempty"`
}

// RowVersion implements Versioned.
func (p *OfflinePolicy) RowVersion() int { return p.Version }

// SyncPolicy validates the limits and returns the policy as the wire has
// it; nil when there are no limits.
func (p *OfflinePolicy) SyncPolicy() (*sync.OfflinePolicy, error) {
	if len(p.Limits) == 0 {
		return nil, nil
	}
	sp := &sync.OfflinePolicy{Limits: make([]sync.OfflineLimit, len(p.Limits))}
	for i, l := range p.Limits {
		rule, err := sync.ParseOfflineRule(l.Rule)
		if err != nil {
			return nil, Invalid(fieldAt("limits", i, "rule"), "%s.", capitalize(err.Error()))
		}
		mode, err := sync.ParseOfflineMode(l.Mode)
		if err != nil {
			return nil, Invalid(fieldAt("limits", i, "mode"), "%s.", capitalize(err.Error()))
		}
		sp.Limits[i] = sync.OfflineLimit{Rule: rule, Mode: mode, After: l.AfterSeconds}
		if l.AfterSeconds == 0 || l.AfterSeconds > sync.MaxOfflineAfter {
			return nil, Invalid(fieldAt("limits", i, "after_seconds"), "Must be from 1 to %d seconds.", sync.MaxOfflineAfter)
		}
	}
	if err := sp.Validate(); err != nil {
		return nil, Invalid("limits", "Invalid offline policy: %v.", err)
	}
	return sp, nil
}

func fieldAt(list string, i int, field string) string {
	return fmt.Sprintf("%s[%d].%s", list, i, field)
}

// SigningKey is one generation of the Ed25519 key that signs what the cloud
// sends to a tenant's edges. Only the public half leaves the store.
type SigningKey struct {
	// KeyID is the id envelopes carry: "<tenant slug>-<generation>".
	KeyID      string `json:"key_id"`
	Generation int    `json:"generation"`
	// PublicKey is the Ed25519 public key, base64 (standard encoding).
	PublicKey string `json:"public_key"`
	// ConfigLine is the edge configuration's cloud_keys entry,
	// "<key id>=<public key>".
	ConfigLine string `json:"config_line"`
	// Active is true for the generation that signs now; a newer inactive
	// one is staged for a rotation, an older one is listed until retired so
	// that edges still configured with it keep verifying in-flight messages.
	Active      bool       `json:"active"`
	CreatedAt   time.Time  `json:"created_at"`
	ActivatedAt *time.Time `json:"activated_at,omitempty"`
}

// SyncConfigService manages what a tenant's edges are configured with from
// the cloud: the offline policy and the signing keys. Every method acts on
// the tenant of the operator in ctx.
type SyncConfigService interface {
	// OfflinePolicy returns the tenant's policy (version 1 if never set).
	OfflinePolicy(ctx context.Context) (*OfflinePolicy, error)
	// PutOfflinePolicy replaces the policy if the stored version is
	// version (1 when none was ever set). Returns EINVALID for a bad
	// limit, EPRECONDITION for a stale version, EFORBIDDEN for a non-admin.
	PutOfflinePolicy(ctx context.Context, p *OfflinePolicy, version int) (*OfflinePolicy, error)
	// SigningKeys lists the tenant's keys, newest first, creating the first
	// one if there is none. Returns EFORBIDDEN for a non-admin.
	SigningKeys(ctx context.Context) ([]*SigningKey, error)
	// AddSigningKey stages the next generation. Returns EFORBIDDEN for a
	// non-admin.
	AddSigningKey(ctx context.Context) (*SigningKey, error)
	// ActivateSigningKey makes a generation the one that signs. Returns
	// ENOTFOUND for an unknown generation, ECONFLICT for one older than the
	// active one.
	ActivateSigningKey(ctx context.Context, generation int) (*SigningKey, error)
	// RetireSigningKey takes a generation older than the active one off
	// the list. Returns ENOTFOUND, or ECONFLICT for the active or a staged
	// one.
	RetireSigningKey(ctx context.Context, generation int) error
}
