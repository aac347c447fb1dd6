package sim

import (
	"fmt"

	"varco.dev/firmware-sim/pd"
	"varco.dev/protocol/wiegand"
)

// with runs f on the reader at addr under the lock and records the change.
func (s *Sim) with(addr int, f func(*reader)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	for _, r := range s.readers {
		if r.addr == addr {
			f(r)
			s.changeLocked(true)
			return nil
		}
	}
	return fmt.Errorf("%w %d", ErrNoReader, addr)
}

// withErr is with for an f that can fail.
func (s *Sim) withErr(addr int, f func(*reader) error) error {
	var err error
	if werr := s.with(addr, func(r *reader) { err = f(r) }); werr != nil {
		return werr
	}
	return err
}

// PresentCard presents a card of the given format at the reader at addr:
// the reader sends its bits (parity included) as osdp_RAW at the CP's next
// POLL.
func (s *Sim) PresentCard(addr int, format wiegand.Format, facility uint32, number uint64) error {
	bits, err := wiegand.Encode(format, facility, number)
	if err != nil {
		return err
	}
	return s.PresentBits(addr, bits)
}

// PresentBits presents a card that reads as the given bits.
func (s *Sim) PresentBits(addr int, bits wiegand.Frame) error {
	return s.withErr(addr, func(r *reader) error { return r.dev.PresentCard(bits) })
}

// TypePIN types keys on the keypad of the reader at addr: digits, '*' and
// '#', sent together as one osdp_KEYPAD at the next POLL. Whether a PIN
// needs a closing '#' is for the CP to say; TypePIN sends what it is given.
func (s *Sim) TypePIN(addr int, keys string) error {
	return s.withErr(addr, func(r *reader) error { return r.dev.TypeKeys(keys) })
}

// SetInput opens or closes contact input i of the reader at addr; the
// reader reports it as osdp_ISTATR at the next POLL.
func (s *Sim) SetInput(addr, i int, active bool) error {
	return s.withErr(addr, func(r *reader) error { return r.dev.SetInput(i, active) })
}

// PowerOff cuts the power of the reader at addr: it goes silent.
func (s *Sim) PowerOff(addr int) error {
	return s.with(addr, func(r *reader) { r.dev.PowerOff() })
}

// PowerOn powers the reader at addr back on: it boots blank and waits for
// the CP to restart the link with sequence number 0.
func (s *Sim) PowerOn(addr int) error {
	return s.with(addr, func(r *reader) { r.dev.PowerOn() })
}

// Busy makes the reader at addr answer its next n commands with osdp_BUSY.
func (s *Sim) Busy(addr, n int) error {
	return s.with(addr, func(r *reader) { r.dev.Busy(n) })
}

// Device returns the configuration of the reader at addr, defaults filled
// in.
func (s *Sim) Device(addr int) (pd.Config, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.readers {
		if r.addr == addr {
			return r.dev.Config(), nil
		}
	}
	return pd.Config{}, fmt.Errorf("%w %d", ErrNoReader, addr)
}
