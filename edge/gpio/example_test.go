package gpio_test

import (
	"fmt"
	"time"

	"varco.dev/edge/gpio"
	"varco.dev/protocol/wiegand"
)

// The Decoder on its own: pulses of a 26-bit card 2 ms apart, then the tick
// that ends the frame once the line has been idle for IdleTimeout.
func ExampleDecoder() {
	d, err := gpio.NewDecoder(gpio.DecoderConfig{})
	if err != nil {
		panic(err)
	}
	card, _ := wiegand.Encode(wiegand.H10301, 118, 1603)
	at := time.Date(2025, 11, 25, 7, 30, 0, 0, time.UTC)
	for i := range card.Len() {
		at = at.Add(2 * time.Millisecond)
		d.Edge(card.Bit(i), at) // D1 for a 1, D0 for a 0
	}
	deadline, _ := d.Deadline()
	for _, r := range d.Tick(deadline) {
		key, err := r.Key()
		fmt.Println(r.Bits, "bits:", key, err)
	}
	// Output: 26 bits: card:118:1603 <nil>
}
