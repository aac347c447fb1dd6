package testcp

import (
	"varco.dev/protocol/osdp"
	"varco.dev/protocol/wiegand"
)

// Rules are the access rules of the tests' Edge, those the scenarios in
// scenario/testdata assume:
//
//   - H10301 1:100, a member: LED green, the gate pulses, "Welcome";
//   - H10301 1:200, a message+block action: "Please see reception", LED red;
//   - H10301 1:300, a message-only action: "Happy birthday Anna", LED
//     green, the gate pulses;
//   - any other card: LED red and a beep; any PIN: a beep.
func Rules(addr byte, ev osdp.Reply) []osdp.Command {
	beep := osdp.Buz{Tone: osdp.ToneDefault, OnTime: 2, Count: 1}
	card, ok := ev.(osdp.Raw)
	if !ok {
		return []osdp.Command{beep}
	}
	text := func(s string) osdp.Command {
		return osdp.Text{Command: osdp.TextTemporaryWrap, TempTime: 3, Row: 1, Column: 1, Text: s}
	}
	led := func(c osdp.Color) osdp.Command {
		return osdp.LED{{Temporary: osdp.LEDTemporary{Control: osdp.LEDTempSet, OnTime: 1, OnColor: c, Timer: 20}}}
	}
	open := osdp.Out{{Control: osdp.OutputTemporaryOn, Timer: 30}}
	f, _ := wiegand.FromBytes(int(card.Bits), card.Data)
	c, err := wiegand.Decode(f)
	if err == nil && c.Format == wiegand.H10301 && c.Facility == 1 {
		switch c.Number {
		case 100:
			return []osdp.Command{led(osdp.Green), open, text("Welcome")}
		case 200:
			return []osdp.Command{text("Please see reception"), led(osdp.Red)}
		case 300:
			return []osdp.Command{text("Happy birthday Anna"), led(osdp.Green), open}
		}
	}
	return []osdp.Command{led(osdp.Red), beep}
}
