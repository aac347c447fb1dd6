package osdp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// FuzzDecoder feeds arbitrary bytes, in pieces of arbitrary size, to a
// decoder with an arbitrary frame limit. It must not panic, must not hold
// more than the limit, must report errors as *FrameError, and every frame
// it returns must encode back to bytes that were in the input.
func FuzzDecoder(f *testing.F) {
	var all []byte
	for _, g := range goldens {
		f.Add(g.raw, uint8(0), uint16(0))
		all = append(all, g.raw...)
	}
	f.Add(all, uint8(7), uint16(64))
	for _, b := range badFrames {
		raw, _ := hex.DecodeString(strings.ReplaceAll(b.raw, " ", ""))
		f.Add(raw, uint8(2), uint16(SpecMaxFrameLen))
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8, limit uint16) {
		// One complete frame: ParseFrame must give back exactly the input.
		if fr, err := ParseFrame(in); err == nil {
			out, err := AppendFrame(nil, &fr)
			if err != nil || !bytes.Equal(out, in) {
				t.Fatalf("ParseFrame(% X) = %v, which encodes to % X, %v", in, dump(fr), out, err)
			}
		}

		max := headerLen + 3 + int(limit)%SpecMaxFrameLen
		d, err := NewDecoder(DecoderConfig{Accept: Both, MaxFrameLen: max})
		if err != nil {
			t.Fatal(err)
		}
		step := int(chunk) + 1
		for p := in; len(p) > 0; {
			n := min(step, len(p))
			for fr, err := range d.Feed(p[:n]) {
				if err != nil {
					var fe *FrameError
					if !errors.As(err, &fe) {
						t.Fatalf("error %v is not a *FrameError", err)
					}
					continue
				}
				out, err := AppendFrame(nil, &fr)
				if err != nil || !bytes.Contains(in, out) {
					t.Fatalf("frame %v encodes to % X, %v, which is not in the input", dump(fr), out, err)
				}
				if l := len(out) - int(b2u(fr.Mark)); l > max {
					t.Fatalf("frame of %d bytes returned with limit %d", l, max)
				}
			}
			p = p[n:]
			if cap(d.buf) != max || d.Buffered() > max {
				t.Fatalf("buffer cap %d, buffered %d; limit %d", cap(d.buf), d.Buffered(), max)
			}
		}
		if s := d.Stats(); s.Discarded+uint64(d.Buffered()) > uint64(len(in)) {
			t.Fatalf("stats %+v and %d buffered for %d bytes in", s, d.Buffered(), len(in))
		}
	})
}

// FuzzDecodeCommand decodes arbitrary command data blocks: no panic, and
// whatever decodes encodes back to the same bytes.
func FuzzDecodeCommand(f *testing.F) {
	for _, g := range goldens {
		if !g.frame.Reply {
			f.Add(g.frame.Code, g.frame.Data)
		}
	}
	f.Fuzz(func(t *testing.T, code byte, data []byte) {
		checkDecode(t, code, false, data)
	})
}

// FuzzDecodeReply is FuzzDecodeCommand for replies.
func FuzzDecodeReply(f *testing.F) {
	for _, g := range goldens {
		if g.frame.Reply {
			f.Add(g.frame.Code, g.frame.Data)
		}
	}
	f.Fuzz(func(t *testing.T, code byte, data []byte) {
		checkDecode(t, code, true, data)
	})
}
