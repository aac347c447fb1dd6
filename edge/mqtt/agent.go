// Package mqtt is varco-edge's sync agent: it keeps the edge's cache in step
// with its site's state in the cloud and ships the edge's journal up, over
// MQTT, with the messages and topics of varco.dev/protocol/sync.
//
// paho.mqtt.golang is a transport only. Durability lives in the edge's own
// stores: the cache's version says which delta comes next, the journal keeps
// every event until the cloud's Ack covers it. So the client uses a memory
// store and a clean session, subscribes again on every connect, and never
// waits on a publish token in the hot path: what a broken connection loses is
// sent again from the journal (events) or asked for again (CatchUp) after the
// next connect.
//
// The agent knows whether the edge is in sync with the cloud: connected, and
// with no known gap in its deltas. Staleness is 0 while it is, and otherwise
// the time since the last moment it was, which the cache keeps (a restart
// does not make a stale cache fresh); a cache that was never in sync is
// stale since ever (edge.Forever). The daemon's decisions apply the site's
// offline policy by it.
//
// One goroutine, Run's, owns all the sync state (the downlink: deltas, gaps,
// snapshot loading; the uplink: events in flight and acknowledged). paho's
// callbacks only hand messages and connects to it over channels, in the
// order paho delivers them.
//
// On every connect the agent publishes a Birth and a retained online Status
// (an offline Status is its last will, and is published on a clean stop
// too); subscribes its site's state topic and its own sync, ack and cmd
// topics; and sends the journal again from the last acknowledged event.
// Every message from the cloud must be signed (vsync.Envelope.Verify) by one
// of the cloud's keys in Config.CloudKeys, so that whoever controls the
// broker can neither change the cache nor open a gate: received messages
// that are malformed, on a topic that is not the agent's, of another tenant,
// site or edge, unsigned, signed by an unknown key or forged, and replays (a
// snapshot nobody asked for or older than asked, a command already carried
// out, expired or stamped in the future, an ack beyond the journal) are
// counted by Reject reason (Stats, Config.Rejected), logged and dropped. A
// delta needs no replay check of its own: one that is not newer than the
// cache is skipped (vsync.Delta.Step). Commands are handed to the daemon on
// Commands, not carried out here.
package mqtt

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	gosync "sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"varco.dev/edge"
	vsync "varco.dev/protocol/sync"
)

// Defaults of Config.
const (
	DefaultBatch      = 256
	DefaultWindow     = 4
	DefaultPoll       = 5 * time.Second
	DefaultAckTimeout = 30 * time.Second
	DefaultCommands   = 16
	// DefaultMaxClockSkew: a command stamped more than this ahead of the
	// edge's clock is rejected, and one stamped more than this before the
	// agent started is taken for a replay (see Agent.Commands).
	DefaultMaxClockSkew = time.Minute
)

// Config configures an Agent.
type Config struct {
	// Broker is the broker's URL, e.g. tcp://127.0.0.1:1883 or ssl://….
	Broker string
	// Username and Password are the edge's own broker credentials.
	Username, Password string
	// Tenant, Site and Edge are the edge's ids (vsync.ValidateID).
	Tenant, Site, Edge string
	// CloudKeys are the cloud's Ed25519 public keys by key id (several
	// during a rotation); required. A message from the cloud is accepted
	// only if one of them signed it.
	CloudKeys map[string]ed25519.PublicKey
	// Software is the edge's software version, sent in its Birth.
	Software string
	// Readers, if set, lists the edge's readers for its Birth.
	Readers func() []vsync.Reader
	// Logger receives the agent's log (default slog.Default()).
	Logger *slog.Logger

	// ClientID is the MQTT client id; by default the Username, or
	// "{Tenant}/{Edge}" without one: varco-cloud's broker wants the client id
	// of an edge to be its username, so that no client takes over another
	// edge's session.
	ClientID string
	// Batch is the most events per Events message (default DefaultBatch,
	// at most vsync.MaxEvents).
	Batch int
	// Window is the most Events messages sent and not yet acknowledged
	// (default DefaultWindow).
	Window int
	// Poll is the period of the fallback that looks for journaled events
	// without a Notify (default DefaultPoll).
	Poll time.Duration
	// AckTimeout is how long a full window may wait for an Ack before the
	// unacknowledged events are sent again (default DefaultAckTimeout).
	AckTimeout time.Duration
	// Commands is the capacity of the Commands channel (default
	// DefaultCommands); a command that finds it full is dropped and counted.
	Commands int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Applied, when set, is called with the cache version after each delta
	// or snapshot the agent applied (the daemon's metrics, tests).
	Applied func(version uint64)
	// Rejected, when set, is called with the reason of each received
	// message the agent dropped (the daemon's metrics).
	Rejected func(Reject)
	// MaxClockSkew is how far ahead of the edge's clock a command may be
	// stamped (default DefaultMaxClockSkew).
	MaxClockSkew time.Duration
}

// Stats counts what the agent did. Every field only grows.
type Stats struct {
	Connects uint64 // connections made (each with a Birth)

	DeltasApplied   uint64 // deltas written to the cache
	DeltasSkipped   uint64 // duplicates and deltas a catch-up already brought
	Gaps            uint64 // deltas that did not follow the cache version
	CatchUps        uint64 // CatchUp messages published
	SnapshotsLoaded uint64 // snapshots committed
	SnapshotAborts  uint64 // snapshots dropped: a chunk out of order or not matching
	CacheErrors     uint64 // the cache failed to apply a delta or snapshot

	EventsSent    uint64 // events published (again after a reconnect, too)
	BatchesSent   uint64 // Events messages published
	Acks          uint64 // Acks that moved the high-water mark
	JournalErrors uint64 // the journal failed to read or delete

	Commands        uint64 // commands handed to the daemon
	CommandsDropped uint64 // commands dropped because Commands was full

	// Received messages rejected, by Reject reason.
	Malformed  uint64 // payloads that do not decode or validate
	WrongTopic uint64 // topics not the agent's, or a message not of its topic
	Foreign    uint64 // messages of another tenant, site or edge
	Unsigned   uint64 // messages without a signature
	UnknownKey uint64 // signed by a key id not in CloudKeys
	Forged     uint64 // a signature that does not verify
	Replayed   uint64 // snapshots not asked for or older than asked; commands done, expired or older than the agent
	Untimely   uint64 // commands without a time or stamped in the future
	AckAhead   uint64 // acks beyond the journal's last event
}

// stats is Stats with atomic fields, written by the loop and read by Stats.
type stats struct {
	connects, applied, skipped, gaps, catchUps, snapLoaded, snapAborts, cacheErrs atomic.Uint64
	eventsSent, batchesSent, acks, journalErrs, commands, commandsDropped         atomic.Uint64
	rejected                                                                      [numRejects]atomic.Uint64
}

// Agent is the edge's sync agent. Create it with New, run it with Run.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	cache   edge.Cache
	journal edge.Journal
	topics  topics

	wake     chan struct{}       // Notify; capacity 1
	resync   chan struct{}       // Resync; capacity 1
	commands chan *vsync.Command // to the daemon
	st       stats
	inSync   atomic.Bool                // connected, with no known gap
	syncedAt atomic.Int64               // unix ms of the last moment in sync (the cache's Synced), 0: never
	started  time.Time                  // when New made the agent: older commands are replays
	carried  map[uint64]vsync.Timestamp // ids of the commands handed over, until they expire; the loop's

	// afterMessage, if set (tests), is called by the loop after each
	// received message with its kind, 0 for one rejected before decoding.
	afterMessage func(vsync.Kind)
}

// topics are the agent's topic names.
type topics struct {
	state, sync, ack, cmd          string // subscribed
	catchUp, events, birth, status string // published
}

// New checks cfg and returns an agent that syncs cache and ships journal.
func New(cfg Config, cache edge.Cache, journal edge.Journal) (*Agent, error) {
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	cfg.ClientID = cmp.Or(cfg.ClientID, cfg.Username, cfg.Tenant+"/"+cfg.Edge)
	cfg.Batch = min(cmp.Or(cfg.Batch, DefaultBatch), vsync.MaxEvents)
	cfg.Window = cmp.Or(cfg.Window, DefaultWindow)
	cfg.Poll = cmp.Or(cfg.Poll, DefaultPoll)
	cfg.AckTimeout = cmp.Or(cfg.AckTimeout, DefaultAckTimeout)
	cfg.Commands = cmp.Or(cfg.Commands, DefaultCommands)
	cfg.MaxClockSkew = cmp.Or(cfg.MaxClockSkew, DefaultMaxClockSkew)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch {
	case cfg.Broker == "":
		return nil, errors.New("mqtt: no broker URL")
	case cfg.Software == "":
		return nil, errors.New("mqtt: no software version")
	case cache == nil || journal == nil:
		return nil, errors.New("mqtt: no cache or journal")
	case len(cfg.CloudKeys) == 0:
		return nil, errors.New("mqtt: no cloud keys: the agent could not tell the cloud's messages from anyone's")
	case cfg.Batch < 1 || cfg.Window < 1 || cfg.Poll < 0 || cfg.AckTimeout < 0 || cfg.Commands < 0:
		return nil, fmt.Errorf("mqtt: batch %d, window %d, poll %s, ack timeout %s, commands %d: want positive values",
			cfg.Batch, cfg.Window, cfg.Poll, cfg.AckTimeout, cfg.Commands)
	}
	var t topics
	var errs []error
	name := func(dst *string, f func(string, string) (string, error), id string) {
		var err error
		*dst, err = f(cfg.Tenant, id)
		errs = append(errs, err)
	}
	name(&t.state, vsync.StateTopic, cfg.Site)
	name(&t.sync, vsync.SyncTopic, cfg.Edge)
	name(&t.ack, vsync.AckTopic, cfg.Edge)
	name(&t.cmd, vsync.CommandTopic, cfg.Edge)
	name(&t.catchUp, vsync.CatchUpTopic, cfg.Edge)
	name(&t.events, vsync.EventsTopic, cfg.Edge)
	name(&t.birth, vsync.BirthTopic, cfg.Edge)
	name(&t.status, vsync.StatusTopic, cfg.Edge)
	for id, key := range cfg.CloudKeys {
		if err := vsync.ValidateID(id); err != nil {
			errs = append(errs, fmt.Errorf("cloud key id: %w", err))
		}
		if len(key) != ed25519.PublicKeySize {
			errs = append(errs, fmt.Errorf("cloud key %s: %d bytes, want %d", id, len(key), ed25519.PublicKeySize))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("mqtt: %w", err)
	}
	a := &Agent{
		cfg:      cfg,
		log:      cfg.Logger.With("tenant", cfg.Tenant, "site", cfg.Site, "edge", cfg.Edge),
		cache:    cache,
		journal:  journal,
		topics:   t,
		wake:     make(chan struct{}, 1),
		resync:   make(chan struct{}, 1),
		commands: make(chan *vsync.Command, cfg.Commands),
		started:  cfg.Now(),
		carried:  map[uint64]vsync.Timestamp{},
	}
	if t := cache.Synced(); !t.IsZero() {
		a.syncedAt.Store(t.UnixMilli())
	}
	return a, nil
}

// Staleness is how long the edge has not been in sync with the cloud at
// now: 0 while it is (connected, no known gap), the time since the last
// moment it was otherwise, edge.Forever if it never was. It may be called
// from any goroutine and does not allocate: the daemon calls it for every
// decision.
func (a *Agent) Staleness(now time.Time) time.Duration {
	if a.inSync.Load() {
		return 0
	}
	ms := a.syncedAt.Load()
	if ms == 0 {
		return edge.Forever
	}
	return max(now.Sub(time.UnixMilli(ms)), 0)
}

// setInSync moves the agent in or out of sync. Either way the moment is
// one in sync, and is stored: the last before leaving, or the first.
func (l *loop) setInSync(in bool) {
	if l.inSync.Swap(in) == in {
		return
	}
	now := l.cfg.Now()
	if in {
		l.log.Info("mqtt: in sync", "version", l.cache.Version())
	} else {
		l.log.Info("mqtt: out of sync: the cache ages from now", "version", l.cache.Version())
	}
	l.markSynced(now)
}

// markSynced stores now as the last moment in sync.
func (l *loop) markSynced(now time.Time) {
	l.syncedAt.Store(now.UnixMilli())
	if err := l.cache.SetSynced(context.WithoutCancel(l.ctx), now); err != nil {
		l.log.Warn("mqtt: store the last moment in sync", "err", err)
	}
}

// Notify tells the agent that the journal has new events. It never blocks;
// the daemon calls it after each Append.
func (a *Agent) Notify() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// Resync asks the cloud for a full snapshot (a CatchUp with Full set), as a
// CmdResync command asks: the daemon calls it when it carries one out. It
// never blocks; a resync asked while disconnected is sent after the next
// connect.
func (a *Agent) Resync() {
	select {
	case a.resync <- struct{}{}:
	default:
	}
}

// Commands delivers the cloud's commands, in order of arrival, to the
// daemon. Each command ID comes once: the agent drops a command it already
// handed over, one that has expired, one stamped more than MaxClockSkew in
// the future, and one stamped more than MaxClockSkew before the agent
// started (the ids it handed over are in memory only, so a command replayed
// after a restart of the daemon must not look new). The daemon checks
// Expires again when it carries a command out: it may have waited in the
// channel. The channel is never closed.
func (a *Agent) Commands() <-chan *vsync.Command { return a.commands }

// Stats returns the agent's counters.
func (a *Agent) Stats() Stats {
	s := &a.st
	return Stats{
		Connects:        s.connects.Load(),
		DeltasApplied:   s.applied.Load(),
		DeltasSkipped:   s.skipped.Load(),
		Gaps:            s.gaps.Load(),
		CatchUps:        s.catchUps.Load(),
		SnapshotsLoaded: s.snapLoaded.Load(),
		SnapshotAborts:  s.snapAborts.Load(),
		CacheErrors:     s.cacheErrs.Load(),
		EventsSent:      s.eventsSent.Load(),
		BatchesSent:     s.batchesSent.Load(),
		Acks:            s.acks.Load(),
		JournalErrors:   s.journalErrs.Load(),
		Commands:        s.commands.Load(),
		CommandsDropped: s.commandsDropped.Load(),
		Malformed:       s.rejected[RejectMalformed].Load(),
		WrongTopic:      s.rejected[RejectWrongTopic].Load(),
		Foreign:         s.rejected[RejectForeign].Load(),
		Unsigned:        s.rejected[RejectUnsigned].Load(),
		UnknownKey:      s.rejected[RejectUnknownKey].Load(),
		Forged:          s.rejected[RejectForged].Load(),
		Replayed:        s.rejected[RejectReplayed].Load(),
		Untimely:        s.rejected[RejectUntimely].Load(),
		AckAhead:        s.rejected[RejectAckAhead].Load(),
	}
}

// inbound is a message paho received.
type inbound struct {
	topic   string
	payload []byte
}

// Run connects to the broker and syncs until ctx is done; it reconnects by
// itself, with a new paho client each time. The offline Status of its last
// will carries the time of the connect attempt. On return it has published
// an offline Status (if it could) and disconnected, and no goroutine of the
// agent is left (a connect attempt in progress may hold it up to 10 s). An
// agent runs once at a time; it may run again after Run returned.
func (a *Agent) Run(ctx context.Context) error {
	l := &loop{
		Agent:     a,
		ctx:       ctx,
		done:      make(chan struct{}),
		inbox:     make(chan inbound, 64),
		connected: make(chan paho.Client),
		lost:      make(chan paho.Client),
		backoff:   minBackoff,
	}
	if err := l.dial(); err != nil {
		return err
	}
	defer func() {
		close(l.done)
		l.stop()
		l.setInSync(false)
	}()
	var retry <-chan time.Time // the next connect attempt, after a failure
	var tick <-chan time.Time
	if a.cfg.Poll > 0 {
		t := time.NewTicker(a.cfg.Poll)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-l.inbox:
			l.receive(m)
		case c := <-l.connected:
			if c == l.client {
				l.backoff = 0 // a lost connection is retried at once, then after minBackoff, doubling
				l.onConnect()
			}
		case c := <-l.lost:
			if c == l.client {
				l.setInSync(false)
			}
			if c == l.client && retry == nil {
				retry = time.After(l.backoff)
				l.backoff = min(max(2*l.backoff, minBackoff), maxBackoff)
			}
		case <-retry:
			retry = nil
			if err := l.dial(); err != nil {
				return err
			}
		case <-a.wake:
			l.up.pump(l)
		case <-a.resync:
			l.down.resync = true
			l.down.sendResync(l)
		case <-tick:
			l.onTick()
		}
	}
}

// Delays between connect attempts: the first retry after a connection is
// lost is at once, then minBackoff, doubled after each failure up to
// maxBackoff.
const (
	minBackoff     = time.Second
	maxBackoff     = 30 * time.Second
	connectTimeout = 10 * time.Second
)

// dial makes a new client, and so a new memory store, for each connection
// attempt: paho's own reconnect would resend what its store holds (and races
// while doing it), and its connect retry sleeps past a Disconnect; the agent
// sends again from its journal and versions, and retries itself.
func (l *loop) dial() error {
	will, err := l.marshal(&vsync.Status{Online: false, Boot: l.journal.Boot(), CacheVersion: l.cache.Version()})
	if err != nil {
		return err
	}
	done := l.done
	opts := paho.NewClientOptions().
		AddBroker(l.cfg.Broker).
		SetClientID(l.cfg.ClientID).
		SetUsername(l.cfg.Username).
		SetPassword(l.cfg.Password).
		SetCleanSession(true).
		SetStore(paho.NewMemoryStore()).
		SetOrderMatters(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(connectTimeout).
		SetWriteTimeout(5*time.Second). // bounds a Publish into a stalled connection (default 30 s)
		SetBinaryWill(l.topics.status, will, 1, true).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			select {
			case l.inbox <- inbound{m.Topic(), m.Payload()}:
			case <-done:
			}
		}).
		SetConnectionLostHandler(func(c paho.Client, err error) {
			l.log.Warn("mqtt: connection lost", "err", err)
			select {
			case l.lost <- c:
			case <-done:
			}
		})
	opts.SetOnConnectHandler(func(c paho.Client) {
		// paho runs this in its own goroutine: waiting here is off the hot path.
		subs := map[string]byte{l.topics.state: 1, l.topics.sync: 1, l.topics.ack: 1, l.topics.cmd: 1}
		tok := c.SubscribeMultiple(subs, nil) // nil: the default handler
		select {
		case <-tok.Done():
			if err := tok.Error(); err != nil {
				l.log.Error("mqtt: subscribe", "err", err)
			}
		case <-done:
			return
		}
		select {
		case l.connected <- c:
		case <-done:
		}
	})
	if l.client != nil {
		l.client.Disconnect(0)
	}
	c := paho.NewClient(opts)
	l.client = c
	tok := c.Connect()
	l.attempts.Add(1)
	go func() { // not the loop's: it may take connectTimeout
		defer l.attempts.Done()
		<-tok.Done() // completes on success, failure or Disconnect
		if err := tok.Error(); err != nil {
			l.log.Warn("mqtt: connect", "broker", l.cfg.Broker, "err", err)
			select {
			case l.lost <- c:
			case <-done:
			}
		}
	}()
	return nil
}

// loop is the state of one Run, owned by its goroutine.
type loop struct {
	*Agent
	ctx    context.Context
	client paho.Client // of the current connection (attempt)
	down   downlink
	up     uplink

	done      chan struct{}    // closed when Run returns: paho's callbacks give up
	inbox     chan inbound     // received messages, in paho's order
	connected chan paho.Client // a client connected and subscribed
	lost      chan paho.Client // a client lost its connection or failed to connect
	backoff   time.Duration    // before the next connect attempt after a failure
	attempts  gosync.WaitGroup // the goroutines that wait for a connect
	statusAt  time.Time        // when the online status was last published
	statusDue bool             // the cache version changed since
}

// marshal fills msg's header and encodes it.
func (a *Agent) marshal(msg vsync.Message) ([]byte, error) {
	*headerOf(msg) = vsync.Header{Tenant: a.cfg.Tenant, Site: a.cfg.Site, Edge: a.cfg.Edge, Time: vsync.TimestampOf(a.cfg.Now())}
	b, err := vsync.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("mqtt: %w", err)
	}
	return b, nil
}

// publish sends msg on topic at QoS 1 without waiting for the broker. A
// message lost with the connection is sent again after the next connect:
// from the journal, or as a fresh Birth, Status or CatchUp.
func (l *loop) publish(topic string, msg vsync.Message) bool {
	b, err := l.marshal(msg)
	if err != nil {
		l.log.Error("mqtt: encode", "kind", msg.Kind(), "err", err)
		return false
	}
	tok := l.client.Publish(topic, 1, topic == l.topics.status, b)
	select {
	case <-tok.Done(): // failed at once, e.g. not connected
		if err := tok.Error(); err != nil {
			l.log.Warn("mqtt: publish", "topic", topic, "err", err)
			return false
		}
	default:
	}
	return true
}

func (l *loop) onConnect() {
	l.st.connects.Add(1)
	var readers []vsync.Reader
	if l.cfg.Readers != nil {
		readers = l.cfg.Readers()
	}
	boot, version := l.journal.Boot(), l.cache.Version()
	l.log.Info("mqtt: connected", "broker", l.cfg.Broker, "boot", boot, "version", version, "last_seq", l.journal.LastSeq())
	// The Birth tells the cloud our version, and asks for what we lack: no
	// gap is known, and a new one asks again.
	l.down.gap = false
	l.down.ask(version, false)
	l.setInSync(true)
	l.publish(l.topics.birth, &vsync.Birth{Boot: boot, CacheVersion: version, Software: l.cfg.Software,
		LastSeq: l.journal.LastSeq(), Readers: readers})
	l.publish(l.topics.status, &vsync.Status{Online: true, Boot: boot, CacheVersion: version})
	l.statusAt, l.statusDue = l.cfg.Now(), false
	l.down.sendResync(l)
	l.up.resend()
	l.up.pump(l)
}

func (l *loop) onTick() {
	if l.inSync.Load() {
		l.markSynced(l.cfg.Now())
	}
	l.reportVersion(true)
	if l.up.stalled(l.cfg.Now(), l.cfg.AckTimeout) {
		l.log.Warn("mqtt: no ack, sending the journal again", "acked", l.up.acked, "sent", l.up.sent)
		l.up.resend()
	}
	l.up.pump(l)
}

// stop publishes the offline status and disconnects.
func (l *loop) stop() {
	if l.client.IsConnectionOpen() {
		b, err := l.marshal(&vsync.Status{Online: false, Boot: l.journal.Boot(), CacheVersion: l.cache.Version()})
		if err == nil {
			l.client.Publish(l.topics.status, 1, true, b).WaitTimeout(2 * time.Second) // shutdown, not the hot path
		}
	}
	l.client.Disconnect(250)
	l.attempts.Wait()
}

// headerOf is msg's Header.
func headerOf(msg vsync.Message) *vsync.Header {
	switch m := msg.(type) {
	case *vsync.Delta:
		return &m.Header
	case *vsync.Snapshot:
		return &m.Header
	case *vsync.CatchUp:
		return &m.Header
	case *vsync.Birth:
		return &m.Header
	case *vsync.Status:
		return &m.Header
	case *vsync.Events:
		return &m.Header
	case *vsync.Ack:
		return &m.Header
	case *vsync.Command:
		return &m.Header
	}
	panic(fmt.Sprintf("mqtt: unknown message %T", msg))
}
