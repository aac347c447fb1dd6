// Package gatewaytest runs, on loopback, servers that speak the providers'
// protocols as the messaging adapters see them: an SMTP server (emersion's
// go-smtp) that keeps what it receives, and HTTP servers with Twilio's
// Messages API and FCM's HTTP v1 send API, including their authentication,
// status codes, error bodies and the faults a gateway has (5xx, 429 with
// Retry-After, a request accepted whose answer never comes).
//
// The HTTP gateways deliver a message once per idempotency key (Twilio's
// I-Twilio-Idempotency-Token, FCM's data.message_id) and answer a repeated
// key with the first message, as an idempotent gateway does; Deliveries
// counts what reached a phone.
package gatewaytest

import (
	"sync"
)

// Fault is what a gateway does with one request instead of serving it.
type Fault struct {
	// Status, when not 0, is answered with the provider's error body.
	Status int
	// RetryAfter is sent as the Retry-After header, when not empty.
	RetryAfter string
	// Hang accepts the request (the message is delivered) and then never
	// answers, until the client gives up: a timeout after accepting.
	Hang bool
}

// faults is a queue of faults, one per request, then normal service.
type faults struct {
	mu sync.Mutex
	q  []Fault
}

// Push queues faults for the next requests.
func (f *faults) Push(fs ...Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.q = append(f.q, fs...)
}

func (f *faults) next() (Fault, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.q) == 0 {
		return Fault{}, false
	}
	x := f.q[0]
	f.q = f.q[1:]
	return x, true
}
