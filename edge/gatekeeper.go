package edge

import (
	"context"
	"fmt"
	"sync"
	"time"

	vsync "varco.dev/protocol/sync"
	"varco.dev/protocol/wiegand"
)

// Gate is the reader and gate a credential was presented at, as the
// Gatekeeper drives them: Show puts a decision on the reader (display, LED,
// buzzer) and, on a grant, opens the gate. It must not block for long: the
// OSDP bus queues the commands, a relay pulse runs on its own goroutine.
type Gate interface {
	Reader() Reader
	Show(ctx context.Context, d *Decision) error
}

// Gatekeeper turns a credential read at a gate into a decision, a journaled
// passage and an answer on the reader, in that order: the event is in the
// journal before the reader hears anything, so a crash never loses a
// passage the member saw answered.
type Gatekeeper struct {
	Cache   Cache
	Journal Journal
	// CredentialKey is the tenant's key with which the cloud hashed the
	// credentials of the records (vsync.CredentialHash).
	CredentialKey []byte
	Texts         *Texts
	Now           func() time.Time
	// Staleness, when set, says how long the cache has not been in sync
	// with the cloud (the sync agent's Staleness), and the site's offline
	// policy in the cache applies to the decisions (see Decide). Nil for an
	// edge that runs without the cloud: the policy does not apply.
	Staleness func(now time.Time) time.Duration
	// Observe, when set, is told of every decision: for metrics and the log.
	// err is the cache's or the journal's error, if any; the decision
	// stands either way.
	Observe func(in *Input, d *Decision, took time.Duration, err error)

	scratch sync.Pool // of *scratch, one per concurrent Present
}

// scratch is what one Present reuses so that a badge costs no allocation.
type scratch struct {
	rec    vsync.Record
	hasher *vsync.CredentialHasher
	text   [64]byte
}

// Present decides on key at gate, journals the passage and shows the answer.
// It returns the decision; the error is the journal's or the gate's, after
// the member has been answered as well as the edge could.
func (g *Gatekeeper) Present(ctx context.Context, gate Gate, key wiegand.Key) (Decision, error) {
	start := g.Now()
	s, _ := g.scratch.Get().(*scratch)
	if s == nil {
		s = &scratch{hasher: vsync.NewCredentialHasher(g.CredentialKey)}
	}
	in := Input{
		Credential: s.hash(key),
		Reader:     gate.Reader(),
		Now:        vsync.TimestampOf(start),
		Texts:      g.Texts,
	}
	if g.Staleness != nil {
		in.Policy, in.Stale = g.Cache.Policy(), g.Staleness(start)
	}
	d, lookupErr := DecideCached(g.Cache, &s.rec, in)
	g.scratch.Put(s)

	var journalErr error
	if _, err := g.Journal.Append(ctx, d.Event(in)); err != nil {
		journalErr = fmt.Errorf("journal passage at %s: %w", in.Reader.ID, err)
	}
	showErr := gate.Show(ctx, &d)
	if g.Observe != nil {
		g.Observe(&in, &d, g.Now().Sub(start), firstErr(lookupErr, journalErr))
	}
	if showErr != nil {
		return d, fmt.Errorf("answer at %s: %w", in.Reader.ID, showErr)
	}
	return d, journalErr
}

// Record journals an event that is not a passage (a reader going offline, a
// door alarm), stamped now.
func (g *Gatekeeper) Record(ctx context.Context, ev vsync.Event) error {
	if ev.Time == 0 {
		ev.Time = vsync.TimestampOf(g.Now())
	}
	if _, err := g.Journal.Append(ctx, ev); err != nil {
		return fmt.Errorf("journal %s at %s: %w", ev.Kind, ev.Reader, err)
	}
	return nil
}

// hash is the credential key the cloud published for key.
func (s *scratch) hash(key wiegand.Key) vsync.CredentialKey {
	text, err := key.AppendText(s.text[:0])
	if err != nil {
		return vsync.CredentialKey{} // a zero key is in no record: unknown credential
	}
	return s.hasher.Hash(text)
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
