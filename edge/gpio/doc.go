// Package gpio connects varco-edge to the wires of a turnstile controller:
// Wiegand readers on two data inputs, relays, door-position contacts and
// request-to-exit (REX) buttons. It talks to periph.io's gpio interfaces
// (periph.io/x/conn/v3/gpio), so the same code drives the board's pins in
// production and periph's gpiotest fakes in tests. Open initialises periph's
// host drivers and finds the configured pins by name.
//
// # Wiegand
//
// A Wiegand reader sends each bit as a short low pulse on one of two lines,
// pulled up when idle: D0 for a 0, D1 for a 1. Typical timing (SIA AC-01 and
// reader manuals): pulse width 50 µs (20–100 µs), interval between pulses
// 1–2 ms (200 µs–20 ms), and no end-of-frame marker: the frame ends when the
// lines stay idle. Decoding is split in two:
//
//   - Decoder is a pure state machine fed with (bit, time) for each falling
//     edge and with the current time to notice idleness. It never allocates,
//     never blocks and holds at most one frame (wiegand.MaxBits bits) and one
//     PIN (wiegand.MaxPINDigits digits), whatever it is fed.
//   - Wiegand watches the D0 and D1 pins, one goroutine per pin owned by Run,
//     stamps each edge with the Clock and feeds the Decoder.
//
// Timing rules of the Decoder, all in DecoderConfig:
//
//   - A frame ends when no pulse has come for IdleTimeout (default 25 ms):
//     longer than the longest interval the protocol allows (20 ms) plus
//     the wake-up jitter below, and short because it adds directly to the time
//     from badge to decision. The first pulse after that starts a new frame.
//   - Two pulses closer than MinGap (default 100 µs, the longest legal pulse
//     width) cannot be two bits: it is noise, a bounce, or both lines low at
//     once. The frame is kept until it ends and then dropped with ErrGlitch;
//     guessing which pulse was real would give a wrong card, not a re-read.
//   - A frame of more than wiegand.MaxBits bits is dropped with ErrOverflow
//     when it ends (not at bit 129, so its tail does not become a new frame).
//   - A frame of fewer than 4 bits is line noise: ErrShort.
//   - Frames of 4 and 8 bits are keypad key presses (below); every other
//     length is delivered as a wiegand.Frame. Parity and unknown lengths are
//     decided by the caller with wiegand.KeyFromFrame (see Read.Key), so that
//     a GPIO read and an OSDP RAW read of a card give the same key.
//
// Keypads (HID and compatible) send each key as its own burst: 4 bits, the
// key code MSB first, or 8 bits, the complement of the code then the code
// (key 1 = 1110 0001). Codes 0–9 are digits, 0xA is '*' and 0xB is '#'. The
// Decoder assembles them into PINs: digits accumulate, '#' submits the PIN as
// a wiegand.PINKey (an empty PIN is ignored), '*' clears it. A PIN is dropped
// with ErrPINTimeout when no key comes for PINTimeout (default 10 s: room to
// find the next digit, short enough that the next member does not inherit
// half a PIN), with ErrPINLength at digit 17, and with ErrKeyCode on a code
// that is no key (0xC–0xF, or an 8-bit burst whose halves disagree), since a
// misread digit would shift the rest. A card frame leaves a PIN in progress
// alone. Keypads configured to send the whole PIN as one 26-bit frame need
// nothing from here: that frame is an ordinary card frame.
//
// # Timestamp precision
//
// periph's gpio.PinIn reports that an edge happened, not when: the Linux GPIO
// character device stamps every event in the kernel, but periph's
// WaitForEdge drops the stamp, and the sysfs driver has none. Wiegand takes
// the time when WaitForEdge returns. The error is the wake-up latency of the
// goroutine, typically 10–100 µs on an idle Cortex-A, up to a few ms under
// load or a GC pause. That is fine for the idle timeout and the gap limits,
// which work in milliseconds, but no pulse width can be measured (only
// falling edges are seen) and a goroutine that wakes late reads queued
// events back to back: if that happens within one frame, the pulses look
// closer than MinGap and the frame is dropped with ErrGlitch rather than
// misread. sysfs may merge edges that arrive while nobody waits, losing bits;
// the frame then fails parity or has an odd length. Prefer the character
// device (periph's gpioioctl driver, Linux ≥ 5.10).
//
// # Relays and doors
//
// Relay drives a gpio.PinOut, active high or low, from one owner goroutine
// started by NewRelay and stopped by Close. Pulse energises it for a length
// of time, and a pulse during a pulse extends it to the later end. The relay
// is released when NewRelay starts and when Close returns, and only the owner
// energises it, always with a deadline, so no caller or cancelled context can
// leave it energised; a release that the pin refuses is logged and retried
// every 100 ms.
//
// Door watches a door-position contact and a REX button (either may be nil),
// both debounced, and reports DoorEvents: DoorOpened after a grant or REX,
// DoorForced when the door opens without one, DoorHeldOpen when an
// authorised opening lasts longer than HeldOpen, DoorClosed, and REXPressed,
// which also pulses the door's relay. Grant authorises one opening and pulses
// the relay.
//
// # Goroutines and time
//
// Every goroutine has an owner: Wiegand.Run and Door.Run start theirs and
// return only after they stopped, within DefaultPoll of ctx being done
// (WaitForEdge cannot be interrupted portably, so each wait is bounded);
// Relay's goroutine ends in Close. Time comes from a Clock (the system clock
// by default), so tests drive it by hand. Callbacks (Wiegand's onRead,
// Door's onEvent) run on the package's goroutines, one at a time and in
// order, without the package's locks held (they may call Stats or Grant).
// They should return quickly: a slow one delays the next read of its reader.
package gpio
