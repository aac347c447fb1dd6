// Package pd is a simulated OSDP peripheral device: one card reader with a
// keypad, LEDs, a buzzer, a text display and outputs (the turnstile relay),
// as a control panel such as varco-edge sees it on the line.
//
// A [Device] takes the frames a [osdp.Decoder] cuts out of the line and
// returns the bytes it answers with, exactly as a reader's firmware would:
//
//   - It answers only frames addressed to it or to the broadcast address,
//     with the reply bit set on its address (0xFF for a broadcast), the
//     command's sequence number and check mode (CRC-16 or checksum), and a
//     mark byte only when the command had one.
//   - Sequence numbers follow [osdp.PDSequence]: 0 restarts the link, a
//     retry of the last command gets the cached reply byte for byte without
//     acting twice, anything else gets NAK 4.
//   - NAK codes: 1 for a bad CRC or checksum in a frame whose address byte
//     is the device's own (libosdp's PD answers NAK 1 to any such frame; on
//     a multi-drop line every reader would answer at once, so a frame whose
//     address byte names another reader or the broadcast address stays
//     unanswered), 2 for a wrong data length or a frame longer than the declared
//     receive buffer, 3 for a command the device does not implement or that
//     its capabilities do not cover (TEXT without a display, LED number or
//     output number beyond those declared, a reader other than 0, KEEPACTIVE
//     and the secure channel commands), 5 for any security block (the device
//     declares no secure channel), 9 for a record with values out of range
//     (text outside the display, unknown control codes).
//   - osdp_BUSY, on request, is sent with sequence number 0 and leaves the
//     sequence state untouched, so the CP resends the command with the same
//     number (libosdp's CP expects exactly this).
//   - Card reads (osdp_RAW, Wiegand format) and key presses (osdp_KEYPAD)
//     queue as events and are delivered one per POLL, oldest first.
//   - OUT is answered with OSTATR (the specification's reply), or with ACK
//     when [Config.AckOut] is set (libosdp's PD).
//
// Physical events are methods ([Device.PresentCard], [Device.TypeKeys],
// [Device.PowerOff], …) and what a person would see is [Device.State]. Time
// is injected: every method that depends on it takes now, so temporary text,
// LED and output timers are tested without waiting.
//
// A Device is not safe for concurrent use; package sim serialises access to
// the devices on one line.
package pd
