// Package metrics holds varco-edge's Prometheus metrics.
//
// One Metrics value per daemon, on its own registry so that tests can build
// as many as they like. The names are the operator's contract (dashboards and
// alerts are built on them): change them only with a note in the changelog.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the daemon's instruments.
type Metrics struct {
	Registry *prometheus.Registry

	Decisions       *prometheus.CounterVec // result, reason
	DecisionSeconds prometheus.Histogram
	ReaderOnline    *prometheus.GaugeVec   // reader
	ReaderErrors    *prometheus.CounterVec // reader, kind (nak, timeout, garbage, bad_card)
	JournalBacklog  prometheus.Gauge
	JournalErrors   prometheus.Counter
	CacheErrors     *prometheus.CounterVec // kind (corrupt, io)
	CacheVersion    prometheus.Gauge
	DoorAlarms      *prometheus.CounterVec // gate, kind
	WiegandRejected *prometheus.CounterVec // reader, reason
	SyncRejected    *prometheus.CounterVec // reason (edge/mqtt Reject: unsigned, forged, replayed...)
}

// New registers every metric on a fresh registry, with the Go runtime and
// process collectors beside them (RSS matters on a 512 MB controller).
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "varco_edge_decisions_total", Help: "Access decisions by result and reason.",
		}, []string{"result", "reason"}),
		DecisionSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "varco_edge_decision_seconds", Help: "Time from credential read to decision (lookup, rules, display).",
			Buckets: prometheus.ExponentialBuckets(1e-6, 2, 16), // 1 µs .. 32 ms
		}),
		ReaderOnline: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "varco_edge_reader_online", Help: "1 when the reader answers its polls.",
		}, []string{"reader"}),
		ReaderErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "varco_edge_reader_errors_total", Help: "Reader line errors by kind.",
		}, []string{"reader", "kind"}),
		JournalBacklog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "varco_edge_journal_backlog", Help: "Journaled events the cloud has not acknowledged yet.",
		}),
		JournalErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "varco_edge_journal_errors_total", Help: "Events that could not be journaled (disk full, I/O).",
		}),
		CacheErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "varco_edge_cache_errors_total", Help: "Cache lookups that failed, by kind.",
		}, []string{"kind"}),
		CacheVersion: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "varco_edge_cache_version", Help: "Version of the access records in the cache.",
		}),
		DoorAlarms: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "varco_edge_door_alarms_total", Help: "Door forced and held-open alarms.",
		}, []string{"gate", "kind"}),
		WiegandRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "varco_edge_wiegand_rejected_total", Help: "Wiegand frames rejected (parity, length, glitch).",
		}, []string{"reader", "reason"}),
		SyncRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "varco_edge_sync_rejected_total",
			Help: "Messages from the broker the sync agent dropped, by reason: malformed, wrong_topic, foreign, unsigned, unknown_key, forged, replayed, untimely, ack_ahead.",
		}, []string{"reason"}),
	}
	r.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.Decisions, m.DecisionSeconds, m.ReaderOnline, m.ReaderErrors, m.JournalBacklog,
		m.JournalErrors, m.CacheErrors, m.CacheVersion, m.DoorAlarms, m.WiegandRejected, m.SyncRejected,
	)
	return m
}

// SetStaleness exports seconds() as varco_edge_sync_staleness_seconds: how
// long the edge has not been in sync with the cloud, 0 while it is, +Inf if
// it never was. Set only when the edge syncs with a cloud.
func (m *Metrics) SetStaleness(seconds func() float64) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "varco_edge_sync_staleness_seconds",
		Help: "Seconds since the edge was last in sync with the cloud (connected, no known gap): 0 while it is, +Inf if it never was.",
	}, seconds))
}

// ObserveDecision counts one decision and its latency.
func (m *Metrics) ObserveDecision(result, reason string, took time.Duration) {
	m.Decisions.WithLabelValues(result, reason).Inc()
	m.DecisionSeconds.Observe(took.Seconds())
}

// SetReaderOnline records a reader's state.
func (m *Metrics) SetReaderOnline(reader string, online bool) {
	v := 0.0
	if online {
		v = 1
	}
	m.ReaderOnline.WithLabelValues(reader).Set(v)
}
