package scenario

import (
	"bytes"
	"context"
	"errors"
	"os"
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

func TestParse(t *testing.T) {
	sc, err := Parse("t.scn", strings.NewReader(`
# setup
reader 1 rows=4 outputs=2 keypad=no
reader 7 rows=none leds=0
baud 9600
pacing on
timeout 500ms
connect 0

card 1 H10301 123 4567   # a comment
pin 7 12#
sleep 10ms
power 7 off
late 1 300ms
busy 1 2
fault 1 garble 3
expect 1 display "Please see reception" within 1s
expect 1 display "# not a comment"
expect 1 led RED
expect 1 gate closed for 2s
expect 7 polled
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Readers) != 2 || sc.Readers[0].Rows != 4 || sc.Readers[0].Outputs != 2 || sc.Readers[1].Rows != -1 || sc.Readers[1].LEDs != -1 {
		t.Errorf("readers %+v", sc.Readers)
	}
	if sc.Baud != 9600 || !sc.Pacing || sc.Timeout != 500*time.Millisecond || sc.Connect != 0 {
		t.Errorf("setup %+v", sc)
	}
	card, _ := wiegand.Encode(wiegand.H10301, 123, 4567)
	want := []Step{
		{Line: 10, Verb: "card", Reader: 1, Card: card},
		{Line: 11, Verb: "pin", Reader: 7, Keys: "12#"},
		{Line: 12, Verb: "sleep", D: 10 * time.Millisecond},
		{Line: 13, Verb: "power", Reader: 7},
		{Line: 14, Verb: "late", Reader: 1, D: 300 * time.Millisecond},
		{Line: 15, Verb: "busy", Reader: 1, N: 2},
		{Line: 16, Verb: "fault", Reader: 1, Fault: sim.GarbleReply, N: 3},
		{Line: 17, Verb: "expect", Reader: 1, What: "display", Text: "Please see reception", D: time.Second},
		{Line: 18, Verb: "expect", Reader: 1, What: "display", Text: "# not a comment"},
		{Line: 19, Verb: "expect", Reader: 1, What: "led", Color: osdp.Red},
		{Line: 20, Verb: "expect", Reader: 1, What: "gate-closed", D: 2 * time.Second},
		{Line: 21, Verb: "expect", Reader: 7, What: "polled"},
	}
	if len(sc.Steps) != len(want) {
		t.Fatalf("%d steps, want %d", len(sc.Steps), len(want))
	}
	for i, st := range sc.Steps {
		st.Source = ""
		if st != want[i] {
			t.Errorf("step %d:\n got %+v\nwant %+v", i, st, want[i])
		}
	}
	if src := sc.Steps[0].Source; src != "card 1 H10301 123 4567" {
		t.Errorf("source %q", src)
	}
}

func TestParseErrors(t *testing.T) {
	_, err := Parse("bad.scn", strings.NewReader(`readers 2
card 1 H10301 4567
pin 2 12a
expect 1 display Please
expect 1 colour red
expect 1 led mauve
expect 1 gate ajar
expect 1 grant within soon
expect 1 gate closed within 1s
power 3 off
fault 1 smoke
launch 1
expect 1 display "unterminated
baud 9600
`))
	want := []string{
		"bad.scn:2: H10301 needs a facility code and a card number",
		"bad.scn:3: want pin R KEYS, KEYS of digits, * and #",
		`bad.scn:5: unknown expectation "colour"`,
		`bad.scn:6: unknown colour "mauve"`,
		"bad.scn:7: want expect R gate open|closed",
		`bad.scn:8: "soon": want a duration`,
		`bad.scn:9: use "for D" with gate closed`,
		`bad.scn:11: unknown fault "smoke"`,
		`bad.scn:12: unknown directive "launch"`,
		"bad.scn:13: unterminated quoted string",
		"bad.scn:14: baud must come before the first step",
		"bad.scn:10: no reader 3",
	}
	if err == nil {
		t.Fatal("no error")
	}
	got := strings.Split(err.Error(), "\n")
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || strings.HasPrefix(g, w)
		}
		if !found {
			t.Errorf("missing error %q in\n%v", w, err)
		}
	}
	if len(got) != len(want) { // line 4 is good: a one-word text needs no quotes
		t.Errorf("%d errors, want %d:\n%v", len(got), len(want), err)
	}
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Errorf("%T is not a *ParseError", err)
	}
}

// runWithCP runs a script with the test CP on the line.
func runWithCP(t *testing.T, src string) (string, error) {
	sc, err := Parse("t.scn", strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.New(sc.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(t.Context())
	edge := testcp.Edge{Readers: []byte{1, 2}, Decide: testcp.Rules}
	done := make(chan error)
	go func() { done <- edge.Run(ctx, s.Path()) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("test CP: %v", err)
		}
	}()
	var out bytes.Buffer
	err = sc.Run(t.Context(), s, &out)
	return out.String(), err
}

func TestRunTurnstile(t *testing.T) {
	src, err := os.ReadFile("testdata/turnstile.scn")
	if err != nil {
		t.Fatal(err)
	}
	out, err := runWithCP(t, string(src))
	t.Log(out)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out, "\nok "); n != 20 {
		t.Errorf("%d steps ok, want 20", n)
	}
}

func TestRunFailure(t *testing.T) {
	out, err := runWithCP(t, `readers 2
connect 10s
card 1 H10301 1 200
expect 1 display "Please see reception"
expect 1 grant within 300ms
`)
	var f *Failure
	if !errors.As(err, &f) {
		t.Fatalf("got %v, want a *Failure", err)
	}
	if f.Step.Line != 5 || !strings.Contains(f.Want, "the gate opening within 300ms") ||
		!strings.Contains(f.Got, `reader 1: "Please see recep" "tion"`) || !strings.Contains(f.Got, "gate closed, 0 passages") {
		t.Errorf("failure:\n%v", f)
	}
	if !strings.Contains(out, "FAIL    5  expect 1 grant within 300ms") {
		t.Errorf("output:\n%s", out)
	}
	wantMsg := "t.scn:5: expect 1 grant within 300ms\n  want: the gate opening within 300ms\n  got:  reader 1:"
	if !strings.HasPrefix(f.Error(), wantMsg) {
		t.Errorf("message:\n%s\nwant prefix\n%s", f.Error(), wantMsg)
	}
}

func TestRunWithoutCP(t *testing.T) {
	sc, err := Parse("t.scn", strings.NewReader("connect 50ms\ncard 1 H10301 1 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.New(sc.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out bytes.Buffer
	err = sc.Run(t.Context(), s, &out)
	var f *Failure
	if !errors.As(err, &f) || !strings.Contains(f.Error(), "want: a CP polling every reader within 50ms") {
		t.Fatalf("got %v", err)
	}
}

func TestParseStep(t *testing.T) {
	st, err := ParseStep(`expect 2 display "Hello  Anna" within 1s # a comment`)
	if err != nil {
		t.Fatal(err)
	}
	if st.Verb != "expect" || st.What != "display" || st.Reader != 2 || st.Text != "Hello  Anna" || st.D != time.Second ||
		st.Source != `expect 2 display "Hello  Anna" within 1s` {
		t.Errorf("%+v", st)
	}
	for line, want := range map[string]string{
		"":               "empty step",
		"readers 2":      "readers is a setup directive",
		"card 1 H10301":  "want FORMAT [FACILITY] NUMBER",
		"power 1 sleepy": "want power R off|on",
	} {
		if _, err := ParseStep(line); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", line, err, want)
		}
	}
}
