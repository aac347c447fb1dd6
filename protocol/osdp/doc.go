// Package osdp encodes and decodes OSDP, the Open Supervised Device Protocol
// that access-control readers speak over RS-485 (SIA OSDP 2.2, published as
// IEC 60839-11-5).
//
// A control panel (CP, here varco-edge) polls one or more peripheral devices
// (PD, here readers or varco-sim) on a half-duplex multi-drop line. Every
// message is a frame:
//
//	[FF] 53 ADDR LEN_L LEN_H CTRL [SCB_LEN SCB_TYPE SCB_DATA...] CODE DATA... [MAC×4] CRC_L CRC_H | CKSUM
//
// The package has three layers, each usable on its own:
//
//   - Frames: [Frame], [AppendFrame], [AppendMessage] and [ParseFrame] handle
//     the mark byte, addressing, length, the control byte (sequence number,
//     CRC-16 or 8-bit checksum, security block), the optional secure channel
//     security block and MAC, and the check characters. [Decoder] cuts frames
//     out of a serial byte stream.
//   - Messages: typed commands ([Poll], [LED], [Text], …) and replies ([Ack],
//     [PDID], [Raw], …) that encode to and decode from a frame's data block;
//     [DecodeCommand] and [DecodeReply] dispatch on the code.
//   - Sequencing: [CPSequence] and [PDSequence] apply the sequence-number
//     rules (start at 0, then 1, 2, 3, 1, …; a retry repeats the number and
//     gets the cached reply back).
//
// The package has these properties:
//
//   - Byte-exact. Encoding and decoding are checked against the examples in
//     the specification's Annex E and against frames taken from independent
//     implementations (libosdp, OSDP.Net, jeff, the SIA conformance tools);
//     see golden_test.go.
//
//   - Strict. A decoded frame or message re-encodes to exactly the bytes it
//     came from: lengths are checked exactly, reserved control bits must be
//     zero, and a security block of type 0x15–0x18 must be followed by its
//     4-byte MAC. Errors wrap sentinel values ([ErrBadCheck],
//     [ErrDataLength], …) for [errors.Is]; [NakFor] maps them to the NAK a
//     PD answers.
//
//   - Never panics on any input, and memory is bounded. A [Decoder] holds at
//     most its frame limit (default [DefaultMaxFrameLen], the largest frame
//     the specification allows) whatever bytes it is fed, resynchronises on
//     the next start-of-message byte after garbage, and keeps going after
//     every error.
//
//   - No allocation on the hot path. Encoding appends to a caller's buffer;
//     decoded frames alias the decoder's buffer until the next frame.
//
// Secure channel cryptography (AES-128 session keys, MAC computation and
// data encryption) is not implemented yet; frames carry the security block
// and MAC so that it can be added on top without changing this API. When a
// frame's security block type is 0x17 or 0x18 its Data is ciphertext and
// must be decrypted before [DecodeCommand] or [DecodeReply].
//
// The specification is sold by the Security Industry Association
// (https://www.securityindustry.org/industry-standards/open-supervised-device-protocol/);
// where this package relies on a detail of it, the test vector that pins
// the detail down names its source.
package osdp
