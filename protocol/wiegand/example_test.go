package wiegand_test

import (
	"errors"
	"fmt"

	"varco.dev/protocol/wiegand"
)

// One card, read three ways, gives one key; a PIN with the same digits does
// not.
func Example() {
	// OSDP RAW reply: 26 bits, 4 bytes, first bit in the MSB.
	raw, _ := wiegand.FromBytes(26, []byte{0xBB, 0x03, 0x21, 0x80})
	viaRAW, _ := wiegand.KeyFromFrame(raw)

	// OSDP FMT reply: the reader's ASCII text.
	viaFMT, _ := wiegand.KeyFromFMT([]byte("118:01603"))

	// Wiegand GPIO: one bit per D0/D1 pulse.
	var pulses wiegand.Frame
	for _, c := range "10111011000000110010000110" {
		_ = pulses.AppendBit(c == '1')
	}
	viaGPIO, _ := wiegand.KeyFromFrame(pulses)

	pin, _ := wiegand.PINKey("1603")
	fmt.Println(viaRAW, viaRAW == viaFMT, viaRAW == viaGPIO, viaRAW == pin)

	card, _ := wiegand.Decode(raw)
	fmt.Println(card)

	// A corrupted read is an error that names the bit, never a key.
	bad, _ := wiegand.ParseBits("10111011000000110010000111")
	_, err := wiegand.KeyFromFrame(bad)
	var pe wiegand.ParityError
	fmt.Println(errors.Is(err, wiegand.ErrParity), errors.As(err, &pe), pe.Bit)
	// Output:
	// card:118:1603 true true false
	// H10301 118:1603
	// true true 25
}

// A site whose 37-bit cards have no facility code passes H10302 as a hint.
func ExampleDecode_hint() {
	f, _ := wiegand.FromBytes(37, []byte{0x80, 0x00, 0xFE, 0x32, 0xB0})
	def, _ := wiegand.Decode(f)
	h10302, _ := wiegand.Decode(f, wiegand.H10302)
	fmt.Println(def, def.Key())
	fmt.Println(h10302, h10302.Key())
	// Output:
	// H10304 1:516907 card:1:516907
	// H10302 0:1041195 card:0:1041195
}

func ExampleEncode() {
	f, _ := wiegand.Encode(wiegand.Corp1000, 118, 1603)
	fmt.Println(f.Len(), f)
	fmt.Printf("% X\n", f.Bytes())
	// Output:
	// 35 11000001110110000000000110010000111
	// C1 D8 01 90 E0
}
