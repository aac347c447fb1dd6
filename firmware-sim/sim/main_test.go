package sim

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"
	"varco.dev/protocol/osdp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wantNak checks that r is a NAK with the given code.
func wantNak(t *testing.T, r osdp.Reply, code osdp.NakCode) {
	t.Helper()
	if n, ok := r.(osdp.Nak); !ok || n.Reason != code {
		t.Fatalf("got %#v, want NAK %d", r, code)
	}
}

// newSim starts a Sim closed at the end of the test.
func newSim(t *testing.T, cfg Config) *Sim {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// waitCtx bounds a Wait in a test: a failure guard, never a pause.
func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
