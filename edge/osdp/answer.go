package osdp

import (
	"slices"
	"strings"
	"time"

	wire "varco.dev/protocol/osdp"
)

// DefaultHold is how long an answer's text stays on the display when
// Answer.Hold is zero.
const DefaultHold = 3 * time.Second

// Answer is what a reader does in response to a read. Zero parts are left
// out. Durations go on the wire in units of 100 ms, rounded up (the hold
// time in seconds), and are capped at what the wire carries.
type Answer struct {
	Reader byte  // reader number on the PD, 0 for a single reader
	Output Pulse // the gate relay, when the reader drives it
	LED    LED
	Beep   Beep
	// Lines are display rows from the top. Each is cut to the display's
	// columns and padded with spaces, characters outside printable ASCII
	// become '?', and rows beyond the display are dropped; rows without a
	// line are blanked, so no idle text shows through.
	Lines []string
	Hold  time.Duration // how long Lines stay before the idle text returns; DefaultHold
}

// Pulse switches an output on for a while.
type Pulse struct {
	Output byte          // output number, from 0
	For    time.Duration // zero: no output command
}

// LED is a temporary LED pattern; the reader's permanent pattern returns
// after it.
type LED struct {
	Color    Color         // colour of the on phase
	OffColor Color         // colour of the off phase; Black is dark
	On, Off  time.Duration // flash phases; Off zero is steady
	For      time.Duration // zero: no LED command
}

// Beep sounds the buzzer.
type Beep struct {
	On, Off time.Duration // each beep and the pause after it; On at least 100 ms
	Count   int           // beeps, at most 255; zero: no buzzer command
}

// Answer queues a for the reader at addr. Its first command goes out in the
// very next slot of the line, the others at that reader's next turns (see
// the package documentation). It replaces what is still queued of an
// earlier answer to that reader. Commands the reader lacks (by its
// capabilities, or by a NAK 3) are left out. It returns ErrUnknownReader
// or ErrOffline, and never blocks.
func (b *Bus) Answer(addr byte, a Answer) error {
	r := b.reader(addr)
	if r == nil {
		return ErrUnknownReader
	}
	now := b.clk.Now()
	b.mu.Lock()
	if !r.online {
		b.mu.Unlock()
		return ErrOffline
	}
	for _, q := range r.queue {
		if q.idle { // an idle text being written: write it again later
			r.idleDirty = true
			break
		}
	}
	r.queue = a.commands(r.queue[:0], r.info)
	r.answers++
	r.urgent = len(r.queue) > 0
	if len(a.Lines) > 0 {
		r.holdUntil = now.Add(cmpHold(a.Hold))
	}
	b.mu.Unlock()
	b.signal()
	return nil
}

// SetIdleText sets the text the reader at addr shows between answers, one
// line per row (none blanks the display). It is written as permanent text
// when the current answer's hold time is over, and again whenever the
// reader comes back online.
func (b *Bus) SetIdleText(addr byte, lines ...string) error {
	r := b.reader(addr)
	if r == nil {
		return ErrUnknownReader
	}
	b.mu.Lock()
	r.idle = slices.Clone(lines)
	r.idleDirty = r.online
	b.mu.Unlock()
	return nil
}

func (b *Bus) reader(addr byte) *reader {
	if int(addr) >= len(b.byAddr) {
		return nil
	}
	return b.byAddr[addr]
}

// commands appends the commands of a to q, for a reader with capabilities
// c: the gate first, then what the member sees and hears, then the text.
func (a *Answer) commands(q []queued, c Capabilities) []queued {
	if a.Output.For > 0 && (!c.Known || int(a.Output.Output) < c.Outputs) {
		q = append(q, queued{msg: wire.Out{{
			Output: a.Output.Output, Control: wire.OutputTemporaryOn, Timer: ticks16(a.Output.For),
		}}})
	}
	if a.LED.For > 0 && (!c.Known || c.LEDs > 0) {
		q = append(q, queued{msg: wire.LED{{
			Reader: a.Reader,
			Temporary: wire.LEDTemporary{
				Control: wire.LEDTempSet,
				OnTime:  max(ticks8(a.LED.On), 1), OffTime: ticks8(a.LED.Off),
				OnColor: a.LED.Color, OffColor: a.LED.OffColor,
				Timer: ticks16(a.LED.For),
			},
		}}})
	}
	if a.Beep.Count > 0 && (!c.Known || c.Buzzer) {
		q = append(q, queued{msg: wire.Buz{
			Reader: a.Reader, Tone: wire.ToneDefault,
			OnTime: max(ticks8(a.Beep.On), 1), OffTime: ticks8(a.Beep.Off), Count: byte(min(a.Beep.Count, 255)),
		}})
	}
	if len(a.Lines) > 0 {
		secs := min((cmpHold(a.Hold)+time.Second-1)/time.Second, 255)
		q = appendText(q, c, a.Reader, a.Lines, wire.TextTemporary, byte(secs), false)
	}
	return q
}

func cmpHold(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultHold
	}
	return d
}

// appendText appends one TEXT command per display row. When the reader did
// not say what display it has, the lines are sent as they are (at most 4)
// and a NAK 3 will tell.
func appendText(q []queued, c Capabilities, rd byte, lines []string, cmd wire.TextCommand, secs byte, idle bool) []queued {
	rows, cols := c.Rows, c.Cols
	if !c.Known {
		rows, cols = min(len(lines), 4), 0
	}
	for i := range rows {
		var s string
		if i < len(lines) {
			s = lines[i]
		}
		q = append(q, queued{msg: wire.Text{
			Reader: rd, Command: cmd, TempTime: secs, Row: byte(i + 1), Column: 1, Text: fit(s, cols),
		}, idle: idle})
	}
	return q
}

// fit makes s one display row of cols characters (as many as fit in a
// TEXT command when cols is 0): printable ASCII only (OSDP TEXT carries
// ASCII; accented Latin letters lose their accent, "Perché" shows as
// "Perche", anything else becomes '?'), cut, padded.
func fit(s string, cols int) string {
	width := cols
	if width <= 0 || width > wire.MaxTextLen {
		width = wire.MaxTextLen
	}
	out := make([]byte, 0, width)
	for _, c := range s {
		if len(out) == width {
			break
		}
		if c < 0x20 || c > 0x7E {
			c = unaccent(c)
		}
		out = append(out, byte(c))
	}
	for cols > 0 && len(out) < width {
		out = append(out, ' ')
	}
	return string(out)
}

// accented lists Latin letters with diacritics by their ASCII letter: the
// letters of the club's languages (Italian, French, German, Spanish,
// Portuguese...) and the typographic quotes that word processors put into
// CRM texts.
var accented = [...]struct {
	ascii rune
	from  string
}{
	{'a', "àáâãäåā"}, {'A', "ÀÁÂÃÄÅĀ"}, {'c', "çćč"}, {'C', "ÇĆČ"}, {'e', "èéêëēė"}, {'E', "ÈÉÊËĒĖ"},
	{'i', "ìíîïī"}, {'I', "ÌÍÎÏĪ"}, {'n', "ñń"}, {'N', "ÑŃ"}, {'o', "òóôõöøō"}, {'O', "ÒÓÔÕÖØŌ"},
	{'u', "ùúûüū"}, {'U', "ÙÚÛÜŪ"}, {'y', "ýÿ"}, {'Y', "Ý"}, {'s', "śš"}, {'S', "ŚŠ"}, {'z', "źżž"}, {'Z', "ŹŻŽ"},
	{'\'', "‘’´"}, {'"', "“”«»"}, {'-', "–—"},
}

// unaccent returns the ASCII character that stands for c on a display, '?'
// when there is none.
func unaccent(c rune) rune {
	for _, a := range accented {
		if strings.ContainsRune(a.from, c) {
			return a.ascii
		}
	}
	return '?'
}

// ticks8 and ticks16 are d in units of 100 ms, rounded up and capped.
func ticks8(d time.Duration) byte { return byte(min(ticks(d), 0xFF)) }

func ticks16(d time.Duration) uint16 { return uint16(min(ticks(d), 0xFFFF)) }

func ticks(d time.Duration) int64 {
	const unit = 100 * time.Millisecond
	if d <= 0 {
		return 0
	}
	return int64((d + unit - 1) / unit)
}
