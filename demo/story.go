package demo

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"varco.dev/firmware-sim/scenario"
	"varco.dev/firmware-sim/sim"
)

// The demo club.
const (
	tenantSlug    = "demo-club"
	adminEmail    = "reception@demo-club.example"
	adminPassword = "demo-password-not-secret"
	edgeCode      = "milano-gate-1"
	blockText     = "See reception: medical certificate expired" // four rows of 16
)

// member is a member of the demo club and the card they carry (H10301).
type member struct {
	first, last  string
	facility     int
	card         int
	id           int64
	membershipID int64
}

// readerNames names the simulated readers by their OSDP address.
var readerNames = map[int]string{1: "entrance", 2: "exit"}

// prepare starts everything: database, cloud, the club's data, readers, edge.
func (d *run) prepare(ctx context.Context) error {
	cfg := d.cfg
	if err := os.RemoveAll(cfg.WorkDir); err != nil {
		return fmt.Errorf("empty the work directory: %w", err)
	}
	if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
		return fmt.Errorf("work directory: %w", err)
	}

	d.heading("PostgreSQL")
	db, err := openDatabase(ctx, cfg.AdminURL, cfg.Throwaway, cmp.Or(cfg.Database, "varco_demo"), filepath.Join(cfg.WorkDir, "pg"), d.say)
	if err != nil {
		return err
	}
	d.db = db
	d.onCleanup(func(ctx context.Context) error { fmt.Fprint(d.out, "database "); return db.cleanup(ctx) })
	d.say("database at %s", redact(db.URL))

	d.heading("varco-cloud with its embedded MQTT broker")
	httpPort, err := freePort()
	if err != nil {
		return err
	}
	mqttPort, err := freePort()
	if err != nil {
		return err
	}
	d.cloudEnv = append([]string{
		"DATABASE_URL=" + db.URL,
		fmt.Sprintf("VARCO_HTTP_ADDR=127.0.0.1:%d", httpPort),
		fmt.Sprintf("VARCO_MQTT_ADDR=127.0.0.1:%d", mqttPort),
		"VARCO_MQTT_EMBEDDED=true",
		"VARCO_LOG_LEVEL=info",
	}, d.cloudEnv...) // what a test set wins: exec keeps the last of a name
	d.onCleanup(d.stopProcesses)
	d.api = newAPI(fmt.Sprintf("http://127.0.0.1:%d", httpPort))
	if err := d.startCloud(ctx); err != nil {
		return err
	}
	d.say("API on %s, MQTT broker on 127.0.0.1:%d, logs in %s", d.api.base, mqttPort, filepath.Join(cfg.WorkDir, "varco-cloud.log"))

	d.heading("the club: a tenant, a site, two gates, members and an edge")
	out, err := runCommand(ctx, filepath.Join(cfg.BinDir, "varco-cloud"), []string{"bootstrap", "--tenant-name", "Demo Club", "--tenant-slug", tenantSlug,
		"--admin-email", adminEmail, "--admin-name", "Reception"}, append(d.cloudEnv, "VARCO_BOOTSTRAP_ADMIN_PASSWORD="+adminPassword))
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	d.say("%s", lines[len(lines)-1]) // the logs before it went to the log
	if err := d.api.login(ctx, adminEmail, adminPassword); err != nil {
		return err
	}
	return d.seed(ctx)
}

// club is what seed created.
type club struct {
	siteID     int64
	blockType  int64 // the "Medical certificate" action type
	doneID     int64 // the outcome "Done"
	anna, luca member
	edgeID     int64
}

// seed creates the club's data through the API, as staff would, and starts
// the readers and the edge.
func (d *run) seed(ctx context.Context) error {
	a := d.api
	c := &d.club
	var err error
	if c.siteID, err = a.create(ctx, "/api/v1/sites", map[string]any{"name": "Milano Centro", "timezone": "Europe/Rome"}); err != nil {
		return err
	}
	for _, g := range []struct{ name, device string }{{"Entrance turnstile", "entrance"}, {"Exit turnstile", "exit"}} {
		if _, err := a.create(ctx, "/api/v1/gates", map[string]any{"site_id": c.siteID, "name": g.name, "device_type": g.device}); err != nil {
			return err
		}
	}
	if c.blockType, err = a.create(ctx, "/api/v1/crm/action-types", map[string]any{
		"name": "Medical certificate", "colour": "#C62828", "active": true,
		"description":   "The member's medical certificate has expired: reception checks the new one.",
		"access_action": "message_block", "device_types": []string{"entrance"}, "display_message": blockText,
	}); err != nil {
		return err
	}
	var crm struct {
		Outcomes []struct {
			ID   int64  `json:"id"`
			Name string `json:"name"`
		} `json:"outcomes"`
	}
	if err := a.do(ctx, http.MethodGet, "/api/v1/crm/config", nil, &crm); err != nil {
		return err
	}
	for _, o := range crm.Outcomes {
		if o.Name == "Done" {
			c.doneID = o.ID
		}
	}
	if c.doneID == 0 {
		return fmt.Errorf("the CRM configuration has no outcome Done")
	}
	today := time.Now()
	c.anna = member{first: "Anna", last: "Rossi", facility: 118, card: 1603}
	c.luca = member{first: "Luca", last: "Bianchi", facility: 118, card: 1604}
	for _, m := range []*member{&c.anna, &c.luca} {
		if m.id, err = a.create(ctx, "/api/v1/members", map[string]any{"kind": "person", "first_name": m.first, "last_name": m.last}); err != nil {
			return err
		}
		if _, err := a.create(ctx, fmt.Sprintf("/api/v1/members/%d/credentials", m.id), map[string]any{"key": fmt.Sprintf("card:%d:%d", m.facility, m.card)}); err != nil {
			return err
		}
		if m.membershipID, err = a.create(ctx, fmt.Sprintf("/api/v1/members/%d/memberships", m.id), map[string]any{
			"name": "Annual", "starts_on": today.AddDate(0, -1, 0).Format(time.DateOnly), "ends_on": today.AddDate(0, 11, 0).Format(time.DateOnly),
			"device_types": []string{"entrance", "exit"},
		}); err != nil {
			return err
		}
		d.say("member %s %s (id %d), card %d:%d, annual membership", m.first, m.last, m.id, m.facility, m.card)
	}
	return d.setUpEdge(ctx)
}

// edgeRegistration is the cloud's answer to registering an edge.
type edgeRegistration struct {
	Edge struct {
		ID int64 `json:"id"`
	} `json:"edge"`
	Password string `json:"mqtt_password"`
}

// edgeConfig is what the cloud tells an installer to put in edge.toml.
type edgeConfig struct {
	Tenant        string   `json:"tenant"`
	Site          string   `json:"site"`
	EdgeID        string   `json:"edge_id"`
	CredentialKey string   `json:"credential_key"` // hex
	CloudKeys     []string `json:"cloud_keys"`
	MQTTBroker    string   `json:"mqtt_broker"`
	MQTTUsername  string   `json:"mqtt_username"`
}

// startCloud starts varco-cloud serve and waits for its /healthz.
func (d *run) startCloud(ctx context.Context) error {
	p, err := d.startProcess("varco-cloud", []string{"serve"}, d.cloudEnv)
	if err != nil {
		return err
	}
	d.cloud = p
	return d.waitFor(ctx, "varco-cloud's /healthz", time.Minute, 50*time.Millisecond, func(ctx context.Context) (bool, error) {
		return d.api.healthy(ctx), nil
	})
}

// startEdge starts varco-edge on the readers' line.
func (d *run) startEdge(context.Context) error {
	p, err := d.startProcess("varco-edge", []string{"run", "--config", filepath.Join(d.cfg.WorkDir, "edge.toml")}, nil)
	d.edge = p
	return err
}

// setUpEdge registers the edge in the cloud, writes its configuration,
// starts the simulated readers and varco-edge on their line.
func (d *run) setUpEdge(ctx context.Context) error {
	a, c, dir := d.api, &d.club, d.cfg.WorkDir
	var reg edgeRegistration
	if err := a.do(ctx, http.MethodPost, "/api/v1/edges", map[string]any{"site_id": c.siteID, "code": edgeCode, "name": "Entrance controller"}, &reg); err != nil {
		return err
	}
	c.edgeID = reg.Edge.ID
	var ec edgeConfig
	if err := a.do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/edges/%d/config", c.edgeID), nil, &ec); err != nil {
		return err
	}
	if _, err := hex.DecodeString(ec.CredentialKey); err != nil {
		return fmt.Errorf("edge config: credential key: %w", err)
	}
	httpPort, err := freePort()
	if err != nil {
		return err
	}
	d.edgeHTTP = fmt.Sprintf("127.0.0.1:%d", httpPort)
	broker, password := ec.MQTTBroker, reg.Password
	if d.edgeAccount != nil { // an external broker has its own accounts
		if broker, password, err = d.edgeAccount(ctx, ec); err != nil {
			return err
		}
	}
	keys, _ := json.Marshal(ec.CloudKeys) // a TOML array of strings is a JSON one
	pulse := cmp.Or(d.cfg.Pulse, time.Second)
	files := map[string]string{
		"credential.key": ec.CredentialKey + "\n",
		"mqtt.password":  password + "\n",
		"edge.toml": fmt.Sprintf(`# varco-edge of the demo, written by varco-demo from GET /api/v1/edges/%d/config
edge_id = %q
tenant = %q
site = %q
data_dir = %q
credential_key_file = %q
http_addr = %q
idle_text = "Welcome to varco"

[[serial]]
port = %q
baud = 115200

  [[serial.reader]]
  id = "entrance-1"
  address = 1
  device = "entrance"
  pulse = %q

  [[serial.reader]]
  id = "exit-1"
  address = 2
  device = "exit"
  pulse = %q

[mqtt]
broker = %q
username = %q
password_file = %q
cloud_keys = %s
`, c.edgeID, ec.EdgeID, ec.Tenant, ec.Site, filepath.Join(dir, "edge-data"), filepath.Join(dir, "credential.key"), d.edgeHTTP,
			filepath.Join(dir, "ttyOSDP"), pulse.String(), pulse.String(), broker, ec.MQTTUsername, filepath.Join(dir, "mqtt.password"), keys),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	d.say("edge %s registered (MQTT user %s); its config: %s", ec.EdgeID, ec.MQTTUsername, filepath.Join(dir, "edge.toml"))

	d.heading("varco-sim: two OSDP readers on a pseudo-terminal; varco-edge on that line")
	readers := sim.Readers(2)
	for i := range readers {
		readers[i].Rows, readers[i].Cols = 4, 16 // the largest display OSDP's PDCAP describes
	}
	s, err := sim.New(sim.Config{Readers: readers, Baud: 115200, Link: filepath.Join(dir, "ttyOSDP")})
	if err != nil {
		return fmt.Errorf("simulated readers: %w", err)
	}
	d.sim = s
	d.onCleanup(func(ctx context.Context) error {
		// The edge goes first: it should not see its readers vanish.
		err := d.stopProcess(&d.edge)
		fmt.Fprint(d.out, "readers ")
		return errors.Join(err, s.Close())
	})
	if err := d.startEdge(ctx); err != nil {
		return err
	}
	if err := d.waitFor(ctx, "varco-edge polling both readers", time.Minute, 50*time.Millisecond, func(context.Context) (bool, error) {
		return sim.All(sim.Polled(1, 1), sim.Polled(2, 1))(s.State()), nil
	}); err != nil {
		return err
	}
	d.say("readers online: the edge polls them over OSDP at 115200 baud")
	if err := d.waitFor(ctx, "the edge's cache holding the club's members", time.Minute, 20*time.Millisecond, func(ctx context.Context) (bool, error) {
		h, err := d.edgeHealth(ctx)
		return err == nil && h.CacheVersion > 0, err
	}); err != nil {
		return err
	}
	h, _ := d.edgeHealth(ctx)
	d.say("the edge synced from the cloud over MQTT: cache at version %d", h.CacheVersion)
	d.runner = scenario.NewRunner(s, "demo", 5*time.Second)
	return nil
}
