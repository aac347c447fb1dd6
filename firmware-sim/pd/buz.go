package pd

import (
	"time"

	"varco.dev/protocol/osdp"
)

// buzzer is the reader's buzzer.
type buzzer struct {
	on    bool
	until time.Time // zero: until told otherwise
	beeps uint64
}

// BuzzerState is what the buzzer is doing.
type BuzzerState struct {
	Sounding bool
	Until    time.Time // when it stops; zero while it sounds until told otherwise
	// Beeps counts the commands that sounded it.
	Beeps uint64
}

func (b *buzzer) sounding(now time.Time) bool {
	return b.on && (b.until.IsZero() || now.Before(b.until))
}

func (b *buzzer) state(now time.Time) BuzzerState {
	s := BuzzerState{Sounding: b.sounding(now), Beeps: b.beeps}
	if s.Sounding {
		s.Until = b.until
	}
	return s
}

// buz applies osdp_BUZ: tone 0 or 1 silences the buzzer, any other tone
// sounds it for count on/off cycles (forever with count 0). A reader other
// than 0, or a device without a buzzer, gets NAK 3.
func (d *Device) buz(now time.Time, c osdp.Buz) osdp.Reply {
	if !d.cfg.Buzzer.on() || c.Reader != 0 {
		return nak(osdp.NakUnknownCommand)
	}
	b := &d.buzzer
	if c.Tone == osdp.ToneNone || c.Tone == osdp.ToneOff || c.OnTime == 0 {
		*b = buzzer{beeps: b.beeps}
		return osdp.Ack{}
	}
	b.on, b.until = true, time.Time{}
	b.beeps++
	if c.Count > 0 {
		b.until = now.Add(time.Duration(c.Count) * units(uint16(c.OnTime)+uint16(c.OffTime)))
	}
	return osdp.Ack{}
}
