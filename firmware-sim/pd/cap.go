package pd

import "varco.dev/protocol/osdp"

// capabilities answers osdp_CAP with Capabilities.
func (d *Device) capabilities() osdp.Reply { return d.cfg.Capabilities() }

// Capabilities returns what the device declares in osdp_PDCAP: its inputs,
// outputs (timed), card data as bits, LEDs (tri-colour, timed), buzzer
// (timed), display (1, 2 or 4 rows), CRC-16, no secure channel, its
// receive buffer and OSDP 2.2. A function the device lacks is left out.
func (c Config) Capabilities() osdp.PDCap {
	c, _ = c.withDefaults()
	var caps osdp.PDCap
	add := func(fn osdp.FunctionCode, compliance byte, n int) {
		caps = append(caps, osdp.Capability{Function: fn, Compliance: compliance, Number: byte(n)})
	}
	if c.Inputs > 0 {
		add(osdp.CapContactStatus, 1, c.Inputs)
	}
	if c.Outputs > 0 {
		add(osdp.CapOutputControl, 3, c.Outputs) // timed commands
	}
	add(osdp.CapCardDataFormat, 1, 0) // bit arrays
	if c.LEDs > 0 {
		add(osdp.CapLEDControl, 4, c.LEDs) // timed, tri-colour
	}
	if c.Buzzer.on() {
		add(osdp.CapAudibleOutput, 2, 1) // timed
	}
	if c.Rows > 0 {
		add(osdp.CapTextOutput, map[int]byte{1: 1, 2: 2, 4: 3}[c.Rows], 1)
	}
	add(osdp.CapCheckCharacter, 1, 0)
	add(osdp.CapCommSecurity, 0, 0)
	add(osdp.CapReceiveBufferSize, byte(c.RxBuffer), c.RxBuffer>>8)
	add(osdp.CapOSDPVersion, 2, 0)
	return caps
}
