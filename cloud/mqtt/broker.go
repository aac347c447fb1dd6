package mqtt

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	gosync "sync"

	mochi "github.com/mochi-mqtt/server/v2"
)

// DefaultAddr is where the embedded broker listens unless configured: not
// 1883, which a system Mosquitto owns on our machines.
const DefaultAddr = "127.0.0.1:1884"

// DefaultMaxConcurrentAuth bounds the argon2id checks that run at once.
const DefaultMaxConcurrentAuth = 4

// Config configures a Broker.
type Config struct {
	Addr              string       // TCP address; DefaultAddr when empty, port 0 for any free port
	Credentials       Credentials  // required
	Logger            *slog.Logger // slog.Default() when nil; mochi's logs go here too
	MaxConcurrentAuth int          // DefaultMaxConcurrentAuth when 0
}

// Broker is the embedded MQTT broker.
type Broker struct {
	cfg Config
	log *slog.Logger

	mu      gosync.Mutex
	server  *mochi.Server
	tcp     *listener
	cancel  context.CancelFunc
	stopped chan struct{} // closed when the server has shut down
}

// New validates cfg and returns a Broker that Start will start.
func New(cfg Config) (*Broker, error) {
	cfg.Addr = cmp.Or(cfg.Addr, DefaultAddr)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	cfg.MaxConcurrentAuth = cmp.Or(cfg.MaxConcurrentAuth, DefaultMaxConcurrentAuth)
	if cfg.Credentials == nil {
		return nil, errors.New("mqtt: no Credentials")
	}
	if cfg.MaxConcurrentAuth < 0 {
		return nil, fmt.Errorf("mqtt: MaxConcurrentAuth %d", cfg.MaxConcurrentAuth)
	}
	return &Broker{cfg: cfg, log: cfg.Logger.With(slog.String("component", "mqtt"))}, nil
}

// Start binds the address and serves clients until Stop is called or ctx is
// cancelled. It returns once the broker accepts connections.
func (b *Broker) Start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.server != nil {
		return errors.New("mqtt: broker already started")
	}
	ctx, cancel := context.WithCancel(ctx)
	server := mochi.New(&mochi.Options{Logger: b.log})
	h := &hook{
		creds:   b.cfg.Credentials,
		log:     b.log,
		ctx:     ctx,
		sem:     make(chan struct{}, b.cfg.MaxConcurrentAuth),
		clients: server.Clients,
	}
	if err := server.AddHook(h, nil); err != nil {
		cancel()
		return fmt.Errorf("mqtt: %w", err)
	}
	tcp := newListener("tcp", b.cfg.Addr)
	if err := server.AddListener(tcp); err != nil {
		cancel()
		return fmt.Errorf("mqtt: listen on %s: %w", b.cfg.Addr, err)
	}
	if err := server.Serve(); err != nil {
		cancel()
		_ = server.Close()
		return fmt.Errorf("mqtt: serve: %w", err)
	}
	stopped := make(chan struct{})
	b.server, b.tcp, b.cancel, b.stopped = server, tcp, cancel, stopped
	go func() {
		<-ctx.Done()
		_ = server.Close() // disconnects every client and waits for them
		b.log.Info("mqtt: broker stopped")
		close(stopped)
	}()
	b.log.InfoContext(ctx, "mqtt: broker started", slog.String("addr", tcp.Address()))
	return nil
}

// Addr is the address the broker listens on, with the actual port when
// Config.Addr had port 0. It is empty before Start.
func (b *Broker) Addr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tcp == nil {
		return ""
	}
	return b.tcp.Address()
}

// Stop disconnects every client, closes the listener and returns when the
// broker has shut down. It may be called more than once, and before Start.
func (b *Broker) Stop() {
	b.mu.Lock()
	cancel, stopped := b.cancel, b.stopped
	b.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-stopped
}
