// Package smtp sends the e-mails of varco-cloud over SMTP (RFC 5321) with
// emersion/go-smtp's client, as MIME (RFC 2045-2049) multipart/alternative
// messages with a text and an HTML part, UTF-8 headers encoded as RFC 2047
// words, a Message-ID, and the List-Unsubscribe and List-Unsubscribe-Post
// headers of RFC 2369 and RFC 8058 (one-click unsubscribe) when the message
// has an unsubscribe link.
//
// A Sender keeps a small pool of connections (one EHLO, STARTTLS and AUTH
// for many messages). A 4xx reply or a broken connection is retried with
// backoff on a new connection; a 5xx reply is final.
//
// SMTP has no idempotency: the Message-ID is made from the message's
// idempotency key, so a message retried after its answer was lost (the
// connection broke after the final "." was written) carries the same
// Message-ID, which receiving systems use to drop the duplicate. The
// caller stores the message, pending, under the key before the first try.
package smtp

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"varco.dev/cloud"
	"varco.dev/cloud/internal/retry"
)

// TLS modes.
const (
	TLSStart = "starttls" // plain connection upgraded with STARTTLS (port 587)
	TLSWrap  = "tls"      // TLS from the start (port 465)
	TLSNone  = "none"     // no TLS: a relay on localhost or a test server
)

var _ cloud.EmailSender = (*Sender)(nil)

// Sender sends e-mails through one SMTP server. Set the fields before the
// first send; call Close to end the pooled connections.
type Sender struct {
	Addr      string       // host:port of the server
	From      mail.Address // the envelope and header sender
	Username  string       // AUTH PLAIN when set
	Password  string
	TLS       string      // TLSStart (default), TLSWrap or TLSNone
	TLSConfig *tls.Config // nil: the system roots, ServerName from Addr
	HelloName string      // EHLO name (default "localhost")
	// Connections bounds the connections open at once (default 4).
	Connections int
	// Timeout bounds each SMTP command (default 30s); Retry says how to retry.
	Timeout time.Duration
	Retry   retry.Policy
	// Now stamps the Date header; tests set it.
	Now func() time.Time

	once  sync.Once
	slots chan struct{}     // one per open or opening connection
	idle  chan *smtp.Client // connections ready for a message
}

// Validate checks the settings.
func (s *Sender) Validate() error {
	if _, _, err := net.SplitHostPort(s.Addr); err != nil {
		return fmt.Errorf("smtp: address %q: %w", s.Addr, err)
	}
	if s.From.Address == "" || !strings.Contains(s.From.Address, "@") {
		return fmt.Errorf("smtp: a from address is required")
	}
	switch s.TLS {
	case "", TLSStart, TLSWrap, TLSNone:
	default:
		return fmt.Errorf("smtp: TLS mode %q: want starttls, tls or none", s.TLS)
	}
	return nil
}

func (s *Sender) init() {
	s.once.Do(func() {
		n := cmp.Or(s.Connections, 4)
		s.slots = make(chan struct{}, n)
		s.idle = make(chan *smtp.Client, n)
	})
}

// Close quits the idle connections.
func (s *Sender) Close() error {
	s.init()
	for {
		select {
		case c := <-s.idle:
			_ = c.Quit()
			<-s.slots
		default:
			return nil
		}
	}
}

// MessageID returns the Message-ID of the message with idempotency key
// key sent from address from.
func MessageID(key, from string) string {
	domain := from[strings.LastIndex(from, "@")+1:]
	return "<" + key + "@" + domain + ">"
}

// SendEmail sends msg and returns its Message-ID.
func (s *Sender) SendEmail(ctx context.Context, msg *cloud.OutboundEmail) (string, error) {
	s.init()
	id := MessageID(msg.IdempotencyKey, s.From.Address)
	var body bytes.Buffer
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	if err := Compose(&body, s.From, msg, id, now()); err != nil {
		return "", fmt.Errorf("smtp: compose: %w", err)
	}
	var unknown bool
	err := s.Retry.Do(ctx, func(ctx context.Context, _ int) (retry.Outcome, error) {
		err := s.try(ctx, msg.To, body.Bytes())
		var se *smtp.SMTPError
		switch {
		case err == nil:
			unknown = false
			return retry.Outcome{}, nil
		case errors.As(err, &se):
			unknown = false
			return retry.Outcome{Retry: se.Code >= 400 && se.Code < 500}, err
		default:
			var ue *unknownOutcome
			unknown = errors.As(err, &ue) || unknown
			return retry.Outcome{Retry: ctx.Err() == nil}, err
		}
	})
	if err == nil {
		return id, nil
	}
	serr := &cloud.SendError{Provider: "smtp", Message: err.Error(), Temporary: true, Unknown: unknown}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		serr.Status, serr.Message, serr.Temporary = se.Code, se.Message, se.Code >= 400 && se.Code < 500
		if se.EnhancedCode != smtp.NoEnhancedCode && se.EnhancedCode != (smtp.EnhancedCode{}) {
			serr.Code = fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
		}
	}
	return "", serr
}

// unknownOutcome is a connection lost after the whole message was written.
type unknownOutcome struct{ err error }

func (e *unknownOutcome) Error() string {
	return "no answer after the message was written: " + e.err.Error()
}
func (e *unknownOutcome) Unwrap() error { return e.err }

// try sends one message on a pooled connection.
func (s *Sender) try(ctx context.Context, to string, body []byte) (err error) {
	c, err := s.get(ctx)
	if err != nil {
		return err
	}
	healthy := false
	stop := context.AfterFunc(ctx, func() { _ = c.Close() }) // unblock a command on cancel
	defer func() {
		if !stop() {
			healthy = false
		}
		s.put(c, healthy)
	}()
	if err := c.Mail(s.From.Address, nil); err != nil {
		healthy = isReply(err)
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	if err := c.Rcpt(to, nil); err != nil {
		healthy = isReply(err) && c.Reset() == nil
		return fmt.Errorf("RCPT TO: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		healthy = isReply(err) && c.Reset() == nil
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(body); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		if isReply(err) {
			healthy = true
			return fmt.Errorf("end of DATA: %w", err)
		}
		return &unknownOutcome{err: err}
	}
	healthy = true
	return nil
}

func isReply(err error) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se)
}

// get returns an idle connection or dials a new one, waiting for a slot.
func (s *Sender) get(ctx context.Context) (*smtp.Client, error) {
	select {
	case c := <-s.idle:
		return c, nil
	default:
	}
	select {
	case c := <-s.idle:
		return c, nil
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c, err := s.dial(ctx)
	if err != nil {
		<-s.slots
		return nil, err
	}
	return c, nil
}

// put returns a connection to the pool, or closes it.
func (s *Sender) put(c *smtp.Client, healthy bool) {
	if healthy {
		select {
		case s.idle <- c:
			return
		default:
		}
	}
	_ = c.Close()
	<-s.slots
}

func (s *Sender) dial(ctx context.Context) (*smtp.Client, error) {
	timeout := cmp.Or(s.Timeout, 30*time.Second)
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", s.Addr, err)
	}
	tlsConfig := s.TLSConfig
	if tlsConfig == nil {
		host, _, _ := net.SplitHostPort(s.Addr)
		tlsConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	var c *smtp.Client
	switch cmp.Or(s.TLS, TLSStart) {
	case TLSWrap:
		c = smtp.NewClient(tls.Client(conn, tlsConfig))
	case TLSStart:
		if c, err = smtp.NewClientStartTLS(conn, tlsConfig); err != nil {
			return nil, fmt.Errorf("starttls %s: %w", s.Addr, err)
		}
	default:
		c = smtp.NewClient(conn)
	}
	c.CommandTimeout, c.SubmissionTimeout = timeout, timeout
	if err := c.Hello(cmp.Or(s.HelloName, "localhost")); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("EHLO: %w", err)
	}
	if s.Username != "" {
		if err := c.Auth(sasl.NewPlainClient("", s.Username, s.Password)); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("AUTH: %w", err)
		}
	}
	return c, nil
}

// Compose writes msg as a MIME message: headers, then a
// multipart/alternative body with the text part first and the HTML part
// last (the one mail clients prefer), both UTF-8 in quoted-printable. The
// boundary comes from the Message-ID, so the same message composes to the
// same bytes.
func Compose(w io.Writer, from mail.Address, msg *cloud.OutboundEmail, messageID string, date time.Time) error {
	var b bytes.Buffer
	to := mail.Address{Name: msg.ToName, Address: msg.To}
	header := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	header("Date", date.Format(time.RFC1123Z))
	header("From", from.String())
	header("To", to.String())
	header("Subject", encodeWords(msg.Subject))
	header("Message-ID", messageID)
	header("MIME-Version", "1.0")
	if msg.Language != "" {
		header("Content-Language", msg.Language)
	}
	if msg.UnsubscribeURL != "" {
		header("List-Unsubscribe", "<"+msg.UnsubscribeURL+">")
		header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
	}
	mw := multipart.NewWriter(&b)
	if err := mw.SetBoundary("varco-" + strings.Trim(strings.SplitN(messageID, "@", 2)[0], "<")); err != nil {
		return err
	}
	header("Content-Type", `multipart/alternative; boundary="`+mw.Boundary()+`"`)
	b.WriteString("\r\n")
	html := msg.HTML
	if html == "" {
		html = cloud.TextToHTML(msg.Text)
	}
	for _, part := range []struct{ ctype, body string }{{"text/plain", msg.Text}, {"text/html", html}} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.ctype + "; charset=utf-8"},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return err
		}
		qp := quotedprintable.NewWriter(pw)
		if _, err := io.WriteString(qp, part.body); err != nil {
			return err
		}
		if err := qp.Close(); err != nil {
			return err
		}
	}
	if err := mw.Close(); err != nil {
		return err
	}
	b.WriteString("\r\n")
	_, err := w.Write(b.Bytes())
	return err
}

// encodeWords encodes a header text as RFC 2047 words when it is not
// ASCII, folding between words so that lines stay short.
func encodeWords(s string) string {
	return strings.ReplaceAll(mime.QEncoding.Encode("utf-8", s), "?= =?", "?=\r\n =?")
}
