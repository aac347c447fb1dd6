// Package wiegand decodes and encodes Wiegand card data and turns every way a
// turnstile reads a credential into one canonical Key.
//
// A card reaches varco-edge in three shapes: the raw bits of an OSDP RAW
// reply (osdp_RAW: bit count, then the bits MSB first), the ASCII text of an
// OSDP FMT reply (the reader's own formatting), or pulses on the D0/D1 wires
// of a Wiegand reader on GPIO. A keypad adds PINs. The decision cache and the
// cloud know credentials only as Keys, so the same card must give the same
// Key whichever way it was read.
//
// # Frames
//
// A Frame is a raw frame of 1..MaxBits bits, built with FromBytes (OSDP RAW
// shape), ParseBits ("1011…") or AppendBit (one GPIO pulse at a time). It is
// a fixed-size comparable value and never allocates.
//
// # Formats
//
// Decode reads a frame by its length:
//
//	26 bits  H10301    8-bit facility, 16-bit card, even/odd parity over halves
//	34 bits  H10306   16-bit facility, 16-bit card, even/odd parity over halves
//	35 bits  Corp1000 12-bit company ID, 20-bit card, three parity bits
//	37 bits  H10304   16-bit facility, 19-bit card, even/odd parity over 18+18 bits
//	37 bits  H10302   35-bit card, no facility code, same parity as H10304
//	other    Raw      the bits themselves, no error
//
// Each Format constant documents its bit positions. H10304 and H10302 share
// length and parity layout, so no check can tell them apart: a 37-bit frame
// is H10304, the common 37-bit format with a facility code, unless the
// caller passes H10302 as a hint (a per-site setting). Parity failures are
// ParityError values (errors.Is(err, ErrParity)) naming the failed bit.
// Encode builds a frame from a format, facility code and card number,
// computing parity, and rejects values that do not fit with ErrRange.
//
// # Canonical keys
//
// A Key has one of three kinds, each with a stable text form that is stored
// in the database and hashed into the sync protocol, so it must never change:
//
//	card:F:N     a decoded card: facility code F (0..65535), card number N
//	             (0..2^35-1), decimal, no leading zeros: "card:123:45678"
//	raw:B:HEX    a frame of a length with no known format: bit count B
//	             (1..128) and the ceil(B/8) bytes of its OSDP RAW shape in
//	             lower-case hex, pad bits zero: "raw:40:0123456789"
//	pin:DIGITS   a keypad PIN of 1..16 digits, leading zeros kept: "pin:0042"
//
// A card key does not record the format: FC 1 / card 100 read as H10301 or
// as H10304 is the same key "card:1:100". That is what lets a FMT reader,
// which prints facility code and number but not the format, agree with RAW
// and GPIO reads; the cost is that two cards of different formats with equal
// facility code and number are one credential. HID keeps numbers unique
// within a format, and a club buys one card stock, so such a collision needs
// a site mixing formats with overlapping ranges; the installer must avoid it.
// The decode of a 37-bit frame changes its key (H10304 card:F:N against
// H10302 card:0:F<<19|N), so the hint must be the same on every reader of a
// site and in the cloud's import of that site's cards.
//
// Accepted OSDP FMT text (KeyFromFMT): "F:N", "F-N" or "N" (facility 0), in
// decimal, leading zeros allowed, surrounding spaces, CR, LF and NUL ignored;
// anything else is an error. Plain "N" matches a RAW read only for H10302
// cards or facility code 0: configure FMT readers to print the facility code.
//
// Kinds never compare equal to each other: PIN 12345 is "pin:12345", card
// 12345 without facility code is "card:0:12345". A misread frame (parity
// error) gives an error, never a key. ParseKey accepts exactly the canonical
// text (kind in lower case, no leading zeros, numbers within bounds, no
// spaces) and round-trips: ParseKey(k.String()) == k.
//
// # Guarantees
//
// No function or method panics on any input: every length, byte and string is
// checked and reported as one of the sentinel errors (ErrLength, ErrFull,
// ErrParity, ErrRange, ErrFormat, ErrSyntax). Frames and Keys are fixed-size
// comparable values: FromBytes, AppendBit, Decode and KeyFromFrame do not
// allocate, and Key.AppendText writes the text into a caller's buffer. The
// package uses the standard library only.
//
// Vectors in the tests come from independent sources (the Proxmark3 client,
// HID-format libraries in other languages, reader manuals), each cited beside
// it.
package wiegand
