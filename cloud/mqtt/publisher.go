package mqtt

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	gosync "sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"varco.dev/cloud"
	vsync "varco.dev/protocol/sync"
)

// SyncStore is what the Publisher needs of the database;
// postgres.SyncService implements it (see its documentation for the outbox,
// the change log and the locking between replicas).
type SyncStore interface {
	// Listen calls wake with a tenant id whenever that tenant's outbox got
	// rows, and with 0 after every (re)connect, until ctx is done.
	Listen(ctx context.Context, wake func(tenantID int64)) error
	// PendingTenants returns the tenants with outbox rows or unpublished
	// versions.
	PendingTenants(ctx context.Context) ([]int64, error)
	// Sync drains a tenant's outbox into versions and publishes the
	// unpublished ones, site by site and in order, through send.
	Sync(ctx context.Context, tenantID int64, send func(context.Context, []*vsync.Delta) error) error
	// Maintain queues the daily and format-change recomputes and prunes the
	// change log.
	Maintain(ctx context.Context) error
	// SiteVersion returns the latest version of a site's state; ENOTFOUND
	// when the site is not the tenant's.
	SiteVersion(ctx context.Context, tenant, site string) (uint64, error)
	// Changes returns a site's deltas after from, or ok false when a
	// snapshot is needed.
	Changes(ctx context.Context, tenant, site string, from uint64, max int) (deltas []*vsync.Delta, ok bool, err error)
	// Snapshot sends a site's state to an edge in chunks through send.
	Snapshot(ctx context.Context, tenant, site, edge string, chunkRecords int, send func(context.Context, *vsync.Snapshot) error) (id, version uint64, err error)
}

// Defaults of PublisherConfig.
const (
	DefaultPollInterval     = 2 * time.Second
	DefaultMaintainInterval = time.Minute
	DefaultSnapshotChunk    = 1000
	DefaultSnapshotInterval = 5 * time.Second
	DefaultMaxCatchUpDeltas = 1000
	DefaultSyncWorkers      = 2
)

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	Store  SyncStore // required
	Sealer Sealer    // required
	// Credentials, when set, tie each edge to its site: a catch-up or birth
	// whose site is not the one of the edge's broker credential is refused.
	Credentials Credentials
	Logger      *slog.Logger // slog.Default() when nil
	// PollInterval is the fallback for lost notifications:
	// DefaultPollInterval when 0.
	PollInterval time.Duration
	// MaintainInterval is how often SyncStore.Maintain runs (it does its
	// work at most once a day per site): DefaultMaintainInterval when 0.
	MaintainInterval time.Duration
	// SnapshotChunk is the most records in a snapshot chunk:
	// DefaultSnapshotChunk when 0.
	SnapshotChunk int
	// SnapshotInterval is the least time between two snapshots for one
	// edge: a request within it is served by the snapshot already sent.
	// DefaultSnapshotInterval when 0.
	SnapshotInterval time.Duration
	// MaxCatchUpDeltas is the most deltas a catch-up is answered with; an
	// edge further behind gets a snapshot. DefaultMaxCatchUpDeltas when 0.
	MaxCatchUpDeltas int
	// Workers is how many tenants are synced at once: DefaultSyncWorkers
	// when 0.
	Workers int
}

// PublisherStats counts what a Publisher did since it started.
type PublisherStats struct {
	Deltas           int64 // deltas published on state topics
	CatchUps         int64 // catch-ups (and births behind) answered
	CatchUpDeltas    int64 // deltas replayed on sync topics
	Snapshots        int64 // snapshots sent
	SnapshotChunks   int64 // their chunks
	SnapshotsLimited int64 // snapshot requests within SnapshotInterval, not served again
	Refused          int64 // messages on a topic, or for a site, that is not their sender's
	Malformed        int64 // messages that do not decode or validate
	Errors           int64 // syncs and answers that failed (database, broker)
}

// Publisher is the cloud's side of the state-down flow on MQTT. It keeps
// every site's state topic up to date: woken by the database's notifications
// (SyncStore.Listen) and, as a fallback, by polling, it has the store drain
// each tenant's outbox and publishes the resulting deltas, signed by the
// Sealer, at QoS 1. It answers edges' catch-ups, and births whose cache is
// behind, on the edge's sync topic: with the deltas from the edge's version,
// or with a snapshot when the change log no longer reaches back that far.
//
// Register it on the cloud's Client before the Client runs, then Run it.
// Every replica of the cloud may run one: the store's per-tenant lock keeps
// versions in order. Catch-ups are subscribed without a shared subscription,
// so every replica answers them; edges ignore the duplicate deltas, and the
// later of two snapshots replaces the earlier.
type Publisher struct {
	cfg    PublisherConfig
	log    *slog.Logger
	client *Client

	mu       gosync.Mutex
	dirty    map[int64]struct{} // tenants to sync
	inFlight map[int64]struct{} // tenants a worker syncs now
	kick     chan struct{}      // a tenant became dirty, or a worker finished one
	pollNow  chan struct{}      // the listener (re)connected

	snapMu    gosync.Mutex
	snapshots map[string]time.Time // tenant/edge → last snapshot

	deltas, catchUps, catchUpDeltas, snapshotsSent, snapshotChunks, snapshotsLimited atomic.Int64
	refused, malformed, errs                                                         atomic.Int64
}

// NewPublisher validates cfg and returns a Publisher.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if cfg.Store == nil || cfg.Sealer == nil {
		return nil, errors.New("mqtt publisher: a Store and a Sealer are required")
	}
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	cfg.PollInterval = cmp.Or(cfg.PollInterval, DefaultPollInterval)
	cfg.MaintainInterval = cmp.Or(cfg.MaintainInterval, DefaultMaintainInterval)
	cfg.SnapshotChunk = cmp.Or(cfg.SnapshotChunk, DefaultSnapshotChunk)
	cfg.SnapshotInterval = cmp.Or(cfg.SnapshotInterval, DefaultSnapshotInterval)
	cfg.MaxCatchUpDeltas = cmp.Or(cfg.MaxCatchUpDeltas, DefaultMaxCatchUpDeltas)
	cfg.Workers = cmp.Or(cfg.Workers, DefaultSyncWorkers)
	if cfg.SnapshotChunk < 1 || cfg.SnapshotChunk > vsync.MaxRecords || cfg.Workers < 1 || cfg.MaxCatchUpDeltas < 1 {
		return nil, fmt.Errorf("mqtt publisher: snapshot chunk %d (1 to %d), workers %d, max catch-up deltas %d",
			cfg.SnapshotChunk, vsync.MaxRecords, cfg.Workers, cfg.MaxCatchUpDeltas)
	}
	return &Publisher{
		cfg:       cfg,
		log:       cfg.Logger.With(slog.String("component", "sync-publisher")),
		dirty:     map[int64]struct{}{},
		inFlight:  map[int64]struct{}{},
		kick:      make(chan struct{}, 1),
		pollNow:   make(chan struct{}, 1),
		snapshots: map[string]time.Time{},
	}, nil
}

// Register subscribes the publisher's handlers (catch-ups and births of
// every edge) on c and publishes through c. Call it before c.Run.
func (p *Publisher) Register(c *Client) {
	p.client = c
	c.Handle(vsync.TopicCatchUp.Filter(), vsync.TopicCatchUp.QoS(), p.handleCatchUp)
	c.Handle(vsync.TopicBirth.Filter(), vsync.TopicBirth.QoS(), p.handleBirth)
}

// Stats returns the counters.
func (p *Publisher) Stats() PublisherStats {
	return PublisherStats{
		Deltas: p.deltas.Load(), CatchUps: p.catchUps.Load(), CatchUpDeltas: p.catchUpDeltas.Load(),
		Snapshots: p.snapshotsSent.Load(), SnapshotChunks: p.snapshotChunks.Load(), SnapshotsLimited: p.snapshotsLimited.Load(),
		Refused: p.refused.Load(), Malformed: p.malformed.Load(), Errors: p.errs.Load(),
	}
}

// Run syncs tenants until ctx is done: it listens for notifications, polls,
// runs the maintenance, and syncs dirty tenants on Workers goroutines. It
// returns nil when ctx is done.
func (p *Publisher) Run(ctx context.Context) error {
	if p.client == nil {
		return errors.New("mqtt publisher: Register it on a Client before Run")
	}
	var wg gosync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		if err := p.cfg.Store.Listen(ctx, p.wake); err != nil {
			p.log.ErrorContext(ctx, "sync: listener stopped", slog.Any("err", err))
		}
	})
	wg.Go(func() { p.poll(ctx) })
	for range p.cfg.Workers {
		wg.Go(func() { p.work(ctx) })
	}
	return nil
}

// wake marks a tenant dirty; 0 asks for a poll.
func (p *Publisher) wake(tenantID int64) {
	if tenantID == 0 {
		signal(p.pollNow)
		return
	}
	p.mu.Lock()
	p.dirty[tenantID] = struct{}{}
	p.mu.Unlock()
	signal(p.kick)
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (p *Publisher) poll(ctx context.Context) {
	pollTick := time.NewTicker(p.cfg.PollInterval)
	defer pollTick.Stop()
	maintainTick := time.NewTicker(p.cfg.MaintainInterval)
	defer maintainTick.Stop()
	maintain := func() {
		if err := p.cfg.Store.Maintain(ctx); err != nil && ctx.Err() == nil {
			p.errs.Add(1)
			p.log.ErrorContext(ctx, "sync: maintenance", slog.Any("err", err))
		}
	}
	maintain() // at start: a new RecordFormat recomputes at once
	for {
		ids, err := p.cfg.Store.PendingTenants(ctx)
		if err != nil && ctx.Err() == nil {
			p.errs.Add(1)
			p.log.ErrorContext(ctx, "sync: poll", slog.Any("err", err))
		}
		for _, id := range ids {
			p.wake(id)
		}
		select {
		case <-ctx.Done():
			return
		case <-pollTick.C:
		case <-p.pollNow:
		case <-maintainTick.C:
			maintain()
		}
	}
}

// work syncs dirty tenants, one at a time per worker and each tenant on one
// worker at a time.
func (p *Publisher) work(ctx context.Context) {
	for ctx.Err() == nil {
		id, ok := p.next()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-p.kick:
				continue
			}
		}
		if err := p.cfg.Store.Sync(ctx, id, p.sendDeltas); err != nil && ctx.Err() == nil {
			p.errs.Add(1)
			p.log.ErrorContext(ctx, "sync: tenant not synced, retrying at the next poll", slog.Int64("tenant", id), slog.Any("err", err))
		}
		p.mu.Lock()
		delete(p.inFlight, id)
		p.mu.Unlock()
		signal(p.kick)
	}
}

// next takes a dirty tenant that no worker syncs now.
func (p *Publisher) next() (int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id := range p.dirty {
		if _, busy := p.inFlight[id]; !busy {
			delete(p.dirty, id)
			p.inFlight[id] = struct{}{}
			if len(p.dirty) > len(p.inFlight) {
				signal(p.kick) // more for another worker
			}
			return id, true
		}
	}
	return 0, false
}

// sendDeltas seals and publishes deltas in order, and waits until the broker
// has them all.
func (p *Publisher) sendDeltas(ctx context.Context, deltas []*vsync.Delta) error {
	toks := make([]paho.Token, 0, len(deltas))
	for _, d := range deltas {
		tok, err := p.publish(ctx, d)
		if err != nil {
			return err
		}
		toks = append(toks, tok)
	}
	for _, tok := range toks {
		if err := Wait(ctx, tok); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}
	for _, d := range deltas {
		if d.Edge == "" {
			p.deltas.Add(1)
		} else {
			p.catchUpDeltas.Add(1)
		}
	}
	return nil
}

// publish seals msg and starts publishing it on its topic.
func (p *Publisher) publish(ctx context.Context, msg vsync.Message) (paho.Token, error) {
	t, err := vsync.TopicFor(msg)
	if err != nil {
		return nil, err
	}
	b, err := p.cfg.Sealer.Seal(ctx, msg)
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", msg.Kind(), err)
	}
	return p.client.PublishAsync(t.String(), t.Kind.QoS(), t.Kind.Retained(), b)
}

func (p *Publisher) handleCatchUp(ctx context.Context, topic string, payload []byte) {
	msg, ok := p.receive(ctx, topic, payload)
	if !ok {
		return
	}
	cu, ok := msg.(*vsync.CatchUp)
	if !ok {
		p.refuse(ctx, topic, fmt.Errorf("a %s on a catch-up topic", msg.Kind()))
		return
	}
	p.answer(ctx, cu.Header, cu.From, cu.Full)
}

func (p *Publisher) handleBirth(ctx context.Context, topic string, payload []byte) {
	msg, ok := p.receive(ctx, topic, payload)
	if !ok {
		return
	}
	b, ok := msg.(*vsync.Birth)
	if !ok {
		p.refuse(ctx, topic, fmt.Errorf("a %s on a birth topic", msg.Kind()))
		return
	}
	v, err := p.cfg.Store.SiteVersion(ctx, b.Tenant, b.Site)
	if err != nil {
		p.storeError(ctx, topic, err)
		return
	}
	if b.CacheVersion != v {
		p.answer(ctx, b.Header, b.CacheVersion, false)
	}
}

// receive decodes an edge's message and checks that it belongs on its
// topic and, with Credentials, that its site is the edge's.
func (p *Publisher) receive(ctx context.Context, topic string, payload []byte) (vsync.Message, bool) {
	t, err := vsync.ParseTopic(topic)
	if err != nil {
		p.malformed.Add(1)
		p.log.WarnContext(ctx, "sync: message on a malformed topic", slog.String("topic", topic), slog.Any("err", err))
		return nil, false
	}
	msg, err := vsync.Unmarshal(payload)
	if err != nil {
		p.malformed.Add(1)
		p.log.WarnContext(ctx, "sync: malformed message", slog.String("topic", topic), slog.Int("bytes", len(payload)), slog.Any("err", err))
		return nil, false
	}
	if err := t.Check(msg); err != nil {
		p.refuse(ctx, topic, err)
		return nil, false
	}
	if p.cfg.Credentials != nil {
		h := header(msg)
		c, err := p.cfg.Credentials.Credential(ctx, EdgeUsername(h.Tenant, h.Edge))
		switch {
		case cloud.ErrorCode(err) == cloud.ENOTFOUND:
			p.refuse(ctx, topic, errors.New("unknown edge"))
			return nil, false
		case err != nil:
			p.storeError(ctx, topic, err)
			return nil, false
		case c.Cloud || c.Site != h.Site:
			p.refuse(ctx, topic, fmt.Errorf("site %s is not the edge's", h.Site))
			return nil, false
		}
	}
	return msg, true
}

// header returns the header of the message kinds the publisher receives.
func header(msg vsync.Message) *vsync.Header {
	switch m := msg.(type) {
	case *vsync.CatchUp:
		return &m.Header
	case *vsync.Birth:
		return &m.Header
	}
	return &vsync.Header{}
}

func (p *Publisher) refuse(ctx context.Context, topic string, err error) {
	p.refused.Add(1)
	p.log.WarnContext(ctx, "sync: message refused", slog.String("topic", topic), slog.Any("err", err))
}

func (p *Publisher) storeError(ctx context.Context, topic string, err error) {
	if cloud.ErrorCode(err) == cloud.ENOTFOUND {
		p.refuse(ctx, topic, err)
		return
	}
	p.errs.Add(1)
	p.log.ErrorContext(ctx, "sync: catch-up not answered", slog.String("topic", topic), slog.Any("err", err))
}

// answer brings the edge of h up to date from version from: with the
// deltas since, or a snapshot when full is set, from is 0 or the change log
// does not reach back that far.
func (p *Publisher) answer(ctx context.Context, h vsync.Header, from uint64, full bool) {
	topic := vsync.Topic{Kind: vsync.TopicSync, Tenant: h.Tenant, Edge: h.Edge}.String()
	if !full && from > 0 {
		deltas, ok, err := p.cfg.Store.Changes(ctx, h.Tenant, h.Site, from, p.cfg.MaxCatchUpDeltas)
		if err != nil {
			p.storeError(ctx, topic, err)
			return
		}
		if ok {
			for _, d := range deltas {
				d.Edge = h.Edge
			}
			if err := p.sendDeltas(ctx, deltas); err != nil {
				p.storeError(ctx, topic, err)
				return
			}
			p.catchUps.Add(1)
			p.log.DebugContext(ctx, "sync: caught up with deltas", slog.String("topic", topic), slog.Uint64("from", from), slog.Int("deltas", len(deltas)))
			return
		}
	}
	if !p.allowSnapshot(h.Tenant + "/" + h.Edge) {
		p.snapshotsLimited.Add(1)
		p.log.InfoContext(ctx, "sync: snapshot already sent recently", slog.String("topic", topic))
		return
	}
	start := time.Now()
	var pending []paho.Token
	chunks := 0
	id, version, err := p.cfg.Store.Snapshot(ctx, h.Tenant, h.Site, h.Edge, p.cfg.SnapshotChunk, func(ctx context.Context, s *vsync.Snapshot) error {
		// A window of chunks in flight: enough to keep the connection busy,
		// few enough to bound what waits in memory.
		if len(pending) == 8 {
			if err := Wait(ctx, pending[0]); err != nil {
				return err
			}
			pending = pending[1:]
		}
		tok, err := p.publish(ctx, s)
		if err != nil {
			return err
		}
		pending = append(pending, tok)
		chunks++
		return nil
	})
	for _, tok := range pending {
		if err == nil {
			err = Wait(ctx, tok)
		}
	}
	if err != nil {
		p.storeError(ctx, topic, err)
		return
	}
	p.catchUps.Add(1)
	p.snapshotsSent.Add(1)
	p.snapshotChunks.Add(int64(chunks))
	p.log.InfoContext(ctx, "sync: snapshot sent", slog.String("topic", topic), slog.Uint64("id", id), slog.Uint64("version", version),
		slog.Int("chunks", chunks), slog.Duration("took", time.Since(start)))
}

// allowSnapshot reports whether edge may get a snapshot now, and if so
// notes that it does.
func (p *Publisher) allowSnapshot(edge string) bool {
	p.snapMu.Lock()
	defer p.snapMu.Unlock()
	now := time.Now()
	if last, ok := p.snapshots[edge]; ok && now.Sub(last) < p.cfg.SnapshotInterval {
		return false
	}
	for e, at := range p.snapshots {
		if now.Sub(at) >= p.cfg.SnapshotInterval {
			delete(p.snapshots, e)
		}
	}
	p.snapshots[edge] = now
	return true
}
