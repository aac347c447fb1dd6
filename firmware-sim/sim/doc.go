// Package sim runs simulated OSDP readers and turnstiles on a
// pseudo-terminal, for varco-edge to open as its serial port in demos,
// end-to-end tests and load tests.
//
// [New] opens a pseudo-terminal pair and answers, on its master side, the
// commands a control panel writes to the slave side ([Sim.Path], optionally
// behind a symlink): one [pd.Device] per configured address on one
// multi-drop line, with only the addressed reader answering and a
// broadcast answered by the first reader. The slave is kept open by the
// simulator, so a CP may close and reopen it (a restarting varco-edge) and
// find the line as it left it.
//
// Physical events are methods: [Sim.PresentCard], [Sim.TypePIN],
// [Sim.PowerOff], [Sim.AnswerLate], [Sim.Busy] and fault injection with
// [Sim.Inject] and [Sim.Noise]. What a person at the turnstile would see is
// [Sim.State]: each reader's display, LEDs, buzzer and outputs, and the
// [Gate] that output 0 drives, which counts a passage for each pulse.
//
// Tests never sleep to synchronise: [Sim.Wait] blocks until a condition on
// the state holds, or the context ends. It evaluates the condition on every
// change, in order, so that a transient state (a green LED for 300 ms) is
// not missed; [Sim.Mark] and [Sim.WaitSince] extend that to changes that
// happened before the wait began:
//
//	mark := s.Mark()
//	s.PresentCard(1, wiegand.H10301, 123, 4567)
//	st, err := s.WaitSince(ctx, mark, sim.Shows(1, "Please see reception"))
//
// With [Config.BaudPacing] the replies leave at the configured baud rate,
// ten bit times a byte, and a command counts as received only once its
// bytes would have crossed the wire, so that measured latencies include
// the wire time of a real RS-485 line.
//
// A Sim owns one goroutine, which reads the line; [Sim.Close] stops it.
package sim
