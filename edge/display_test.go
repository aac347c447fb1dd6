package edge

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	vsync "varco.dev/protocol/sync"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestWrap(t *testing.T) {
	tests := []struct {
		text       string
		rows, cols int
		want       []string
	}{
		{"Welcome", 1, 16, []string{"Welcome"}},
		{"Please see reception", 2, 16, []string{"Please see", "reception"}},
		{"Please see reception", 1, 16, []string{"Please see"}},
		{"exactly sixteen!", 1, 16, []string{"exactly sixteen!"}},
		{"exactly sixteen! x", 2, 16, []string{"exactly sixteen!", "x"}},
		{"  leading and   inner  spaces  ", 2, 20, []string{"leading and   inner", "spaces"}},
		{"line one\nline two", 2, 20, []string{"line one", "line two"}},
		{"blank\n\n\nlines\n", 4, 20, []string{"blank", "lines"}},
		{"Perché è così?", 1, 14, []string{"Perché è così?"}},
		{"Perché è così?", 2, 8, []string{"Perché è", "così?"}},
		{"Supercalifragilistic", 2, 8, []string{"Supercal", "ifragili"}},
		{"Supercalifragilistic", 3, 8, []string{"Supercal", "ifragili", "stic"}},
		{"Go Supercalifragilistic now", 4, 8, []string{"Go", "Supercal", "ifragili", "stic now"}},
		{"abcdefghijklmnop", 2, 8, []string{"abcdefgh", "ijklmnop"}},
		{"àèìòùàèìòù", 2, 5, []string{"àèìòù", "àèìòù"}},
		{"日本語のテキスト", 2, 4, []string{"日本語の", "テキスト"}},
		{"", 2, 16, []string{}},
		{"   ", 2, 16, []string{}},
		{"no display", 0, 16, []string{}},
		{"no columns", 2, 0, []string{}},
		{"a b c d e f g h i j", 20, 1, []string{"a", "b", "c", "d", "e", "f", "g", "h"}}, // MaxRows
	}
	for _, tc := range tests {
		got := FitText(tc.text, tc.rows, tc.cols)
		if !slices.Equal(got, tc.want) {
			t.Errorf("FitText(%q, %d, %d) = %q, want %q", tc.text, tc.rows, tc.cols, got, tc.want)
		}
		for _, l := range got {
			if n := utf8.RuneCountInString(l); n > tc.cols {
				t.Errorf("FitText(%q, %d, %d): line %q of %d runes", tc.text, tc.rows, tc.cols, l, n)
			}
		}
	}
}

func TestDisplayLaterTextsFitWhole(t *testing.T) {
	var d Display
	d.reset(3, 10)
	if !d.add("Please see reception", true) { // 2 lines
		t.Fatal("first text did not fit")
	}
	if d.add("Happy birthday Anna", false) { // 2 lines: no room
		t.Fatal("second text added in part")
	}
	if got := d.Lines(); !reflect.DeepEqual(got, []string{"Please see", "reception"}) {
		t.Errorf("lines %q", got)
	}
	if !d.add("Hi Anna", false) {
		t.Fatal("a text that fits was refused")
	}
}

// TestDisplayGolden renders decisions on the display sizes of common readers
// into testdata/display.golden (go test -run Golden -update rewrites it).
func TestDisplayGolden(t *testing.T) {
	E := vsync.DeviceEntrance
	offline := func(rule vsync.OfflineRule, mode vsync.OfflineMode) func(in *Input) {
		return func(in *Input) {
			in.Policy = &vsync.OfflinePolicy{Limits: []vsync.OfflineLimit{{Rule: rule, Mode: mode, After: 3600}}}
			in.Stale = 2 * time.Hour
		}
	}
	scenarios := []struct {
		name   string
		change func(r *vsync.Record)
		in     func(in *Input) // nil: a fresh cache
	}{
		{"grant", func(r *vsync.Record) {}, nil},
		{"blocked: medical certificate", func(r *vsync.Record) {
			r.Actions = []vsync.Action{block(7, 10, "Please see reception:\nmedical certificate expired", E)}
		}, nil},
		{"blocked twice, with a message and a notice", func(r *vsync.Record) {
			r.Actions = []vsync.Action{
				msg(8, 40, "Renewal talk with Marco", E),
				block(7, 10, "Instalment due: please see reception", E),
				block(9, 20, "Medical certificate expired", E),
			}
			r.Notices = []vsync.Notice{{Text: "Happy birthday Anna!", Priority: 50}}
		}, nil},
		{"message and notices", func(r *vsync.Record) {
			r.Actions = []vsync.Action{msg(8, 5, "Perché non provi il corso di yoga?", E)}
			r.Notices = []vsync.Notice{{Text: "Your membership ends in 5 days", Priority: 9}, {Text: "Buon compleanno Anna", Priority: 1}}
		}, nil},
		{"membership expired", func(r *vsync.Record) { r.Valid = []vsync.Window{{Until: day(-3)}} }, nil},
		{"long word", func(r *vsync.Record) {
			r.Notices = []vsync.Notice{{Text: "Welcome to Donaudampfschifffahrtsgesellschaft"}}
		}, nil},
		{"offline 2 h, blocks fail closed after 1 h, a notice", func(r *vsync.Record) {
			r.Notices = []vsync.Notice{{Text: "Happy birthday Anna!"}}
		}, offline(vsync.RuleBlock, vsync.FailClosed)},
		{"offline 2 h, blocks fail open after 1 h: blocked", func(r *vsync.Record) {
			r.Actions = []vsync.Action{block(7, 10, "Please see reception:\nmedical certificate expired", E)}
		}, offline(vsync.RuleBlock, vsync.FailOpen)},
	}
	sizes := []struct{ rows, cols int }{{1, 16}, {2, 16}, {4, 20}}
	var out bytes.Buffer
	for _, sc := range scenarios {
		rec := member()
		sc.change(rec)
		for _, sz := range sizes {
			in := Input{Credential: card, Reader: entrance, Now: now}
			in.Reader.Rows, in.Reader.Cols = sz.rows, sz.cols
			if sc.in != nil {
				sc.in(&in)
			}
			d := Decide(rec, in)
			fmt.Fprintf(&out, "== %s, %dx%d: %s %s\n", sc.name, sz.rows, sz.cols, grantText(d.Grant), d.Reason)
			border := "+" + strings.Repeat("-", sz.cols) + "+\n"
			out.WriteString(border)
			for i := range sz.rows {
				line := ""
				if i < d.Display.Len() {
					line = d.Display.Lines()[i]
				}
				fmt.Fprintf(&out, "|%s%s|\n", line, strings.Repeat(" ", sz.cols-utf8.RuneCountInString(line)))
			}
			out.WriteString(border)
		}
	}
	golden := filepath.Join("testdata", "display.golden")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("display differs from %s (run with -update and review the diff):\n%s", golden, out.Bytes())
	}
}

func grantText(g bool) string {
	if g {
		return "grant"
	}
	return "deny"
}
