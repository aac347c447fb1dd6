package demo

import (
	"bytes"
	"flag"
	"os"
	"testing"

	"varco.dev/firmware-sim/pd"
	"varco.dev/firmware-sim/sim"
	"varco.dev/protocol/osdp"
)

var update = flag.Bool("update", false, "rewrite testdata/panel.golden")

// TestPanel pins what the demo shows of two readers: a denial with a
// four-row text and a grant with an open gate.
func TestPanel(t *testing.T) {
	st := sim.State{Readers: []sim.ReaderState{
		{Address: 1, State: pd.State{Powered: true, Display: []string{"See reception:", "medical", "certificate", "expired"},
			LEDs: []pd.LEDState{{Color: osdp.Red}}}},
		{Address: 2, State: pd.State{Powered: true, Display: []string{"Welcome", "", "", ""}, LEDs: []pd.LEDState{{Color: osdp.Green}}},
			Gate: sim.Gate{Present: true, Open: true}},
	}}
	var b bytes.Buffer
	writePanel(&b, readerNames, st)
	if *update {
		if err := os.WriteFile("testdata/panel.golden", b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/panel.golden")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("panel:\n%s\nwant:\n%s", b.Bytes(), want)
	}
}
