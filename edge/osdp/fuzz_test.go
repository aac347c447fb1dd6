package osdp

import (
	"log/slog"
	"testing"

	"github.com/jonboulle/clockwork"

	wire "varco.dev/protocol/osdp"
)

// FuzzReplies feeds arbitrary bytes to the bus as what the line answers to
// a command: the decoder, the matching of frames to the exchange, and the
// handling of whatever reply comes out (cards, keys, NAKs, discovery). It
// must never panic, whatever the reader's state.
func FuzzReplies(f *testing.F) {
	raw, _ := card(f, 123, 45678)
	rep := func(seq uint8, m wire.Reply) []byte {
		return encodeReply(&wire.Frame{Addr: 1, Seq: seq, CRC: true, Mark: true}, m)
	}
	for _, m := range []wire.Reply{
		wire.Ack{}, raw, wire.Fmt{Chars: "1:2"}, wire.Keypad{Keys: "12#"}, wire.Keypad{Keys: "\x7f9\r"},
		wire.Nak{Reason: wire.NakSequence}, wire.Nak{Reason: wire.NakUnknownCommand}, wire.Nak{Reason: wire.NakCheck},
		wire.Busy{}, wire.PDID{Serial: 9}, newPD(1).caps, wire.LStatR{Tamper: true},
	} {
		b := rep(0, m)
		f.Add(b, uint8(2), uint8(len(b)/2))
		f.Add(append([]byte{0x53, 0x81, 0xFF, 0x00}, b...), uint8(0), uint8(3))
	}
	bad := rep(0, raw)
	bad[len(bad)-1] ^= 1
	f.Add(append(bad, rep(0, wire.Ack{})...), uint8(2), uint8(0))
	f.Add(append(rep(1, wire.Ack{}), encodeReply(&wire.Frame{Addr: 2}, wire.Ack{})...), uint8(2), uint8(5))
	f.Add([]byte{0xFF, 0x53, 0x81, 0x08, 0x00, 0x0C, 0x40, 0x00}, uint8(2), uint8(1))

	f.Fuzz(func(t *testing.T, data []byte, state, split uint8) {
		b, err := newBus(newScriptPort(), Config{
			Readers: []byte{1, 2}, Handler: func(Event) {}, EventQueue: 4,
			Clock: clockwork.NewFakeClockAt(t0), Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		r, now := b.readers[0], t0
		if r.state = linkState(state % 4); r.state == stateOnline {
			b.online(r, now)
		}
		for len(data) > 0 { // one exchange per piece, on the same decoder
			b.prepare(r, now)
			r.cur.sends++
			b.await = awaiting{r: r, seq: r.cur.seq}
			n := min(int(split)+1, len(data))
			b.receive(data[:n], now)
			data = data[n:]
			a := b.await
			b.await = awaiting{}
			switch a.outcome {
			case replied:
				b.replied(r, a.code, a.reply, a.err, now)
			case corrupt:
				b.failed(r, ErrBadReply, now)
			default:
				b.failed(r, ErrNoReply, now)
			}
			for len(b.events) > 0 {
				<-b.events
			}
		}
		b.receive(nil, now)
		_ = b.Stats()
	})
}
