package pd

import (
	"time"

	"varco.dev/protocol/osdp"
)

// output is one output (relay): a permanent state and a temporary one that
// overrides it until its timer runs out.
type output struct {
	perm      bool
	temp      bool
	tempUntil time.Time
	pulses    uint64
}

// OutputState is what an output is doing.
type OutputState struct {
	Active bool      // energised now
	Until  time.Time // end of a temporary state, zero if none
	// Pulses counts the commands that activated the output: every
	// temporary-on with a timer, and every command that switched it on
	// from off. The turnstile counts a passage for each.
	Pulses uint64
}

func (o *output) active(now time.Time) bool {
	if now.Before(o.tempUntil) {
		return o.temp
	}
	return o.perm
}

func (o *output) state(now time.Time) OutputState {
	s := OutputState{Active: o.active(now), Pulses: o.pulses}
	if now.Before(o.tempUntil) {
		s.Until = o.tempUntil
	}
	return s
}

// out applies osdp_OUT records. The whole command is refused, with NAK 3,
// when a record names an output the device does not declare, and with
// NAK 9 for an unknown control code. It answers OSTATR, or ACK with
// Config.AckOut.
func (d *Device) out(now time.Time, c osdp.Out) osdp.Reply {
	for _, r := range c {
		switch {
		case int(r.Output) >= len(d.outputs):
			return nak(osdp.NakUnknownCommand)
		case r.Control > osdp.OutputTemporaryOff:
			return nak(osdp.NakUnableToProcess)
		}
	}
	for _, r := range c {
		o := &d.outputs[r.Output]
		was := o.active(now)
		timed := now.Before(o.tempUntil)
		switch r.Control {
		case osdp.OutputOff, osdp.OutputOn:
			o.perm, o.tempUntil = r.Control == osdp.OutputOn, time.Time{}
		case osdp.OutputOffAfterTimer, osdp.OutputOnAfterTimer:
			o.perm = r.Control == osdp.OutputOnAfterTimer
			if !timed {
				o.tempUntil = time.Time{}
			}
		case osdp.OutputTemporaryOn, osdp.OutputTemporaryOff:
			o.temp, o.tempUntil = r.Control == osdp.OutputTemporaryOn, now.Add(units(r.Timer))
		}
		if r.Control == osdp.OutputTemporaryOn && r.Timer > 0 || !was && o.active(now) {
			o.pulses++
		}
	}
	if d.cfg.AckOut {
		return osdp.Ack{}
	}
	return d.ostat(now)
}
