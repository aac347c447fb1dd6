// Package osdp is varco-edge's OSDP control panel: the reader bus. A [Bus]
// owns one serial port (RS-485, 8N1, 9600–230400 baud) with one or more
// readers (OSDP peripheral devices, each at its own address) on it, polls
// them, turns their card reads and keypad PINs into credentials, and sends
// the daemon's answers (LED, buzzer, display text, output) back to them.
// Frames and messages come from the codec, varco.dev/protocol/osdp, and
// credentials from varco.dev/protocol/wiegand; this package only schedules
// the line.
//
// # The line
//
// One goroutine, [Bus.Run], owns the line. A second one only copies bytes
// from the port into fixed buffers, so a reply is handled as soon as it
// arrives and the port can be closed from [Bus.Close]. The loop gives the
// line to one reader at a time: it sends that reader one command and waits
// for its reply or for the reply timeout (Config.ReplyTimeout, the
// specification's 200 ms, plus the frame's own wire time), then moves on.
//
// Readers take turns in address order (round robin). A reader's turn is due
// when it has something to send (discovery, a retry, an answer) or when
// Config.PollInterval has passed since its last POLL. The default poll
// interval, [DefaultPollInterval], is twice the wire time of a POLL and its
// ACK at the configured baud: 3.1 ms at 115200, 37.5 ms at 9600. With two
// or more readers a round takes longer than that, so readers are polled back
// to back and the line never idles; a lone reader leaves the line idle half
// of the time, which bounds the CPU the loop spends on a PD that answers
// instantly (a simulator on a pseudo-terminal) and adds at most one interval
// to a card read. libosdp's 50 ms default would add up to 50 ms to every
// badge.
//
// A failed attempt (timeout, or a reply whose check characters are wrong)
// is retried with the same frame and sequence number, so the PD answers
// from its cache instead of acting twice, up to Config.Retries times. The
// retry waits for the reader's next turn, so a reader that went silent
// holds the line for one reply timeout at a time, not for all its retries
// in a row. When the retries fail the reader is offline: [ReaderOffline] is
// reported, its queued answers are dropped, and it is probed with an
// osdp_ID at sequence 0 every Config.OfflineProbe, a single attempt each.
// When a probe is answered the reader is discovered again.
//
// # Discovery
//
// A reader starts with osdp_ID (sequence 0) and osdp_CAP; the answers become
// its [Capabilities] (display rows × columns, LEDs, buzzer, outputs,
// receive buffer) in [ReaderOnline]. A reader that cannot answer either is
// still brought online, with Capabilities.Known false.
//
// # Events
//
// Everything the daemon needs to know is an [Event] given to the
// Config.Handler: [CardRead] (a card, or a PIN, as a canonical
// wiegand.Key), [BadCard], [ReaderOnline], [ReaderOffline], [NakReceived],
// [StatusReport] and [LineNoise]. The loop never calls the handler itself:
// events go into a queue of Config.EventQueue entries that one dispatch
// goroutine drains in order. When the queue is full the event is dropped,
// counted in [Stats] and logged, so a stuck consumer loses events but never
// stops the polling of the other readers.
//
// # Answers
//
// [Bus.Answer] queues an [Answer] for a reader; it becomes osdp_OUT, osdp_LED,
// osdp_BUZ and one osdp_TEXT per display row, in that order (the gate first,
// then what the member sees and hears, then what they read). The policy:
//
//   - The first command of a new answer goes out in the very next slot of the
//     line, before any other reader's turn. After a card read the loop keeps
//     the line for up to Config.DecisionWindow waiting for the answer, so a
//     decision taken in microseconds is on the wire right after the reply
//     that carried the card, without a goroutine race.
//   - The rest follow one command per turn of that reader, in place of its
//     POLLs. Another reader's poll is thus delayed by at most one exchange
//     per answering reader however long the answer is; at 9600 baud a
//     32-character TEXT alone is 50 ms of wire time, and a burst of them
//     would hold the line for hundreds of milliseconds.
//   - A new answer to the same reader replaces what is still queued of the
//     previous one.
//
// Answer text is temporary (osdp_TEXT command 3, with the answer's hold time
// in seconds) and the reader's idle text ([Bus.SetIdleText],
// Config.IdleText) is permanent text (command 1). The reader itself returns
// to the idle text when the hold expires, which needs no timer in the loop,
// no traffic, and still works if the control panel restarts in between. The
// idle text is written when a reader comes online, and again after a change
// once the current answer's hold time is over.
//
// # Replies the bus does not like
//
// Garbage between frames, frames with bad check characters, truncated
// frames, replies from another address than the one polled and replies with
// another sequence number are counted ([Stats], [LineNoise]) and logged at
// most once per kind every few seconds; they never end an exchange except a
// corrupt reply from the reader being polled, which is retried at once. A
// NAK 4 (sequence error) restarts the sequence at 0 and sends the command
// again; a NAK 3 (unknown command) marks the command as unsupported by that
// reader, which is not sent it again until it is rediscovered; an osdp_BUSY
// sends the same frame again at the reader's next turn without counting a
// failure.
//
// # Time
//
// Every timing decision reads Config.Clock (a clockwork.Clock, the real
// clock by default), so tests drive time with a fake clock.
//
// Not implemented: the secure channel (frames with a security block are
// counted and ignored), multi-part messages, and osdp_COMSET.
package osdp
