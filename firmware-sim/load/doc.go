// Package load drives simulated readers at a steady rate of badges and
// measures how fast the control panel answers them.
//
// Each badge is a card, taken at random from a credential list, presented
// at the next idle reader (one with no badge awaiting an answer; a badge
// that finds every reader busy is skipped and counted). Its latency runs
// from the moment the reader's osdp_RAW reply starts on the wire (the CP
// only learns of the card at its next POLL, and the poll interval is not
// the CP's answer time) to the moment the reader has received the first
// LED, TEXT or OUT command after it. A badge that gets no answer within
// the answer timeout counts as unanswered.
//
// The report gives throughput, the latency percentiles p50, p90, p99 and
// max, a histogram, and, for a paced line, the wire-time lower bound of
// the exchange: the RAW reply and the answering command at the line's baud
// rate, ten bit times a byte. No CP can answer faster than that.
package load
