package mqtt

import (
	"errors"
	"fmt"

	vsync "varco.dev/protocol/sync"
)

// Reject is why the agent dropped a received message. Its String is the
// reason label of the daemon's varco_edge_sync_rejected_total.
type Reject uint8

// The reasons.
const (
	RejectMalformed  Reject = iota + 1 // the bytes do not decode or validate
	RejectWrongTopic                   // a topic not the agent's, or a message not of its topic
	RejectForeign                      // addressed to another tenant, site or edge
	RejectUnsigned                     // no signature
	RejectUnknownKey                   // signed by a key id that is not in Config.CloudKeys
	RejectForged                       // the signature does not verify: altered, or not the cloud's
	RejectReplayed                     // a snapshot not asked for or older than asked; a command done, expired or older than the agent
	RejectUntimely                     // a command without a time, or stamped in the future
	RejectAckAhead                     // an ack beyond the journal's last event
	numRejects
)

var rejectNames = [numRejects]string{
	RejectMalformed:  "malformed",
	RejectWrongTopic: "wrong_topic",
	RejectForeign:    "foreign",
	RejectUnsigned:   "unsigned",
	RejectUnknownKey: "unknown_key",
	RejectForged:     "forged",
	RejectReplayed:   "replayed",
	RejectUntimely:   "untimely",
	RejectAckAhead:   "ack_ahead",
}

func (r Reject) String() string {
	if r > 0 && r < numRejects {
		return rejectNames[r]
	}
	return fmt.Sprintf("reject(%d)", uint8(r))
}

// Rejects lists every reason, for metrics that start each at zero.
func Rejects() []Reject {
	rs := make([]Reject, 0, numRejects-1)
	for r := RejectMalformed; r < numRejects; r++ {
		rs = append(rs, r)
	}
	return rs
}

// reject counts and logs a dropped message; attrs say which.
func (a *Agent) reject(r Reject, why string, attrs ...any) {
	a.st.rejected[r].Add(1)
	a.log.Warn("mqtt: rejected a message: "+why, append([]any{"reason", r.String()}, attrs...)...)
	if a.cfg.Rejected != nil {
		a.cfg.Rejected(r)
	}
}

// verify checks that one of the cloud's keys signed env.
func (a *Agent) verify(env *vsync.Envelope) (Reject, error) {
	if len(env.Sig) == 0 {
		return RejectUnsigned, errors.New("not signed")
	}
	key, ok := a.cfg.CloudKeys[env.KeyID]
	if !ok {
		return RejectUnknownKey, fmt.Errorf("key %q is not one of the cloud's", env.KeyID)
	}
	if err := env.Verify(key); err != nil {
		return RejectForged, err
	}
	return 0, nil
}

// admit decides whether a command is new and timely; the caller puts the id
// of one it hands over in l.carried. See Agent.Commands.
func (l *loop) admit(c *vsync.Command) (Reject, string) {
	now := l.cfg.Now()
	skew := l.cfg.MaxClockSkew
	for id, expires := range l.carried {
		if !now.Before(expires.Time()) {
			delete(l.carried, id) // expired: admit would refuse it anyway
		}
	}
	switch {
	case c.Time == 0:
		return RejectUntimely, "a command without a time"
	case c.Time.Time().After(now.Add(skew)):
		return RejectUntimely, "a command from the future: the cloud's clock or the edge's is wrong"
	case !now.Before(c.Expires.Time()):
		return RejectReplayed, "an expired command"
	case c.Time.Time().Before(l.started.Add(-skew)):
		return RejectReplayed, "a command made before the agent started"
	}
	if _, done := l.carried[c.ID]; done {
		return RejectReplayed, "a command already carried out"
	}
	return 0, ""
}
