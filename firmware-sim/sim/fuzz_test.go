package sim

import (
	"errors"
	"testing"

	"varco.dev/protocol/osdp"
	"varco.dev/protocol/wiegand"
)

// FuzzLine feeds arbitrary line bytes to three readers on one line, with
// faults pending, and checks that nothing panics and that at most one
// reader answers each frame.
func FuzzLine(f *testing.F) {
	for _, m := range []osdp.Command{osdp.Poll{}, osdp.ID{}, osdp.Out{{Control: osdp.OutputTemporaryOn, Timer: 9}},
		osdp.Text{Command: osdp.TextTemporaryWrap, TempTime: 1, Row: 1, Column: 1, Text: "hello"}} {
		for _, addr := range []byte{1, 2, osdp.BroadcastAddr} {
			b, _ := osdp.AppendMessage(nil, &osdp.Frame{Addr: addr, CRC: addr == 1}, m)
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := newLine(Config{Readers: Readers(3)})
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Inject(1, GarbleReply, 2)
		_ = s.Inject(2, CorruptCheck, 1)
		_ = s.PresentCard(3, wiegand.H10301, 1, 1)
		dec, _ := osdp.NewDecoder(osdp.DecoderConfig{Accept: osdp.Commands, MaxFrameLen: s.maxFrame})
		for fr, err := range dec.Feed(b) {
			var fe *osdp.FrameError
			if err != nil && !errors.As(err, &fe) {
				continue
			}
			if txs, _ := s.handle(&fr, fe, wireLen(&fr)); len(txs) > 1 {
				t.Fatalf("%d readers answered %v", len(txs), fr)
			}
		}
		_ = s.State().String()
	})
}
