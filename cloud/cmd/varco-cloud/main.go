// Command varco-cloud is the CRM service of varco: the JSON API for staff
// and integrations on PostgreSQL.
//
//	varco-cloud serve       migrate the database, run the MQTT side and serve HTTP
//	varco-cloud migrate     apply the database migrations and exit
//	varco-cloud bootstrap   create a tenant and its first admin
//	varco-cloud mosquitto-config [-dir DIR] USERS
//	                        write an external Mosquitto's acl and passwd files
//	varco-cloud version     print the version
//
// Configuration comes from flags, with defaults from the environment:
// DATABASE_URL, VARCO_HTTP_ADDR, VARCO_LOG_LEVEL; the messaging gateways
// VARCO_SMTP_ADDR, VARCO_SMTP_FROM, VARCO_SMTP_USERNAME, VARCO_SMTP_TLS,
// VARCO_SMS_URL, VARCO_SMS_ACCOUNT_SID, VARCO_SMS_FROM, VARCO_PUSH_URL,
// VARCO_PUSH_PROJECT, VARCO_UNSUBSCRIBE_URL, with the secrets
// VARCO_SMTP_PASSWORD, VARCO_SMS_AUTH_TOKEN and VARCO_PUSH_TOKEN from the
// environment only; VARCO_SCHEDULER; for serve's broker
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
	"net/mail"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"varco.dev/cloud"
	"varco.dev/cloud/fcm"
	cloudhttp "varco.dev/cloud/http"
	"varco.dev/cloud/postgres"
	cloudriver "varco.dev/cloud/river"
	"varco.dev/cloud/smtp"
	"varco.dev/cloud/twilio"
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
  mosquitto-config [-dir DIR] USERS
              write the acl and passwd files of an external Mosquitto for the
              edges and cloud users of USERS (deploy/mosquitto/README.md)
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
	case "mosquitto-config":
		fs := flag.NewFlagSet("varco-cloud "+args[0], flag.ContinueOnError)
		fs.SetOutput(stderr)
		dir := fs.String("dir", DefaultMosquittoDir, "directory of the acl and passwd files")
		fs.Usage = func() {
			fmt.Fprintf(stderr, "usage: varco-cloud mosquitto-config [-dir DIR] USERS\n\n"+
				"Writes DIR/acl and DIR/passwd for the users of the file USERS (see\n"+
				"deploy/mosquitto/users.example) and prints a password for each new user.\n\n")
			fs.PrintDefaults()
		}
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			fs.Usage()
			return errors.New("mosquitto-config: want one users file")
		}
		created, err := MosquittoConfig(fs.Arg(0), *dir, stdout)
		if err != nil {
			return fmt.Errorf("mosquitto-config: %w", err)
		}
		fmt.Fprintf(stderr, "wrote %s and %s (%d new users); reload Mosquitto: systemctl reload mosquitto\n",
			filepath.Join(*dir, "acl"), filepath.Join(*dir, "passwd"), created)
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
	Messaging   MessagingConfig
	// Scheduler runs the scheduled operations in this process (several
	// processes may; River elects one to tick).
	Scheduler bool
	MQTT      MQTTConfig
}

// MessagingConfig says where messages go. A channel without its gateway
// fails its messages with "sms gateway not configured" (and so on).
type MessagingConfig struct {
	SMTPAddr, SMTPFrom, SMTPUsername, SMTPPassword, SMTPTLS string
	SMSURL, SMSAccountSID, SMSAuthToken, SMSFrom            string
	PushURL, PushProject, PushToken                         string
	// UnsubscribeURL is this service's public /api/v1/unsubscribe URL, for
	// the e-mails' List-Unsubscribe header.
	UnsubscribeURL string
}

// Main is the program: its configuration and the parts it wires together.
type Main struct {
	Config     Config
	Logger     *slog.Logger
	DB         *postgres.DB
	HTTPServer *cloudhttp.Server
	// Imports runs the background member imports; Close stops it.
	Imports *postgres.ImportService
	// Communications sends messages in the background; Close stops it.
	Communications *postgres.CommunicationService
	// Scheduler runs the scheduled operations (when Config.Scheduler);
	// Close stops it.
	Scheduler *cloudriver.Scheduler
	// Communicator sends the scheduled communications; without one their
	// runs are recorded as failed. Set it before Run.
	Communicator cloud.Communicator

	stderr io.Writer
	// configureDB, when set, adjusts the store before it opens (tests).
	configureDB func(*postgres.DB)
	// configureImports, when set, adjusts the import worker before it
	// starts (tests).
	configureImports func(*postgres.ImportService)
	// configureCommunications, likewise for the messaging worker.
	configureCommunications func(*postgres.CommunicationService)
	// The gateways' adapters, built by ParseFlags from the configuration.
	smtpSender *smtp.Sender
	smsSender  *twilio.Client
	pushSender *fcm.Client
	// configureScheduler, when set, adjusts the scheduler before it starts
	// (tests).
	configureScheduler func(*cloudriver.Scheduler, *postgres.ScheduleRunner)
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
			Messaging: MessagingConfig{
				SMTPAddr: os.Getenv("VARCO_SMTP_ADDR"), SMTPFrom: os.Getenv("VARCO_SMTP_FROM"),
				SMTPUsername: os.Getenv("VARCO_SMTP_USERNAME"), SMTPPassword: os.Getenv("VARCO_SMTP_PASSWORD"),
				SMTPTLS: cmp.Or(os.Getenv("VARCO_SMTP_TLS"), smtp.TLSStart),
				SMSURL:  cmp.Or(os.Getenv("VARCO_SMS_URL"), twilio.DefaultBaseURL), SMSAccountSID: os.Getenv("VARCO_SMS_ACCOUNT_SID"),
				SMSAuthToken: os.Getenv("VARCO_SMS_AUTH_TOKEN"), SMSFrom: os.Getenv("VARCO_SMS_FROM"),
				PushURL: cmp.Or(os.Getenv("VARCO_PUSH_URL"), fcm.DefaultBaseURL), PushProject: os.Getenv("VARCO_PUSH_PROJECT"),
				PushToken: os.Getenv("VARCO_PUSH_TOKEN"), UnsubscribeURL: os.Getenv("VARCO_UNSUBSCRIBE_URL"),
			},
			Scheduler: os.Getenv("VARCO_SCHEDULER") != "false",
			MQTT:      mqttConfigFromEnv(),
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
		mc := &m.Config.Messaging
		fs.StringVar(&mc.SMTPAddr, "smtp-addr", mc.SMTPAddr, "SMTP server host:port; empty: no e-mail (env VARCO_SMTP_ADDR)")
		fs.StringVar(&mc.SMTPFrom, "smtp-from", mc.SMTPFrom, `e-mail sender, "Club <noreply@club.example>" (env VARCO_SMTP_FROM)`)
		fs.StringVar(&mc.SMTPUsername, "smtp-username", mc.SMTPUsername, "SMTP AUTH user; the password is VARCO_SMTP_PASSWORD (env VARCO_SMTP_USERNAME)")
		fs.StringVar(&mc.SMTPTLS, "smtp-tls", mc.SMTPTLS, "starttls, tls or none (env VARCO_SMTP_TLS)")
		fs.StringVar(&mc.SMSURL, "sms-url", mc.SMSURL, "Twilio API base URL (env VARCO_SMS_URL)")
		fs.StringVar(&mc.SMSAccountSID, "sms-account-sid", mc.SMSAccountSID, "Twilio account SID; empty: no SMS; the auth token is VARCO_SMS_AUTH_TOKEN (env VARCO_SMS_ACCOUNT_SID)")
		fs.StringVar(&mc.SMSFrom, "sms-from", mc.SMSFrom, "SMS sender number, or a messaging service SID MG... (env VARCO_SMS_FROM)")
		fs.StringVar(&mc.PushURL, "push-url", mc.PushURL, "FCM API base URL (env VARCO_PUSH_URL)")
		fs.StringVar(&mc.PushProject, "push-project", mc.PushProject, "Firebase project ID; empty: no push; the access token is VARCO_PUSH_TOKEN (env VARCO_PUSH_PROJECT)")
		fs.StringVar(&mc.UnsubscribeURL, "unsubscribe-url", mc.UnsubscribeURL, "public URL of /api/v1/unsubscribe, for List-Unsubscribe (env VARCO_UNSUBSCRIBE_URL)")
		fs.BoolVar(&m.Config.Scheduler, "scheduler", m.Config.Scheduler, "run the scheduled operations in this process (env VARCO_SCHEDULER=false to disable)")
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
	if cmd == "serve" {
		return m.buildSenders()
	}
	return nil
}

// buildSenders builds the configured gateways' adapters and checks them.
func (m *Main) buildSenders() error {
	mc := m.Config.Messaging
	if mc.SMTPAddr != "" {
		from, err := mail.ParseAddress(mc.SMTPFrom)
		if err != nil {
			return fmt.Errorf("smtp from %q: %w", mc.SMTPFrom, err)
		}
		m.smtpSender = &smtp.Sender{Addr: mc.SMTPAddr, From: *from, Username: mc.SMTPUsername, Password: mc.SMTPPassword, TLS: mc.SMTPTLS}
		if err := m.smtpSender.Validate(); err != nil {
			return err
		}
	}
	if mc.SMSAccountSID != "" {
		c := &twilio.Client{BaseURL: mc.SMSURL, AccountSID: mc.SMSAccountSID, AuthToken: mc.SMSAuthToken}
		if strings.HasPrefix(mc.SMSFrom, "MG") {
			c.MessagingServiceSID = mc.SMSFrom
		} else {
			c.From = mc.SMSFrom
		}
		if err := c.Validate(); err != nil {
			return err
		}
		m.smsSender = c
	}
	if mc.PushProject != "" {
		if mc.PushToken == "" {
			return errors.New("fcm: set VARCO_PUSH_TOKEN")
		}
		m.pushSender = &fcm.Client{BaseURL: mc.PushURL, ProjectID: mc.PushProject, AccessToken: fcm.StaticToken(mc.PushToken)}
		if err := m.pushSender.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// newCommunications returns the messaging service with the configured
// gateways.
func (m *Main) newCommunications() *postgres.CommunicationService {
	s := postgres.NewCommunicationService(m.DB)
	// Typed nils must not become non-nil interfaces: a channel without its
	// gateway stays nil, and its messages fail as not configured.
	if m.smtpSender != nil {
		s.Email = m.smtpSender
	}
	if m.smsSender != nil {
		s.SMS = m.smsSender
	}
	if m.pushSender != nil {
		s.Push = m.pushSender
	}
	s.UnsubscribeURL = m.Config.Messaging.UnsubscribeURL
	return s
}

// OpenDB connects to the database and applies the migrations: ours, then
// River's (the job queue of the scheduled operations).
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
	if err := m.DB.Migrate(ctx); err != nil {
		return err
	}
	return cloudriver.Migrate(ctx, m.DB.Pool, m.Logger)
}

// Run opens the database, migrates it, starts the import and messaging
// workers (which resume the jobs a previous process left), the scheduler
// (unless disabled; it sends through the messaging worker), the MQTT side
// (the embedded broker unless an external one is configured, and the
// cloud's client with the event ingester, the state publisher and the
// commander) and the HTTP server.
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
	m.Communications = m.newCommunications()
	if m.configureCommunications != nil {
		m.configureCommunications(m.Communications)
	}
	if err := m.Communications.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	if m.Config.Scheduler {
		runner := postgres.NewScheduleRunner(m.DB)
		runner.Communicator = cmp.Or[cloud.Communicator](m.Communicator, m.Communications)
		m.Scheduler = cloudriver.NewScheduler(m.DB.Pool, runner, m.Logger)
		if m.configureScheduler != nil {
			m.configureScheduler(m.Scheduler, runner)
		}
		if err := m.Scheduler.Start(context.WithoutCancel(ctx)); err != nil {
			m.Scheduler = nil
			return err
		}
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
	s.TemplateService = postgres.NewTemplateService(m.DB)
	s.CommunicationService = m.Communications
	s.TargetService = postgres.NewTargetService(m.DB)
	s.ScheduleService = postgres.NewScheduleService(m.DB)
	s.SyncConfigService = postgres.NewSyncConfigService(m.DB)
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

// Close stops the HTTP server, then the scheduler (runs in progress get 30
// seconds, then are cancelled and resumed by the next process), the import
// and messaging workers (their jobs in progress are released, to be resumed
// by the next process), and closes the database.
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
	if m.Scheduler != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = errors.Join(err, m.Scheduler.Stop(ctx))
		cancel()
		m.Scheduler = nil
	}
	m.stopMQTT()
	if m.Imports != nil {
		m.Imports.Stop()
		m.Imports = nil
	}
	if m.Communications != nil {
		m.Communications.Stop()
		m.Communications = nil
	}
	if m.smtpSender != nil {
		_ = m.smtpSender.Close()
		m.smtpSender = nil
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
