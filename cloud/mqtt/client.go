package mqtt

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// ClientConfig configures the cloud's own connection to a broker: the
// embedded one (Broker.Addr) or an external Mosquitto.
type ClientConfig struct {
	// Broker is the broker's URL, "tcp://127.0.0.1:1884".
	Broker string
	// ClientID, Username and Password are the cloud's account (a Credential
	// with Cloud set on the embedded broker). Each replica of the cloud needs
	// its own ClientID: a broker disconnects the older of two clients with
	// one id.
	ClientID, Username, Password string
	// QueueLen is how many received messages wait for each handler; 256 when 0.
	QueueLen int
	Logger   *slog.Logger // slog.Default() when nil
}

// Handler handles one message received on a topic its filter matches. It
// runs on the handler's own goroutine, one message at a time, in the order
// the broker delivered them; ctx is Run's.
type Handler func(ctx context.Context, topic string, payload []byte)

// Client is varco-cloud's connection to the broker: one paho client with a
// clean session that resubscribes every filter on every connect, and
// dispatches each message to every handler whose filter matches, each
// handler on its own goroutine so that a slow one (a database write) does not
// hold up the others. Paho reconnects by itself; messages published while
// the cloud was disconnected are not replayed to it, so handlers must not
// depend on seeing every message: edges repeat what matters (births, journal
// batches until acknowledged, catch-up requests after a gap).
type Client struct {
	cfg    ClientConfig
	log    *slog.Logger
	routes []*route

	mu     gosync.Mutex
	client paho.Client
}

// route is one handler and its queue.
type route struct {
	filters []string
	qos     byte
	handle  Handler
	queue   chan received
	dropped atomic.Int64
}

type received struct{ topic, payload string }

// NewClient returns a client that Run connects.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Broker == "" || cfg.ClientID == "" {
		return nil, errors.New("mqtt client: a broker URL and a client id are required")
	}
	cfg.QueueLen = cmp.Or(cfg.QueueLen, 256)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	return &Client{cfg: cfg, log: cfg.Logger.With(slog.String("component", "mqtt-client"))}, nil
}

// Handle registers h for the messages on topics that filter matches (MQTT
// wildcards + and # allowed), subscribed at qos. Call it before Run.
func (c *Client) Handle(filter string, qos byte, h Handler) { c.HandleAll([]string{filter}, qos, h) }

// HandleAll registers h for the messages on topics that any of filters
// matches, subscribed at qos, on one goroutine: h sees them in the order the
// broker delivered them across all the filters (an edge's Birth before the
// events it sends after it). A message that several of the filters match is
// handled once. Call it before Run.
func (c *Client) HandleAll(filters []string, qos byte, h Handler) {
	c.routes = append(c.routes, &route{filters: filters, qos: qos, handle: h, queue: make(chan received, c.cfg.QueueLen)})
}

// Run connects and serves the handlers until ctx is done, then disconnects.
// It returns an error only if the first connection fails: a broken
// connection later is retried by paho for as long as ctx lasts.
func (c *Client) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg gosync.WaitGroup
	defer wg.Wait()
	for _, r := range c.routes {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case m := <-r.queue:
					r.handle(ctx, m.topic, []byte(m.payload))
				}
			}
		})
	}
	opts := paho.NewClientOptions().
		AddBroker(c.cfg.Broker).
		SetClientID(c.cfg.ClientID).
		SetUsername(c.cfg.Username).
		SetPassword(c.cfg.Password).
		SetCleanSession(true).
		SetOrderMatters(true).
		SetAutoReconnect(true).
		// A reconnect attempt every second at most: one client, so no load to
		// speak of, and paho's reconnect goroutine sleeps (uninterruptibly)
		// at most that long after Run has returned.
		SetMaxReconnectInterval(time.Second).
		SetConnectTimeout(10 * time.Second).
		SetWriteTimeout(5 * time.Second).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { c.dispatch(ctx, m) }).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			c.log.Warn("mqtt: connection lost", "broker", c.cfg.Broker, "err", err)
		}).
		SetOnConnectHandler(func(pc paho.Client) {
			if len(c.routes) == 0 {
				return
			}
			subs := make(map[string]byte, len(c.routes))
			for _, r := range c.routes {
				for _, f := range r.filters {
					subs[f] = max(subs[f], r.qos)
				}
			}
			tok := pc.SubscribeMultiple(subs, nil)
			select {
			case <-tok.Done():
				if err := tok.Error(); err != nil {
					c.log.Error("mqtt: subscribe", "err", err)
				}
			case <-ctx.Done():
			}
		})
	pc := paho.NewClient(opts)
	if err := wait(ctx, pc.Connect()); err != nil {
		return fmt.Errorf("connect to broker %s: %w", c.cfg.Broker, err)
	}
	c.mu.Lock()
	c.client = pc
	c.mu.Unlock()
	<-ctx.Done()
	c.mu.Lock()
	c.client = nil
	c.mu.Unlock()
	pc.Disconnect(250)
	return nil
}

// dispatch queues m for every matching handler. A full queue drops the
// message for that handler, with a log: paho's reader must not block, and
// every message the cloud receives is repeated by its edge until handled.
func (c *Client) dispatch(ctx context.Context, m paho.Message) {
	topic, payload := m.Topic(), string(m.Payload())
	for _, r := range c.routes {
		if !r.matches(topic) {
			continue
		}
		select {
		case r.queue <- received{topic, payload}:
		case <-ctx.Done():
			return
		default:
			r.dropped.Add(1)
			c.log.Warn("mqtt: handler queue full, message dropped", "filters", r.filters, "topic", topic)
		}
	}
}

// matches reports whether one of r's filters matches topic.
func (r *route) matches(topic string) bool {
	for _, f := range r.filters {
		if MatchTopic(f, topic) {
			return true
		}
	}
	return false
}

// ErrNotConnected is returned by Publish before Run connected or after it returned.
var ErrNotConnected = errors.New("mqtt: not connected")

// Publish publishes payload and waits until the broker has it (PUBACK at
// QoS 1) or ctx is done.
func (c *Client) Publish(ctx context.Context, topic string, qos byte, retained bool, payload []byte) error {
	tok, err := c.PublishAsync(topic, qos, retained, payload)
	if err != nil {
		return err
	}
	return Wait(ctx, tok)
}

// PublishAsync starts a publish and returns its token, so that a batch can
// be sent before waiting for the first acknowledgement.
func (c *Client) PublishAsync(topic string, qos byte, retained bool, payload []byte) (paho.Token, error) {
	c.mu.Lock()
	pc := c.client
	c.mu.Unlock()
	if pc == nil || !pc.IsConnectionOpen() {
		return nil, ErrNotConnected
	}
	return pc.Publish(topic, qos, retained, payload), nil
}

// Wait waits for a paho token or ctx, and returns the token's error.
func Wait(ctx context.Context, tok paho.Token) error { return wait(ctx, tok) }

func wait(ctx context.Context, tok paho.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// MatchTopic reports whether an MQTT topic filter (with + and # wildcards)
// matches a topic name. Topics starting with '$' match only filters that
// name them (MQTT 3.1.1 §4.7.2).
func MatchTopic(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && !strings.HasPrefix(filter, "$") {
		return false
	}
	for {
		f, frest, fmore := strings.Cut(filter, "/")
		if f == "#" {
			return true
		}
		t, trest, tmore := strings.Cut(topic, "/")
		if f != "+" && f != t {
			return false
		}
		if !fmore || !tmore {
			// "a/#" also matches "a" (the parent level).
			return fmore == tmore || (fmore && frest == "#")
		}
		filter, topic = frest, trest
	}
}
