package mqtt

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"varco.dev/cloud"
	vsync "varco.dev/protocol/sync"
)

// EdgeStore is what the Ingester needs of the database. Its methods find the
// edge by the message's tenant and edge ids. They return ENOTFOUND for a
// message of an edge the cloud does not know (or has deleted) and EINVALID
// for one that does not fit its edge (another site, a value out of range);
// any other error is internal.
type EdgeStore interface {
	// StoreEvents stores the events of a batch that are not stored yet
	// and returns the edge's high-water mark after it.
	StoreEvents(ctx context.Context, batch *vsync.Events) (StoredEvents, error)
	// RecordBirth keeps what the Birth says of the edge, starts a new
	// journal epoch when the edge's journal is behind the high-water mark,
	// and returns the high-water mark of its journal and the commands still
	// waiting to be sent to it.
	RecordBirth(ctx context.Context, birth *vsync.Birth, protocolVersion int) (BirthRecord, error)
	// RecordStatus keeps the status unless the edge's status is newer (see
	// the edges table); it reports whether it did.
	RecordStatus(ctx context.Context, status *vsync.Status) (kept bool, err error)
	// MarkCommandSent records that the broker took command id.
	MarkCommandSent(ctx context.Context, id int64) error
}

// StoredEvents is the outcome of StoreEvents.
type StoredEvents struct {
	Stored int    // events of the batch that were new
	Acked  uint64 // every event of the edge's journal up to Acked is stored
}

// BirthRecord is the outcome of RecordBirth.
type BirthRecord struct {
	Acked      uint64 // the high-water mark of the edge's current journal
	NewJournal bool   // the Birth began a new journal epoch
	// Pending are the commands queued for the edge that the broker never
	// took and that have not expired, unsealed.
	Pending []PendingCommand
}

// PendingCommand is a command to send to an edge: its row id and message.
type PendingCommand struct {
	ID  int64
	Msg *vsync.Command
}

// IngesterConfig configures an Ingester.
type IngesterConfig struct {
	Store  EdgeStore    // required
	Sealer Sealer       // required: signs the Acks and resent commands
	Logger *slog.Logger // slog.Default() when nil
	// PublishTimeout bounds each Ack's publish; 5s when 0.
	PublishTimeout time.Duration
}

// Ingester is the cloud's side of the edges' uplink. It stores the events
// batches edges send, once each, and answers each with an Ack of the edge's
// high-water mark; keeps each edge's status from its Births and Statuses;
// answers a Birth with an Ack of what is stored (so that the edge deletes
// it) and the commands that never reached the broker. Messages that do not
// decode, that are not of the edge whose topic they came on, or of an edge
// the cloud does not know are counted (Stats), logged and dropped.
//
// Births and events batches are handled on one goroutine, in the order the
// broker delivered them: an edge whose journal was lost sends a Birth, then
// events numbered from 1 again, and the Birth must start the new journal
// epoch before those are stored. Several replicas behind a shared
// subscription keep that order only with a broker that gives each
// publisher's messages to one subscriber (EMQX's hash_clientid strategy).
type Ingester struct {
	cfg    IngesterConfig
	log    *slog.Logger
	client *Client
	stats  ingestStats
}

type ingestStats struct {
	batches, events, stored, births, statuses, acks, commands atomic.Uint64
	malformed, foreign, unknown, failed                       atomic.Uint64
}

// IngestStats counts what an Ingester did.
type IngestStats struct {
	Batches  uint64 // events batches stored (in full: a batch that failed is not counted)
	Events   uint64 // events in those batches
	Stored   uint64 // events new to the store (the rest were duplicates)
	Births   uint64 // births recorded
	Statuses uint64 // statuses received from known edges
	Acks     uint64 // acks published
	Commands uint64 // pending commands published on births
	// Rejected messages, dropped without an answer.
	Malformed uint64 // not a message of the protocol, or not of its topic's kind
	Foreign   uint64 // of another tenant, edge or site than the topic's and its edge's
	Unknown   uint64 // of an edge the cloud does not know
	Failed    uint64 // the store or the broker failed: the edge will send again
}

// NewIngester validates cfg and returns an Ingester that Register connects
// to a Client.
func NewIngester(cfg IngesterConfig) (*Ingester, error) {
	if cfg.Store == nil || cfg.Sealer == nil {
		return nil, errors.New("mqtt ingester: a Store and a Sealer are required")
	}
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	cfg.PublishTimeout = cmp.Or(cfg.PublishTimeout, 5*time.Second)
	return &Ingester{cfg: cfg, log: cfg.Logger.With(slog.String("component", "ingest"))}, nil
}

// Register subscribes the ingester's handlers on c; call it before c.Run.
func (in *Ingester) Register(c *Client) {
	in.client = c
	c.HandleAll([]string{vsync.TopicBirth.Filter(), vsync.TopicEvents.Filter()}, 1, in.handleUplink)
	c.Handle(vsync.TopicStatus.Filter(), 1, in.handleStatus)
}

// Stats returns the counters.
func (in *Ingester) Stats() IngestStats {
	s := &in.stats
	return IngestStats{
		Batches: s.batches.Load(), Events: s.events.Load(), Stored: s.stored.Load(), Births: s.births.Load(),
		Statuses: s.statuses.Load(), Acks: s.acks.Load(), Commands: s.commands.Load(),
		Malformed: s.malformed.Load(), Foreign: s.foreign.Load(), Unknown: s.unknown.Load(), Failed: s.failed.Load(),
	}
}

// open decodes a message and checks it belongs on its topic. It counts and
// logs what it rejects, and returns nil for it.
func (in *Ingester) open(topic string, payload []byte) (vsync.Message, *vsync.Envelope) {
	t, err := vsync.ParseTopic(topic)
	if err != nil {
		in.reject(&in.stats.malformed, topic, err)
		return nil, nil
	}
	env, err := vsync.UnmarshalEnvelope(payload)
	if err != nil {
		in.reject(&in.stats.malformed, topic, err)
		return nil, nil
	}
	msg, err := env.Open()
	if err != nil {
		in.reject(&in.stats.malformed, topic, err)
		return nil, nil
	}
	if err := t.Check(msg); err != nil {
		in.reject(&in.stats.foreign, topic, err)
		return nil, nil
	}
	return msg, env
}

func (in *Ingester) reject(counter *atomic.Uint64, topic string, err error) {
	counter.Add(1)
	in.log.Warn("ingest: message rejected", slog.String("topic", topic), slog.Any("error", err))
}

// storeErr counts and logs an error of the store.
func (in *Ingester) storeErr(ctx context.Context, topic string, err error) {
	switch cloud.ErrorCode(err) {
	case cloud.ENOTFOUND:
		in.reject(&in.stats.unknown, topic, err)
	case cloud.EINVALID:
		in.reject(&in.stats.foreign, topic, err)
	default:
		in.stats.failed.Add(1)
		in.log.ErrorContext(ctx, "ingest: store", slog.String("topic", topic), slog.Any("error", err))
	}
}

// handleUplink handles births and events batches, in order.
func (in *Ingester) handleUplink(ctx context.Context, topic string, payload []byte) {
	msg, env := in.open(topic, payload)
	switch m := msg.(type) {
	case nil:
	case *vsync.Events:
		in.handleEvents(ctx, topic, m)
	case *vsync.Birth:
		in.handleBirth(ctx, topic, m, env.Version)
	default:
		in.reject(&in.stats.malformed, topic, fmt.Errorf("a %s on an uplink topic", msg.Kind()))
	}
}

func (in *Ingester) handleEvents(ctx context.Context, topic string, m *vsync.Events) {
	res, err := in.cfg.Store.StoreEvents(ctx, m)
	if err != nil {
		in.storeErr(ctx, topic, err)
		return
	}
	in.stats.batches.Add(1)
	in.stats.events.Add(uint64(len(m.Events)))
	in.stats.stored.Add(uint64(res.Stored))
	in.log.DebugContext(ctx, "ingest: events", slog.String("topic", topic), slog.Uint64("first", m.Events[0].Seq),
		slog.Int("events", len(m.Events)), slog.Int("stored", res.Stored), slog.Uint64("acked", res.Acked))
	in.ack(ctx, m.Header, m.Boot, res.Acked)
}

func (in *Ingester) handleBirth(ctx context.Context, topic string, m *vsync.Birth, protocolVersion int) {
	res, err := in.cfg.Store.RecordBirth(ctx, m, protocolVersion)
	if err != nil {
		in.storeErr(ctx, topic, err)
		return
	}
	in.stats.births.Add(1)
	log := in.log.With(slog.String("tenant", m.Tenant), slog.String("edge", m.Edge))
	log.InfoContext(ctx, "ingest: edge birth", slog.Uint64("boot", uint64(m.Boot)), slog.Uint64("cache_version", m.CacheVersion),
		slog.Uint64("last_seq", m.LastSeq), slog.Uint64("acked", res.Acked), slog.Bool("new_journal", res.NewJournal),
		slog.String("software", m.Software), slog.Int("protocol", protocolVersion))
	in.ack(ctx, m.Header, m.Boot, res.Acked)
	for _, c := range res.Pending {
		if err := in.publish(ctx, c.Msg); err != nil {
			in.stats.failed.Add(1)
			log.WarnContext(ctx, "ingest: pending command not sent", slog.Int64("command", c.ID), slog.Any("error", err))
			continue
		}
		in.stats.commands.Add(1)
		if err := in.cfg.Store.MarkCommandSent(ctx, c.ID); err != nil {
			log.ErrorContext(ctx, "ingest: mark command sent", slog.Int64("command", c.ID), slog.Any("error", err))
		}
	}
}

// ack publishes an Ack of seq to the edge of h, unless nothing is stored.
func (in *Ingester) ack(ctx context.Context, h vsync.Header, boot vsync.BootID, seq uint64) {
	if seq == 0 {
		return
	}
	a := &vsync.Ack{Header: vsync.Header{Tenant: h.Tenant, Site: h.Site, Edge: h.Edge, Time: vsync.TimestampOf(time.Now())}, Boot: boot, Seq: seq}
	if err := in.publish(ctx, a); err != nil {
		// The edge sends the unacknowledged events again and gets the Ack then.
		in.stats.failed.Add(1)
		in.log.WarnContext(ctx, "ingest: ack not sent", slog.String("tenant", h.Tenant), slog.String("edge", h.Edge),
			slog.Uint64("seq", seq), slog.Any("error", err))
		return
	}
	in.stats.acks.Add(1)
}

// publish seals msg and publishes it on its topic, waiting for the broker.
func (in *Ingester) publish(ctx context.Context, msg vsync.Message) error {
	return publishSealed(ctx, in.client, in.cfg.Sealer, in.cfg.PublishTimeout, msg)
}

// publishSealed seals msg with sealer and publishes it at QoS 1 on its
// topic through c, waiting at most timeout for the broker to take it.
func publishSealed(ctx context.Context, c *Client, sealer Sealer, timeout time.Duration, msg vsync.Message) error {
	t, err := vsync.TopicFor(msg)
	if err != nil {
		return err
	}
	b, err := sealer.Seal(ctx, msg)
	if err != nil {
		return fmt.Errorf("seal %s: %w", msg.Kind(), err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := c.Publish(ctx, t.String(), t.Kind.QoS(), t.Kind.Retained(), b); err != nil {
		return fmt.Errorf("publish %s on %s: %w", msg.Kind(), t, err)
	}
	return nil
}

func (in *Ingester) handleStatus(ctx context.Context, topic string, payload []byte) {
	if len(payload) == 0 {
		return // a retained status cleared
	}
	msg, _ := in.open(topic, payload)
	if msg == nil {
		return
	}
	m, ok := msg.(*vsync.Status)
	if !ok {
		in.reject(&in.stats.malformed, topic, fmt.Errorf("a %s on a status topic", msg.Kind()))
		return
	}
	kept, err := in.cfg.Store.RecordStatus(ctx, m)
	if err != nil {
		in.storeErr(ctx, topic, err)
		return
	}
	in.stats.statuses.Add(1)
	in.log.DebugContext(ctx, "ingest: edge status", slog.String("tenant", m.Tenant), slog.String("edge", m.Edge),
		slog.Bool("online", m.Online), slog.Bool("kept", kept))
}
