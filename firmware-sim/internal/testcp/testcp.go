// Package testcp is a minimal OSDP control panel for the module's tests:
// it opens the simulator's pseudo-terminal through go.bug.st/serial, as
// varco-edge does, and encodes and decodes with protocol/osdp.
//
// CP sends commands and reads replies one at a time, for tests that check
// bytes. Edge polls a set of readers in a loop and answers card reads, for
// tests that need a CP on the line the way varco-edge will be.
package testcp

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.bug.st/serial"
	"varco.dev/protocol/osdp"
)

// ReplyTimeout bounds every wait for a reply in CP: a failure guard, far
// above the few milliseconds an answer takes, even under the race detector.
const ReplyTimeout = 10 * time.Second

// CP is a control panel driven step by step by a test.
type CP struct {
	t    testing.TB
	port serial.Port
	dec  *osdp.Decoder
	seq  map[byte]*osdp.CPSequence
	buf  []byte
	got  []Frame // decoded but not yet taken
}

// Frame is a frame read from the line: the frame and its bytes, or the
// error of bytes that did not decode.
type Frame struct {
	osdp.Frame
	Raw []byte
	Err error
}

// Open opens the serial port at path; the test's cleanup closes it.
func Open(t testing.TB, path string) *CP {
	t.Helper()
	port, err := open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { port.Close() })
	dec, _ := osdp.NewDecoder(osdp.DecoderConfig{Accept: osdp.Replies})
	return &CP{t: t, port: port, dec: dec, seq: map[byte]*osdp.CPSequence{}, buf: make([]byte, 512)}
}

func open(path string) (serial.Port, error) {
	port, err := serial.Open(path, &serial.Mode{BaudRate: 115200})
	if err != nil {
		return nil, err
	}
	if err := port.SetReadTimeout(20 * time.Millisecond); err != nil {
		port.Close()
		return nil, err
	}
	return port, nil
}

// Encode encodes m for addr with the next sequence number of addr.
func (cp *CP) Encode(addr byte, m osdp.Command) []byte {
	cp.t.Helper()
	s := cp.seq[addr]
	if s == nil {
		s = new(osdp.CPSequence)
		cp.seq[addr] = s
	}
	b, err := osdp.AppendMessage(nil, &osdp.Frame{Addr: addr, Seq: s.Next(), CRC: true}, m)
	if err != nil {
		cp.t.Fatal(err)
	}
	return b
}

// Reset restarts the sequence numbers of addr at 0.
func (cp *CP) Reset(addr byte) { delete(cp.seq, addr) }

// Write writes bytes on the line.
func (cp *CP) Write(b []byte) {
	cp.t.Helper()
	if _, err := cp.port.Write(b); err != nil {
		cp.t.Fatal(err)
	}
}

// Send writes a command for addr with its next sequence number.
func (cp *CP) Send(addr byte, m osdp.Command) { cp.t.Helper(); cp.Write(cp.Encode(addr, m)) }

// Next returns the next frame on the line, or the error of one that did
// not decode.
func (cp *CP) Next() Frame {
	cp.t.Helper()
	deadline := time.Now().Add(ReplyTimeout)
	for len(cp.got) == 0 {
		if time.Now().After(deadline) {
			cp.t.Fatal("testcp: no reply")
		}
		n, err := cp.port.Read(cp.buf)
		if err != nil {
			cp.t.Fatal(err)
		}
		for f, err := range cp.dec.Feed(cp.buf[:n]) {
			var raw []byte
			if err == nil {
				raw, _ = osdp.AppendFrame(nil, &f)
			}
			cp.got = append(cp.got, Frame{Frame: f.Clone(), Raw: raw, Err: err})
		}
	}
	r := cp.got[0]
	cp.got = cp.got[1:]
	return r
}

// Reply returns the next reply, decoded.
func (cp *CP) Reply() (osdp.Frame, osdp.Reply) {
	cp.t.Helper()
	r := cp.Next()
	if r.Err != nil {
		cp.t.Fatalf("testcp: reply: %v", r.Err)
	}
	m, err := osdp.DecodeReply(r.Code, r.Data)
	if err != nil {
		cp.t.Fatalf("testcp: reply %v: %v", r.Frame, err)
	}
	return r.Frame, m
}

// Exchange sends a command and returns the reply.
func (cp *CP) Exchange(addr byte, m osdp.Command) (osdp.Frame, osdp.Reply) {
	cp.t.Helper()
	cp.Send(addr, m)
	return cp.Reply()
}

// Edge is a polling control panel in the manner of varco-edge: it polls
// each reader in turn, retries a command twice, restarts the link of a
// reader that does not answer, and answers each card read or key press
// with the commands Decide returns.
type Edge struct {
	Readers []byte
	// Decide returns the commands for an event at addr (osdp.Raw or
	// osdp.Keypad), sent one per turn of the polling loop.
	Decide func(addr byte, ev osdp.Reply) []osdp.Command
	// Timeout is the reply timeout; 0 means 200 ms.
	Timeout time.Duration
}

// Run polls until ctx ends; it returns nil then, or the error that stopped
// it.
func (e Edge) Run(ctx context.Context, path string) error {
	port, err := open(path)
	if err != nil {
		return err
	}
	defer port.Close()
	timeout := e.Timeout
	if timeout == 0 {
		timeout = 200 * time.Millisecond
	}
	dec, _ := osdp.NewDecoder(osdp.DecoderConfig{Accept: osdp.Replies})
	seq := make(map[byte]*osdp.CPSequence)
	pending := make(map[byte][]osdp.Command)
	buf := make([]byte, 512)
	for ctx.Err() == nil {
		for _, addr := range e.Readers {
			if seq[addr] == nil {
				seq[addr] = new(osdp.CPSequence)
			}
			var cmd osdp.Command = osdp.Poll{}
			if len(pending[addr]) > 0 {
				cmd = pending[addr][0]
			}
			b, _ := osdp.AppendMessage(nil, &osdp.Frame{Addr: addr, Seq: seq[addr].Next(), CRC: true}, cmd)
			var r osdp.Reply
			for try := 0; try < 3 && r == nil && ctx.Err() == nil; try++ { // a retry repeats the bytes
				if _, err := port.Write(b); err != nil {
					return err
				}
				if r, err = e.await(ctx, port, dec, buf, addr, timeout); err != nil {
					return err
				}
			}
			switch r := r.(type) {
			case nil: // offline after the retries: start again at 0
				seq[addr].Reset()
				dec.Reset()
				continue
			case osdp.Nak:
				if r.Reason == osdp.NakSequence {
					seq[addr].Reset()
				}
				continue
			case osdp.Busy:
				continue
			case osdp.Raw, osdp.Keypad:
				if e.Decide != nil {
					pending[addr] = append(pending[addr], e.Decide(addr, r)...)
				}
			}
			if _, poll := cmd.(osdp.Poll); !poll {
				pending[addr] = pending[addr][1:]
			}
		}
	}
	return nil
}

// await reads the reply from addr; nil after the timeout, or a bad reply.
func (e Edge) await(ctx context.Context, port serial.Port, dec *osdp.Decoder, buf []byte, addr byte, timeout time.Duration) (osdp.Reply, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		n, err := port.Read(buf)
		if err != nil {
			var pe *serial.PortError
			if errors.As(err, &pe) && pe.Code() == serial.PortClosed {
				return nil, nil
			}
			return nil, err
		}
		for f, err := range dec.Feed(buf[:n]) {
			if err != nil {
				return nil, nil // garbled: the CP retries as for a timeout
			}
			if f.Addr != addr && f.Addr != osdp.BroadcastAddr {
				continue
			}
			r, err := osdp.DecodeReply(f.Code, f.Data)
			if err != nil {
				return nil, nil
			}
			return r, nil
		}
	}
	return nil, nil
}
