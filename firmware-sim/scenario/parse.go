package scenario

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"varco.dev/firmware-sim/pd"
	"varco.dev/firmware-sim/sim"
	"varco.dev/protocol/osdp"
	"varco.dev/protocol/wiegand"
)

// Script is a parsed scenario.
type Script struct {
	Name    string
	Readers []sim.ReaderConfig
	Baud    int
	Pacing  bool
	Timeout time.Duration // default limit of an expectation
	Connect time.Duration // wait for the CP to poll every reader; 0 skips
	Steps   []Step
}

// Config returns the simulator configuration the script asks for.
func (sc *Script) Config() sim.Config {
	return sim.Config{Readers: sc.Readers, Baud: sc.Baud, BaudPacing: sc.Pacing}
}

// Step is one step of a script.
type Step struct {
	Line   int
	Source string // the line as written, without its comment
	Verb   string // card, pin, sleep, power, late, busy, fault, expect
	Reader int

	Card  wiegand.Frame // card
	Keys  string        // pin
	D     time.Duration // sleep, late; for an expect, its limit (0: the script's timeout)
	N     int           // busy, fault
	On    bool          // power
	Fault sim.Fault     // fault

	What  string     // expect: display, led, buzzer, grant, deny, gate-open, gate-closed, polled
	Text  string     // expect display
	Color osdp.Color // expect led
}

// ParseError is a line of a scenario that could not be read.
type ParseError struct {
	File string
	Line int
	Msg  string
}

func (e *ParseError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Parse reads a scenario. name is used in error messages. It reports every
// bad line, as errors joined with errors.Join, each a *ParseError.
func Parse(name string, r io.Reader) (*Script, error) {
	p := parser{sc: &Script{Name: name, Timeout: 2 * time.Second, Connect: 30 * time.Second}}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		p.line = n
		args, src, err := split(sc.Text())
		if err != nil {
			p.fail("%v", err)
			continue
		}
		if len(args) > 0 {
			p.directive(args, src)
		}
	}
	if err := sc.Err(); err != nil {
		p.errs = append(p.errs, fmt.Errorf("%s: %w", name, err))
	}
	if len(p.sc.Readers) == 0 {
		p.sc.Readers = sim.Readers(1)
	}
	for _, st := range p.refs {
		if !slices.ContainsFunc(p.sc.Readers, func(r sim.ReaderConfig) bool { return int(r.Address) == st.Reader }) {
			p.errs = append(p.errs, &ParseError{name, st.Line, fmt.Sprintf("no reader %d (declare it with readers or reader)", st.Reader)})
		}
	}
	if err := errors.Join(p.errs...); err != nil {
		return nil, err
	}
	return p.sc, nil
}

// ParseStep reads one step written as a scenario line holds it, such as
// "card 1 H10301 123 4567" or "expect 2 display \"Welcome\"". It does not
// check that the reader exists: carrying the step out does.
func ParseStep(line string) (Step, error) {
	p := parser{sc: &Script{Name: "step"}, line: 1}
	args, src, err := split(line)
	switch {
	case err != nil:
		return Step{}, err
	case len(args) == 0:
		return Step{}, errors.New("empty step")
	}
	st := Step{Line: 1, Source: src, Verb: args[0]}
	if setupVerbs[st.Verb] {
		return Step{}, fmt.Errorf("%s is a setup directive, not a step", st.Verb)
	}
	if !p.step(&st, args[1:]) {
		return Step{}, errors.New(p.errs[0].(*ParseError).Msg)
	}
	return st, nil
}

var setupVerbs = map[string]bool{"readers": true, "reader": true, "baud": true, "pacing": true, "timeout": true, "connect": true}

type parser struct {
	sc   *Script
	line int
	errs []error
	refs []Step // steps that name a reader, checked at the end
}

func (p *parser) fail(format string, args ...any) {
	p.errs = append(p.errs, &ParseError{p.sc.Name, p.line, fmt.Sprintf(format, args...)})
}

// split cuts a line into arguments, honouring double quotes and comments.
func split(line string) (args []string, src string, err error) {
	var cur strings.Builder
	in := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '"':
			end := i + 1
			for ; end < len(line) && line[end] != '"'; end++ {
				if line[end] == '\\' {
					end++
				}
			}
			if end >= len(line) {
				return nil, "", errors.New("unterminated quoted string")
			}
			s, err := strconv.Unquote(line[i : end+1])
			if err != nil {
				return nil, "", fmt.Errorf("quoted string %s: %v", line[i:end+1], err)
			}
			cur.WriteString(s)
			in, i = true, end
		case c == '#' && !in: // a comment starts a word
			line = line[:i]
		case unicode.IsSpace(rune(c)):
			if in {
				args, in = append(args, cur.String()), false
				cur.Reset()
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if in {
		args = append(args, cur.String())
	}
	return args, strings.TrimSpace(line), nil
}

func (p *parser) directive(args []string, src string) {
	verb, args := args[0], args[1:]
	if setupVerbs[verb] {
		if len(p.sc.Steps) > 0 {
			p.fail("%s must come before the first step", verb)
			return
		}
		p.setupDirective(verb, args)
		return
	}
	st := Step{Line: p.line, Source: src, Verb: verb}
	if !p.step(&st, args) {
		return
	}
	p.sc.Steps = append(p.sc.Steps, st)
	if verb != "sleep" {
		p.refs = append(p.refs, st)
	}
}

func (p *parser) setupDirective(verb string, args []string) {
	switch verb {
	case "readers":
		n, ok := p.count(args, "readers N", 1, 126)
		if ok && len(p.sc.Readers) > 0 {
			p.fail("readers after reader or readers")
		} else if ok {
			p.sc.Readers = sim.Readers(n)
		}
	case "reader":
		p.reader(args)
	case "baud":
		if n, ok := p.count(args, "baud B", 300, 1_000_000); ok {
			p.sc.Baud = n
		}
	case "pacing":
		if len(args) != 1 || args[0] != "on" && args[0] != "off" {
			p.fail("want pacing on|off")
			return
		}
		p.sc.Pacing = args[0] == "on"
	case "timeout", "connect":
		if len(args) != 1 {
			p.fail("want %s DURATION", verb)
			return
		}
		d, ok := p.duration(args[0])
		if ok && verb == "timeout" {
			p.sc.Timeout = d
		} else if ok {
			p.sc.Connect = d
		}
	}
}

// reader reads "reader R opt=v ...".
func (p *parser) reader(args []string) {
	if len(args) == 0 {
		p.fail("want reader R [option=value ...]")
		return
	}
	addr, ok := p.address(args[0])
	if !ok {
		return
	}
	rc := sim.ReaderConfig{Address: byte(addr)}
	for _, opt := range args[1:] {
		k, v, found := strings.Cut(opt, "=")
		if !found {
			p.fail("reader option %q: want name=value", opt)
			return
		}
		var err error
		switch k {
		case "rows":
			if v == "none" {
				rc.Rows = -1
			} else {
				rc.Rows, err = strconv.Atoi(v)
			}
		case "cols":
			rc.Cols, err = strconv.Atoi(v)
		case "leds", "outputs":
			n, e := strconv.Atoi(v)
			if n == 0 {
				n = -1 // none
			}
			err = e
			if k == "leds" {
				rc.LEDs = n
			} else {
				rc.Outputs = n
			}
		case "inputs":
			rc.Inputs, err = strconv.Atoi(v)
		case "buzzer", "keypad", "ack-out":
			var on bool
			on, err = yesNo(v)
			switch {
			case k == "ack-out":
				rc.AckOut = on
			case k == "buzzer":
				rc.Buzzer = flag(on)
			default:
				rc.Keypad = flag(on)
			}
		default:
			p.fail("unknown reader option %q", k)
			return
		}
		if err != nil {
			p.fail("reader option %s: bad value %q", k, v)
			return
		}
	}
	if _, err := pd.New(rc); err != nil {
		p.fail("%v", err)
		return
	}
	if slices.ContainsFunc(p.sc.Readers, func(r sim.ReaderConfig) bool { return r.Address == rc.Address }) {
		p.fail("reader %d declared twice", addr)
		return
	}
	p.sc.Readers = append(p.sc.Readers, rc)
}

func flag(on bool) pd.Flag {
	if on {
		return pd.Yes
	}
	return pd.No
}

func yesNo(s string) (bool, error) {
	switch s {
	case "yes", "on", "true":
		return true, nil
	case "no", "off", "false":
		return false, nil
	}
	return false, fmt.Errorf("want yes or no")
}

// step reads the arguments of a step; it reports whether they are good.
func (p *parser) step(st *Step, args []string) bool {
	if st.Verb == "sleep" {
		if len(args) != 1 {
			p.fail("want sleep DURATION")
			return false
		}
		var ok bool
		st.D, ok = p.duration(args[0])
		return ok
	}
	usage, known := stepUsage[st.Verb]
	if !known {
		p.fail("unknown directive %q (want one of: %s)", st.Verb, directives)
		return false
	}
	if len(args) < 2 {
		p.fail("want %s", usage)
		return false
	}
	addr, ok := p.address(args[0])
	if !ok {
		return false
	}
	st.Reader, args = addr, args[1:]
	switch st.Verb {
	case "card":
		card, err := sim.ParseCard(args)
		if err != nil {
			p.fail("%v", err)
			return false
		}
		st.Card = card
	case "pin":
		if len(args) != 1 || strings.Trim(args[0], "0123456789*#") != "" {
			p.fail("want %s, KEYS of digits, * and #", usage)
			return false
		}
		st.Keys = args[0]
	case "power":
		if len(args) != 1 || args[0] != "on" && args[0] != "off" {
			p.fail("want %s", usage)
			return false
		}
		st.On = args[0] == "on"
	case "late":
		if len(args) != 1 {
			p.fail("want %s", usage)
			return false
		}
		st.D, ok = p.duration(args[0])
	case "busy":
		st.N, ok = p.count(args, usage, 1, 1000)
	case "fault":
		if st.Fault, ok = p.fault(args[0]); !ok {
			return false
		}
		st.N = 1
		if len(args) > 1 {
			st.N, ok = p.count(args[1:], usage, 1, 1000)
		}
	case "expect":
		ok = p.expect(st, args)
	}
	return ok
}

var stepUsage = map[string]string{
	"card":   "card R FORMAT [FACILITY] NUMBER or card R BITS VALUE",
	"pin":    "pin R KEYS",
	"power":  "power R off|on",
	"late":   "late R DURATION",
	"busy":   "busy R N",
	"fault":  "fault R drop|corrupt|garble [N]",
	"expect": "expect R display \"TEXT\"|led COLOR|buzzer|grant|deny|gate open|gate closed|polled [within D]",
}

const directives = "readers, reader, baud, pacing, timeout, connect, card, pin, sleep, power, late, busy, fault, expect"

func (p *parser) fault(s string) (sim.Fault, bool) {
	f, err := sim.ParseFault(s)
	if err != nil {
		p.fail("unknown fault %q (want drop, corrupt or garble)", s)
		return 0, false
	}
	return f, true
}

// expect reads what follows "expect R".
func (p *parser) expect(st *Step, args []string) bool {
	what, args := args[0], args[1:]
	// An optional "within D" (or "for D" after gate closed) ends the line.
	if n := len(args); n >= 2 && (args[n-2] == "within" || args[n-2] == "for") {
		if (args[n-2] == "for") != (what == "gate" && args[0] == "closed") {
			p.fail("use \"for D\" with gate closed, \"within D\" with the others")
			return false
		}
		d, ok := p.duration(args[n-1])
		if !ok {
			return false
		}
		st.D, args = d, args[:n-2]
	}
	want := 0
	switch what {
	case "display":
		if len(args) != 1 || args[0] == "" {
			p.fail("want expect R display \"TEXT\"")
			return false
		}
		st.Text, want = args[0], 1
	case "led":
		if len(args) != 1 {
			p.fail("want expect R led COLOR")
			return false
		}
		c, ok := color(args[0])
		if !ok {
			p.fail("unknown colour %q (want black, red, green, amber, blue, magenta, cyan or white)", args[0])
			return false
		}
		st.Color, want = c, 1
	case "gate":
		if len(args) != 1 || args[0] != "open" && args[0] != "closed" {
			p.fail("want expect R gate open|closed")
			return false
		}
		what, want = "gate-"+args[0], 1
	case "buzzer", "grant", "deny", "polled":
	default:
		p.fail("unknown expectation %q (want display, led, buzzer, grant, deny, gate or polled)", what)
		return false
	}
	if len(args) != want {
		p.fail("unexpected %q after expect %s", strings.Join(args[want:], " "), what)
		return false
	}
	st.What = what
	return true
}

func color(s string) (osdp.Color, bool) {
	for c := osdp.Black; c <= osdp.White; c++ {
		if strings.EqualFold(s, c.String()) {
			return c, true
		}
	}
	return 0, false
}

func (p *parser) address(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n >= osdp.BroadcastAddr {
		p.fail("reader %q: want an address 0–126", s)
		return 0, false
	}
	return n, true
}

func (p *parser) count(args []string, usage string, lo, hi int) (int, bool) {
	if len(args) != 1 {
		p.fail("want %s", usage)
		return 0, false
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < lo || n > hi {
		p.fail("%q: want a number %d–%d", args[0], lo, hi)
		return 0, false
	}
	return n, true
}

func (p *parser) duration(s string) (time.Duration, bool) {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		p.fail("%q: want a duration such as 300ms or 2s", s)
		return 0, false
	}
	return d, true
}
