package smtp_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"go.uber.org/goleak"

	"varco.dev/cloud"
	"varco.dev/cloud/internal/gatewaytest"
	"varco.dev/cloud/internal/retry"
	"varco.dev/cloud/smtp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var update = flag.Bool("update", false, "rewrite the golden files")

var (
	from = mail.Address{Name: "Palestra Città", Address: "noreply@club.test"}
	date = time.Date(2025, 3, 4, 9, 30, 0, 0, time.FixedZone("CET", 3600))
)

func message(key string) *cloud.OutboundEmail {
	return &cloud.OutboundEmail{
		To: "anna@x.test", ToName: "Anna Rossi-Müller",
		Subject:  "Il tuo abbonamento scade il 31/12/2025 – rinnova entro venerdì per non perdere lo sconto",
		Text:     "Ciao Anna,\n\nil tuo abbonamento scade presto.\n. una riga che inizia con un punto\n",
		HTML:     "<p>Ciao <b>Anna</b>, è quasi ora di rinnovare.</p>",
		Language: "it", IdempotencyKey: key, UnsubscribeURL: "https://crm.club.test/api/v1/unsubscribe/tok123",
	}
}

// TestCompose checks the MIME bytes against testdata/email.golden (-update
// rewrites it).
func TestCompose(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	msg := message("0123456789abcdef0123456789abcdef")
	if err := smtp.Compose(&b, from, msg, smtp.MessageID(msg.IdempotencyKey, from.Address), date); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("testdata/email.golden", b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/email.golden")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("composed message differs from testdata/email.golden:\n%s", b.Bytes())
	}
	for i, line := range strings.Split(b.String(), "\r\n") {
		if len(line) > 998 {
			t.Errorf("line %d is %d bytes", i+1, len(line))
		}
	}
}

// parsed is a received message read back the way a mail client reads it.
type parsed struct {
	header     mail.Header
	subject    string
	text, html string
}

func parse(t *testing.T, data []byte) parsed {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("read message: %v\n%s", err, data)
	}
	var p parsed
	p.header = m.Header
	dec := new(mime.WordDecoder)
	if p.subject, err = dec.DecodeHeader(m.Header.Get("Subject")); err != nil {
		t.Fatalf("subject: %v", err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type = %q (%v)", m.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		part, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("part: %v", err)
		}
		if cte := part.Header.Get("Content-Transfer-Encoding"); cte != "quoted-printable" {
			t.Fatalf("part encoding %q", cte)
		}
		body, err := io.ReadAll(quotedprintable.NewReader(part))
		if err != nil {
			t.Fatalf("part body: %v", err)
		}
		switch part.Header.Get("Content-Type") {
		case "text/plain; charset=utf-8":
			p.text = string(body)
		case "text/html; charset=utf-8":
			p.html = string(body)
		default:
			t.Fatalf("unexpected part %q", part.Header.Get("Content-Type"))
		}
	}
	return p
}

type bundle struct {
	server *gatewaytest.SMTP
	sender *smtp.Sender
	waits  *[]time.Duration
}

func setup(t *testing.T) bundle {
	t.Helper()
	srv := gatewaytest.NewSMTP(t)
	srv.Username, srv.Password = "club", "s3cret"
	var mu sync.Mutex
	waits := []time.Duration{}
	s := &smtp.Sender{Addr: srv.Addr, From: from, Username: "club", Password: "s3cret", TLS: smtp.TLSNone,
		Now: func() time.Time { return date }, Timeout: 5 * time.Second,
		Retry: retry.Policy{Attempts: 3, Sleep: func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			waits = append(waits, d)
			return nil
		}}}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return bundle{server: srv, sender: s, waits: &waits}
}

func TestSendEmail(t *testing.T) {
	t.Parallel()
	b := setup(t)
	msg := message("aaaabbbbccccddddeeeeffff00001111")
	id, err := b.sender.SendEmail(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	mails := b.server.Mails()
	if len(mails) != 1 {
		t.Fatalf("server got %d mails", len(mails))
	}
	got := mails[0]
	if got.From != "noreply@club.test" || len(got.To) != 1 || got.To[0] != "anna@x.test" {
		t.Errorf("envelope %s -> %v", got.From, got.To)
	}
	p := parse(t, got.Data)
	for k, want := range map[string]string{
		"Message-ID":            id,
		"List-Unsubscribe":      "<https://crm.club.test/api/v1/unsubscribe/tok123>",
		"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		"MIME-Version":          "1.0",
		"Content-Language":      "it",
	} {
		if v := p.header.Get(k); v != want {
			t.Errorf("%s = %q, want %q", k, v, want)
		}
	}
	if id != "<aaaabbbbccccddddeeeeffff00001111@club.test>" {
		t.Errorf("Message-ID %q", id)
	}
	if p.subject != msg.Subject {
		t.Errorf("subject %q, want %q", p.subject, msg.Subject)
	}
	addrs, err := p.header.AddressList("To")
	if err != nil || addrs[0].Name != "Anna Rossi-Müller" || addrs[0].Address != "anna@x.test" {
		t.Errorf("To = %v (%v)", addrs, err)
	}
	fromAddr, err := p.header.AddressList("From")
	if err != nil || fromAddr[0].Name != "Palestra Città" {
		t.Errorf("From = %v (%v)", fromAddr, err)
	}
	if p.text != strings.ReplaceAll(msg.Text, "\n", "\r\n") {
		t.Errorf("text part %q", p.text)
	}
	if p.html != msg.HTML {
		t.Errorf("html part %q", p.html)
	}
	if _, err := p.header.Date(); err != nil {
		t.Errorf("Date: %v", err)
	}
}

func TestSendEmailFaults(t *testing.T) {
	t.Parallel()
	t.Run("temporary then accepted", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.server.Fail(gatewaytest.SMTPFault{Err: &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "try later"}})
		if _, err := b.sender.SendEmail(context.Background(), message("k1")); err != nil {
			t.Fatal(err)
		}
		if n := b.server.Count(); n != 1 || len(*b.waits) != 1 {
			t.Errorf("mails %d, waits %v", n, *b.waits)
		}
	})
	t.Run("permanent", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.server.Fail(gatewaytest.SMTPFault{Err: &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user"}})
		_, err := b.sender.SendEmail(context.Background(), message("k2"))
		var se *cloud.SendError
		if !errors.As(err, &se) || se.Status != 550 || se.Code != "5.1.1" || se.Temporary || se.Unknown {
			t.Fatalf("err = %#v", err)
		}
		if len(*b.waits) != 0 || b.server.Count() != 0 {
			t.Errorf("a 550 was retried: waits %v", *b.waits)
		}
		// The connection stays usable after a refused message.
		if _, err := b.sender.SendEmail(context.Background(), message("k3")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("answer lost: resent with the same Message-ID", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.server.Fail(gatewaytest.SMTPFault{Drop: true})
		id, err := b.sender.SendEmail(context.Background(), message("k4"))
		if err != nil {
			t.Fatal(err)
		}
		mails := b.server.Mails()
		if len(mails) != 2 {
			t.Fatalf("server has %d mails, want the dropped one and the retry", len(mails))
		}
		for _, m := range mails {
			if got := parse(t, m.Data).header.Get("Message-ID"); got != id {
				t.Errorf("Message-ID %q, want %q on every try", got, id)
			}
		}
	})
	t.Run("server down", func(t *testing.T) {
		t.Parallel()
		s := &smtp.Sender{Addr: "127.0.0.1:1", From: from, TLS: smtp.TLSNone,
			Retry: retry.Policy{Attempts: 2, Sleep: func(context.Context, time.Duration) error { return nil }}}
		_, err := s.SendEmail(context.Background(), message("k5"))
		var se *cloud.SendError
		if !errors.As(err, &se) || !se.Temporary || se.Unknown {
			t.Fatalf("err = %#v", err)
		}
	})
}

func TestSendEmailConcurrent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() {
			if _, err := b.sender.SendEmail(context.Background(), message(fmt.Sprintf("c%02d", i))); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := b.server.Count(); n != 40 {
		t.Errorf("server got %d mails, want 40", n)
	}
}

// BenchmarkSendEmail sends b.N e-mails to a local SMTP server through the
// pool (4 connections, 8 senders) and reports messages per second.
//
//	go test -run '^$' -bench SendEmail -benchtime 10000x ./smtp
func BenchmarkSendEmail(b *testing.B) {
	srv := gatewaytest.NewSMTP(b)
	s := &smtp.Sender{Addr: srv.Addr, From: from, TLS: smtp.TLSNone, Connections: 4}
	defer s.Close()
	msg := message("bench")
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				m := *msg
				m.IdempotencyKey = fmt.Sprintf("bench%08d", i)
				if _, err := s.SendEmail(context.Background(), &m); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for i := range b.N {
		next <- i
	}
	close(next)
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	if srv.Count() != b.N {
		b.Fatalf("server got %d of %d", srv.Count(), b.N)
	}
}
