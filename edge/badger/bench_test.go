package badger

import (
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	"varco.dev/edge"
	"varco.dev/edge/internal/benchdata"
	"varco.dev/edge/internal/latency"
	vsync "varco.dev/protocol/sync"
)

// BenchmarkDecision is a full decision (lookup, rules, display lines) with
// $VARCO_BENCH_MEMBERS members (default 1M, one card each, 100k of them
// blocked) in a cache built once in b.TempDir(), 10% unknown cards, beside
// the same decisions on a plain Go map of the records in the same run. It
// reports p50, p99 and p99.9 of single decisions in µs.
//
//	go test -run '^$' -bench Decision -benchmem ./badger/
//	VARCO_BENCH_MEMBERS=100000 go test -run '^$' -bench Decision -benchmem ./badger/
func BenchmarkDecision(b *testing.B) {
	n := benchdata.Members(1_000_000)
	keys := make([]vsync.CredentialKey, n)
	for i := range n {
		keys[i] = benchdata.Key(i)
	}
	c, err := OpenCache(ctx, b.TempDir(), CacheOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	w, err := c.BeginSnapshot(ctx, 1)
	if err != nil {
		b.Fatal(err)
	}
	recs := make([]vsync.Record, 0, 4096)
	for i := range n {
		if recs = append(recs, benchdata.Record(i, keys[i])); len(recs) == cap(recs) || i == n-1 {
			if err := w.Add(ctx, recs); err != nil {
				b.Fatal(err)
			}
			recs = recs[:0]
		}
	}
	if err := w.Commit(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("built a cache of %d members in %v: %+v", n, time.Since(start).Round(time.Millisecond), c.Stats())

	picks := benchdata.Pick(keys, 1<<20, 0.1, 7)
	reader := edge.Reader{ID: "in-1", Site: "7", Device: vsync.DeviceEntrance, Rows: 2, Cols: 16}
	run := func(b *testing.B, lookup func(k vsync.CredentialKey, r *vsync.Record) (edge.Decision, error)) {
		var h latency.Histogram
		var r vsync.Record
		var granted int
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			in := edge.Input{Credential: picks[i&(len(picks)-1)], Reader: reader, Now: benchdata.Now}
			t := time.Now()
			d, err := lookup(in.Credential, &r)
			h.Record(time.Since(t))
			if err != nil {
				b.Fatal(err)
			}
			if d.Grant {
				granted++
			}
			i++
		}
		h.Report(b)
		b.ReportMetric(float64(granted)/float64(i), "grant-ratio")
	}
	in := func(k vsync.CredentialKey) edge.Input {
		return edge.Input{Credential: k, Reader: reader, Now: benchdata.Now}
	}
	b.Run("cache", func(b *testing.B) {
		run(b, func(k vsync.CredentialKey, r *vsync.Record) (edge.Decision, error) {
			return edge.DecideCached(c, r, in(k))
		})
	})
	b.Run("cache-2-goroutines", func(b *testing.B) {
		var mu sync.Mutex
		var all latency.Histogram
		b.ReportAllocs()
		b.SetParallelism(1) // GOMAXPROCS goroutines: 2 on the benchmark machine
		b.RunParallel(func(pb *testing.PB) {
			var h latency.Histogram
			var r vsync.Record
			for i := 0; pb.Next(); i++ {
				t := time.Now()
				if _, err := edge.DecideCached(c, &r, in(picks[(i*7919)&(len(picks)-1)])); err != nil {
					b.Error(err)
				}
				h.Record(time.Since(t))
			}
			mu.Lock()
			all.Add(&h)
			mu.Unlock()
		})
		all.Report(b)
	})
	b.Run("map-baseline", func(b *testing.B) {
		m := make(map[vsync.CredentialKey]*vsync.Record, n)
		for i := range n {
			r := benchdata.Record(i, keys[i])
			m[keys[i]] = &r
		}
		runtime.GC()
		b.ResetTimer()
		run(b, func(k vsync.CredentialKey, _ *vsync.Record) (edge.Decision, error) {
			return edge.Decide(m[k], in(k)), nil
		})
	})
}

// BenchmarkJournalAppend appends passage events one after the other with
// each fsync policy (batch is the default) and reports appends per second and
// the latency of one append, which a reader's answer waits for.
func BenchmarkJournalAppend(b *testing.B) {
	for _, p := range []edge.FsyncPolicy{edge.FsyncBatch, edge.FsyncAlways, edge.FsyncNever} {
		b.Run(p.String(), func(b *testing.B) {
			j, err := OpenJournal(ctx, b.TempDir(), JournalOptions{Fsync: p, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			defer j.Close()
			var h latency.Histogram
			ev := passage(1)
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				t := time.Now()
				if _, err := j.Append(ctx, ev); err != nil {
					b.Fatal(err)
				}
				h.Record(time.Since(t))
			}
			b.ReportMetric(float64(h.Count())/time.Since(start).Seconds(), "appends/s")
			h.Report(b)
		})
	}
}
