package pd

import (
	"testing"
	"time"

	"varco.dev/protocol/osdp"
)

// FuzzDevice feeds arbitrary line bytes to a device, as noise or a broken
// CP would, and checks that it never panics and that every reply it writes
// is a well-formed frame from its own address.
func FuzzDevice(f *testing.F) {
	for _, g := range goldens(f) {
		f.Add(g.req)
	}
	f.Add([]byte{0x53, 0x01, 0x08, 0x00, 0x04, 0x60, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := New(Config{Address: 1, Inputs: 1, LEDs: 2})
		if err != nil {
			t.Fatal(err)
		}
		dec, _ := osdp.NewDecoder(osdp.DecoderConfig{Accept: osdp.Commands, MaxFrameLen: 256})
		now := t0
		for i := 0; i < 2; i++ { // twice: the second pass meets retries and sequence errors
			for fr, err := range dec.Feed(b) {
				var r Result
				if fe, ok := err.(*osdp.FrameError); ok {
					r = d.Reject(now, fe)
				} else if err == nil {
					r = d.Handle(now, &fr)
				}
				if r.Reply == nil {
					continue
				}
				rf, err := osdp.ParseFrame(r.Reply)
				if err != nil || !rf.Reply || (rf.Addr != 1 && rf.Addr != osdp.BroadcastAddr) {
					t.Fatalf("reply % X: %v %v", r.Reply, rf, err)
				}
				if _, err := osdp.DecodeReply(rf.Code, rf.Data); err != nil {
					t.Fatalf("reply %v: %v", rf, err)
				}
			}
			_ = d.State(now)
			d.NextChange(now)
			now = now.Add(time.Second)
		}
	})
}
