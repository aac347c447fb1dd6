package mqtt

import (
	"log/slog"
	"net"
	gosync "sync"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
)

// connectTimeout is how long a new connection has to send its CONNECT.
const connectTimeout = 10 * time.Second

// listener is a TCP listener for mochi that, unlike listeners.TCP, gives a
// new connection connectTimeout to send its CONNECT (mochi sets no deadline
// until then), and closes on Close the connections that have not connected
// yet, which mochi does not know of and would otherwise wait for forever.
type listener struct {
	id   string
	addr string
	ln   net.Listener
	log  *slog.Logger

	mu     gosync.Mutex
	closed bool
	conns  map[net.Conn]struct{} // accepted and not yet returned from establish
	wg     gosync.WaitGroup      // Serve and establish goroutines
}

func newListener(id, addr string) *listener {
	return &listener{id: id, addr: addr, conns: map[net.Conn]struct{}{}}
}

func (l *listener) ID() string       { return l.id }
func (l *listener) Protocol() string { return "tcp" }

func (l *listener) Address() string {
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.addr
}

// Init binds the address.
func (l *listener) Init(log *slog.Logger) error {
	l.log = log
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		return err
	}
	l.ln = ln
	return nil
}

// Serve accepts connections until Close.
func (l *listener) Serve(establish listeners.EstablishFn) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.wg.Add(1)
	l.mu.Unlock()
	defer l.wg.Done()
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			conn.Close()
			return
		}
		l.conns[conn] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		_ = conn.SetDeadline(time.Now().Add(connectTimeout))
		go func() {
			defer l.wg.Done()
			err := establish(l.id, conn)
			l.mu.Lock()
			delete(l.conns, conn)
			l.mu.Unlock()
			if err != nil {
				l.log.Debug("mqtt: connection ended", slog.String("remote", conn.RemoteAddr().String()), slog.Any("error", err))
			}
		}()
	}
}

// Close stops accepting, disconnects the clients through closeClients,
// closes the connections that never connected and waits for its goroutines.
func (l *listener) Close(closeClients listeners.CloseFn) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()
	if l.ln != nil {
		_ = l.ln.Close()
	}
	closeClients(l.id)
	l.mu.Lock()
	for conn := range l.conns {
		_ = conn.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
}
