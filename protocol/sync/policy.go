package sync

import (
	"fmt"
	"time"
)

// OfflineRule names a check of an edge's decision that an OfflinePolicy can
// relax or harden when the edge's cache is stale. The values are part of the
// wire format.
type OfflineRule uint8

// The rules an offline policy governs: the checks whose answer changes with
// what the cloud knows (an action closed at reception, a renewal paid), as
// opposed to the credential lookup itself or the site and device scope.
const (
	RuleBlock      OfflineRule = 1 // open message+block CRM actions (ReasonBlocked)
	RuleMembership OfflineRule = 2 // the membership's validity windows (ReasonNotValid)
	RuleCredential OfflineRule = 3 // the credential's own window (ReasonCredentialExpired, not-yet-valid)
	RuleSuspended  OfflineRule = 4 // an administrative suspension (ReasonSuspended)
	maxOfflineRule OfflineRule = 5 // first unknown
)

var offlineRuleNames = [...]string{
	RuleBlock:      "block",
	RuleMembership: "membership",
	RuleCredential: "credential",
	RuleSuspended:  "suspended",
}

// Valid reports whether r is a known rule.
func (r OfflineRule) Valid() bool { return r > 0 && r < maxOfflineRule }

func (r OfflineRule) String() string {
	if !r.Valid() {
		return fmt.Sprintf("rule(%d)", uint8(r))
	}
	return offlineRuleNames[r]
}

// ParseOfflineRule returns the rule named s ("block", "membership"...).
func ParseOfflineRule(s string) (OfflineRule, error) {
	for r := RuleBlock; r < maxOfflineRule; r++ {
		if offlineRuleNames[r] == s {
			return r, nil
		}
	}
	return 0, fmt.Errorf("unknown offline rule %q (want block, membership, credential or suspended)", s)
}

// OfflineMode is what a rule does once the edge's cache is staler than the
// rule's limit. The values are part of the wire format.
type OfflineMode uint8

// The modes.
const (
	// FailOpen: the rule no longer denies; the member passes as if the check
	// had succeeded, and a grant it changed has reason ReasonStaleOpen. For
	// a club that would rather let a member in than strand them when the
	// controller has lost the cloud.
	FailOpen OfflineMode = 1
	// FailClosed: the rule denies every credential it applies to, with
	// reason ReasonStale, whatever the cache says. For checks a club must not
	// guess (a medical-certificate block, say).
	FailClosed OfflineMode = 2
)

func (m OfflineMode) String() string {
	switch m {
	case FailOpen:
		return "fail-open"
	case FailClosed:
		return "fail-closed"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// ParseOfflineMode returns the mode named s: "fail-open" or "fail-closed".
func ParseOfflineMode(s string) (OfflineMode, error) {
	switch s {
	case "fail-open":
		return FailOpen, nil
	case "fail-closed":
		return FailClosed, nil
	}
	return 0, fmt.Errorf("unknown offline mode %q (want fail-open or fail-closed)", s)
}

// MaxOfflineAfter bounds OfflineLimit.After: 30 days.
const MaxOfflineAfter = 30 * 24 * 3600

// OfflineLimit says that Rule switches to Mode once the edge has not been in
// sync with the cloud for more than After seconds.
type OfflineLimit struct {
	Rule  OfflineRule `cbor:"1,keyasint"`
	Mode  OfflineMode `cbor:"2,keyasint"`
	After uint32      `cbor:"3,keyasint"` // seconds, 1 to MaxOfflineAfter
}

// Duration returns After as a time.Duration.
func (l OfflineLimit) Duration() time.Duration { return time.Duration(l.After) * time.Second }

// OfflinePolicy is a site's policy for decisions taken from a stale cache:
// an edge is in sync while it is connected and its cache holds the site's
// latest version; from the moment it is not, its cache ages. A rule with no
// limit applies as the cache says, however old; at most one limit per rule.
// The cloud sends the policy with the state (Delta.Policy, Snapshot.Policy),
// so it is versioned and signed like the records.
type OfflinePolicy struct {
	Limits []OfflineLimit `cbor:"1,keyasint,omitempty"`
}

// Limit returns the limit of rule r, if the policy has one.
func (p *OfflinePolicy) Limit(r OfflineRule) (OfflineLimit, bool) {
	if p == nil {
		return OfflineLimit{}, false
	}
	for _, l := range p.Limits {
		if l.Rule == r {
			return l, true
		}
	}
	return OfflineLimit{}, false
}

// Validate checks every limit and that no rule has two.
func (p *OfflinePolicy) Validate() error { return invalid("offline policy", p.validate()) }

func (p *OfflinePolicy) validate() error {
	if p == nil {
		return nil
	}
	if err := maxLen("limits", len(p.Limits), int(maxOfflineRule)); err != nil {
		return err
	}
	var seen [maxOfflineRule]bool
	for i, l := range p.Limits {
		switch {
		case !l.Rule.Valid():
			return fmt.Errorf("limits[%d]: unknown rule %d", i, l.Rule)
		case seen[l.Rule]:
			return fmt.Errorf("limits[%d]: rule %s twice", i, l.Rule)
		case l.Mode != FailOpen && l.Mode != FailClosed:
			return fmt.Errorf("limits[%d] (%s): unknown mode %d", i, l.Rule, l.Mode)
		case l.After == 0 || l.After > MaxOfflineAfter:
			return fmt.Errorf("limits[%d] (%s): after %d s, want 1 to %d", i, l.Rule, l.After, MaxOfflineAfter)
		}
		seen[l.Rule] = true
	}
	return nil
}
