// Package config loads and checks varco-edge's configuration file (TOML).
//
// The daemon never starts half-configured: Load returns every problem it
// finds, each naming the key (as a path such as serial[0].reader[1].address)
// and what is wrong with it, and an unknown key is an error too, so a typo
// does not silently fall back to a default. edge.example.toml beside this
// file documents every key.
package config

import (
	"cmp"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"varco.dev/protocol/sync"
	"varco.dev/protocol/wiegand"
)

// Config is the whole configuration of one edge (one turnstile controller).
type Config struct {
	EdgeID   string `toml:"edge_id"`
	Tenant   string `toml:"tenant"`
	Site     string `toml:"site"`
	DataDir  string `toml:"data_dir"`
	LogLevel string `toml:"log_level"`
	HTTPAddr string `toml:"http_addr"`
	// IdleText is what every reader display shows between passages.
	IdleText string `toml:"idle_text"`
	// CredentialKeyFile holds the tenant's credential hashing key in hex: the
	// edge hashes every credential it reads with it before the lookup, as
	// the cloud did when it published the records (sync.CredentialHash).
	CredentialKeyFile string `toml:"credential_key_file"`
	// Format37 says how 37-bit Wiegand frames are read: "H10304" (facility
	// code + number, the default) or "H10302" (number only). It must be the
	// same on every edge of a site and in the cloud's card import.
	Format37 string `toml:"wiegand_37bit_format"`

	Journal Journal         `toml:"journal"`
	MQTT    MQTT            `toml:"mqtt"`
	Serial  []SerialPort    `toml:"serial"`
	Wiegand []WiegandReader `toml:"wiegand"`

	// Filled by Load from the fields above.
	CredentialKey []byte         `toml:"-"`
	Level         slog.Level     `toml:"-"`
	Hint37        wiegand.Format `toml:"-"`
}

// Journal sets how passages are made durable.
type Journal struct {
	// Fsync is "always" (every event synced before the reader gets its
	// answer), "batch" (synced every BatchInterval: a power cut loses at most
	// that much, a crash of the daemon nothing) or "never" (left to the OS).
	Fsync         string        `toml:"fsync"`
	BatchInterval time.Duration `toml:"batch_interval"`
}

// MQTT is how the edge reaches the cloud. Without a broker the edge runs on
// its own: it decides from its cache and keeps every passage in its journal.
type MQTT struct {
	// Broker is the broker's URL, tcp://host:port or ssl://host:port.
	Broker   string `toml:"broker"`
	Username string `toml:"username"`
	// PasswordFile holds the edge's own broker password.
	PasswordFile string `toml:"password_file"`
	// CloudKeys are the cloud's Ed25519 public keys, each a line
	// "<key-id>=<base64 public key>" as GET /api/v1/sync/keys gives it
	// (config_line). The edge accepts a message from the cloud only if it is
	// signed by one of them: several during a key rotation.
	CloudKeys []string `toml:"cloud_keys"`

	// Keys is CloudKeys parsed: public key by key id. Filled by Parse.
	Keys map[string]ed25519.PublicKey `toml:"-"`
}

// SerialPort is one RS-485 line with one or more OSDP readers on it.
type SerialPort struct {
	Port string `toml:"port"`
	Baud int    `toml:"baud"`
	// PollInterval is the pause between two polls of the same reader; zero
	// picks one from the baud rate (see the osdp package).
	PollInterval time.Duration `toml:"poll_interval"`
	ReplyTimeout time.Duration `toml:"reply_timeout"`
	Retries      int           `toml:"retries"`
	Readers      []OSDPReader  `toml:"reader"`
}

// Gate is what a reader guards and how a grant opens it.
type Gate struct {
	ID string `toml:"id"`
	// Device is the gate's device type: entrance, exit, door, spa, pool, locker.
	Device string `toml:"device"`
	// RelayPin is a GPIO pin name (e.g. "GPIO17") pulsed on a grant.
	RelayPin       string        `toml:"relay_pin"`
	RelayActiveLow bool          `toml:"relay_active_low"`
	Pulse          time.Duration `toml:"pulse"`
	// DoorPin and ExitButtonPin are optional GPIO inputs: the door-position
	// contact and the request-to-exit button.
	DoorPin       string        `toml:"door_pin"`
	ExitButtonPin string        `toml:"exit_button_pin"`
	HeldOpenAfter time.Duration `toml:"held_open_after"`

	DeviceType sync.DeviceType `toml:"-"`
}

// OSDPReader is one OSDP reader (peripheral device) on a serial line.
type OSDPReader struct {
	Gate
	Address int `toml:"address"`
	// Output is the reader's OSDP output number pulsed on a grant, -1 for
	// none (the default when RelayPin is set).
	Output *int `toml:"output"`
}

// WiegandReader is a reader wired to two GPIO inputs.
type WiegandReader struct {
	Gate
	D0 string `toml:"d0_pin"`
	D1 string `toml:"d1_pin"`
}

// Defaults applied where a key is absent.
const (
	DefaultBaud          = 115200
	DefaultPulse         = 3 * time.Second
	DefaultHeldOpenAfter = 30 * time.Second
	DefaultReplyTimeout  = 200 * time.Millisecond // OSDP 2.2 §5.7: a PD answers within 200 ms
	DefaultRetries       = 3
	DefaultHTTPAddr      = "127.0.0.1:9464"
	DefaultIdleText      = "Welcome"
	DefaultBatchInterval = 200 * time.Millisecond
)

var bauds = []int{9600, 19200, 38400, 57600, 115200}

// Load reads, defaults and checks the file at path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if cfg.CredentialKeyFile != "" {
		key, err := readKey(cfg.CredentialKeyFile)
		if err != nil {
			return nil, fmt.Errorf("config %s: credential_key_file: %w", path, err)
		}
		cfg.CredentialKey = key
	}
	return cfg, nil
}

// Parse decodes TOML text and checks it. Files it names are not read.
func Parse(text []byte) (*Config, error) {
	var cfg Config
	md, err := toml.Decode(string(text), &cfg)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, key := range md.Undecoded() {
		errs = append(errs, fmt.Errorf("%s: unknown key", key))
	}
	cfg.setDefaults()
	errs = append(errs, cfg.check()...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &cfg, nil
}

func (c *Config) setDefaults() {
	c.LogLevel = cmp.Or(c.LogLevel, "info")
	c.HTTPAddr = cmp.Or(c.HTTPAddr, DefaultHTTPAddr)
	c.IdleText = cmp.Or(c.IdleText, DefaultIdleText)
	c.Format37 = cmp.Or(c.Format37, "H10304")
	c.Journal.Fsync = cmp.Or(c.Journal.Fsync, "batch")
	c.Journal.BatchInterval = cmp.Or(c.Journal.BatchInterval, DefaultBatchInterval)
	for i := range c.Serial {
		p := &c.Serial[i]
		p.Baud = cmp.Or(p.Baud, DefaultBaud)
		p.ReplyTimeout = cmp.Or(p.ReplyTimeout, DefaultReplyTimeout)
		p.Retries = cmp.Or(p.Retries, DefaultRetries)
		for j := range p.Readers {
			r := &p.Readers[j]
			r.Gate.setDefaults()
			if r.Output == nil {
				out := 0
				if r.RelayPin != "" {
					out = -1
				}
				r.Output = &out
			}
		}
	}
	for i := range c.Wiegand {
		c.Wiegand[i].Gate.setDefaults()
	}
}

func (g *Gate) setDefaults() {
	g.Pulse = cmp.Or(g.Pulse, DefaultPulse)
	g.HeldOpenAfter = cmp.Or(g.HeldOpenAfter, DefaultHeldOpenAfter)
}

// check returns one error per problem, each starting with the key's path.
func (c *Config) check() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	for _, f := range []struct{ key, id string }{{"edge_id", c.EdgeID}, {"tenant", c.Tenant}, {"site", c.Site}} {
		if err := sync.ValidateID(f.id); err != nil {
			bad(f.key, "%v", err)
		}
	}
	if c.DataDir == "" {
		bad("data_dir", "required: the directory of the cache and the journal")
	}
	if c.CredentialKeyFile == "" {
		bad("credential_key_file", "required: the tenant's credential hashing key")
	}
	if err := c.Level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		bad("log_level", "%q is not one of debug, info, warn, error", c.LogLevel)
	}
	switch strings.ToUpper(c.Format37) {
	case "H10304":
		c.Hint37 = wiegand.H10304
	case "H10302":
		c.Hint37 = wiegand.H10302
	default:
		bad("wiegand_37bit_format", "%q is not H10304 or H10302", c.Format37)
	}
	switch c.Journal.Fsync {
	case "always", "batch", "never":
	default:
		bad("journal.fsync", "%q is not always, batch or never", c.Journal.Fsync)
	}
	if c.Journal.BatchInterval < 0 || c.Journal.BatchInterval > 10*time.Second {
		bad("journal.batch_interval", "%v is outside 0..10s", c.Journal.BatchInterval)
	}
	if c.MQTT.Broker != "" {
		if u, err := url.Parse(c.MQTT.Broker); err != nil || (u.Scheme != "tcp" && u.Scheme != "ssl" && u.Scheme != "mqtt" && u.Scheme != "mqtts") || u.Host == "" {
			bad("mqtt.broker", "%q is not a broker URL like tcp://host:1884", c.MQTT.Broker)
		}
		if c.MQTT.Username == "" || c.MQTT.PasswordFile == "" {
			bad("mqtt", "username and password_file are required with a broker")
		}
		if len(c.MQTT.CloudKeys) == 0 {
			bad("mqtt.cloud_keys", "required with a broker: the cloud's public keys, \"<key-id>=<base64>\" (GET /api/v1/sync/keys)")
		}
	}
	c.MQTT.Keys = map[string]ed25519.PublicKey{}
	for i, line := range c.MQTT.CloudKeys {
		key := fmt.Sprintf("mqtt.cloud_keys[%d]", i)
		id, pub, err := ParseCloudKey(line)
		switch {
		case err != nil:
			bad(key, "%v", err)
		case c.MQTT.Keys[id] != nil:
			bad(key, "key id %q is listed twice", id)
		default:
			c.MQTT.Keys[id] = pub
		}
	}
	if len(c.Serial) == 0 && len(c.Wiegand) == 0 {
		bad("serial", "no readers: configure at least one [[serial]] line or [[wiegand]] reader")
	}

	gateIDs := map[string]string{} // gate id -> key that defined it
	pins := map[string]string{}    // GPIO pin -> key that uses it
	usePin := func(key, pin string) {
		if pin == "" {
			return
		}
		if prev, dup := pins[pin]; dup {
			bad(key, "pin %s is already used by %s", pin, prev)
			return
		}
		pins[pin] = key
	}
	checkGate := func(key string, g *Gate) {
		if err := sync.ValidateID(g.ID); err != nil {
			bad(key+".id", "%v", err)
		} else if prev, dup := gateIDs[g.ID]; dup {
			bad(key+".id", "%q is already used by %s", g.ID, prev)
		} else {
			gateIDs[g.ID] = key
		}
		d, err := sync.ParseDeviceType(g.Device)
		if err != nil {
			bad(key+".device", "%q is not a device type (entrance, exit, door, spa, pool, locker)", g.Device)
		}
		g.DeviceType = d
		if g.Pulse < 100*time.Millisecond || g.Pulse > time.Minute {
			bad(key+".pulse", "%v is outside 100ms..1m", g.Pulse)
		}
		if g.HeldOpenAfter < time.Second || g.HeldOpenAfter > time.Hour {
			bad(key+".held_open_after", "%v is outside 1s..1h", g.HeldOpenAfter)
		}
		usePin(key+".relay_pin", g.RelayPin)
		usePin(key+".door_pin", g.DoorPin)
		usePin(key+".exit_button_pin", g.ExitButtonPin)
	}

	ports := map[string]bool{}
	for i := range c.Serial {
		p := &c.Serial[i]
		key := fmt.Sprintf("serial[%d]", i)
		if p.Port == "" {
			bad(key+".port", "required: the serial device, e.g. /dev/ttyUSB0")
		} else if ports[p.Port] {
			bad(key+".port", "%s is configured twice", p.Port)
		}
		ports[p.Port] = true
		if !slices.Contains(bauds, p.Baud) {
			bad(key+".baud", "%d is not one of %v", p.Baud, bauds)
		}
		if p.PollInterval < 0 || p.PollInterval > time.Second {
			bad(key+".poll_interval", "%v is outside 0..1s (0 picks one from the baud rate)", p.PollInterval)
		}
		if p.ReplyTimeout < 10*time.Millisecond || p.ReplyTimeout > time.Second {
			bad(key+".reply_timeout", "%v is outside 10ms..1s", p.ReplyTimeout)
		}
		if p.Retries < 0 || p.Retries > 10 {
			bad(key+".retries", "%d is outside 0..10", p.Retries)
		}
		if len(p.Readers) == 0 {
			bad(key+".reader", "no readers on %s", cmp.Or(p.Port, "this line"))
		}
		addrs := map[int]bool{}
		for j := range p.Readers {
			r := &p.Readers[j]
			rkey := fmt.Sprintf("%s.reader[%d]", key, j)
			checkGate(rkey, &r.Gate)
			if r.Address < 0 || r.Address > 0x7E {
				bad(rkey+".address", "%d is outside 0..126", r.Address)
			} else if addrs[r.Address] {
				bad(rkey+".address", "%d is used twice on %s", r.Address, p.Port)
			}
			addrs[r.Address] = true
			if *r.Output < -1 || *r.Output > 255 {
				bad(rkey+".output", "%d is outside -1..255", *r.Output)
			}
		}
	}
	for i := range c.Wiegand {
		w := &c.Wiegand[i]
		key := fmt.Sprintf("wiegand[%d]", i)
		checkGate(key, &w.Gate)
		if w.D0 == "" || w.D1 == "" {
			bad(key, "d0_pin and d1_pin are both required")
		}
		usePin(key+".d0_pin", w.D0)
		usePin(key+".d1_pin", w.D1)
		if w.RelayPin == "" {
			bad(key+".relay_pin", "required: a Wiegand reader has no output of its own")
		}
	}
	return errs
}

// ParseCloudKey parses a cloud_keys line, "<key-id>=<base64 std public
// key>": an id in the sync protocol's charset and a 32-byte Ed25519 key.
func ParseCloudKey(line string) (id string, key ed25519.PublicKey, err error) {
	id, b64, ok := strings.Cut(strings.TrimSpace(line), "=")
	if !ok {
		return "", nil, fmt.Errorf("%q is not <key-id>=<base64 Ed25519 public key>", line)
	}
	if err := sync.ValidateID(id); err != nil {
		return "", nil, fmt.Errorf("key id: %w", err)
	}
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", nil, fmt.Errorf("key %s: not standard base64: %w", id, err)
	}
	if len(b) != ed25519.PublicKeySize {
		return "", nil, fmt.Errorf("key %s: %d bytes, want an Ed25519 public key of %d", id, len(b), ed25519.PublicKeySize)
	}
	return id, ed25519.PublicKey(b), nil
}

// readKey reads a hex key of at least 16 bytes from a file.
func readKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%s: not hex: %w", path, err)
	}
	if len(key) < 16 {
		return nil, fmt.Errorf("%s: key is %d bytes, want at least 16", path, len(key))
	}
	return key, nil
}
