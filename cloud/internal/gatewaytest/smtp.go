package gatewaytest

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Mail is a message the SMTP server accepted.
type Mail struct {
	From string
	To   []string
	Data []byte
}

// SMTPFault is what the server does with one DATA instead of accepting it.
type SMTPFault struct {
	// Err is answered (a *smtp.SMTPError: 421/451 temporary, 550 permanent).
	Err *smtp.SMTPError
	// Drop keeps the message and closes the connection without answering:
	// the client cannot know it was accepted.
	Drop bool
}

// SMTP is an SMTP server (emersion/go-smtp) on loopback that keeps every
// message it accepts. With Username set it requires AUTH PLAIN.
type SMTP struct {
	Addr               string
	Username, Password string

	srv *smtp.Server
	ln  net.Listener

	mu     sync.Mutex
	mails  []Mail
	faults []SMTPFault
}

// NewSMTP starts an SMTP server on 127.0.0.1, shut down in t.Cleanup.
func NewSMTP(t testing.TB) *SMTP {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("gatewaytest: smtp listen: %v", err)
	}
	s := &SMTP{Addr: ln.Addr().String(), ln: ln}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &session{s: s, conn: c}, nil }))
	s.srv.Domain = "mx.test"
	s.srv.AllowInsecureAuth = true
	s.srv.MaxMessageBytes = 10 << 20
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = s.srv.Close()
		<-done
	})
	return s
}

// Fail queues faults for the next DATA commands.
func (s *SMTP) Fail(fs ...SMTPFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fs...)
}

// Mails returns the accepted messages.
func (s *SMTP) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

// Count returns how many messages were accepted.
func (s *SMTP) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mails)
}

type session struct {
	s    *SMTP
	conn *smtp.Conn
	mail Mail
	auth bool
}

func (x *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (x *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != x.s.Username || password != x.s.Password {
			return errors.New("invalid credentials")
		}
		x.auth = true
		return nil
	}), nil
}

func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	if x.s.Username != "" && !x.auth {
		return smtp.ErrAuthRequired
	}
	x.mail = Mail{From: from}
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.mail.To = append(x.mail.To, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.s.mu.Lock()
	var f SMTPFault
	if len(x.s.faults) > 0 {
		f, x.s.faults = x.s.faults[0], x.s.faults[1:]
	}
	if f.Err == nil {
		x.mail.Data = b
		x.s.mails = append(x.s.mails, x.mail)
	}
	x.s.mu.Unlock()
	switch {
	case f.Err != nil:
		return f.Err
	case f.Drop:
		_ = x.conn.Conn().Close()
	}
	return nil
}

func (x *session) Reset()        { x.mail = Mail{} }
func (x *session) Logout() error { return nil }
