package osdp

import (
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.bug.st/serial"

	wire "varco.dev/protocol/osdp"
)

// benchAnswer is a full answer: the gate, LED, buzzer and two rows.
var benchAnswer = Answer{
	Output: Pulse{For: time.Second},
	LED:    LED{Color: Green, For: 2 * time.Second},
	Beep:   Beep{On: 200 * time.Millisecond, Count: 1},
	Lines:  []string{"Welcome", "Anna"},
}

// benchLine starts n readers at 115200 baud with the default configuration
// on a pseudo-terminal; the handler answers every card at once.
func benchLine(b *testing.B, n int) (*testLine, *Bus, []byte) {
	var addrs []byte
	var pds []*testPD
	for i := range n {
		addrs = append(addrs, byte(1+i))
		pds = append(pds, newPD(byte(1+i)))
	}
	l := newLine(b, pds...)
	var bus atomic.Pointer[Bus]
	online := make(chan byte, n)
	bp, _ := startBus(b, l, Config{
		Readers: addrs, Baud: 115200, Logger: slog.New(slog.DiscardHandler),
		Handler: func(ev Event) {
			switch e := ev.(type) {
			case CardRead:
				if err := bus.Load().Answer(e.Addr, benchAnswer); err != nil {
					panic(err)
				}
			case ReaderOnline:
				online <- e.Addr
			}
		},
	})
	bus.Store(bp)
	for range n {
		select {
		case <-online:
		case <-time.After(failsafe):
			b.Fatal("readers not online")
		}
	}
	return l, bp, addrs
}

// BenchmarkAnswerLatency measures on a pseudo-terminal the time from the
// PD writing a RAW reply (a card) to the answer's first frame arriving
// back at the PD: the bus reads and decodes the reply, gives CardRead to
// the handler, which calls Answer, and the bus sends the answer. With four
// readers the card is at the last one, so the answer must jump the turns.
func BenchmarkAnswerLatency(b *testing.B) {
	for _, n := range []int{1, 4} {
		b.Run(fmt.Sprintf("readers=%d", n), func(b *testing.B) {
			l, _, addrs := benchLine(b, n)
			samples := make(chan time.Duration, 1)
			addr := addrs[n-1]
			l.mu.Lock()
			l.measure.addr, l.measure.samples = addr, samples
			l.mu.Unlock()
			raw, _ := card(b, 1, 2)
			ds := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				l.queue(addr, raw)
				select {
				case d := <-samples:
					ds = append(ds, d)
				case <-time.After(failsafe):
					b.Fatal("no answer")
				}
			}
			b.StopTimer()
			reportLatency(b, ds)
		})
	}
}

// BenchmarkIdlePolling measures the CPU the process spends while the bus
// polls four idle readers on a pseudo-terminal with the default poll
// interval at 115200 baud. It includes the test PDs answering, so it is an
// upper bound for the bus. One op is a millisecond of polling.
func BenchmarkIdlePolling(b *testing.B) {
	_, bus, _ := benchLine(b, 4)
	var r0, r1 syscall.Rusage
	polls := bus.Stats().Polls
	start := time.Now()
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r0); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	time.Sleep(time.Duration(b.N) * time.Millisecond)
	b.StopTimer()
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r1); err != nil {
		b.Fatal(err)
	}
	wall := time.Since(start)
	cpu := time.Duration(r1.Utime.Nano() - r0.Utime.Nano() + r1.Stime.Nano() - r0.Stime.Nano())
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "cpu_%")
	b.ReportMetric(float64(bus.Stats().Polls-polls)/wall.Seconds(), "polls/s")
}

// BenchmarkPTYEcho is the floor under BenchmarkAnswerLatency on this
// machine: the same pseudo-terminal and serial port, and a goroutine that
// writes back what it reads. It measures from the write on the master to
// the echo's arrival there: one hop each way, through one goroutine.
func BenchmarkPTYEcho(b *testing.B) {
	master, path := openPTY(b)
	p, err := serial.Open(path, &serial.Mode{BaudRate: 115200})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 256)
		for {
			n, err := p.Read(buf)
			if err != nil {
				return
			}
			if _, err := p.Write(buf[:n]); err != nil {
				return
			}
		}
	}()
	b.Cleanup(func() { p.Close(); <-done })
	frame := encodeReply(&wire.Frame{Addr: 1, CRC: true, Mark: true}, wire.Ack{})
	buf := make([]byte, 256)
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if _, err := master.Write(frame); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < len(frame); {
			n, err := master.Read(buf)
			if err != nil {
				b.Fatal(err)
			}
			got += n
		}
		ds = append(ds, time.Since(t0))
	}
	b.StopTimer()
	reportLatency(b, ds)
}

// reportLatency reports the median, 99th percentile and maximum of ds.
func reportLatency(b *testing.B, ds []time.Duration) {
	slices.Sort(ds)
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(us(ds[len(ds)/2]), "p50_us")
	b.ReportMetric(us(ds[len(ds)*99/100]), "p99_us")
	b.ReportMetric(us(ds[len(ds)-1]), "max_us")
}
