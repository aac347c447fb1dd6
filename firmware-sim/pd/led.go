package pd

import (
	"time"

	"varco.dev/protocol/osdp"
)

// pattern is an LED's flashing pattern.
type pattern struct {
	on, off           byte // phases in units of 100 ms
	onColor, offColor osdp.Color
}

// led is one reader LED: a permanent pattern and a temporary one that
// overrides it until its timer runs out.
type led struct {
	perm, temp pattern
	tempUntil  time.Time
}

// LEDState is what an LED shows.
type LEDState struct {
	// Color is the colour a person notices: the on colour of the pattern
	// showing now, or its off colour when the pattern has no on phase.
	Color     osdp.Color
	Flashing  bool      // the pattern alternates between two colours
	Temporary bool      // the temporary pattern is showing
	Until     time.Time // when the temporary pattern ends
}

func (l *led) state(now time.Time) LEDState {
	p, s := l.perm, LEDState{}
	if now.Before(l.tempUntil) {
		p, s.Temporary, s.Until = l.temp, true, l.tempUntil
	}
	s.Color = p.onColor
	switch {
	case p.on == 0 && p.off > 0:
		s.Color = p.offColor
	case p.on > 0 && p.off > 0 && p.onColor != p.offColor:
		s.Flashing = true
	}
	return s
}

// led applies osdp_LED records. The whole command is refused, with NAK 3,
// when a record names a reader other than 0 or an LED the device does not
// declare, and with NAK 9 for an unknown control code.
func (d *Device) led(now time.Time, c osdp.LED) osdp.Reply {
	for _, r := range c {
		switch {
		case r.Reader != 0 || int(r.LED) >= len(d.leds):
			return nak(osdp.NakUnknownCommand)
		case r.Temporary.Control > osdp.LEDTempSet || r.Permanent.Control > osdp.LEDPermSet:
			return nak(osdp.NakUnableToProcess)
		}
	}
	for _, r := range c {
		l, t, p := &d.leds[r.LED], r.Temporary, r.Permanent
		switch t.Control {
		case osdp.LEDTempCancel:
			l.tempUntil = time.Time{}
		case osdp.LEDTempSet:
			l.temp = pattern{on: t.OnTime, off: t.OffTime, onColor: t.OnColor, offColor: t.OffColor}
			l.tempUntil = now.Add(units(t.Timer))
		}
		if p.Control == osdp.LEDPermSet {
			l.perm = pattern{on: p.OnTime, off: p.OffTime, onColor: p.OnColor, offColor: p.OffColor}
		}
	}
	return osdp.Ack{}
}
