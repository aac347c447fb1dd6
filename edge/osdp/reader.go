package osdp

import (
	"log/slog"
	"time"

	wire "varco.dev/protocol/osdp"
	"varco.dev/protocol/wiegand"
)

// Aliases of the codec's types that appear in this package's API, so that
// the daemon needs only this package.
type (
	Color   = wire.Color   // an LED colour
	NakCode = wire.NakCode // why a reader refused a command
	PDID    = wire.PDID    // a reader's identification
)

// LED colours.
const (
	Black   = wire.Black
	Red     = wire.Red
	Green   = wire.Green
	Amber   = wire.Amber
	Blue    = wire.Blue
	Magenta = wire.Magenta
	Cyan    = wire.Cyan
	White   = wire.White
)

// Event is one of CardRead, BadCard, ReaderOnline, ReaderOffline,
// NakReceived, StatusReport and LineNoise.
type Event interface{ event() }

// CardRead is a credential read at a reader: a card (osdp_RAW or osdp_FMT)
// or a PIN typed on its keypad (Key.Kind() is wiegand.KindPIN).
type CardRead struct {
	Addr   byte        // OSDP address of the reader
	Reader byte        // reader number on that PD, 0 for a single reader
	Key    wiegand.Key // the canonical credential
	At     time.Time   // when its reply arrived
}

// BadCard is a read that gave no credential: a parity error, a bit count
// the decoder does not take, malformed FMT text, a PIN of more than 16
// digits. The member must present the card again.
type BadCard struct {
	Addr   byte
	Reader byte
	Err    error // wraps a wiegand sentinel error or an osdp decoding error
	At     time.Time
}

// ReaderOnline reports a reader that answered its discovery: at start, or
// after it was offline.
type ReaderOnline struct {
	Addr byte
	Caps Capabilities
	At   time.Time
}

// ReaderOffline reports a reader that stopped answering, or did not answer
// its first discovery.
type ReaderOffline struct {
	Addr byte
	Err  error // ErrNoReply or ErrBadReply, wrapped
	At   time.Time
}

// NakReceived reports a command a reader refused.
type NakReceived struct {
	Addr    byte
	Command byte // the command's code, such as 0x6B for osdp_TEXT
	Reason  NakCode
	At      time.Time
}

// StatusReport is a reader's tamper and power status, which it reports when
// it changes.
type StatusReport struct {
	Addr         byte
	Tamper       bool
	PowerFailure bool
	At           time.Time
}

// LineNoise reports what the line carried that was no good reply, since the
// previous LineNoise; at most one a second, and none on a clean line.
type LineNoise struct {
	Garbage   uint64 // bytes dropped
	BadFrames uint64 // frames rejected
	WrongAddr uint64 // replies from another address than the one polled
	WrongSeq  uint64 // replies with another sequence number, or unexpected
	At        time.Time
}

func (CardRead) event()      {}
func (BadCard) event()       {}
func (ReaderOnline) event()  {}
func (ReaderOffline) event() {}
func (NakReceived) event()   {}
func (StatusReport) event()  {}
func (LineNoise) event()     {}

// Capabilities are what a reader said about itself in discovery.
type Capabilities struct {
	Known      bool // the reader answered osdp_CAP; without it, the rest is zero
	ID         PDID // zero if the reader did not answer osdp_ID
	Rows, Cols int  // text display; 0 without one
	LEDs       int  // LEDs per reader
	Buzzer     bool
	Outputs    int
	Inputs     int
	Readers    int  // readers attached to the PD, when it says
	RxBuffer   int  // longest frame it receives; 128 when it does not say
	CRC        bool // it checks frames with CRC-16 (the bus always sends CRC)
}

// capabilities reads a PD's discovery replies; caps is nil when it gave
// none.
func capabilities(id PDID, caps wire.PDCap) Capabilities {
	c := Capabilities{Known: caps != nil, ID: id, RxBuffer: 128}
	c.Rows, c.Cols, _ = caps.TextDisplay()
	num := func(fn wire.FunctionCode) int {
		x, _ := caps.Lookup(fn)
		return int(x.Number)
	}
	c.LEDs, c.Outputs, c.Inputs, c.Readers = num(wire.CapLEDControl), num(wire.CapOutputControl), num(wire.CapContactStatus), num(wire.CapReaders)
	if x, ok := caps.Lookup(wire.CapAudibleOutput); ok {
		c.Buzzer = x.Compliance > 0 || x.Number > 0
	}
	if x, ok := caps.Lookup(wire.CapCheckCharacter); ok {
		c.CRC = x.Compliance > 0
	}
	if n, ok := caps.ReceiveBufferSize(); ok && n > 0 {
		c.RxBuffer = n
	}
	return c
}

// linkState is where a reader is in its life on the line.
type linkState uint8

const (
	stateID      linkState = iota // discovery: osdp_ID next
	stateCap                      // discovery: osdp_CAP next
	stateOnline                   // polled
	stateOffline                  // probed every OfflineProbe
)

// exchange is the command a reader is being sent, until it is answered or
// given up. Its encoded frame is reader.tx.
type exchange struct {
	msg     wire.Command // nil: none
	seq     uint8
	sends   int       // attempts that counted
	retryAt time.Time // not before
}

// queued is a command waiting to be sent.
type queued struct {
	msg  wire.Command
	idle bool // part of the idle text
}

// reader is one PD on the line.
type reader struct {
	addr byte

	// Owned by the loop.
	state     linkState
	seq       wire.CPSequence
	cur       exchange
	tx        []byte // cur, encoded
	nextPoll  time.Time
	nextProbe time.Time
	reported  bool // its state was reported once: an offline is news only after an online
	id        PDID
	caps      wire.PDCap
	keys      keypad
	expect    bool   // a credential was read: wait for the answer
	expectN   uint64 // answers when it was read

	// Guarded by Bus.mu.
	online      bool
	info        Capabilities
	queue       []queued
	urgent      bool // a new answer: send it in the next slot
	answers     uint64
	unsupported [256]bool // command codes it answered NAK 3
	idle        []string
	idleDirty   bool      // the idle text must be (re)written
	holdUntil   time.Time // the current answer's text shows until then
}

// dueAt is when r's turn is due. Called with Bus.mu held.
func (r *reader) dueAt(now time.Time) time.Time {
	switch {
	case r.cur.msg != nil:
		return r.cur.retryAt
	case r.state == stateOffline:
		return r.nextProbe
	case r.state != stateOnline, len(r.queue) > 0:
		return now
	}
	return r.nextPoll
}

// answered reports whether Answer was called for r since its credential.
func (b *Bus) answered(r *reader) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return r.answers != r.expectN
}

// prepare chooses r's next command and encodes it in r.tx.
func (b *Bus) prepare(r *reader, now time.Time) {
	var msg wire.Command
	switch r.state {
	case stateOffline:
		r.seq.Reset() // a probe restarts the link at sequence 0
		msg = wire.ID{}
	case stateID:
		msg = wire.ID{}
	case stateCap:
		msg = wire.Cap{}
	default:
		msg = b.dequeue(r, now)
	}
	if msg == nil {
		msg = wire.Poll{}
		r.nextPoll = now.Add(b.cfg.PollInterval)
		b.stats.polls.Add(1)
	}
	r.cur = exchange{msg: msg}
	b.encode(r, r.seq.Next())
}

// encode encodes r.cur with sequence number seq. A message that does not
// encode is a bug of ours; it is logged and replaced by a POLL.
func (b *Bus) encode(r *reader, seq uint8) {
	r.cur.seq = seq
	h := wire.Frame{Addr: r.addr, Seq: seq, CRC: true, Mark: true}
	tx, err := wire.AppendMessage(r.tx[:0], &h, r.cur.msg)
	if err != nil {
		b.log.LogAttrs(b.ctx, slog.LevelError, "osdp bus: command does not encode, polling instead",
			slog.Int("addr", int(r.addr)), slog.String("err", err.Error()))
		r.cur.msg = wire.Poll{}
		tx, _ = wire.AppendMessage(r.tx[:0], &h, r.cur.msg)
	}
	r.tx = tx
}

// dequeue returns r's next queued command, or nil to poll.
func (b *Bus) dequeue(r *reader, now time.Time) wire.Command {
	b.mu.Lock()
	defer b.mu.Unlock()
	r.urgent = false
	if len(r.queue) == 0 && r.idleDirty && !now.Before(r.holdUntil) {
		r.idleDirty = false
		r.queue = appendText(r.queue, r.info, 0, r.idle, wire.TextPermanent, 0, true)
	}
	for len(r.queue) > 0 {
		q := r.queue[0]
		r.queue = r.queue[:copy(r.queue, r.queue[1:])]
		if !r.unsupported[q.msg.Code()] {
			return q.msg
		}
	}
	return nil
}

// failed handles an attempt that got no usable reply.
func (b *Bus) failed(r *reader, err error, now time.Time) {
	switch {
	case r.state == stateOffline:
		r.cur = exchange{}
		r.nextProbe = now.Add(b.cfg.OfflineProbe)
	case r.cur.sends <= b.retries:
		r.cur.retryAt = now
	default:
		b.offline(r, err, now)
	}
}

// offline takes r off the line until a probe finds it again.
func (b *Bus) offline(r *reader, err error, now time.Time) {
	was := r.state == stateOnline
	r.state, r.cur, r.keys, r.expect = stateOffline, exchange{}, keypad{}, false
	r.seq.Reset()
	r.nextProbe = now.Add(b.cfg.OfflineProbe)
	b.mu.Lock()
	r.online, r.urgent, r.queue = false, false, r.queue[:0]
	b.mu.Unlock()
	if was || !r.reported {
		r.reported = true
		b.log.LogAttrs(b.ctx, slog.LevelWarn, "osdp bus: reader offline",
			slog.Int("addr", int(r.addr)), slog.String("err", err.Error()))
		b.emit(ReaderOffline{Addr: r.addr, Err: err, At: now}, now)
	}
}

// online puts r on the line after its discovery.
func (b *Bus) online(r *reader, now time.Time) {
	r.state, r.nextPoll, r.reported = stateOnline, now, true
	info := capabilities(r.id, r.caps)
	b.mu.Lock()
	r.online, r.info, r.unsupported = true, info, [256]bool{}
	r.idleDirty, r.holdUntil = len(r.idle) > 0, time.Time{}
	b.mu.Unlock()
	b.log.LogAttrs(b.ctx, slog.LevelInfo, "osdp bus: reader online",
		slog.Int("addr", int(r.addr)), slog.Bool("caps", info.Known),
		slog.Int("rows", info.Rows), slog.Int("cols", info.Cols), slog.Uint64("serial", uint64(info.ID.Serial)))
	b.emit(ReaderOnline{Addr: r.addr, Caps: info, At: now}, now)
}

// replied handles r's reply to r.cur: reply, or err if it did not decode.
func (b *Bus) replied(r *reader, code byte, reply wire.Reply, err error, now time.Time) {
	cmd := r.cur.msg.Code()
	if err != nil {
		// Good check characters around a body that does not decode:
		// asking again would get the same bytes back.
		if code == wire.ReplyRaw || code == wire.ReplyFmt {
			b.credential(r, 0, wiegand.Key{}, err, now)
		} else if ok, held := b.lim.allow(logBadReply, now); ok {
			b.log.LogAttrs(b.ctx, slog.LevelWarn, "osdp bus: reply does not decode",
				slog.Int("addr", int(r.addr)), slog.String("err", err.Error()), slog.Int("held_back", held))
		}
		b.done(r, cmd, now)
		return
	}
	switch m := reply.(type) {
	case wire.Busy:
		r.cur.sends-- // not a failure: same frame at its next turn
		r.cur.retryAt = now.Add(b.cfg.PollInterval)
		return
	case wire.Nak:
		if b.nak(r, cmd, m.Reason, now) {
			return
		}
	case wire.PDID:
		r.id = m
	case wire.PDCap:
		r.caps = m
	case wire.Raw:
		f, err := wiegand.FromBytes(int(m.Bits), m.Data)
		var key wiegand.Key
		if err == nil {
			key, err = wiegand.KeyFromFrame(f, b.cfg.Formats...)
		}
		b.credential(r, m.Reader, key, err, now)
	case wire.Fmt:
		key, err := wiegand.KeyFromFMT([]byte(m.Chars))
		b.credential(r, m.Reader, key, err, now)
	case wire.Keypad:
		for i := range len(m.Keys) {
			if pin, ok := r.keys.press(m.Keys[i], now, b.cfg.KeypadTimeout); ok {
				key, err := wiegand.PINKey(pin)
				b.credential(r, m.Reader, key, err, now)
			}
		}
	case wire.LStatR:
		b.emit(StatusReport{Addr: r.addr, Tamper: m.Tamper, PowerFailure: m.PowerFailure, At: now}, now)
	}
	b.done(r, cmd, now)
}

// nak handles a NAK to command cmd and reports whether the command is sent
// again.
func (b *Bus) nak(r *reader, cmd byte, reason NakCode, now time.Time) bool {
	b.stats.naks.Add(1)
	b.emit(NakReceived{Addr: r.addr, Command: cmd, Reason: reason, At: now}, now)
	if ok, held := b.lim.allow(logNak, now); ok {
		b.log.LogAttrs(b.ctx, slog.LevelWarn, "osdp bus: NAK",
			slog.Int("addr", int(r.addr)), slog.String("command", wire.CodeName(cmd, false)),
			slog.String("reason", reason.Error()), slog.Int("held_back", held))
	}
	switch reason {
	case wire.NakSequence:
		r.seq.Reset()
		if r.cur.sends <= b.retries {
			b.encode(r, r.seq.Next())
			r.cur.retryAt = now
			return true
		}
	case wire.NakCheck:
		if r.cur.sends <= b.retries {
			r.cur.retryAt = now
			return true
		}
	case wire.NakUnknownCommand:
		if cmd != wire.CmdPoll && cmd != wire.CmdID && cmd != wire.CmdCap {
			b.mu.Lock()
			r.unsupported[cmd] = true
			b.mu.Unlock()
			b.log.LogAttrs(b.ctx, slog.LevelInfo, "osdp bus: reader does not support a command; not sending it again",
				slog.Int("addr", int(r.addr)), slog.String("command", wire.CodeName(cmd, false)))
		}
	}
	return false
}

// done ends r's exchange and moves its discovery on.
func (b *Bus) done(r *reader, cmd byte, now time.Time) {
	r.cur = exchange{}
	switch {
	case cmd == wire.CmdID && (r.state == stateID || r.state == stateOffline):
		r.state = stateCap
	case cmd == wire.CmdCap && r.state == stateCap:
		b.online(r, now)
	}
}

// credential reports a read: a key, or why there is none.
func (b *Bus) credential(r *reader, no byte, key wiegand.Key, err error, now time.Time) {
	var ev Event = CardRead{Addr: r.addr, Reader: no, Key: key, At: now}
	if err != nil {
		ev = BadCard{Addr: r.addr, Reader: no, Err: err, At: now}
		if ok, held := b.lim.allow(logBadCard, now); ok {
			b.log.LogAttrs(b.ctx, slog.LevelWarn, "osdp bus: bad read",
				slog.Int("addr", int(r.addr)), slog.String("err", err.Error()), slog.Int("held_back", held))
		}
	}
	b.mu.Lock()
	n := r.answers
	b.mu.Unlock()
	if b.emit(ev, now) {
		r.expect, r.expectN = true, n
	}
}

// keypad collects PIN digits until the enter key.
type keypad struct {
	digits [wiegand.MaxPINDigits + 1]byte // one more, to tell a PIN too long
	n      int
	last   time.Time
}

// press takes one key and returns the PIN when it is the enter key.
// Readers send '#' as 0x0D and '*' as 0x7F (OSDP.Net and the SIA tools
// decode them so); the ASCII characters are accepted too. '*' clears, and
// so does a pause of more than timeout. Other keys (function keys 'A'–'H')
// are ignored.
func (k *keypad) press(key byte, now time.Time, timeout time.Duration) (string, bool) {
	if k.n > 0 && now.Sub(k.last) > timeout {
		k.n = 0
	}
	k.last = now
	switch {
	case key >= '0' && key <= '9':
		if k.n < len(k.digits) {
			k.digits[k.n] = key
			k.n++
		}
	case key == 0x0D || key == '#':
		pin := string(k.digits[:k.n])
		k.n = 0
		return pin, pin != ""
	case key == 0x7F || key == '*':
		k.n = 0
	}
	return "", false
}
