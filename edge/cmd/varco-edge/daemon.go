package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	periphgpio "periph.io/x/conn/v3/gpio"

	"varco.dev/edge"
	"varco.dev/edge/badger"
	"varco.dev/edge/config"
	"varco.dev/edge/gpio"
	edgehttp "varco.dev/edge/http"
	"varco.dev/edge/importer"
	"varco.dev/edge/metrics"
	edgemqtt "varco.dev/edge/mqtt"
	"varco.dev/edge/osdp"
	"varco.dev/protocol"
	vsync "varco.dev/protocol/sync"
	"varco.dev/protocol/wiegand"
)

// Main is the daemon, wired from its configuration: Open builds every part
// without starting anything, Run starts them and returns when ctx ends,
// Close releases them. Tests boot it the same way on a pseudo-terminal.
type Main struct {
	Config  *config.Config
	Log     *slog.Logger
	Metrics *metrics.Metrics
	Keeper  *edge.Gatekeeper
	// OnReader, when set before Run, hears every reader going online or
	// offline (tests wait on it).
	OnReader func(id string, online bool)
	// OnCacheVersion, when set before Run, hears every version the sync
	// agent brings the cache to.
	OnCacheVersion func(version uint64)

	cache        *badger.Cache
	journal      *badger.Journal
	lines        []*line
	wiegand      []*gpio.Wiegand
	wiegandGates []*gpio.Gate
	doors        []*gpio.Door
	relays       []*gpio.Relay
	http         *edgehttp.Server
	agent        *edgemqtt.Agent // nil without [mqtt]: the edge runs on its own
	ctx          context.Context // Run's, for the handlers of the buses
}

// remoteGate is a gate that carries out the cloud's commands.
type remoteGate interface {
	Reader() edge.Reader
	Remote(ctx context.Context, lines []string, hold time.Duration, open bool) error
}

// Open builds the daemon from cfg, logging to logOut. On error nothing is
// left open.
func Open(ctx context.Context, cfg *config.Config, logOut io.Writer) (_ *Main, err error) {
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: cfg.Level}))
	m := &Main{Config: cfg, Log: log, Metrics: metrics.New(), ctx: ctx}
	defer func() {
		if err != nil {
			err = errors.Join(err, m.Close())
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	if m.cache, err = badger.OpenCache(ctx, filepath.Join(cfg.DataDir, "cache"), badger.CacheOptions{Logger: log}); err != nil {
		return nil, err
	}
	fsync, err := edge.ParseFsyncPolicy(cfg.Journal.Fsync)
	if err != nil {
		return nil, fmt.Errorf("journal.fsync: %w", err)
	}
	m.journal, err = badger.OpenJournal(ctx, filepath.Join(cfg.DataDir, "journal"),
		badger.JournalOptions{Fsync: fsync, BatchInterval: cfg.Journal.BatchInterval, Logger: log})
	if err != nil {
		return nil, err
	}
	m.Keeper = &edge.Gatekeeper{
		Cache: m.cache, Journal: m.journal, CredentialKey: cfg.CredentialKey,
		Now: time.Now, Observe: m.observe,
	}
	m.Metrics.CacheVersion.Set(float64(m.cache.Version()))

	pins, err := m.openGPIO()
	if err != nil {
		return nil, err
	}
	for i := range cfg.Serial {
		if err := m.openBus(&cfg.Serial[i], pins); err != nil {
			return nil, err
		}
	}
	for i := range cfg.Wiegand {
		if err := m.openWiegand(i, &cfg.Wiegand[i], pins); err != nil {
			return nil, err
		}
	}
	if cfg.MQTT.Broker != "" {
		if err := m.openAgent(); err != nil {
			return nil, err
		}
	} else {
		log.Warn("no [mqtt] broker configured: deciding from the cache and journaling, without the cloud")
	}
	if m.http, err = edgehttp.Listen(cfg.HTTPAddr, m.Metrics.Registry, m.health, log); err != nil {
		return nil, err
	}
	log.Info("varco-edge ready", "version", protocol.Version, "edge", cfg.EdgeID, "site", cfg.Site,
		"cache_version", m.cache.Version(), "journal_backlog", m.journal.Backlog(), "http", m.http.Addr())
	return m, nil
}

// openAgent sets up the sync agent with the cloud.
func (m *Main) openAgent() error {
	c := m.Config
	pw, err := os.ReadFile(c.MQTT.PasswordFile)
	if err != nil {
		return fmt.Errorf("mqtt.password_file: %w", err)
	}
	m.agent, err = edgemqtt.New(edgemqtt.Config{
		Broker: c.MQTT.Broker, Username: c.MQTT.Username, Password: strings.TrimSpace(string(pw)),
		Tenant: c.Tenant, Site: c.Site, Edge: c.EdgeID, Software: protocol.Version,
		CloudKeys: c.MQTT.Keys, Readers: m.syncReaders, Logger: m.Log,
		Rejected: func(r edgemqtt.Reject) { m.Metrics.SyncRejected.WithLabelValues(r.String()).Inc() },
		Applied: func(version uint64) {
			m.Metrics.CacheVersion.Set(float64(version))
			if m.OnCacheVersion != nil {
				m.OnCacheVersion(version)
			}
		},
	}, m.cache, m.journal)
	if err != nil {
		return fmt.Errorf("mqtt: %w", err)
	}
	for _, r := range edgemqtt.Rejects() {
		m.Metrics.SyncRejected.WithLabelValues(r.String()) // every reason from 0, for alerts on increase()
	}
	// With the cloud, the site's offline policy applies by the agent's
	// staleness; a standalone edge (no [mqtt]) has none to apply.
	m.Keeper.Staleness = m.agent.Staleness
	m.Metrics.SetStaleness(func() float64 {
		s := m.agent.Staleness(time.Now())
		if s == edge.Forever {
			return math.Inf(1)
		}
		return s.Seconds()
	})
	return nil
}

// syncReaders describes the readers for the edge's birth message.
func (m *Main) syncReaders() []vsync.Reader {
	var rs []vsync.Reader
	for _, h := range m.health(context.Background()).Readers {
		r := vsync.Reader{ID: h.ID, Online: h.Online, Rows: uint8(h.Rows), Cols: uint8(h.Cols)}
		if g := m.gate(h.ID); g != nil {
			r.Device = g.Reader().Device
		}
		rs = append(rs, r)
	}
	return rs
}

// gate finds a gate by its reader's id.
func (m *Main) gate(id string) remoteGate {
	for _, l := range m.lines {
		for _, g := range l.gates {
			if g.Reader().ID == id {
				return g
			}
		}
	}
	for _, g := range m.wiegandGates {
		if g.Reader().ID == id {
			return g
		}
	}
	return nil
}

// commands carries out what the cloud asks. The agent hands each command
// over once, signed, and not yet expired (edgemqtt.Agent.Commands); it is
// checked for expiry again here, after its wait in the channel: a stale
// "open the gate" must never open it.
func (m *Main) commands(ctx context.Context) error {
	for {
		var cmd *vsync.Command
		select {
		case <-ctx.Done():
			return nil
		case c, ok := <-m.agent.Commands():
			if !ok {
				return nil
			}
			cmd = c
		}
		log := m.Log.With("command", cmd.ID, "op", cmd.Op, "reader", cmd.Reader)
		if cmd.Expires.Time().Before(time.Now()) {
			log.Warn("command expired before it arrived", "expires", cmd.Expires)
			continue
		}
		if cmd.Op == vsync.CmdResync {
			m.agent.Resync()
			log.Info("resync requested by the cloud")
			m.commandDone(ctx, cmd)
			continue
		}
		g := m.gate(cmd.Reader)
		if g == nil {
			log.Warn("command for an unknown reader")
			continue
		}
		var err error
		switch cmd.Op {
		case vsync.CmdOpen:
			err = g.Remote(ctx, []string{"Welcome"}, 0, true)
			if jerr := m.Keeper.Record(ctx, vsync.Event{Kind: vsync.EventRemoteOpen, Reader: cmd.Reader, Command: cmd.ID}); jerr != nil {
				m.journalFailed(jerr)
			}
			m.agent.Notify()
		case vsync.CmdShow:
			err = g.Remote(ctx, edge.FitText(cmd.Text, g.Reader().Rows, g.Reader().Cols), time.Duration(cmd.Seconds)*time.Second, false)
			if err == nil {
				m.commandDone(ctx, cmd)
			}
		}
		if err != nil {
			log.Error("command failed", "err", err)
			continue
		}
		log.Info("command carried out")
	}
}

// commandDone journals the edge's acknowledgement of a CmdShow or CmdResync
// it carried out (a CmdOpen's is its EventRemoteOpen), for the cloud.
func (m *Main) commandDone(ctx context.Context, cmd *vsync.Command) {
	if err := m.Keeper.Record(ctx, vsync.Event{Kind: vsync.EventCommandDone, Reader: cmd.Reader, Command: cmd.ID}); err != nil {
		m.journalFailed(err)
	}
	m.agent.Notify()
}

// openGPIO opens every pin the configuration names, or none on a machine
// without GPIO, which it says once.
func (m *Main) openGPIO() (map[string]periphgpio.PinIO, error) {
	want := map[string]string{}
	add := func(key, pin string) {
		if pin != "" {
			want[key] = pin
		}
	}
	addGate := func(key string, g *config.Gate) {
		add(key+".relay_pin", g.RelayPin)
		add(key+".door_pin", g.DoorPin)
		add(key+".exit_button_pin", g.ExitButtonPin)
	}
	for i, p := range m.Config.Serial {
		for j := range p.Readers {
			addGate(fmt.Sprintf("serial[%d].reader[%d]", i, j), &p.Readers[j].Gate)
		}
	}
	for i, w := range m.Config.Wiegand {
		key := fmt.Sprintf("wiegand[%d]", i)
		addGate(key, &w.Gate)
		add(key+".d0_pin", w.D0)
		add(key+".d1_pin", w.D1)
	}
	if len(want) == 0 {
		return nil, nil
	}
	pins, err := gpio.Open(want)
	if errors.Is(err, gpio.ErrNoGPIO) {
		m.Log.Warn("no GPIO on this machine: running with the serial readers only; Wiegand readers and GPIO relays are off", "err", err)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("gpio: %w", err)
	}
	return pins, nil
}

// opener returns how a grant opens gate g (key is its config path): through
// its door monitor or relay on GPIO, or nil when it has none (or the machine
// has no GPIO).
func (m *Main) opener(key string, g *config.Gate, pins map[string]periphgpio.PinIO) (func(context.Context) error, error) {
	relayPin := pins[key+".relay_pin"]
	if relayPin == nil {
		return nil, nil
	}
	relay, err := gpio.NewRelay(relayPin, gpio.RelayConfig{Name: g.ID, ActiveLow: g.RelayActiveLow, Logger: m.Log})
	if err != nil {
		return nil, fmt.Errorf("%s.relay_pin: %w", key, err)
	}
	m.relays = append(m.relays, relay)
	contact, rex := pins[key+".door_pin"], pins[key+".exit_button_pin"]
	if contact == nil && rex == nil {
		return func(ctx context.Context) error { return relay.Pulse(ctx, g.Pulse) }, nil
	}
	var contactIn, rexIn periphgpio.PinIn
	if contact != nil {
		contactIn = contact
	}
	if rex != nil {
		rexIn = rex
	}
	door, err := gpio.NewDoor(contactIn, rexIn, relay, gpio.DoorConfig{
		Name: g.ID, HeldOpen: g.HeldOpenAfter, Pulse: g.Pulse, Logger: m.Log,
	}, m.doorEvent)
	if err != nil {
		return nil, fmt.Errorf("%s: door: %w", key, err)
	}
	m.doors = append(m.doors, door)
	return door.Grant, nil
}

// line is one serial line: its readers' gates outlive the bus, which is
// opened again when the port fails.
type line struct {
	cfg   *config.SerialPort
	index int
	gates map[byte]*osdp.Gate // by address
	bus   atomic.Pointer[osdp.Bus]
}

func (m *Main) openBus(p *config.SerialPort, pins map[string]periphgpio.PinIO) error {
	l := &line{cfg: p, index: len(m.lines), gates: map[byte]*osdp.Gate{}}
	bus, err := m.dial(l)
	if err != nil {
		return err
	}
	l.bus.Store(bus)
	m.lines = append(m.lines, l)
	for j := range p.Readers {
		r := &p.Readers[j]
		gate := osdp.NewGate(bus, byte(r.Address),
			edge.Reader{ID: r.ID, Site: m.Config.Site, Device: r.DeviceType}, *r.Output, r.Pulse)
		if gate.Open, err = m.opener(fmt.Sprintf("serial[%d].reader[%d]", l.index, j), &r.Gate, pins); err != nil {
			return err
		}
		l.gates[byte(r.Address)] = gate
	}
	return nil
}

// dial opens a bus on l's port.
func (m *Main) dial(l *line) (*osdp.Bus, error) {
	addrs := make([]byte, len(l.cfg.Readers))
	for j, r := range l.cfg.Readers {
		addrs[j] = byte(r.Address)
	}
	bus, err := osdp.Open(osdp.Config{
		Port: l.cfg.Port, Baud: l.cfg.Baud, Readers: addrs,
		PollInterval: l.cfg.PollInterval, ReplyTimeout: l.cfg.ReplyTimeout, Retries: l.cfg.Retries,
		Formats:  []wiegand.Format{m.Config.Hint37},
		IdleText: []string{m.Config.IdleText},
		Handler:  func(ev osdp.Event) { m.busEvent(l.gates, ev) },
		Logger:   m.Log,
	})
	if err != nil {
		return nil, fmt.Errorf("serial[%d]: %w", l.index, err)
	}
	return bus, nil
}

// runLine runs l's bus and, when its port fails, says its readers are
// offline and opens the port again, waiting longer after each failure (1 s
// doubling to 30 s), until ctx ends.
func (m *Main) runLine(ctx context.Context, l *line) error {
	const maxWait = 30 * time.Second
	wait := time.Second
	for {
		err := l.bus.Load().Run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		m.Log.Error("serial line failed; opening it again", "port", l.cfg.Port, "err", err, "in", wait)
		for _, g := range l.gates {
			m.readerState(g.Reader().ID, false, "err", err)
		}
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
			wait = min(2*wait, maxWait)
			bus, err := m.dial(l)
			if err != nil {
				m.Log.Warn("serial line still down", "port", l.cfg.Port, "err", err, "retry_in", wait)
				continue
			}
			l.bus.Store(bus)
			for _, g := range l.gates {
				g.SetBus(bus)
			}
			m.Log.Info("serial line open again", "port", l.cfg.Port)
			wait = time.Second
			break
		}
	}
}

func (m *Main) openWiegand(i int, w *config.WiegandReader, pins map[string]periphgpio.PinIO) error {
	key := fmt.Sprintf("wiegand[%d]", i)
	d0, d1 := pins[key+".d0_pin"], pins[key+".d1_pin"]
	if d0 == nil || d1 == nil {
		return nil // no GPIO on this machine: said once in openGPIO
	}
	open, err := m.opener(key, &w.Gate, pins)
	if err != nil {
		return err
	}
	gate := gpio.NewGate(edge.Reader{ID: w.ID, Site: m.Config.Site, Device: w.DeviceType}, open)
	m.wiegandGates = append(m.wiegandGates, gate)
	rd, err := gpio.NewWiegand(d0, d1, gpio.WiegandConfig{Name: w.ID, Logger: m.Log}, func(r gpio.Read) {
		k, err := r.Key(m.Config.Hint37)
		if err != nil {
			m.Metrics.WiegandRejected.WithLabelValues(w.ID, rejectReason(err)).Inc()
			m.Log.Warn("wiegand read rejected", "reader", w.ID, "bits", r.Bits, "err", err)
			return
		}
		m.present(gate, k)
	})
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	m.wiegand = append(m.wiegand, rd)
	m.Metrics.SetReaderOnline(w.ID, true)
	return nil
}

func rejectReason(err error) string {
	switch {
	case errors.Is(err, wiegand.ErrParity):
		return "parity"
	case errors.Is(err, gpio.ErrGlitch):
		return "glitch"
	case errors.Is(err, gpio.ErrOverflow), errors.Is(err, wiegand.ErrLength):
		return "length"
	}
	return "other"
}

// busEvent handles what a serial line reports, on that bus's goroutine.
func (m *Main) busEvent(gates map[byte]*osdp.Gate, ev osdp.Event) {
	switch ev := ev.(type) {
	case osdp.CardRead:
		if g := gates[ev.Addr]; g != nil {
			m.present(g, ev.Key)
		}
	case osdp.BadCard:
		id := readerID(gates, ev.Addr)
		m.Metrics.ReaderErrors.WithLabelValues(id, "bad_card").Inc()
		m.Log.Warn("unreadable card", "reader", id, "err", ev.Err)
	case osdp.ReaderOnline:
		g := gates[ev.Addr]
		if g == nil {
			return
		}
		g.SetCaps(ev.Caps)
		m.readerState(g.Reader().ID, true, "rows", ev.Caps.Rows, "cols", ev.Caps.Cols)
	case osdp.ReaderOffline:
		m.readerState(readerID(gates, ev.Addr), false, "err", ev.Err)
	case osdp.NakReceived:
		id := readerID(gates, ev.Addr)
		m.Metrics.ReaderErrors.WithLabelValues(id, "nak").Inc()
		m.Log.Debug("reader refused a command", "reader", id, "command", fmt.Sprintf("%#02x", ev.Command), "nak", ev.Reason)
	case osdp.StatusReport:
		m.Log.Warn("reader status", "reader", readerID(gates, ev.Addr), "tamper", ev.Tamper, "power_failure", ev.PowerFailure)
	case osdp.LineNoise:
		m.Metrics.ReaderErrors.WithLabelValues("line", "garbage").Add(float64(ev.Garbage))
		m.Log.Warn("noise on the serial line", "garbage_bytes", ev.Garbage, "bad_frames", ev.BadFrames,
			"wrong_addr", ev.WrongAddr, "wrong_seq", ev.WrongSeq)
	}
}

func readerID(gates map[byte]*osdp.Gate, addr byte) string {
	if g := gates[addr]; g != nil {
		return g.Reader().ID
	}
	return fmt.Sprintf("addr-%d", addr)
}

func (m *Main) readerState(id string, online bool, attrs ...any) {
	m.Metrics.SetReaderOnline(id, online)
	if m.OnReader != nil {
		m.OnReader(id, online)
	}
	kind := vsync.EventReaderOffline
	if online {
		kind = vsync.EventReaderOnline
		m.Log.Info("reader online", append([]any{"reader", id}, attrs...)...)
	} else {
		m.Log.Warn("reader offline", append([]any{"reader", id}, attrs...)...)
	}
	if err := m.Keeper.Record(m.ctx, vsync.Event{Kind: kind, Reader: id}); err != nil {
		m.journalFailed(err)
	}
	m.notify()
}

// notify tells the sync agent that the journal has new events.
func (m *Main) notify() {
	if m.agent != nil {
		m.agent.Notify()
	}
}

func (m *Main) doorEvent(ev gpio.DoorEvent) {
	var kind vsync.EventKind
	switch ev.Kind {
	case gpio.DoorForced:
		kind = vsync.EventDoorForced
	case gpio.DoorHeldOpen:
		kind = vsync.EventDoorHeld
	default:
		m.Log.Debug("door", "gate", ev.Door, "event", ev.Kind)
		return
	}
	m.Metrics.DoorAlarms.WithLabelValues(ev.Door, kind.String()).Inc()
	m.Log.Warn("door alarm", "gate", ev.Door, "alarm", kind)
	if err := m.Keeper.Record(m.ctx, vsync.Event{Kind: kind, Reader: ev.Door, Time: vsync.TimestampOf(ev.At)}); err != nil {
		m.journalFailed(err)
	}
	m.notify()
}

func (m *Main) present(g edge.Gate, key wiegand.Key) {
	if _, err := m.Keeper.Present(m.ctx, g, key); err != nil {
		m.Log.Error("passage", "reader", g.Reader().ID, "err", err)
	}
	m.notify()
	m.Metrics.JournalBacklog.Set(float64(m.journal.Backlog()))
}

// observe is the Gatekeeper's hook: one log line and the metrics per decision.
func (m *Main) observe(in *edge.Input, d *edge.Decision, took time.Duration, err error) {
	result := "deny"
	if d.Grant {
		result = "grant"
	}
	m.Metrics.ObserveDecision(result, d.Reason.String(), took)
	switch {
	case errors.Is(err, edge.ErrCorrupt):
		m.Metrics.CacheErrors.WithLabelValues("corrupt").Inc()
	case err != nil && d.Reason == vsync.ReasonReaderFault:
		m.Metrics.CacheErrors.WithLabelValues("io").Inc()
	case err != nil:
		m.journalFailed(err)
	}
	m.Log.Info("passage", "reader", in.Reader.ID, "result", result, "reason", d.Reason, "member", uint64(d.Member),
		"action", d.Action, "display", d.Display.Lines(), "chain", d.Chain.String(), "took", took, "err", err)
}

func (m *Main) journalFailed(err error) {
	m.Metrics.JournalErrors.Inc()
	m.Log.Error("journal", "err", err)
}

func (m *Main) health(context.Context) edgehttp.Health {
	h := edgehttp.Health{OK: true, Version: protocol.Version, CacheVersion: m.cache.Version(), JournalBacklog: m.journal.Backlog()}
	for _, l := range m.lines {
		for _, st := range l.bus.Load().Readers() {
			r := edgehttp.ReaderHealth{ID: readerID(l.gates, st.Addr), Online: st.Online, Rows: st.Caps.Rows, Cols: st.Caps.Cols}
			h.Readers = append(h.Readers, r)
			if !st.Online {
				h.OK = false
				h.Problems = append(h.Problems, "reader "+r.ID+" offline")
			}
		}
	}
	for _, w := range m.Config.Wiegand {
		h.Readers = append(h.Readers, edgehttp.ReaderHealth{ID: w.ID, Online: len(m.wiegand) > 0})
	}
	return h
}

// Run runs the readers, doors and the journal until ctx ends.
func (m *Main) Run(ctx context.Context) error {
	m.ctx = ctx
	var wg sync.WaitGroup
	errs := make(chan error, len(m.lines)+len(m.wiegand)+len(m.doors)+2)
	start := func(name string, run func(context.Context) error) {
		wg.Go(func() {
			if err := run(ctx); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		})
	}
	for _, l := range m.lines {
		start(l.cfg.Port, func(ctx context.Context) error { return m.runLine(ctx, l) })
	}
	for i, w := range m.wiegand {
		start(m.Config.Wiegand[i].ID, w.Run)
	}
	for _, d := range m.doors {
		start("door", d.Run)
	}
	if m.agent != nil {
		start("mqtt", m.agent.Run)
		start("commands", m.commands)
	}
	wg.Wait()
	m.Log.Info("varco-edge stopping", "journal_backlog", m.journal.Backlog())
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// Close releases everything Open opened; the buses and relays first, so that
// nothing writes to the journal after it closed.
func (m *Main) Close() error {
	var errs []error
	for _, l := range m.lines {
		errs = append(errs, l.bus.Load().Close())
	}
	for _, r := range m.relays {
		errs = append(errs, r.Close())
	}
	if m.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		errs = append(errs, m.http.Close(ctx))
		cancel()
	}
	if m.journal != nil {
		errs = append(errs, m.journal.Close())
	}
	if m.cache != nil {
		errs = append(errs, m.cache.Close())
	}
	return errors.Join(errs...)
}

// importFile is `varco-edge import`: it fills the cache from a file while
// the daemon is stopped (Badger allows one process per directory).
func importFile(ctx context.Context, cfg *config.Config, path string, progress io.Writer) error {
	log := slog.New(slog.NewTextHandler(progress, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	cache, err := badger.OpenCache(ctx, filepath.Join(cfg.DataDir, "cache"), badger.CacheOptions{Logger: log})
	if err != nil {
		return err
	}
	st, err := importer.Import(ctx, cache, path, importer.Options{
		TenantKey: cfg.CredentialKey, Tenant: cfg.Tenant, Site: cfg.Site,
		Progress: func(p importer.Progress) {
			if p.Total > 0 {
				fmt.Fprintf(progress, "\rimported %d records (%d%%)", p.Records, p.Bytes*100/p.Total)
			} else {
				fmt.Fprintf(progress, "\rimported %d records", p.Records)
			}
			if p.Done {
				fmt.Fprintln(progress)
			}
		},
	})
	if closeErr := cache.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(progress, "cache at version %d: %d records from %s (%s) in %s\n", st.Version, st.Records, path, st.Format, st.Took.Round(time.Millisecond))
	return nil
}
