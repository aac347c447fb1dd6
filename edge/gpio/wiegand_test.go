package gpio

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
	"varco.dev/protocol/wiegand"
)

const (
	µs = time.Microsecond
	ms = time.Millisecond
)

// script is decoder input: pulses and ticks at offsets from t0.
type script struct {
	evs []ev
	at  time.Duration // time of the last event
}

type ev struct {
	at   time.Duration
	tick bool
	one  bool
}

// bits adds one pulse per '0' (D0) or '1' (D1), each gap after the event
// before it.
func (s *script) bits(gap time.Duration, bits string) *script {
	for _, c := range bits {
		s.at += gap
		s.evs = append(s.evs, ev{at: s.at, one: c == '1'})
	}
	return s
}

// wait moves time on by d.
func (s *script) wait(d time.Duration) *script { s.at += d; return s }

// tick adds a Tick now.
func (s *script) tick() *script {
	s.evs = append(s.evs, ev{at: s.at, tick: true})
	return s
}

// card adds a frame 100 ms after the last event, pulses 2 ms apart.
func (s *script) card(bits string) *script { return s.wait(100*ms).bits(2*ms, bits) }

// keys adds a keypad burst of width 4 or 8 bits per key of keys ("0"–"9",
// "*", "#"), 300 ms apart, pulses 1 ms apart.
func (s *script) keys(width int, keys string) *script {
	for _, k := range keys {
		s.wait(300*ms).bits(ms, keyBits(width, k))
	}
	return s
}

func keyBits(width int, k rune) string {
	code := map[rune]int{'*': 0xA, '#': 0xB}[k]
	if k >= '0' && k <= '9' {
		code = int(k - '0')
	}
	if width == 8 {
		return fmt.Sprintf("%04b%04b", ^code&0xF, code)
	}
	return fmt.Sprintf("%04b", code)
}

// run feeds s to a new decoder, then ticks IdleTimeout after the last event
// (ending a frame, not a PIN), and returns the reads as text (see show).
func (s *script) run(t testing.TB, cfg DecoderConfig) []string {
	d, err := NewDecoder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range s.evs {
		var reads []Read
		if e.tick {
			reads = d.Tick(t0.Add(e.at))
		} else {
			reads = d.Edge(e.one, t0.Add(e.at))
		}
		for _, r := range reads {
			got = append(got, show(r))
		}
	}
	for _, r := range d.Tick(t0.Add(s.at + d.cfg.IdleTimeout)) {
		got = append(got, show(r))
	}
	return got
}

// show is a read as text: "frame BITS", "pin:DIGITS" or "ERROR bits=N".
func show(r Read) string {
	switch {
	case r.Err != nil:
		return fmt.Sprintf("%v bits=%d", r.Err, r.Bits)
	case !r.PIN.IsZero():
		return r.PIN.String()
	}
	return "frame " + r.Frame.String()
}

func frame(bits string) string          { return "frame " + bits }
func failed(err error, bits int) string { return fmt.Sprintf("%v bits=%d", err, bits) }
func encode(t testing.TB, f wiegand.Format, fc uint32, cn uint64) string {
	fr, err := wiegand.Encode(f, fc, cn)
	if err != nil {
		t.Fatal(err)
	}
	return fr.String()
}

func TestDecoder(t *testing.T) {
	t.Parallel()
	h26 := encode(t, wiegand.H10301, 118, 1603)
	h34 := encode(t, wiegand.H10306, 4660, 22136)
	c35 := encode(t, wiegand.Corp1000, 1234, 567890)
	h37 := encode(t, wiegand.H10304, 12345, 345678)
	ones := strings.Repeat("1", 130)
	long := strings.Repeat("10", 64)
	cases := []struct {
		name string
		in   *script
		want []string
	}{
		{"H10301 26 bits", new(script).card(h26), []string{frame(h26)}},
		{"H10306 34 bits", new(script).card(h34), []string{frame(h34)}},
		{"Corporate 1000 35 bits", new(script).card(c35), []string{frame(c35)}},
		{"H10304 37 bits", new(script).card(h37), []string{frame(h37)}},
		{"fast reader, 200 µs interval", new(script).bits(200*µs, h26), []string{frame(h26)}},
		{"slow reader, 20 ms interval", new(script).bits(20*ms, h26), []string{frame(h26)}},
		{"interval just below the idle timeout", new(script).bits(DefaultIdleTimeout-µs, h26), []string{frame(h26)}},
		{"interval of the idle timeout splits", new(script).bits(2*ms, h26[:13]).wait(DefaultIdleTimeout-2*ms).bits(2*ms, h26[13:]),
			[]string{frame(h26[:13]), frame(h26[13:])}},
		{"frame cut by idle timeout", new(script).card(h26[:13]).wait(30*ms).tick().bits(2*ms, h26[13:]),
			[]string{frame(h26[:13]), frame(h26[13:])}},
		{"missed tick: the next frame ends the previous one", new(script).card(h26).card(h34),
			[]string{frame(h26), frame(h34)}},
		{"glitch: pulses 50 µs apart", new(script).card(h26[:10]).bits(50*µs, "1").bits(2*ms, h26[10:]),
			[]string{failed(ErrGlitch, 27)}},
		{"both lines low at once", new(script).card(h26[:5]).bits(0, "1").bits(2*ms, h26[6:]),
			[]string{failed(ErrGlitch, 26)}},
		{"time going backwards", new(script).card(h26[:5]).bits(-ms, "1").bits(2*ms, h26[6:]),
			[]string{failed(ErrGlitch, 26)}},
		{"interval of exactly MinGap is fine", new(script).bits(DefaultMinGap, h26), []string{frame(h26)}},
		{"a glitch spoils only its frame", new(script).card(h26).bits(10*µs, "0").card(h26),
			[]string{failed(ErrGlitch, 27), frame(h26)}},
		{"overlong frame, then a good one", new(script).card(ones).card(h26),
			[]string{failed(ErrOverflow, 130), frame(h26)}},
		{"128 bits is a frame", new(script).card(long), []string{frame(long)}},
		{"noise: one pulse", new(script).card("1"), []string{failed(ErrShort, 1)}},
		{"noise: three pulses", new(script).card("101"), []string{failed(ErrShort, 3)}},
		{"5 bits is a frame (raw)", new(script).card("10110"), []string{frame("10110")}},
		{"keypad 4-bit PIN", new(script).keys(4, "1234#"), []string{"pin:1234"}},
		{"keypad 8-bit PIN keeps leading zeros", new(script).keys(8, "0042#"), []string{"pin:0042"}},
		{"'*' clears", new(script).keys(4, "12*56#"), []string{"pin:56"}},
		{"'*' clears, 8-bit", new(script).keys(8, "9*1#"), []string{"pin:1"}},
		{"'#' without digits does nothing", new(script).keys(4, "#*#"), nil},
		{"two PINs", new(script).keys(4, "1#2#"), []string{"pin:1", "pin:2"}},
		{"8-bit burst whose halves disagree", new(script).keys(8, "1").card("11110001").keys(8, "2#"),
			[]string{failed(ErrKeyCode, 8), "pin:2"}},
		{"4-bit code 0xC is no key", new(script).keys(4, "1").card("1100").keys(4, "2#"),
			[]string{failed(ErrKeyCode, 4), "pin:2"}},
		{"PIN timeout on tick", new(script).keys(4, "12").wait(DefaultPINTimeout).tick().keys(4, "3#"),
			[]string{failed(ErrPINTimeout, 0), "pin:3"}},
		{"PIN timeout noticed at the next key", new(script).keys(4, "1").wait(11*time.Second).keys(4, "2#"),
			[]string{failed(ErrPINTimeout, 0), "pin:2"}},
		{"keys 9 s apart", new(script).keys(4, "1").wait(9*time.Second).keys(4, "2").wait(9*time.Second).keys(4, "#"),
			[]string{"pin:12"}},
		{"16 digits", new(script).keys(4, "1234567890123456#"), []string{"pin:1234567890123456"}},
		{"17 digits", new(script).keys(4, "12345678901234567#"), []string{failed(ErrPINLength, 4)}},
		{"card during PIN entry", new(script).keys(4, "12").card(h26).keys(4, "3#"),
			[]string{frame(h26), "pin:123"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.in.run(t, DecoderConfig{}); !slices.Equal(got, c.want) {
				t.Errorf("got  %q\nwant %q", got, c.want)
			}
		})
	}
}

// A card read on the GPIO wires gives the same key as the same card read
// from an OSDP RAW reply, and arrives IdleTimeout after its last pulse.
func TestDecoderH10301SameKeyAsOSDPRaw(t *testing.T) {
	t.Parallel()
	f, err := wiegand.Encode(wiegand.H10301, 118, 1603)
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDecoder(DecoderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	at := t0
	for i := range f.Len() {
		at = at.Add(2 * ms)
		if reads := d.Edge(f.Bit(i), at); len(reads) != 0 {
			t.Fatalf("bit %d: %v", i, reads)
		}
	}
	if dl, ok := d.Deadline(); !ok || !dl.Equal(at.Add(DefaultIdleTimeout)) {
		t.Fatalf("Deadline = %v %v, want last pulse + %v", dl, ok, DefaultIdleTimeout)
	}
	if reads := d.Tick(at.Add(DefaultIdleTimeout - 1)); len(reads) != 0 {
		t.Fatalf("frame ended early: %v", reads)
	}
	reads := d.Tick(at.Add(DefaultIdleTimeout))
	if len(reads) != 1 || reads[0].Frame != f || !reads[0].At.Equal(at) || reads[0].Bits != 26 {
		t.Fatalf("reads = %+v, want the frame at its last pulse", reads)
	}
	got, err := reads[0].Key()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := wiegand.FromBytes(26, f.Bytes()) // the OSDP RAW path
	if err != nil {
		t.Fatal(err)
	}
	want, err := wiegand.KeyFromFrame(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got != want || got.String() != "card:118:1603" {
		t.Fatalf("key %s, OSDP RAW gives %s", got, want)
	}
	if _, ok := d.Deadline(); ok {
		t.Fatal("Deadline after the frame ended")
	}
	if s := d.Stats(); s.Pulses != 26 || s.Frames != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestReadKey(t *testing.T) {
	t.Parallel()
	bad, _ := wiegand.ParseBits("00111011000000110010000110") // H10301 118/1603 with bit 0 flipped
	pin, _ := wiegand.PINKey("0042")
	for _, c := range []struct {
		r       Read
		want    string
		wantErr error
	}{
		{Read{PIN: pin}, "pin:0042", nil},
		{Read{Err: ErrGlitch, Frame: bad}, "", ErrGlitch},
		{Read{Frame: bad}, "", wiegand.ErrParity},
	} {
		k, err := c.r.Key()
		if k.String() != c.want || !errors.Is(err, c.wantErr) {
			t.Errorf("%+v: Key = %s, %v; want %s, %v", c.r, k, err, c.want, c.wantErr)
		}
	}
}

func TestDecoderConfig(t *testing.T) {
	t.Parallel()
	for _, bad := range []DecoderConfig{
		{IdleTimeout: -1},
		{MinGap: 25 * ms},
		{IdleTimeout: 10 * ms, MinGap: 10 * ms},
		{PINTimeout: ms},
	} {
		if _, err := NewDecoder(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	d, err := NewDecoder(DecoderConfig{IdleTimeout: 50 * ms})
	if err != nil {
		t.Fatal(err)
	}
	if want := (DecoderConfig{50 * ms, DefaultMinGap, DefaultPINTimeout}); d.cfg != want {
		t.Fatalf("cfg %+v, want %+v", d.cfg, want)
	}
}

func TestDecoderStats(t *testing.T) {
	t.Parallel()
	d, _ := NewDecoder(DecoderConfig{})
	s := new(script).card("1").card(strings.Repeat("1", 129)).card("1101").bits(0, "1").
		keys(4, "1").card("1111").keys(4, "12345678901234567").keys(8, "1#").wait(time.Minute).tick()
	for _, e := range s.evs {
		if e.tick {
			d.Tick(t0.Add(e.at))
		} else {
			d.Edge(e.one, t0.Add(e.at))
		}
	}
	want := DecoderStats{Pulses: 1 + 129 + 5 + 4 + 4 + 17*4 + 16, Keys: 1 + 1 + 17 + 2, PINs: 1,
		Glitches: 1, Overflows: 1, Short: 1, BadKeys: 1, LongPINs: 1}
	if st := d.Stats(); st != want {
		t.Fatalf("stats\n got %+v\nwant %+v", st, want)
	}
}

// The decoder never allocates: not per pulse, not per frame, not per PIN.
func TestDecoderAllocs(t *testing.T) {
	h26 := encode(t, wiegand.H10301, 118, 1603)
	s := new(script).card(h26).card(strings.Repeat("1", 140)).keys(8, "1234#").keys(4, "5").wait(time.Minute).tick()
	d, _ := NewDecoder(DecoderConfig{})
	base := t0
	allocs := testing.AllocsPerRun(10, func() {
		for _, e := range s.evs {
			if e.tick {
				d.Tick(base.Add(e.at))
			} else {
				d.Edge(e.one, base.Add(e.at))
			}
		}
		base = base.Add(s.at + time.Hour)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per run", allocs)
	}
	if st := d.Stats(); st.PINs == 0 || st.Frames == 0 || st.Overflows == 0 || st.PINTimeouts == 0 {
		t.Fatalf("script did not cover every path: %+v", st)
	}
}

// FuzzDecoder feeds arbitrary pulse and tick sequences: each 3 bytes are one
// event, flags then a little-endian gap. Flags: bit 0 the line (D1), bit 1 a
// tick instead of a pulse, bit 2 the gap in ms instead of µs (up to 65 s:
// PIN timeouts), bit 3 a negative gap.
func FuzzDecoder(f *testing.F) {
	encodeScript := func(s *script) []byte {
		var b []byte
		prev := time.Duration(0)
		for _, e := range s.evs {
			gap, flags := e.at-prev, byte(0)
			prev = e.at
			if e.one {
				flags |= 1
			}
			if e.tick {
				flags |= 2
			}
			if gap < 0 {
				gap, flags = -gap, flags|8
			}
			n := gap / µs
			if n > 0xFFFF {
				n, flags = gap/ms, flags|4
			}
			b = append(b, flags, byte(n), byte(n>>8))
		}
		return b
	}
	h26 := encode(f, wiegand.H10301, 118, 1603)
	for _, s := range []*script{
		new(script).card(h26),
		new(script).card(strings.Repeat("1", 130)).card(h26),
		new(script).card(h26[:10]).bits(10*µs, "1").bits(2*ms, h26[10:]),
		new(script).keys(4, "12*34#").keys(8, "0042#"),
		new(script).keys(4, "1").wait(11*time.Second).keys(4, "2#").tick(),
	} {
		f.Add(encodeScript(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := NewDecoder(DecoderConfig{})
		if err != nil {
			t.Fatal(err)
		}
		at, latest := t0, t0
		check := func(reads []Read) {
			if len(reads) > 2 {
				t.Fatalf("%d reads from one call", len(reads))
			}
			for _, r := range reads {
				switch {
				case r.Err != nil:
					if !slices.Contains([]error{ErrGlitch, ErrOverflow, ErrShort, ErrKeyCode, ErrPINTimeout, ErrPINLength}, r.Err) {
						t.Fatalf("unknown error %v", r.Err)
					}
				case !r.PIN.IsZero():
					if r.PIN.Kind() != wiegand.KindPIN {
						t.Fatalf("PIN %v", r.PIN)
					}
				case r.Frame.Len() != r.Bits || r.Bits < minBits || r.Bits == 4 || r.Bits == 8 || r.Bits > wiegand.MaxBits:
					t.Fatalf("frame of %d bits, Bits %d", r.Frame.Len(), r.Bits)
				}
			}
		}
		feed := func() {
			for i := 0; i+3 <= len(data); i += 3 {
				flags, n := data[i], time.Duration(data[i+1])|time.Duration(data[i+2])<<8
				gap := n * µs
				if flags&4 != 0 {
					gap = n * ms
				}
				if flags&8 != 0 {
					gap = -gap
				}
				at = at.Add(gap)
				if at.After(latest) {
					latest = at
				}
				if flags&2 != 0 {
					check(d.Tick(at))
				} else {
					check(d.Edge(flags&1 != 0, at))
				}
			}
			at = latest.Add(time.Minute)
			latest = at
			check(d.Tick(at))
			if _, ok := d.Deadline(); ok {
				t.Fatal("something in progress a minute after the last event")
			}
		}
		if allocs := testing.AllocsPerRun(1, feed); allocs != 0 {
			t.Fatalf("%v allocations", allocs)
		}
	})
}

// stamps returns n timestamps of 26-bit frames: pulses 2 ms apart, frames
// 50 ms apart, so that benchmarks measure the decoder, not time.Time.Add.
func stamps(n int) []time.Time {
	ts := make([]time.Time, n)
	at := t0
	for i := range ts {
		if i%26 == 0 {
			at = at.Add(50 * ms)
		}
		at = at.Add(2 * ms)
		ts[i] = at
	}
	return ts
}

// BenchmarkDecoderPulse is the cost of one pulse, within 26-bit frames that
// end when the next one starts.
func BenchmarkDecoderPulse(b *testing.B) {
	f, _ := wiegand.Encode(wiegand.H10301, 118, 1603)
	ts := stamps(26 * 1000)
	d, _ := NewDecoder(DecoderConfig{})
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if i == len(ts) { // start over later than the last frame
			i, d = 0, &Decoder{cfg: d.cfg}
		}
		d.Edge(f.Bit(i%26), ts[i])
		i++
	}
}

// BenchmarkDecoderFrame26 is the cost of a whole 26-bit frame: 26 pulses and
// the tick that ends it.
func BenchmarkDecoderFrame26(b *testing.B) {
	f, _ := wiegand.Encode(wiegand.H10301, 118, 1603)
	ts := stamps(26 * 1000)
	d, _ := NewDecoder(DecoderConfig{})
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if i == len(ts) {
			i, d = 0, &Decoder{cfg: d.cfg}
		}
		for bit := range 26 {
			d.Edge(f.Bit(bit), ts[i])
			i++
		}
		if r := d.Tick(ts[i-1].Add(DefaultIdleTimeout)); len(r) != 1 || r[0].Frame != f {
			b.Fatal(r)
		}
	}
}

// Edges pushed into periph's gpiotest pins come out of a running Wiegand
// reader as a card frame and a PIN.
func TestWiegandRunner(t *testing.T) {
	t.Parallel()
	clk := clockwork.NewFakeClockAt(t0)
	d0, d1 := inPin("D0", 17), inPin("D1", 27)
	reads := make(chan Read, 4)
	var w *Wiegand
	w, err := NewWiegand(d0, d1, WiegandConfig{Name: "entrance", Poll: testPoll, Clock: clk, Logger: testLogger(t)},
		func(r Read) {
			_ = w.Stats() // no deadlock: onRead runs without the decoder's lock
			reads <- r
		})
	if err != nil {
		t.Fatal(err)
	}
	if d0.P != gpio.PullUp || d1.P != gpio.PullUp {
		t.Fatal("inputs without pull-up")
	}
	edges := make(chan struct{})
	w.edgeDone = func() { edges <- struct{}{} }
	start(t, w.Run)

	send := func(bits string) {
		for _, c := range bits {
			clk.Advance(2 * ms)
			pin := d0
			if c == '1' {
				pin = d1
			}
			push(t, pin, gpio.Low, edges)
		}
		clk.Advance(DefaultIdleTimeout) // the runner's next wake-up ends the frame
	}
	h26 := encode(t, wiegand.H10301, 118, 1603)
	send(h26)
	r := recv(t, reads)
	if k, err := r.Key(); err != nil || k.String() != "card:118:1603" || !r.At.Equal(t0.Add(52*ms)) {
		t.Fatalf("read %+v: key %v, %v", r, k, err)
	}
	for _, k := range "12#" {
		clk.Advance(300 * ms)
		send(keyBits(8, k))
	}
	if r := recv(t, reads); r.PIN.String() != "pin:12" {
		t.Fatalf("read %+v, want pin:12", r)
	}
	send("1") // noise
	if r := recv(t, reads); r.Err != ErrShort {
		t.Fatalf("read %+v, want ErrShort", r)
	}
	none(t, reads)
	if st := w.Stats(); st.Pulses != 26+24+1 || st.Frames != 1 || st.PINs != 1 || st.Short != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestNewWiegandErrors(t *testing.T) {
	t.Parallel()
	noEdges := inPin("D0", 1)
	noEdges.EdgesChan = nil // gpiotest refuses edge detection without it
	if _, err := NewWiegand(noEdges, inPin("D1", 2), WiegandConfig{}, func(Read) {}); err == nil || !strings.Contains(err.Error(), "D0(1)") {
		t.Fatalf("err = %v, want one naming pin D0(1)", err)
	}
	if _, err := NewWiegand(inPin("D0", 1), inPin("D1", 2), WiegandConfig{DecoderConfig: DecoderConfig{MinGap: time.Second}}, func(Read) {}); err == nil {
		t.Fatal("bad timing accepted")
	}
	if _, err := NewWiegand(inPin("D0", 1), inPin("D1", 2), WiegandConfig{}, nil); err == nil {
		t.Fatal("nil onRead accepted")
	}
}
