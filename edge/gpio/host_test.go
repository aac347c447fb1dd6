package gpio

import (
	"errors"
	"strings"
	"testing"

	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/host/v3"
)

// These tests use periph's global pin registry: they are not parallel, so
// they run before every parallel test of the package.

func TestOpenWithoutGPIO(t *testing.T) {
	if _, err := host.Init(); err != nil {
		t.Fatal(err)
	}
	if n := len(gpioreg.All()); n > 0 {
		t.Skipf("this machine has %d GPIO pins", n)
	}
	_, err := Open(map[string]string{"wiegand.d0": "GPIO17"})
	if !errors.Is(err, ErrNoGPIO) {
		t.Fatalf("Open = %v, want ErrNoGPIO", err)
	}
	t.Log(err)
}

func TestOpenPins(t *testing.T) {
	for _, name := range []string{"VARCO_D0", "VARCO_D1", "VARCO_RELAY"} {
		if err := gpioreg.Register(&gpiotest.Pin{N: name}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = gpioreg.Unregister(name) })
	}
	if err := gpioreg.RegisterAlias("GATE_RELAY", "VARCO_RELAY"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gpioreg.Unregister("GATE_RELAY") })

	pins, err := Open(map[string]string{"d0": "VARCO_D0", "d1": "VARCO_D1", "relay": "GATE_RELAY"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pins) != 3 || pins["d0"].Name() != "VARCO_D0" || pins["relay"].Name() != "GATE_RELAY" {
		t.Fatalf("pins %v", pins)
	}

	_, err = Open(map[string]string{"d0": "VARCO_D0", "d1": "GPIO99", "door.rex": "VARCO_D0"})
	var pe *PinError
	if !errors.As(err, &pe) || pe.Key != "d1" || pe.Name != "GPIO99" {
		t.Fatalf("Open = %v, want a PinError for d1", err)
	}
	for _, want := range []string{`d1: pin "GPIO99": no such pin`, "VARCO_D0", `door.rex: pin "VARCO_D0": also used by d0`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
