// Package scenario reads and runs varco-sim scenario files: scripted
// visits to the turnstile (present a card, type a PIN, cut a reader's
// power) and what must follow (the display shows a text, the gate opens or
// stays closed), checked against the simulated readers while a control
// panel, varco-edge, drives them.
//
// # Format
//
// A scenario is a text file, one directive per line. Arguments are
// separated by spaces; a double-quoted argument (Go string syntax) may hold
// spaces. A word that starts with '#' starts a comment (so "pin 1 1234#"
// types a '#', and a PIN that starts with one is quoted: pin 1 "#12"). R is a reader's address, D a
// duration such as 300ms or 2s.
//
// Setup, before the first step, all optional:
//
//	readers N            N default readers at addresses 1..N (default: 1)
//	reader R [opt=v ...] one reader, with options rows=1|2|4|none, cols=N,
//	                     leds=N, outputs=N, inputs=N, buzzer=yes|no,
//	                     keypad=yes|no, ack-out=yes|no (see pd.Config)
//	baud B               line rate (default 115200)
//	pacing on|off        deliver bytes at the baud rate (default off)
//	timeout D            default time limit of each expect (default 2s)
//	connect D            how long to wait, before the first step, for the
//	                     CP to poll every reader (default 30s; 0 skips)
//
// Steps, run in order:
//
//	card R FORMAT FC CN  present a card (see sim.ParseCard: H10301 123 4567,
//	card R BITS VALUE    or 26 0x1ABCDE)
//	pin R KEYS           type keys on the keypad: digits, * and #
//	sleep D              let time pass
//	power R off|on       cut or restore the reader's power
//	late R D             answer D late from now on (0 to stop)
//	busy R N             answer the next N commands with BUSY
//	fault R KIND [N]     drop, corrupt (the CRC) or garble the next N
//	                     replies (default 1)
//
// Expectations wait, up to the timeout or "within D", for something the CP
// does at reader R after the last card or PIN presented there (or after the
// start): a display or LED expectation needs a TEXT or LED command since
// then, so a red LED left over from the previous visitor does not count.
// They see every change, however brief:
//
//	expect R display "TEXT" [within D]  the display shows TEXT (across rows too)
//	expect R led COLOR [within D]       the first LED shows COLOR: black, red,
//	                                    green, amber, blue, magenta, cyan, white
//	expect R buzzer [within D]          the buzzer sounds
//	expect R grant [within D]           the gate opens (for a reader without
//	                                    outputs: the LED shows green)
//	expect R gate open [within D]       the gate opens
//	expect R deny [within D]            the LED shows red, and the gate has
//	                                    not opened
//	expect R gate closed [for D]        the gate stays closed for all of D
//	                                    (default: the timeout)
//	expect R polled [within D]          the CP polls the reader again, after
//	                                    this step begins: it is back online
//
// A scenario stops at the first expectation that fails, with what was
// wanted and what the reader showed instead. Parse errors name the file and
// line.
package scenario
