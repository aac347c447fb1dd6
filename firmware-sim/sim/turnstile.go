package sim

import "varco.dev/firmware-sim/pd"

// Gate is the turnstile wired to a reader's output 0: energising the
// output unlocks it for one person. A passage is counted for each pulse of
// the output (see pd.OutputState.Pulses): the gate opened, someone went
// through.
type Gate struct {
	Present bool   // the reader has an output to drive a gate
	Open    bool   // unlocked now: output 0 is active
	Opened  uint64 // passages so far
}

func gateOf(s pd.State) Gate {
	if len(s.Outputs) == 0 {
		return Gate{}
	}
	o := s.Outputs[0]
	return Gate{Present: true, Open: o.Active, Opened: o.Pulses}
}
