package gpio

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"
)

// ErrNoGPIO is returned by Open when periph finds no GPIO pin at all on the
// machine (a PC, a container without /dev/gpiochip*, missing permissions).
// The daemon then runs with its serial readers only. The error text lists
// the host drivers that failed, which usually says why.
var ErrNoGPIO = errors.New("gpio: this machine has no GPIO")

// PinError reports a pin of the configuration that Open cannot use.
type PinError struct {
	Key    string // the configuration key, e.g. "gates.entrance.relay"
	Name   string // the pin name it gives, e.g. "GPIO17"
	Reason string // "no such pin (the machine has …)" or "also used by KEY"
}

func (e *PinError) Error() string {
	return fmt.Sprintf("gpio: %s: pin %q: %s", e.Key, e.Name, e.Reason)
}

// Open initialises periph's host drivers (host.Init; later calls reuse the
// first result) and looks up by name (gpioreg.ByName: a pin name such as
// "GPIO17" or a board alias such as "P1_11") each pin of pins, a map from a
// configuration key to a pin name. It returns the pins under the same keys.
//
// It returns an error wrapping ErrNoGPIO when the machine has no GPIO, and
// otherwise one PinError per key whose pin is missing or named by another key
// too (errors.Join, sorted by key); then no pin is returned.
func Open(pins map[string]string) (map[string]gpio.PinIO, error) {
	state, err := host.Init()
	if err != nil {
		return nil, fmt.Errorf("gpio: periph host init: %w", err)
	}
	all := gpioreg.All()
	if len(all) == 0 {
		var failed []string
		for _, f := range state.Failed {
			failed = append(failed, f.String())
		}
		if len(failed) == 0 {
			return nil, ErrNoGPIO
		}
		return nil, fmt.Errorf("%w (failed drivers: %s)", ErrNoGPIO, strings.Join(failed, "; "))
	}
	out := make(map[string]gpio.PinIO, len(pins))
	usedBy := make(map[string]string, len(pins))
	var errs []error
	for _, key := range slices.Sorted(maps.Keys(pins)) {
		name := pins[key]
		p := gpioreg.ByName(name)
		switch {
		case p == nil:
			errs = append(errs, &PinError{Key: key, Name: name, Reason: "no such pin (the machine has " + pinNames(all) + ")"})
		case usedBy[name] != "":
			errs = append(errs, &PinError{Key: key, Name: name, Reason: "also used by " + usedBy[name]})
		default:
			usedBy[name] = key
			out[key] = p
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// pinNames lists the first pins of all for an error message.
func pinNames(all []gpio.PinIO) string {
	const show = 12
	var b strings.Builder
	for i, p := range all[:min(len(all), show)] {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p.Name())
	}
	if len(all) > show {
		fmt.Fprintf(&b, " … %d pins", len(all))
	}
	return b.String()
}
