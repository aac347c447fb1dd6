package pd

import (
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"varco.dev/protocol/osdp"
)

var t0 = time.Date(2025, 11, 25, 8, 0, 0, 0, time.UTC)

// newDevice returns a device.
func newDevice(t *testing.T, cfg Config) *Device {
	t.Helper()
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// cmd encodes a command as a CP would.
func cmd(t testing.TB, hdr osdp.Frame, m osdp.Command) []byte {
	t.Helper()
	b, err := osdp.AppendMessage(nil, &hdr, m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// feed passes raw line bytes to the device and returns what it writes back.
func feed(t testing.TB, d *Device, now time.Time, raw []byte) []byte {
	t.Helper()
	dec, err := osdp.NewDecoder(osdp.DecoderConfig{Accept: osdp.Commands})
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for f, err := range dec.Feed(raw) {
		var r Result
		if fe, ok := err.(*osdp.FrameError); ok {
			r = d.Reject(now, fe)
		} else if err == nil {
			r = d.Handle(now, &f)
		}
		out = append(out, r.Reply...)
	}
	return out
}

// unhex reads bytes written as hex with spaces and "// comments".
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	var clean strings.Builder
	for line := range strings.Lines(s) {
		line, _, _ = strings.Cut(line, "//")
		clean.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(clean.String())
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// reply decodes one reply frame.
func reply(t testing.TB, b []byte) (osdp.Frame, osdp.Reply) {
	t.Helper()
	f, err := osdp.ParseFrame(b)
	if err != nil {
		t.Fatalf("reply % X: %v", b, err)
	}
	r, err := osdp.DecodeReply(f.Code, f.Data)
	if err != nil {
		t.Fatalf("reply %v: %v", f, err)
	}
	return f, r
}
