package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"varco.dev/cloud/mqtt"
	"varco.dev/cloud/postgres"
)

// MQTTConfig says which broker serve uses: the embedded one (the default,
// on Addr) or an external one at URL, and the cloud's account on it.
type MQTTConfig struct {
	// Embedded runs the embedded broker on Addr; URL, when set, points at
	// an external broker instead.
	Embedded bool
	Addr     string
	URL      string
	// Username and Password are the cloud's account. On the embedded broker
	// it is created at start, with a random password unless one is given.
	Username, Password string
	// ClientID is this replica's client id; a random one when empty.
	ClientID string
	// PublicURL is the broker URL the API gives edges with their
	// credentials; by default URL, or the embedded broker's address.
	PublicURL string
}

// mqttConfigFromEnv reads VARCO_MQTT_*.
func mqttConfigFromEnv() MQTTConfig {
	embedded, err := strconv.ParseBool(cmp.Or(os.Getenv("VARCO_MQTT_EMBEDDED"), "true"))
	if err != nil {
		embedded = true
	}
	return MQTTConfig{
		Embedded:  embedded,
		Addr:      cmp.Or(os.Getenv("VARCO_MQTT_ADDR"), mqtt.DefaultAddr),
		URL:       os.Getenv("VARCO_MQTT_URL"),
		Username:  cmp.Or(os.Getenv("VARCO_MQTT_USERNAME"), "cloud"),
		Password:  os.Getenv("VARCO_MQTT_PASSWORD"),
		ClientID:  os.Getenv("VARCO_MQTT_CLIENT_ID"),
		PublicURL: os.Getenv("VARCO_MQTT_PUBLIC_URL"),
	}
}

// mqttFlags adds serve's broker flags; the password is read from the
// environment only, so that it does not show in the process list.
func (m *Main) mqttFlags(fs *flag.FlagSet) {
	c := &m.Config.MQTT
	fs.BoolVar(&c.Embedded, "mqtt-embedded", c.Embedded, "run the embedded MQTT broker (env VARCO_MQTT_EMBEDDED)")
	fs.StringVar(&c.Addr, "mqtt-addr", c.Addr, "embedded broker's listen address (env VARCO_MQTT_ADDR)")
	fs.StringVar(&c.URL, "mqtt-url", c.URL, "external broker URL, e.g. tcp://127.0.0.1:1883, instead of the embedded one (env VARCO_MQTT_URL)")
	fs.StringVar(&c.Username, "mqtt-username", c.Username, "the cloud's broker username (env VARCO_MQTT_USERNAME; password in VARCO_MQTT_PASSWORD)")
	fs.StringVar(&c.ClientID, "mqtt-client-id", c.ClientID, "this replica's MQTT client id, random when empty (env VARCO_MQTT_CLIENT_ID)")
	fs.StringVar(&c.PublicURL, "mqtt-public-url", c.PublicURL, "broker URL given to edges (env VARCO_MQTT_PUBLIC_URL)")
}

// mqttParts are the running broker side of serve; stopMQTT stops them.
type mqttParts struct {
	broker    *mqtt.Broker // nil with an external broker
	client    *mqtt.Client
	ingester  *mqtt.Ingester
	publisher *mqtt.Publisher
	commander *mqtt.Commander
	creds     mqtt.Credentials // the edges' (and, embedded, the cloud's) accounts
	publicURL string
	cancel    context.CancelFunc
	done      chan struct{} // closed when the client's supervisor has returned
	// publisherDone is closed when the publisher's Run has returned.
	publisherDone chan struct{}
}

// startMQTT starts the embedded broker (unless an external one is
// configured) and the cloud's client with its components: the ingester of
// the edges' uplink and the commander. It needs the open database.
func (m *Main) startMQTT() error {
	c := m.Config.MQTT
	if c.URL == "" && !c.Embedded {
		return errors.New("no MQTT broker: set VARCO_MQTT_URL (-mqtt-url) or keep the embedded broker (-mqtt-embedded)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &mqttParts{cancel: cancel, done: make(chan struct{})}
	m.mqtt = p
	brokerURL := c.URL
	p.creds = postgres.NewEdgeCredentials(m.DB)
	if brokerURL == "" {
		if c.Password == "" {
			c.Password = rand.Text() // the cloud's own account, for this run only
		}
		cloudUser := mqtt.NewMemCredentials(m.DB.PasswordParams)
		if err := cloudUser.AddCloud(c.Username, c.Password); err != nil {
			return fmt.Errorf("mqtt: the cloud's account: %w", err)
		}
		p.creds = mqtt.CredentialsChain{postgres.NewEdgeCredentials(m.DB), cloudUser}
		b, err := mqtt.New(mqtt.Config{Addr: c.Addr, Logger: m.Logger, Credentials: p.creds})
		if err != nil {
			return err
		}
		if err := b.Start(ctx); err != nil {
			return err
		}
		p.broker, brokerURL = b, "tcp://"+b.Addr()
	}
	p.publicURL = cmp.Or(c.PublicURL, brokerURL)
	client, err := mqtt.NewClient(mqtt.ClientConfig{Broker: brokerURL, ClientID: cmp.Or(c.ClientID, "varco-cloud-"+rand.Text()[:12]),
		Username: c.Username, Password: c.Password, Logger: m.Logger, QueueLen: 1024})
	if err != nil {
		return err
	}
	// Everything the cloud sends is signed with its tenant's key, kept in
	// PostgreSQL, so that edges verify it across restarts and replicas.
	var sealer mqtt.Sealer = postgres.NewSigner(m.DB)
	if p.ingester, err = mqtt.NewIngester(mqtt.IngesterConfig{Store: postgres.NewEventStore(m.DB), Sealer: sealer, Logger: m.Logger}); err != nil {
		return err
	}
	p.ingester.Register(client)
	if p.publisher, err = syncPublisher(m.DB, client, p.creds, m.Logger); err != nil {
		return err
	}
	if p.commander, err = mqtt.NewCommander(mqtt.CommanderConfig{Store: postgres.NewCommandStore(m.DB), Sealer: sealer,
		Client: client, Logger: m.Logger}); err != nil {
		return err
	}
	p.client = client
	go m.superviseMQTT(ctx, p)
	p.publisherDone = make(chan struct{})
	go func() {
		defer close(p.publisherDone)
		if err := p.publisher.Run(ctx); err != nil && ctx.Err() == nil {
			m.Logger.Error("sync publisher stopped", slog.Any("error", err))
		}
	}()
	m.Logger.Info("mqtt: started", slog.String("broker", brokerURL), slog.Bool("embedded", p.broker != nil),
		slog.String("public_url", p.publicURL))
	return nil
}

// superviseMQTT runs the client until ctx ends. Client.Run returns early
// only when its first connection fails (later it reconnects by itself): the
// broker may start after the cloud, so it is tried again.
func (m *Main) superviseMQTT(ctx context.Context, p *mqttParts) {
	defer close(p.done)
	backoff := time.Second
	for {
		err := p.client.Run(ctx)
		if ctx.Err() != nil {
			return
		}
		m.Logger.Warn("mqtt: cannot reach the broker; retrying", slog.Any("error", err), slog.Duration("in", backoff))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// stopMQTT disconnects the client and stops the embedded broker.
func (m *Main) stopMQTT() {
	p := m.mqtt
	if p == nil {
		return
	}
	p.cancel()
	if p.client != nil {
		<-p.done
	}
	if p.publisherDone != nil {
		<-p.publisherDone
	}
	if p.broker != nil {
		p.broker.Stop()
	}
	m.mqtt = nil
}

// mqttMetrics are the ingester's counters as Prometheus counters, for the
// HTTP server's /metrics.
func (p *mqttParts) metrics() []prometheus.Collector {
	in := p.ingester
	counter := func(name, help string, v func(mqtt.IngestStats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "varco_ingest_" + name, Help: help},
			func() float64 { return float64(v(in.Stats())) })
	}
	rejected := func(reason string, v func(mqtt.IngestStats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "varco_ingest_rejected_total",
			Help: "Messages from edges dropped without an answer, by reason.", ConstLabels: prometheus.Labels{"reason": reason}},
			func() float64 { return float64(v(in.Stats())) })
	}
	pub := func(name, help string, v func(mqtt.PublisherStats) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "varco_sync_" + name, Help: help},
			func() float64 { return float64(v(p.publisher.Stats())) })
	}
	return []prometheus.Collector{
		pub("deltas_total", "Deltas published on the sites' state topics.", func(s mqtt.PublisherStats) int64 { return s.Deltas }),
		pub("catchups_total", "Catch-ups (and births behind) answered.", func(s mqtt.PublisherStats) int64 { return s.CatchUps }),
		pub("snapshots_total", "Snapshots sent to edges.", func(s mqtt.PublisherStats) int64 { return s.Snapshots }),
		pub("refused_total", "Catch-ups and births refused: another edge's topic or site.", func(s mqtt.PublisherStats) int64 { return s.Refused }),
		pub("malformed_total", "Catch-ups and births that do not decode.", func(s mqtt.PublisherStats) int64 { return s.Malformed }),
		pub("errors_total", "Syncs and answers that failed (database, broker); retried.", func(s mqtt.PublisherStats) int64 { return s.Errors }),
		counter("batches_total", "Events batches stored.", func(s mqtt.IngestStats) uint64 { return s.Batches }),
		counter("events_total", "Events received in stored batches.", func(s mqtt.IngestStats) uint64 { return s.Events }),
		counter("events_stored_total", "Events new to the database (the rest were duplicates).", func(s mqtt.IngestStats) uint64 { return s.Stored }),
		counter("births_total", "Edge births recorded.", func(s mqtt.IngestStats) uint64 { return s.Births }),
		counter("statuses_total", "Edge statuses received.", func(s mqtt.IngestStats) uint64 { return s.Statuses }),
		counter("acks_total", "Acks published to edges.", func(s mqtt.IngestStats) uint64 { return s.Acks }),
		rejected("malformed", func(s mqtt.IngestStats) uint64 { return s.Malformed }),
		rejected("foreign", func(s mqtt.IngestStats) uint64 { return s.Foreign }),
		rejected("unknown_edge", func(s mqtt.IngestStats) uint64 { return s.Unknown }),
		rejected("failed", func(s mqtt.IngestStats) uint64 { return s.Failed }),
	}
}
