package load

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"varco.dev/firmware-sim/internal/testcp"
	"varco.dev/firmware-sim/sim"
	"varco.dev/protocol/osdp"
	"varco.dev/protocol/wiegand"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ms(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

func TestSummarize(t *testing.T) {
	var hundred []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		hundred = append(hundred, ms(float64(i)))
	}
	tests := []struct {
		name    string
		samples []time.Duration
		want    Summary
	}{
		{"none", nil, Summary{}},
		{"one", []time.Duration{ms(3)}, Summary{N: 1, Min: ms(3), Mean: ms(3), P50: ms(3), P90: ms(3), P99: ms(3), Max: ms(3)}},
		{"1..100 ms", hundred, Summary{N: 100, Min: ms(1), Mean: ms(50.5), P50: ms(50), P90: ms(90), P99: ms(99), Max: ms(100)}},
		// Nearest rank over 10: p50 is the 5th, p90 the 9th, p99 the 10th.
		{"ten", []time.Duration{ms(10), ms(1), ms(9), ms(2), ms(8), ms(3), ms(7), ms(4), ms(6), ms(5)},
			Summary{N: 10, Min: ms(1), Mean: ms(5.5), P50: ms(5), P90: ms(9), P99: ms(10), Max: ms(10)}},
	}
	for _, tt := range tests {
		if got := Summarize(tt.samples); got != tt.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.name, got, tt.want)
		}
	}
	if hundred[0] != ms(100) {
		t.Error("Summarize sorted its input")
	}
}

func TestHistogram(t *testing.T) {
	h := Histogram([]time.Duration{ms(0.5), ms(1), ms(1.5), ms(24), ms(25), ms(26), 2 * time.Second})
	want := map[time.Duration]int{ms(1): 2, ms(2): 1, ms(25): 2, ms(50): 1, 0: 1}
	for _, b := range h {
		if b.Count != want[b.Le] {
			t.Errorf("bucket ≤%v: %d, want %d", b.Le, b.Count, want[b.Le])
		}
	}
	var buf bytes.Buffer
	writeHistogram(&buf, h)
	if lines := strings.Split(strings.TrimSpace(buf.String()), "\n"); len(lines) != 11 ||
		!strings.Contains(lines[0], "≤ 1ms       2 "+strings.Repeat("█", 40)) || !strings.Contains(lines[10], "> 1s") {
		t.Errorf("histogram:\n%s", buf.String())
	}
}

func TestRecorder(t *testing.T) {
	t0 := time.Date(2025, 11, 25, 8, 0, 0, 0, time.UTC)
	r := NewRecorder()
	r.present(1, t0)
	if r.present(1, t0) {
		t.Error("a second badge at a busy reader")
	}
	r.present(2, t0)
	for _, ev := range []sim.Event{
		{Kind: sim.Received, At: t0.Add(ms(1)), Addr: 1, Code: osdp.CmdLED, Len: 22},   // before the RAW: not an answer
		{Kind: sim.Sent, At: t0.Add(ms(10)), Addr: 1, Code: osdp.ReplyRaw, Len: 16},    // the card leaves
		{Kind: sim.Sent, At: t0.Add(ms(12)), Addr: 1, Code: osdp.ReplyRaw, Len: 16},    // a retry: the first counts
		{Kind: sim.Received, At: t0.Add(ms(13)), Addr: 1, Code: osdp.CmdPoll, Len: 8},  // not an answer
		{Kind: sim.Received, At: t0.Add(ms(14)), Addr: 1, Code: osdp.CmdText, Len: 30}, // the answer
		{Kind: sim.Received, At: t0.Add(ms(15)), Addr: 1, Code: osdp.CmdLED, Len: 22},  // after the answer
		{Kind: sim.Received, At: t0.Add(ms(15)), Addr: 3, Code: osdp.CmdLED, Len: 22},  // no badge there
		{Kind: sim.Dropped, At: t0.Add(ms(20)), Addr: 2, Code: osdp.ReplyRaw, Len: 16}, // lost on the way
		{Kind: sim.Received, At: t0.Add(ms(20)), Addr: 2, Code: osdp.CmdOut, Len: 12},  // no RAW went out
	} {
		r.Trace(ev)
	}
	if !slices.Equal(r.samples, []time.Duration{ms(4)}) || !slices.Equal(r.wire, []int{46}) {
		t.Errorf("samples %v, wire %v; want [4ms], [46]", r.samples, r.wire)
	}
	if n := r.expire(t0.Add(time.Millisecond)); n != 0 || r.unanswered != 1 {
		t.Errorf("after expiry %d pending, %d unanswered; want 0, 1", n, r.unanswered)
	}
}

func TestRun(t *testing.T) {
	for _, pacing := range []bool{false, true} {
		rec := NewRecorder()
		s, err := sim.New(sim.Config{Readers: sim.Readers(2), BaudPacing: pacing, Trace: rec.Trace})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		edge := testcp.Edge{Readers: []byte{1, 2}, Decide: func(byte, osdp.Reply) []osdp.Command {
			return []osdp.Command{osdp.LED{{Temporary: osdp.LEDTemporary{Control: osdp.LEDTempSet, OnTime: 1, OnColor: osdp.Green, Timer: 5}}}}
		}}
		done := make(chan error)
		go func() { done <- edge.Run(ctx, s.Path()) }()
		if _, err := s.Wait(ctx, sim.All(sim.Polled(1, 1), sim.Polled(2, 1))); err != nil {
			t.Fatal(err)
		}
		var cards []wiegand.Frame
		for n := range uint64(3) {
			c, _ := wiegand.Encode(wiegand.H10301, 1, n)
			cards = append(cards, c)
		}
		rep, err := Run(ctx, s, rec, Config{Rate: 40, Duration: 250 * time.Millisecond, Cards: cards})
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		rep.WriteTo(&out)
		t.Logf("pacing %v:\n%s", pacing, out.String())
		if rep.Presented < 5 || rep.Answered != rep.Presented || rep.Unanswered != 0 || rep.Latency.N != rep.Answered {
			t.Errorf("pacing %v: %+v", pacing, rep)
		}
		if pacing && (rep.WireBytes != 16+22 || rep.Latency.Min < rep.WireBound) {
			t.Errorf("paced: %d bytes on the wire, bound %v, fastest answer %v", rep.WireBytes, rep.WireBound, rep.Latency.Min)
		}
		if !strings.Contains(out.String(), "p50 ") || pacing != strings.Contains(out.String(), "wire-time lower bound") {
			t.Errorf("report:\n%s", out.String())
		}
	}
}
