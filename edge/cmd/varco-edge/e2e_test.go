package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"varco.dev/edge/config"
	"varco.dev/firmware-sim/scenario"
	"varco.dev/firmware-sim/sim"
	"varco.dev/protocol/osdp"
	"varco.dev/protocol/wiegand"
)

// Members of testdata/members.ndjson, by card number (facility 118).
const (
	cardAnna    = 1603 // a birthday notice
	cardBlocked = 1604 // message+block on entrance: "Please see reception: medical certificate expired"
	cardMessage = 1605 // message on every gate: "Your membership ends in 5 days"
	cardExpired = 1606 // membership ended in 2020
	cardUnknown = 4242
)

// Reader addresses in writeConfig: 1 guards an entrance, 2 an exit.
const (
	entrance = 1
	exit     = 2
)

// edgeOnSim is a real varco-edge (its Main, the same wiring as the binary)
// on the pseudo-terminal of a varco-sim line with two readers.
type edgeOnSim struct {
	sim      *sim.Sim
	main     *Main
	readers  chan readerState
	versions chan uint64
}

type readerState struct {
	id     string
	online bool
}

// startEdge starts a sim line as simCfg says, imports members and runs the
// edge on the line until the test ends.
func startEdge(t *testing.T, simCfg sim.Config, members string) *edgeOnSim {
	t.Helper()
	return startEdgeWith(t, simCfg, members, "")
}

// startEdgeWith is startEdge with extra configuration text.
func startEdgeWith(t *testing.T, simCfg sim.Config, members, extra string) *edgeOnSim {
	t.Helper()
	s, err := sim.New(simCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })

	port := s.Path()
	if s.Link() != "" {
		port = s.Link()
	}
	path := writeConfig(t, port, extra)
	if _, errOut, code := runCmd(t, "import", "--config", path, members); code != 0 {
		t.Fatalf("import: %s", errOut)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	m, err := Open(ctx, cfg, &logs)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	e := &edgeOnSim{sim: s, main: m, readers: make(chan readerState, 64), versions: make(chan uint64, 64)}
	m.OnReader = func(id string, online bool) { e.readers <- readerState{id, online} }
	m.OnCacheVersion = func(v uint64) { e.versions <- v }
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if t.Failed() {
			t.Logf("varco-edge log:\n%s", logs.String())
		}
	})
	e.waitReader(t, "entrance-1", true)
	e.waitReader(t, "exit-1", true)
	return e
}

// waitReader waits until the edge reports reader id online or offline.
func (e *edgeOnSim) waitReader(t *testing.T, id string, online bool) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case st := <-e.readers:
			if st.id == id && st.online == online {
				return
			}
		case <-timeout:
			t.Fatalf("reader %s never went online=%v", id, online)
		}
	}
}

// passage is a card presented at a reader: the sim's mark and the gate's
// passage count just before.
type passage struct {
	addr   int
	mark   uint64
	opened uint64
}

// badge presents a card and waits until the reader's LED turns colour and
// its display shows text.
func (e *edgeOnSim) badge(t *testing.T, addr int, card uint64, led osdp.Color, text string) passage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p := passage{addr: addr, mark: e.sim.Mark(), opened: e.opened(addr)}
	if err := e.sim.PresentCard(addr, wiegand.H10301, 118, card); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sim.WaitSince(ctx, p.mark, sim.All(sim.LEDColor(addr, led), sim.Shows(addr, text))); err != nil {
		t.Fatalf("card %d at reader %d: %v", card, addr, err)
	}
	return p
}

func (e *edgeOnSim) gateOpens(t *testing.T, p passage) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := e.sim.WaitSince(ctx, p.mark, sim.GateOpened(p.addr, p.opened+1)); err != nil {
		t.Fatalf("gate %d did not open: %v", p.addr, err)
	}
}

func (e *edgeOnSim) opened(addr int) uint64 {
	r, err := e.sim.Reader(addr)
	if err != nil {
		return 0
	}
	return r.Gate.Opened
}

// gateStaysClosed checks that the gate does not open within a second of the
// card: long after the edge answered, which the caller has already seen.
func (e *edgeOnSim) gateStaysClosed(t *testing.T, p passage) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := e.sim.Never(ctx, p.mark, sim.GateOpened(p.addr, p.opened+1)); err != nil {
		t.Fatalf("gate %d opened: %v", p.addr, err)
	}
}

func TestEndToEnd(t *testing.T) {
	e := startEdge(t, sim.Config{Readers: sim.Readers(2)}, "testdata/members.ndjson")

	t.Run("blocking action stops the member at the entrance", func(t *testing.T) {
		p := e.badge(t, entrance, cardBlocked, osdp.Red, "Please see reception")
		e.gateStaysClosed(t, p)
	})
	t.Run("the same member leaves by the exit", func(t *testing.T) {
		p := e.badge(t, exit, cardBlocked, osdp.Green, "Welcome")
		e.gateOpens(t, p)
	})
	t.Run("message action shows its text and opens", func(t *testing.T) {
		p := e.badge(t, entrance, cardMessage, osdp.Amber, "Your membership ends in 5 days")
		e.gateOpens(t, p)
	})
	t.Run("notice for a granted member", func(t *testing.T) {
		p := e.badge(t, entrance, cardAnna, osdp.Green, "Happy birthday Anna")
		e.gateOpens(t, p)
	})
	t.Run("expired membership is denied", func(t *testing.T) {
		p := e.badge(t, entrance, cardExpired, osdp.Red, "Membership expired")
		e.gateStaysClosed(t, p)
	})
	t.Run("unknown card is denied", func(t *testing.T) {
		p := e.badge(t, entrance, cardUnknown, osdp.Red, "Unknown badge")
		e.gateStaysClosed(t, p)
	})
	t.Run("a corrupted reply is retried", func(t *testing.T) {
		if err := e.sim.Inject(entrance, sim.CorruptCheck, 1); err != nil {
			t.Fatal(err)
		}
		p := e.badge(t, entrance, cardAnna, osdp.Green, "Happy birthday Anna")
		e.gateOpens(t, p)
	})
	t.Run("a silent reader goes offline and comes back", func(t *testing.T) {
		if err := e.sim.PowerOff(exit); err != nil {
			t.Fatal(err)
		}
		e.waitReader(t, "exit-1", false)
		// The other reader keeps working meanwhile.
		p := e.badge(t, entrance, cardAnna, osdp.Green, "Happy birthday Anna")
		e.gateOpens(t, p)
		if err := e.sim.PowerOn(exit); err != nil {
			t.Fatal(err)
		}
		e.waitReader(t, "exit-1", true)
		p = e.badge(t, exit, cardAnna, osdp.Green, "Happy birthday Anna")
		e.gateOpens(t, p)
	})
	t.Run("every passage is journaled", func(t *testing.T) {
		// 9 passages, 2 online events at start, offline + online of exit-1.
		if got := e.main.journal.LastSeq(); got < 13 {
			t.Errorf("journal last sequence = %d, want at least 13", got)
		}
	})
}

// TestSerialLineComesBack unplugs the line (the sim closes its
// pseudo-terminal) and plugs a new one in at the same path: the edge says its
// readers are offline, opens the port again and answers badges.
func TestSerialLineComesBack(t *testing.T) {
	cfg := sim.Config{Readers: sim.Readers(2), Link: filepath.Join(t.TempDir(), "ttyOSDP")}
	e := startEdge(t, cfg, "testdata/members.ndjson")
	if err := e.sim.Close(); err != nil {
		t.Fatal(err)
	}
	e.waitReader(t, "entrance-1", false)
	s, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	e.sim = s
	e.waitReader(t, "entrance-1", true)
	p := e.badge(t, entrance, cardAnna, osdp.Green, "Happy birthday Anna")
	e.gateOpens(t, p)
}

// TestScenarios plays the repository's scenario files (the demo's among
// them) against the real edge, as `make demo-edge` does with the binaries.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("../../../deploy/demo/*.scn")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenario files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			script, err := scenario.Parse(file, f)
			if err != nil {
				t.Fatal(err)
			}
			e := startEdge(t, script.Config(), filepath.Join(filepath.Dir(file), "members.ndjson"))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var out bytes.Buffer
			if err := script.Run(ctx, e.sim, &out); err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			t.Log(out.String())
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the daemon's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

var _ io.Writer = (*syncBuffer)(nil)

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
