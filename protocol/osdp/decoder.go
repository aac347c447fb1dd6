package osdp

import (
	"bytes"
	"cmp"
	"fmt"
	"iter"
)

// Direction says which frames a Decoder accepts.
type Direction uint8

// Directions.
const (
	Commands Direction = 1                  // CP → PD frames: what a PD receives
	Replies  Direction = 2                  // PD → CP frames: what a CP receives
	Both     Direction = Commands | Replies // everything on the line: a bus monitor
)

// DecoderConfig configures a Decoder.
type DecoderConfig struct {
	// Accept is the direction of the frames to return: Replies on a CP,
	// Commands on a PD. Frames in the other direction (a CP's own echo, or
	// other PDs' replies seen by a PD on a multi-drop line) are reported
	// as ErrDirection. Required.
	Accept Direction
	// MaxFrameLen is the longest frame accepted, counted like the length
	// field (SOM to last check byte). It is also all the memory the decoder
	// holds. Zero means DefaultMaxFrameLen.
	MaxFrameLen int
}

// Stats counts what a Decoder has seen, for logs and metrics.
type Stats struct {
	Frames    uint64 // frames returned
	Errors    uint64 // frames rejected, each returned as an error
	Discarded uint64 // bytes dropped: garbage between frames and bytes of rejected frames, idle mark bytes excluded
}

// Decoder cuts frames out of a serial byte stream. Feed it bytes as they
// arrive, in pieces of any size; it returns each complete frame, reports
// each rejected one as a *FrameError, and resynchronises on the next SOM
// byte. A rejected frame costs only its SOM byte unless its check
// characters were right, so a real frame that starts inside noise is still
// found, and noise that looks like the header of a long frame does not hold
// back a complete frame that follows it. It never holds more than
// MaxFrameLen bytes, whatever it is fed.
//
// It does not filter by address: on a multi-drop line a PD ignores frames
// whose Addr is neither its own nor BroadcastAddr.
//
// A Decoder is not safe for concurrent use; a serial port has one reader.
type Decoder struct {
	accept Direction
	buf    []byte // buf[r:] are the bytes received but not yet used; cap(buf) is the frame limit
	r      int
	mark   bool          // the byte before buf[r] was a mark byte
	seen   int           // bytes of the unfinished frame at buf[r] that falseStart has checked
	scb    SecurityBlock // backs the SCB of the frame last returned
	stats  Stats
}

// NewDecoder returns a decoder, or an error if cfg is invalid.
func NewDecoder(cfg DecoderConfig) (*Decoder, error) {
	limit := cmp.Or(cfg.MaxFrameLen, DefaultMaxFrameLen)
	switch {
	case cfg.Accept == 0 || cfg.Accept&^Both != 0:
		return nil, fmt.Errorf("osdp: decoder accepts no valid direction (%d)", cfg.Accept)
	case limit < headerLen+3 || limit > 0xFFFF:
		return nil, fmt.Errorf("osdp: frame limit %d outside %d–65535", limit, headerLen+3)
	}
	return &Decoder{accept: cfg.Accept, buf: make([]byte, 0, limit)}, nil
}

// Feed passes p to the decoder and returns an iterator over the frames and
// errors that p completes, in stream order:
//
//	for f, err := range dec.Feed(buf[:n]) {
//		if err != nil {
//			log.Warn("osdp: dropped frame", "err", err)
//			continue
//		}
//		handle(f)
//	}
//
// Nothing happens until the iterator runs. Each frame aliases the decoder's
// buffer and is valid only within its loop iteration (see Frame.Clone).
// Bytes of an unfinished frame stay buffered for the next call. Breaking
// out of the loop early keeps the frames not yet returned buffered, as far
// as they fit in the limit (Feed(nil) returns them); the rest of p is
// dropped and counted as discarded, since keeping it could exceed the
// memory bound.
func (d *Decoder) Feed(p []byte) iter.Seq2[Frame, error] {
	return func(yield func(Frame, error) bool) {
		for {
			if d.r > 0 { // make room: move the unused bytes to the front
				d.buf = d.buf[:copy(d.buf, d.buf[d.r:])]
				d.r = 0
			}
			n := copy(d.buf[len(d.buf):cap(d.buf)], p)
			d.buf, p = d.buf[:len(d.buf)+n], p[n:]
			if !d.drain(yield) {
				d.stats.Discarded += uint64(len(p))
				return
			}
			// drain leaves at most an unfinished frame, which is shorter
			// than the limit, so the next round copies at least one byte.
			if len(p) == 0 {
				return
			}
		}
	}
}

// drain returns every frame and error in the buffered bytes and stops at an
// unfinished frame. It reports whether the consumer wants more.
func (d *Decoder) drain(yield func(Frame, error) bool) bool {
	for d.r < len(d.buf) {
		b := d.buf[d.r:]
		if b[0] != SOM {
			i := bytes.IndexByte(b, SOM)
			if i < 0 {
				i = len(b)
			}
			d.skip(b[:i])
			continue
		}
		if len(b) < headerLen {
			return true
		}
		n := int(b[2]) | int(b[3])<<8
		err := checkHead(b[4], n)
		if err == nil && n > cap(d.buf) {
			err = ErrFrameTooLong
		}
		if err != nil {
			// Only the SOM is dropped: it may have been noise, and a real
			// frame may start inside what looked like this one.
			if !d.reject(&FrameError{Err: err, Addr: b[1], Len: n}, 1, yield) {
				return false
			}
			continue
		}
		if len(b) < n {
			if !d.falseStart(b) {
				return true
			}
			// A complete frame follows this SOM within its claimed
			// length, so the length is noise: don't hold the frame back.
			if !d.reject(&FrameError{Err: ErrBadLength, Addr: b[1], Len: n}, 1, yield) {
				return false
			}
			continue
		}
		var f Frame
		f.Mark = d.mark
		if err := parseFrame(b[:n], &f, &d.scb); err != nil {
			drop := n // the check passed: a real but malformed frame
			if fe, ok := err.(*FrameError); ok && fe.Err == ErrBadCheck {
				drop = 1 // not a frame: rescan from the next byte
			}
			if !d.reject(err, drop, yield) {
				return false
			}
			continue
		}
		if f.Reply && d.accept&Replies == 0 || !f.Reply && d.accept&Commands == 0 {
			if !d.reject(&FrameError{Err: ErrDirection, Addr: b[1], Len: n}, n, yield) {
				return false
			}
			continue
		}
		d.stats.Frames++
		more := yield(f, nil)
		d.r += n // only now: f aliases these bytes
		d.mark, d.seen = false, 0
		if !more {
			return false
		}
	}
	return true
}

// falseStart reports whether b, which starts with an unfinished frame,
// holds a complete frame with valid check characters after its first byte.
// If so, the unfinished frame is a false start: line noise that happened to
// look like a header. Without this check, such noise would hold back the
// frames behind it (typically the reply a CP is waiting for) until enough
// bytes arrived to cover its bogus length. A real frame whose data happens
// to contain a whole valid frame is far less likely than the noise.
//
// Only frames that end in bytes not seen by the previous call are checked,
// so that each possible frame is checked once however the bytes trickle in.
func (d *Decoder) falseStart(b []byte) bool {
	seen := d.seen
	d.seen = len(b)
	for i := 1; ; i++ {
		j := bytes.IndexByte(b[i:], SOM)
		if j < 0 {
			return false
		}
		i += j
		if len(b)-i < headerLen {
			return false
		}
		n := int(b[i+2]) | int(b[i+3])<<8
		if end := i + n; end > seen && end <= len(b) && checkHead(b[i+4], n) == nil && checkOK(b[i:end]) {
			return true
		}
	}
}

// skip drops garbage in front of a SOM, noting whether the last byte before
// the SOM was a mark byte. Mark bytes are idle line, not garbage.
func (d *Decoder) skip(b []byte) {
	for _, c := range b {
		if c != MarkByte {
			d.stats.Discarded++
		}
	}
	d.mark = b[len(b)-1] == MarkByte
	d.r += len(b)
	d.seen = 0
}

// reject drops n bytes of a rejected frame and reports err.
func (d *Decoder) reject(err error, n int, yield func(Frame, error) bool) bool {
	d.stats.Errors++
	d.stats.Discarded += uint64(n)
	d.r += n
	d.mark, d.seen = false, 0
	return yield(Frame{}, err)
}

// Buffered returns the number of bytes held for an unfinished frame.
func (d *Decoder) Buffered() int { return len(d.buf) - d.r }

// Reset drops any unfinished frame. Call it when the line has been idle for
// longer than the inter-character timeout (20 ms in the specification) with
// bytes still buffered, or after a reply timeout: what is buffered then is
// the remains of a broken frame, or noise that looked like the start of a
// long one and would otherwise hold back the frames behind it.
func (d *Decoder) Reset() {
	d.stats.Discarded += uint64(d.Buffered())
	d.buf, d.r, d.mark, d.seen = d.buf[:0], 0, false, 0
}

// Stats returns the decoder's counters.
func (d *Decoder) Stats() Stats { return d.stats }
