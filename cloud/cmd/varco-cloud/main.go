// Command varco-cloud is the CRM service of varco: the JSON API for staff
// and integrations on PostgreSQL.
//
//	varco-cloud serve       migrate the database, run the MQTT side and serve HTTP
//	varco-cloud migrate     apply the database migrations and exit
//	varco-cloud bootstrap   create a tenant and its first admin
//	varco-cloud version     print the version
//
// Configuration comes from flags, with defaults from the environment:
// DATABASE_URL, VARCO_HTTP_ADDR, VARCO_LOG_LEVEL; for serve's broker
// VARCO_MQTT_EMBEDDED, VARCO_MQTT_ADDR, VARCO_MQTT_URL, VARCO_MQTT_USERNAME,
// VARCO_MQTT_PASSWORD (environment only), VARCO_MQTT_CLIENT_ID and
// VARCO_MQTT_PUBLIC_URL (see mqtt.go); and for bootstrap
// VARCO_BOOTSTRAP_TENANT_NAME, VARCO_BOOTSTRAP_TENANT_SLUG,
// VARCO_BOOTSTRAP_ADMIN_EMAIL, VARCO_BOOTSTRAP_ADMIN_NAME and
// VARCO_BOOTSTRAP_ADMIN_PASSWORD (the password only from the environment, so
// that it does not show in the process list).
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"varco.dev/cloud"
	cloudhttp "varco.dev/cloud/http"
	"varco.dev/cloud/postgres"
	"varco.dev/protocol"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "varco-cloud:", err)
		os.Exit(1)
	}
}

const usage = `usage: varco-cloud <command> [flags]

commands:
  serve       migrate the database and serve the HTTP API
  migrate     apply the database migrations and exit
  bootstrap   create a tenant and its first admin operator
  version     print the version (also --version)
`

// run dispatches a command line; main and the tests call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	m := NewMain(stderr)
	switch args[0] {
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "varco-cloud %s\n", protocol.Version)
		return nil
	case "serve":
		if err := m.ParseFlags(args[0], args[1:]); err != nil {
			return err
		}
		if err := m.Run(ctx); err != nil {
			m.Close()
			return err
		}
		<-ctx.Done()
		m.Logger.Info("shutting down")
		return m.Close()
	case "migrate":
		if err := m.ParseFlags(args[0], args[1:]); err != nil {
			return err
		}
		defer m.Close()
		return m.OpenDB(ctx)
	case "bootstrap":
		b := bootstrapConfig{
			TenantName: os.Getenv("VARCO_BOOTSTRAP_TENANT_NAME"), TenantSlug: os.Getenv("VARCO_BOOTSTRAP_TENANT_SLUG"),
			AdminEmail: os.Getenv("VARCO_BOOTSTRAP_ADMIN_EMAIL"), AdminName: os.Getenv("VARCO_BOOTSTRAP_ADMIN_NAME"),
			AdminPassword: os.Getenv("VARCO_BOOTSTRAP_ADMIN_PASSWORD"),
		}
		fs := m.flagSet(args[0])
		fs.StringVar(&b.TenantName, "tenant-name", b.TenantName, "tenant (club) name")
		fs.StringVar(&b.TenantSlug, "tenant-slug", b.TenantSlug, "tenant slug: lowercase letters, digits, dashes")
		fs.StringVar(&b.AdminEmail, "admin-email", b.AdminEmail, "first admin's e-mail")
		fs.StringVar(&b.AdminName, "admin-name", b.AdminName, "first admin's name")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		defer m.Close()
		if err := m.OpenDB(ctx); err != nil {
			return err
		}
		t, err := m.Bootstrap(ctx, b)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created tenant %s (id %d) with admin %s\n", t.Slug, t.ID, b.AdminEmail)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

// Config is the configuration of serve and migrate.
type Config struct {
	DatabaseURL string
	HTTPAddr    string
	LogLevel    string
	MQTT        MQTTConfig
}

// Main is the program: its configuration and the parts it wires together.
type Main struct {
	Config     Config
	Logger     *slog.Logger
	DB         *postgres.DB
	HTTPServer *cloudhttp.Server
	// Imports runs the background member imports; Close stops it.
	Imports *postgres.ImportService

	stderr io.Writer
	// configureDB, when set, adjusts the store before it opens (tests).
	configureDB func(*postgres.DB)
	// configureImports, when set, adjusts the import worker before it
	// starts (tests).
	configureImports func(*postgres.ImportService)
	// mqtt is the broker side, started by Run (mqtt.go).
	mqtt *mqttParts
}

// NewMain returns a Main configured from the environment.
func NewMain(stderr io.Writer) *Main {
	return &Main{
		Config: Config{
			DatabaseURL: os.Getenv("DATABASE_URL"),
			HTTPAddr:    cmp.Or(os.Getenv("VARCO_HTTP_ADDR"), ":8080"),
			LogLevel:    cmp.Or(os.Getenv("VARCO_LOG_LEVEL"), "info"),
			MQTT:        mqttConfigFromEnv(),
		},
		stderr: stderr,
		Logger: slog.New(slog.NewJSONHandler(stderr, nil)),
	}
}

func (m *Main) flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("varco-cloud "+name, flag.ContinueOnError)
	fs.SetOutput(m.stderr)
	fs.StringVar(&m.Config.DatabaseURL, "database-url", m.Config.DatabaseURL, "PostgreSQL URL (env DATABASE_URL)")
	fs.StringVar(&m.Config.LogLevel, "log-level", m.Config.LogLevel, "debug, info, warn or error (env VARCO_LOG_LEVEL)")
	return fs
}

// ParseFlags reads the flags of serve or migrate.
func (m *Main) ParseFlags(cmd string, args []string) error {
	fs := m.flagSet(cmd)
	if cmd == "serve" {
		fs.StringVar(&m.Config.HTTPAddr, "http-addr", m.Config.HTTPAddr, "HTTP listen address (env VARCO_HTTP_ADDR)")
		m.mqttFlags(fs)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(m.Config.LogLevel)); err != nil {
		return fmt.Errorf("log level %q: %w", m.Config.LogLevel, err)
	}
	m.Logger = slog.New(slog.NewJSONHandler(m.stderr, &slog.HandlerOptions{Level: level}))
	if m.Config.DatabaseURL == "" {
		return errors.New("a database URL is required: set DATABASE_URL or -database-url")
	}
	return nil
}

// OpenDB connects to the database and applies the migrations.
func (m *Main) OpenDB(ctx context.Context) error {
	if m.Config.DatabaseURL == "" {
		return errors.New("a database URL is required: set DATABASE_URL or -database-url")
	}
	m.DB = postgres.NewDB(m.Config.DatabaseURL)
	m.DB.Logger = m.Logger
	if m.configureDB != nil {
		m.configureDB(m.DB)
	}
	if err := m.DB.Open(ctx); err != nil {
		return err
	}
	return m.DB.Migrate(ctx)
}

// Run opens the database, migrates it, starts the import worker (which
// resumes the jobs a previous process left), the MQTT side (the embedded
// broker unless an external one is configured, and the cloud's client with
// the event ingester and the commander) and the HTTP server.
func (m *Main) Run(ctx context.Context) error {
	if err := m.OpenDB(ctx); err != nil {
		return err
	}
	m.Imports = postgres.NewImportService(m.DB)
	if m.configureImports != nil {
		m.configureImports(m.Imports)
	}
	if err := m.Imports.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	if err := m.startMQTT(); err != nil {
		return err
	}
	s := cloudhttp.NewServer()
	s.Addr = m.Config.HTTPAddr
	s.Logger = m.Logger
	s.Now = m.DB.Now
	s.DB = m.DB
	s.AuthService = postgres.NewAuthService(m.DB)
	s.TenantService = postgres.NewTenantService(m.DB)
	s.OperatorService = postgres.NewOperatorService(m.DB)
	s.SiteService = postgres.NewSiteService(m.DB)
	s.MemberService = postgres.NewMemberService(m.DB)
	s.ImportService = m.Imports
	s.CRMService = postgres.NewCRMService(m.DB)
	s.ActionService = postgres.NewActionService(m.DB)
	s.AccessService = postgres.NewAccessService(m.DB)
	s.AuditService = postgres.NewAuditService(m.DB)
	s.EdgeService = postgres.NewEdgeService(m.DB, m.mqtt.publicURL)
	s.CommandService = m.mqtt.commander
	s.PassageService = postgres.NewPassageService(m.DB)
	s.MustRegister(m.mqtt.metrics()...)
	if err := s.Open(); err != nil {
		return err
	}
	m.HTTPServer = s
	m.Logger.InfoContext(ctx, "varco-cloud serving", slog.String("version", protocol.Version), slog.String("url", s.URL()))
	return nil
}

// Close stops the HTTP server, then the MQTT side, then the import worker
// (its job in progress is released, to be resumed by the next process), and
// closes the database.
func (m *Main) Close() error {
	var err error
	if m.HTTPServer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = m.HTTPServer.Close(ctx)
		cancel()
		m.HTTPServer = nil
	}
	m.stopMQTT()
	if m.Imports != nil {
		m.Imports.Stop()
		m.Imports = nil
	}
	if m.DB != nil {
		m.DB.Close()
		m.DB = nil
	}
	return err
}

type bootstrapConfig struct {
	TenantName, TenantSlug, AdminEmail, AdminName, AdminPassword string
}

// Bootstrap creates a tenant and its first admin.
func (m *Main) Bootstrap(ctx context.Context, b bootstrapConfig) (*cloud.Tenant, error) {
	if b.AdminPassword == "" {
		return nil, errors.New("set VARCO_BOOTSTRAP_ADMIN_PASSWORD")
	}
	t := &cloud.Tenant{Name: b.TenantName, Slug: b.TenantSlug}
	admin := &cloud.Operator{Email: b.AdminEmail, Name: cmp.Or(b.AdminName, b.AdminEmail)}
	if err := postgres.NewTenantService(m.DB).CreateTenant(ctx, t, admin, b.AdminPassword); err != nil {
		if e := (*cloud.Error)(nil); errors.As(err, &e) {
			return nil, fmt.Errorf("bootstrap: %s %s", e.Field, e.Message)
		}
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	return t, nil
}
