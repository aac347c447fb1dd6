package pd

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"varco.dev/protocol/osdp"
	"varco.dev/protocol/wiegand"
)

// Config describes one reader. The zero value of every field but Address
// gives a typical turnstile reader: a 2×16 display, one tri-colour LED, a
// buzzer, a keypad, one output (the gate relay) and no inputs.
type Config struct {
	Address byte // bus address, 0x00–0x7E

	Vendor   [3]byte // IEEE OUI in wire order; zero means DefaultVendor
	Model    byte    // zero means 1
	Version  byte    // hardware version; zero means 1
	Serial   uint32  // zero means 1000 + Address
	Firmware [3]byte // major, minor, build; zero means 1.0.0

	Rows    int  // display rows: 1, 2 or 4 (16 columns each, as PDCAP can say); 0 means 2, -1 no display
	Cols    int  // display columns; 0 means 16
	LEDs    int  // LEDs on the reader; 0 means 1, -1 none
	Outputs int  // outputs; 0 means 1 (output 0 drives the gate), -1 none
	Inputs  int  // contact inputs; 0 means none
	Buzzer  Flag // whether the reader has a buzzer; default yes
	Keypad  Flag // whether the reader has a keypad; default yes

	Baud     uint32 // line rate reported in osdp_COM; 0 means 9600
	RxBuffer int    // receive buffer declared in PDCAP, in bytes; 0 means 256, at least 128
	Queue    int    // events kept for the CP's POLLs; 0 means 16, further events are refused
	AckOut   bool   // answer OUT with ACK (libosdp) instead of OSTATR
}

// Flag is an optional yes/no setting whose zero value means the default.
type Flag uint8

// Flag values.
const (
	Default Flag = iota
	Yes
	No
)

func (f Flag) on() bool { return f != No }

// DefaultVendor is the vendor code a simulated reader reports: "VSM".
var DefaultVendor = [3]byte{'V', 'S', 'M'}

// Errors returned by physical events.
var (
	// ErrPoweredOff: the reader has no power, so it cannot read a card.
	ErrPoweredOff = errors.New("pd: reader is powered off")
	// ErrQueueFull: the CP has not polled the queued events away.
	ErrQueueFull = errors.New("pd: event queue full")
	// ErrNoKeypad: the reader has no keypad.
	ErrNoKeypad = errors.New("pd: reader has no keypad")
)

// withDefaults fills in the defaults and validates c.
func (c Config) withDefaults() (Config, error) {
	if c.Vendor == [3]byte{} {
		c.Vendor = DefaultVendor
	}
	c.Model = cmp.Or(c.Model, 1)
	c.Version = cmp.Or(c.Version, 1)
	c.Serial = cmp.Or(c.Serial, 1000+uint32(c.Address))
	if c.Firmware == [3]byte{} {
		c.Firmware = [3]byte{1, 0, 0}
	}
	c.Rows, c.Cols = cmp.Or(c.Rows, 2), cmp.Or(c.Cols, 16)
	c.LEDs, c.Outputs = cmp.Or(c.LEDs, 1), cmp.Or(c.Outputs, 1)
	c.RxBuffer, c.Queue = cmp.Or(c.RxBuffer, 256), cmp.Or(c.Queue, 16)
	c.Baud = cmp.Or(c.Baud, 9600)
	switch {
	case c.Address >= osdp.BroadcastAddr:
		return c, fmt.Errorf("pd: address 0x%02X outside 0x00–0x7E", c.Address)
	case c.Rows != -1 && c.Rows != 1 && c.Rows != 2 && c.Rows != 4:
		return c, fmt.Errorf("pd: %d display rows, want 1, 2 or 4 (or -1 for none)", c.Rows)
	case c.Cols < 1 || c.Cols > 80:
		return c, fmt.Errorf("pd: %d display columns, want 1–80", c.Cols)
	case c.LEDs < -1 || c.LEDs > 16, c.Outputs < -1 || c.Outputs > 16, c.Inputs < 0 || c.Inputs > 16:
		return c, fmt.Errorf("pd: want at most 16 LEDs, outputs and inputs")
	case c.RxBuffer < 128 || c.RxBuffer > osdp.SpecMaxFrameLen:
		return c, fmt.Errorf("pd: receive buffer %d outside 128–%d", c.RxBuffer, osdp.SpecMaxFrameLen)
	case c.Queue < 1:
		return c, fmt.Errorf("pd: event queue of %d", c.Queue)
	}
	return c, nil
}

func count(n int) int { return max(n, 0) }

// Device is one simulated reader. Create it with New.
type Device struct {
	cfg     Config
	addr    byte   // current address; COMSET changes it
	baud    uint32 // baud rate reported in osdp_COM
	acuRx   uint16 // what the CP said it can receive (ACURXSIZE), 0 if unknown
	powered bool
	busy    int // answer this many more commands with BUSY

	seq  osdp.PDSequence
	last osdp.Frame // header of the last command addressed to us, for NAK 1

	events  []osdp.Reply // RAW, KEYPAD and ISTATR waiting for a POLL
	display display
	leds    []led
	buzzer  buzzer
	outputs []output
	inputs  []byte

	counters Counters
	buf      []byte // encoded reply, reused
}

// Counters count what the device has seen since it was created; a power
// cycle does not reset them.
type Counters struct {
	Commands    uint64    // commands addressed to the device and answered or acted on
	Polls       uint64    // POLLs among them
	Repeats     uint64    // retries answered with the cached reply
	Naks        uint64    // NAK replies sent
	Busy        uint64    // BUSY replies sent
	Texts       uint64    // TEXT commands carried out
	LEDs        uint64    // LED commands carried out
	LastCommand time.Time // when the last command arrived
}

// New returns a powered-on device.
func New(cfg Config) (*Device, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	d := &Device{cfg: cfg, addr: cfg.Address, baud: cfg.Baud, last: osdp.Frame{CRC: true}}
	d.powerOn()
	return d, nil
}

// Config returns the device's configuration, defaults filled in.
func (d *Device) Config() Config { return d.cfg }

// Address returns the address the device answers to now.
func (d *Device) Address() byte { return d.addr }

// Result is what the device did with one frame.
type Result struct {
	// Reply is the encoded reply, nil when the device stays silent. It is
	// valid until the next call on the device.
	Reply []byte
	// Code is the reply's code when Reply is set.
	Code byte
	// Command is the decoded command the device acted on, nil when it did
	// not act (repeat, NAK, BUSY, silence).
	Command osdp.Command
	// Changed reports that what a person sees (display, LEDs, buzzer,
	// outputs, address) or the event queue changed.
	Changed bool
}

// Handle processes a command frame cut from the line at time now. Frames
// for other addresses, and every frame while the power is off, get no
// reply.
func (d *Device) Handle(now time.Time, f *osdp.Frame) Result {
	if !d.powered || f.Reply || (f.Addr != d.addr && f.Addr != osdp.BroadcastAddr) {
		return Result{}
	}
	d.counters.LastCommand = now
	hdr := osdp.Frame{Addr: f.Addr, Seq: f.Seq, CRC: f.CRC, Mark: f.Mark}
	d.last = hdr
	if d.busy > 0 {
		d.busy--
		d.counters.Busy++
		hdr.Seq = 0
		return d.reply(&hdr, osdp.Busy{})
	}
	switch d.seq.Check(f) {
	case osdp.SeqRepeat:
		d.counters.Repeats++
		return Result{Reply: d.seq.LastReply(), Code: replyCode(d.seq.LastReply())}
	case osdp.SeqError:
		return d.reply(&hdr, nak(osdp.NakSequence))
	}
	d.counters.Commands++
	var (
		answer osdp.Reply
		cmd    osdp.Command
		err    error
	)
	switch {
	case f.SCB != nil:
		answer = nak(osdp.NakUnsupportedSecurity)
	case frameLen(f) > d.cfg.RxBuffer:
		answer = nak(osdp.NakCommandLength)
	default:
		if cmd, err = osdp.DecodeCommand(f.Code, f.Data); err != nil {
			answer = nak(osdp.NakFor(err))
		} else {
			answer = d.command(now, cmd)
		}
	}
	if _, refused := answer.(osdp.Nak); refused {
		cmd = nil
	}
	res := d.reply(&hdr, answer)
	d.seq.Remember(res.Reply)
	res.Command = cmd
	switch cmd.(type) {
	case osdp.Text:
		d.counters.Texts++
		res.Changed = true
	case osdp.LED:
		d.counters.LEDs++
		res.Changed = true
	case osdp.Buz, osdp.Out, osdp.ComSet:
		res.Changed = true
	case osdp.Poll:
		d.counters.Polls++
		res.Changed = res.Code != osdp.ReplyAck // an event left the queue
	}
	if c, ok := cmd.(osdp.ComSet); ok && res.Code == osdp.ReplyCom {
		d.comset(c) // after the reply is encoded: the COM goes out from the old address
	}
	return res
}

// command dispatches a decoded command to its handler, one file each.
func (d *Device) command(now time.Time, cmd osdp.Command) osdp.Reply {
	switch c := cmd.(type) {
	case osdp.Poll:
		return d.poll()
	case osdp.ID:
		return d.id()
	case osdp.Cap:
		return d.capabilities()
	case osdp.LStat:
		return d.lstat()
	case osdp.IStat:
		return d.istat()
	case osdp.OStat:
		return d.ostat(now)
	case osdp.RStat:
		return d.rstat()
	case osdp.Out:
		return d.out(now, c)
	case osdp.LED:
		return d.led(now, c)
	case osdp.Buz:
		return d.buz(now, c)
	case osdp.Text:
		return d.text(now, c)
	case osdp.ComSet:
		return d.comsetReply(c)
	case osdp.ACURxSize:
		return d.acuRxSize(c)
	}
	// KEEPACTIVE keeps a secure channel open, and the device has none.
	return nak(osdp.NakUnknownCommand)
}

// Reject answers a frame the decoder rejected: NAK 1 for a bad check
// character, NAK 2 for a frame longer than the line's limit, NAK 5 for a
// malformed security block, each only when the frame's address byte is the
// device's own. Everything else, noise included, gets no reply.
func (d *Device) Reject(now time.Time, fe *osdp.FrameError) Result {
	if !d.powered || fe.Addr != d.addr { // a reply bit or another address
		return Result{}
	}
	var code osdp.NakCode
	switch {
	case errors.Is(fe.Err, osdp.ErrBadCheck):
		code = osdp.NakCheck
	case errors.Is(fe.Err, osdp.ErrFrameTooLong):
		code = osdp.NakCommandLength
	case errors.Is(fe.Err, osdp.ErrBadSCB):
		code = osdp.NakUnsupportedSecurity
	default:
		return Result{}
	}
	d.counters.LastCommand = now
	hdr := d.last // the frame's own header cannot be trusted: reuse the last one's
	hdr.Addr = d.addr
	return d.reply(&hdr, nak(code))
}

// reply encodes m with the header hdr.
func (d *Device) reply(hdr *osdp.Frame, m osdp.Reply) Result {
	if _, ok := m.(osdp.Nak); ok {
		d.counters.Naks++
	}
	out, err := osdp.AppendMessage(d.buf[:0], hdr, m)
	if err != nil { // a bug in a handler: answer something a CP understands
		out, _ = osdp.AppendMessage(d.buf[:0], hdr, nak(osdp.NakUnableToProcess))
	}
	d.buf = out
	return Result{Reply: out, Code: m.Code()}
}

func nak(code osdp.NakCode) osdp.Reply { return osdp.Nak{Reason: code} }

// replyCode finds the code in an encoded reply.
func replyCode(b []byte) byte {
	f, err := osdp.ParseFrame(b)
	if err != nil {
		return 0
	}
	return f.Code
}

// frameLen is the length field of f as it was on the wire.
func frameLen(f *osdp.Frame) int {
	n := 5 + 1 + len(f.Data) + 1
	if f.CRC {
		n++
	}
	if f.SCB != nil {
		n += 2 + len(f.SCB.Data)
		if f.SCB.Type.HasMAC() {
			n += 4
		}
	}
	return n
}

// PresentCard queues the card read of the Wiegand frame bits, delivered as
// osdp_RAW at the next POLL.
func (d *Device) PresentCard(bits wiegand.Frame) error {
	if bits.Len() == 0 {
		return fmt.Errorf("pd: empty card frame")
	}
	return d.queue(osdp.Raw{Format: osdp.RawWiegand, Bits: uint16(bits.Len()), Data: bits.Bytes()})
}

// TypeKeys queues key presses, delivered as one osdp_KEYPAD at the next
// POLL. Keys are ASCII digits; '*' and '#' are sent as the codes OSDP gives
// them (0x7F and 0x0D).
func (d *Device) TypeKeys(keys string) error {
	if !d.cfg.Keypad.on() {
		return ErrNoKeypad
	}
	if keys == "" || len(keys) > 255 {
		return fmt.Errorf("pd: %d keys, want 1–255", len(keys))
	}
	b := []byte(keys)
	for i, c := range b {
		switch {
		case c == '*':
			b[i] = 0x7F
		case c == '#':
			b[i] = 0x0D
		case c < '0' || c > '9':
			return fmt.Errorf("pd: key %q is not on a keypad", c)
		}
	}
	return d.queue(osdp.Keypad{Keys: string(b)})
}

// SetInput sets contact input i and queues an osdp_ISTATR for the CP.
func (d *Device) SetInput(i int, active bool) error {
	if i < 0 || i >= len(d.inputs) {
		return fmt.Errorf("pd: no input %d (the reader has %d)", i, len(d.inputs))
	}
	d.inputs[i] = b2u(active)
	return d.queue(osdp.IStatR(append([]byte(nil), d.inputs...)))
}

func (d *Device) queue(ev osdp.Reply) error {
	switch {
	case !d.powered:
		return ErrPoweredOff
	case len(d.events) >= d.cfg.Queue:
		return ErrQueueFull
	}
	d.events = append(d.events, ev)
	return nil
}

// PowerOff cuts the reader's power: it stops answering and forgets its
// display, LEDs, outputs, queued events and sequence state.
func (d *Device) PowerOff() { d.powered = false }

// PowerOn restores the power: the reader boots blank and accepts only
// sequence number 0 until the CP restarts the link. The address set with
// COMSET is kept, as a reader keeps it in non-volatile memory.
func (d *Device) PowerOn() {
	if !d.powered {
		d.powerOn()
	}
}

func (d *Device) powerOn() {
	c := d.cfg
	d.powered, d.busy, d.events = true, 0, nil
	d.seq.Reset()
	d.display = newDisplay(c.Rows, c.Cols)
	d.leds = make([]led, count(c.LEDs))
	d.outputs = make([]output, count(c.Outputs))
	d.inputs = make([]byte, c.Inputs)
	d.buzzer = buzzer{}
}

// Busy makes the device answer its next n commands with osdp_BUSY.
func (d *Device) Busy(n int) { d.busy = max(n, 0) }

// State is what a person standing at the reader sees, and what the device
// has counted.
type State struct {
	Addr    byte // address the reader answers to now
	Powered bool

	// Display holds the rows as they read now, trailing spaces trimmed: the
	// temporary text while it lasts, the permanent text otherwise. Nil when
	// the reader has no display or no power.
	Display        []string
	Temporary      bool      // Display shows temporary text
	TemporaryUntil time.Time // when the temporary text gives way
	Permanent      []string  // the permanent text, trailing spaces trimmed

	LEDs    []LEDState
	Buzzer  BuzzerState
	Outputs []OutputState
	Inputs  []bool
	Queued  int // events waiting for a POLL

	Counters Counters
}

// State returns what the reader shows at time now.
func (d *Device) State(now time.Time) State {
	s := State{Addr: d.addr, Powered: d.powered, Queued: len(d.events), Counters: d.counters}
	if !d.powered {
		return s
	}
	s.Display, s.Temporary, s.TemporaryUntil = d.display.lines(now)
	s.Permanent = d.display.permanent()
	for i := range d.leds {
		s.LEDs = append(s.LEDs, d.leds[i].state(now))
	}
	s.Buzzer = d.buzzer.state(now)
	for i := range d.outputs {
		s.Outputs = append(s.Outputs, d.outputs[i].state(now))
	}
	for _, in := range d.inputs {
		s.Inputs = append(s.Inputs, in != 0)
	}
	return s
}

// NextChange returns the earliest time after now at which State changes by
// itself (a temporary text, LED pattern, buzz or output timer ends), or the
// zero time if nothing is pending.
func (d *Device) NextChange(now time.Time) time.Time {
	var next time.Time
	consider := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if !d.powered {
		return next
	}
	consider(d.display.tempUntil)
	for i := range d.leds {
		consider(d.leds[i].tempUntil)
	}
	consider(d.buzzer.until)
	for i := range d.outputs {
		consider(d.outputs[i].tempUntil)
	}
	return next
}

func b2u(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// units converts a count of 100 ms units to a duration.
func units(n uint16) time.Duration { return time.Duration(n) * 100 * time.Millisecond }
