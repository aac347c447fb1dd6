package osdp

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

// event is one thing a decoder returned: a frame or an error.
type event struct {
	f   Frame
	err error
}

// feed passes each chunk to d and collects what comes out, cloning frames.
func feed(d *Decoder, chunks ...[]byte) []event {
	var out []event
	for _, c := range chunks {
		for f, err := range d.Feed(c) {
			out = append(out, event{f.Clone(), err})
		}
	}
	return out
}

// golden returns the raw bytes of the named golden frame.
func goldenRaw(t testing.TB, name string) []byte {
	t.Helper()
	for _, g := range goldens {
		if g.name == name {
			return g.raw
		}
	}
	t.Fatalf("no golden frame %q", name)
	return nil
}

// goldenFrame returns the decoded form of the named golden frame.
func goldenFrame(t testing.TB, name string) Frame {
	t.Helper()
	f, err := ParseFrame(goldenRaw(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return f.Clone()
}

// expect checks events against frames and error sentinels, in order.
func expect(t *testing.T, got []event, want ...any) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events %v, want %d %v", len(got), got, len(want), want)
	}
	for i, w := range want {
		switch w := w.(type) {
		case Frame:
			if got[i].err != nil || !frameEqual(got[i].f, w) {
				t.Errorf("event %d: got %v, %v; want %v", i, dump(got[i].f), got[i].err, dump(w))
			}
		case error:
			if !errors.Is(got[i].err, w) {
				t.Errorf("event %d: got %v, %v; want %v", i, dump(got[i].f), got[i].err, w)
			}
		}
	}
}

func TestDecoderSplitEverywhere(t *testing.T) {
	// A mark, a checksum frame, a secure frame, and a frame whose code is
	// the SOM value.
	names := []string{"PDID/mark", "BUSY", "ACK/secure", "KEYPAD", "NAK"}
	var stream []byte
	var want []any
	for _, n := range names {
		stream = append(stream, goldenRaw(t, n)...)
		want = append(want, goldenFrame(t, n))
	}
	for i := range len(stream) + 1 {
		for j := i; j <= len(stream); j++ {
			d := mustDecoder(t, DecoderConfig{Accept: Replies})
			got := feed(d, stream[:i], stream[i:j], stream[j:])
			expect(t, got, want...)
			if t.Failed() {
				t.Fatalf("split at %d and %d", i, j)
			}
		}
	}
}

func TestDecoderGarbage(t *testing.T) {
	poll, ack := goldenRaw(t, "POLL/seq2"), goldenRaw(t, "ACK/reader")
	noise := []byte{0x00, 0x11, 0x22, 0x53, 0x99, 0x53, 0x00} // two false SOMs
	var stream []byte
	stream = append(stream, noise...)
	stream = append(stream, poll...)
	stream = append(stream, noise...)
	stream = append(stream, noise...)
	stream = append(stream, ack...)
	stream = append(stream, 0x42)

	d := mustDecoder(t, DecoderConfig{Accept: Both})
	var frames []Frame
	var errs int
	for f, err := range d.Feed(stream) {
		if err != nil {
			errs++
			continue
		}
		frames = append(frames, f.Clone())
	}
	expect(t, []event{{f: frames[0]}, {f: frames[1]}}, goldenFrame(t, "POLL/seq2"), goldenFrame(t, "ACK/reader"))
	s := d.Stats()
	if s.Frames != 2 || s.Errors != uint64(errs) {
		t.Errorf("stats %+v, want 2 frames and %d errors", s, errs)
	}
	// Everything but the two frames was discarded, apart from the last byte,
	// which could still be the start of... nothing: it is not a SOM.
	if want := uint64(len(stream) - len(poll) - len(ack)); s.Discarded != want {
		t.Errorf("discarded %d bytes, want %d", s.Discarded, want)
	}
	if d.Buffered() != 0 {
		t.Errorf("%d bytes still buffered", d.Buffered())
	}
}

func TestDecoderBadCheckThenGoodFrame(t *testing.T) {
	bad := bytes.Clone(goldenRaw(t, "ACK/reader"))
	bad[len(bad)-1] ^= 0xFF
	good := goldenRaw(t, "PDID/reader")
	d := mustDecoder(t, DecoderConfig{Accept: Replies})
	got := feed(d, bad, good)
	expect(t, got, ErrBadCheck, goldenFrame(t, "PDID/reader"))
	var fe *FrameError
	if !errors.As(got[0].err, &fe) || fe.Addr != 0x80 || fe.Len != 8 {
		t.Errorf("error %v, want a *FrameError for address byte 0x80, length 8", got[0].err)
	}
	if NakFor(got[0].err) != NakCheck {
		t.Errorf("NakFor(%v) = %v, want NakCheck", got[0].err, NakFor(got[0].err))
	}
}

// TestDecoderFrameInsideFalseStart: a false SOM whose length covers a real
// frame is rejected on its check, and the real frame inside is found.
func TestDecoderFrameInsideFalseStart(t *testing.T) {
	stream := []byte{0x53, 0x80, 0x0C, 0x00, 0x04} // claims 12 bytes, CRC mode
	stream = append(stream, goldenRaw(t, "ACK/reader")...)
	d := mustDecoder(t, DecoderConfig{Accept: Replies})
	expect(t, feed(d, stream), ErrBadCheck, goldenFrame(t, "ACK/reader"))
}

func TestDecoderOversize(t *testing.T) {
	const limit = 32
	// A genuine frame longer than the limit, with no SOM byte in its body.
	long := Frame{Addr: 0x65, CRC: true, Code: CmdMfg, Data: bytes.Repeat([]byte{0x11}, 40)}
	raw, err := AppendFrame(nil, &long)
	if err != nil || bytes.IndexByte(raw[1:], SOM) >= 0 {
		t.Fatalf("bad test frame % X, %v", raw, err)
	}
	poll := goldenRaw(t, "POLL/seq2")
	d := mustDecoder(t, DecoderConfig{Accept: Commands, MaxFrameLen: limit})
	got := feed(d, raw, poll)
	expect(t, got, ErrFrameTooLong, goldenFrame(t, "POLL/seq2"))
	var fe *FrameError
	if !errors.As(got[0].err, &fe) || fe.Addr != 0x65 || fe.Len != len(raw) {
		t.Errorf("error %v, want a *FrameError for address byte 0x65, length %d", got[0].err, len(raw))
	}
	if NakFor(got[0].err) != NakCommandLength {
		t.Errorf("NakFor = %v, want NakCommandLength", NakFor(got[0].err))
	}
	if cap(d.buf) != limit {
		t.Errorf("buffer grew to %d bytes, limit %d", cap(d.buf), limit)
	}
	if s := d.Stats(); s.Discarded != uint64(len(raw)) {
		t.Errorf("discarded %d bytes, want %d", s.Discarded, len(raw))
	}
}

func TestDecoderDirection(t *testing.T) {
	poll, ack := goldenRaw(t, "POLL/seq2"), goldenRaw(t, "ACK/reader")

	cp := mustDecoder(t, DecoderConfig{Accept: Replies})
	got := feed(cp, poll, ack) // the CP hears its own command echoed, then the reply
	expect(t, got, ErrDirection, goldenFrame(t, "ACK/reader"))

	pd := mustDecoder(t, DecoderConfig{Accept: Commands})
	expect(t, feed(pd, ack, poll), ErrDirection, goldenFrame(t, "POLL/seq2"))
	if s := pd.Stats(); s.Discarded != uint64(len(ack)) || s.Errors != 1 {
		t.Errorf("stats %+v, want the whole wrong-way frame discarded", s)
	}
}

func TestDecoderMark(t *testing.T) {
	poll := goldenRaw(t, "POLL/seq2")
	withMark := goldenFrame(t, "POLL/seq2")
	withMark.Mark = true
	noMark := goldenFrame(t, "POLL/seq2")
	tests := []struct {
		name      string
		chunks    [][]byte
		want      Frame
		discarded uint64
	}{
		{"none", [][]byte{poll}, noMark, 0},
		{"one", [][]byte{{0xFF}, poll}, withMark, 0},
		{"idle line", [][]byte{{0xFF, 0xFF, 0xFF, 0xFF}, poll}, withMark, 0},
		{"same chunk", [][]byte{append([]byte{0xFF}, poll...)}, withMark, 0},
		{"garbage then mark", [][]byte{{0x01, 0x02, 0xFF}, poll}, withMark, 2},
		{"mark then garbage", [][]byte{{0xFF, 0x01}, poll}, noMark, 1},
		{"after a frame", [][]byte{poll, poll}, noMark, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustDecoder(t, DecoderConfig{Accept: Commands})
			got := feed(d, tt.chunks...)
			expect(t, got[len(got)-1:], tt.want)
			if s := d.Stats(); s.Discarded != tt.discarded {
				t.Errorf("discarded %d, want %d", s.Discarded, tt.discarded)
			}
		})
	}
}

func TestDecoderChecksumMode(t *testing.T) {
	d := mustDecoder(t, DecoderConfig{Accept: Both})
	var stream []byte
	var want []any
	for _, n := range []string{"ID/AnnexE/checksum", "COMSET/AnnexE/checksum", "NAK", "BUSY"} {
		stream = append(stream, goldenRaw(t, n)...)
		want = append(want, goldenFrame(t, n))
	}
	expect(t, feed(d, stream), want...)
}

// TestDecoderFalseStart: noise that looks like the header of a long frame
// does not hold back the reply behind it.
func TestDecoderFalseStart(t *testing.T) {
	d := mustDecoder(t, DecoderConfig{Accept: Replies})
	stream := []byte{0x53, 0x80, 0x00, 0x01, 0x04} // claims 256 bytes, CRC mode
	stream = append(stream, goldenRaw(t, "ACK/reader")...)
	stream = append(stream, 0x00, 0x01) // trailing noise
	got := feed(d, stream)
	expect(t, got, ErrBadLength, goldenFrame(t, "ACK/reader"))
	var fe *FrameError
	if !errors.As(got[0].err, &fe) || fe.Len != 256 {
		t.Errorf("error %v, want a *FrameError with length 256", got[0].err)
	}

	// The same, a byte at a time.
	var bytewise [][]byte
	for i := range stream {
		bytewise = append(bytewise, stream[i:i+1])
	}
	expect(t, feed(d, bytewise...), ErrBadLength, goldenFrame(t, "ACK/reader"))
}

func TestDecoderReset(t *testing.T) {
	d := mustDecoder(t, DecoderConfig{Accept: Replies})
	pdid := goldenRaw(t, "PDID/reader")
	if got := feed(d, pdid[:7]); len(got) != 0 {
		t.Fatalf("got %v from half a frame", got)
	}
	if d.Buffered() != 7 {
		t.Fatalf("buffered %d, want 7", d.Buffered())
	}
	d.Reset() // the line went idle mid-frame
	if d.Buffered() != 0 || d.Stats().Discarded != 7 {
		t.Fatalf("after Reset: buffered %d, stats %+v", d.Buffered(), d.Stats())
	}
	expect(t, feed(d, pdid), goldenFrame(t, "PDID/reader"))
}

// TestDecoderBreak: frames not yet returned stay buffered when the loop
// breaks early, as far as the limit allows; the rest is dropped.
func TestDecoderBreak(t *testing.T) {
	ack := goldenRaw(t, "ACK/reader") // 8 bytes
	d := mustDecoder(t, DecoderConfig{Accept: Replies, MaxFrameLen: 16})
	for range d.Feed(slices.Concat(ack, ack, ack, ack)) {
		break
	}
	if s := d.Stats(); s.Frames != 1 || s.Discarded != 16 {
		t.Errorf("stats %+v, want 1 frame and 16 bytes discarded", s)
	}
	expect(t, feed(d, nil), goldenFrame(t, "ACK/reader")) // Feed(nil) returns what is buffered
	expect(t, feed(d, ack), goldenFrame(t, "ACK/reader"))
}

func TestNewDecoderRejects(t *testing.T) {
	for _, cfg := range []DecoderConfig{
		{},
		{Accept: 4},
		{Accept: Both, MaxFrameLen: 7},
		{Accept: Both, MaxFrameLen: 0x10000},
	} {
		if _, err := NewDecoder(cfg); err == nil {
			t.Errorf("NewDecoder(%+v) succeeded", cfg)
		}
	}
	d := mustDecoder(t, DecoderConfig{Accept: Both})
	if cap(d.buf) != DefaultMaxFrameLen {
		t.Errorf("default limit %d, want %d", cap(d.buf), DefaultMaxFrameLen)
	}
}

// TestDecoderBoundedMemory feeds random bytes and random frames and checks
// that the buffer never grows and that everything is accounted for.
func TestDecoderBoundedMemory(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	d := mustDecoder(t, DecoderConfig{Accept: Both, MaxFrameLen: 64})
	var in int
	for range 2000 {
		var chunk []byte
		if r.IntN(2) == 0 {
			chunk = randBytes(r, r.IntN(200))
		} else {
			f := randFrame(r)
			f.Data = f.Data[:min(len(f.Data), 40)]
			chunk, _ = AppendFrame(nil, &f)
		}
		in += len(chunk)
		for range d.Feed(chunk) {
		}
		if cap(d.buf) != 64 || d.Buffered() > 64 {
			t.Fatalf("buffer cap %d, buffered %d; limit 64", cap(d.buf), d.Buffered())
		}
	}
	if d.Stats().Frames == 0 {
		t.Error("no frame decoded")
	}
}

func TestDecoderDoesNotAllocate(t *testing.T) {
	stream := slices.Concat(goldenRaw(t, "ACK/secure"), goldenRaw(t, "RAW/75bit"), goldenRaw(t, "PDID/mark"))
	d := mustDecoder(t, DecoderConfig{Accept: Replies})
	var frames int
	if n := testing.AllocsPerRun(100, func() {
		for _, err := range d.Feed(stream) {
			if err == nil {
				frames++
			}
		}
	}); n != 0 {
		t.Errorf("%v allocations per Feed, want 0", n)
	}
	if frames == 0 {
		t.Error("no frames")
	}
}
