package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"varco.dev/edge/internal/benchdata"
	"varco.dev/firmware-sim/sim"
	vsync "varco.dev/protocol/sync"
)

// helperConfig, in the environment, makes TestHelperDaemon run the daemon
// with that configuration: BenchmarkSnapshotToFreshEdge starts the test
// binary again as the edge, so that the edge's memory is its own.
const helperConfig = "VARCO_HELPER_DAEMON_CONFIG"

// TestHelperDaemon is `varco-edge run` in a child process of a benchmark; it
// skips when run as a test.
func TestHelperDaemon(t *testing.T) {
	path := os.Getenv(helperConfig)
	if path == "" {
		t.Skip("runs only as a benchmark's child process")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, []string{"run", "--config", path}, os.Stdout, os.Stderr); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkSnapshotToFreshEdge sends a snapshot of VARCO_BENCH_MEMBERS
// (default 1,000,000) members, in signed chunks of snapshotChunk records, to
// a fresh varco-edge (a child process: the real daemon, on a varco-sim line,
// with GOMEMLIMIT=96MiB as deploy/varco-edge.service runs it) through the real
// Mosquitto, in answer to its birth. It reports the time from the first chunk
// published to the cache at the snapshot's version (every chunk received,
// verified, written, the index built and swapped in), and the edge's peak RSS
// (VmHWM). Run it alone: go test -run '^$' -bench SnapshotToFreshEdge -benchtime 1x.
func BenchmarkSnapshotToFreshEdge(b *testing.B) {
	needMosquitto(b)
	n := benchdata.Members(1_000_000)
	chunks := snapshotChunks(b, n)
	b.ResetTimer()
	for range b.N {
		took, hwm := snapshotOnce(b, chunks)
		b.ReportMetric(took.Seconds(), "s/snapshot")
		b.ReportMetric(float64(n)/took.Seconds(), "members/s")
		b.ReportMetric(float64(hwm)/(1<<20), "edge-peak-RSS-MiB")
	}
}

// snapshotChunk is how many records a chunk holds: ~200 KB. Mosquitto
// queues at most 1000 messages (max_queued_messages) for a subscriber that
// reads slower than the cloud publishes; 500 chunks for 1M members stay
// below it.
const snapshotChunk = 2000

// snapshotChunks makes the cloud's side: the encoded, signed chunks of a
// snapshot at version 1000, made on every core before the clock starts.
func snapshotChunks(b *testing.B, n int) [][]byte {
	count := (n + snapshotChunk - 1) / snapshotChunk
	chunks := make([][]byte, count)
	var wg sync.WaitGroup
	errs := make(chan error, count)
	next := make(chan int, count)
	for i := range count {
		next <- i
	}
	close(next)
	for range 2 {
		wg.Go(func() {
			for c := range next {
				s := &vsync.Snapshot{Header: vsync.Header{Tenant: "acme", Site: "milano", Edge: "e2e", Time: now()},
					ID: 1, Version: 1000, Chunk: uint32(c), Chunks: uint32(count)}
				for i := c * snapshotChunk; i < min((c+1)*snapshotChunk, n); i++ {
					s.Records = append(s.Records, benchdata.Record(i, benchdata.Key(i)))
				}
				env, err := vsync.Seal(s)
				if err == nil {
					err = env.Sign(cloudKeyID, cloudKey)
				}
				if err == nil {
					chunks[c], err = env.Marshal()
				}
				if err != nil {
					errs <- fmt.Errorf("chunk %d: %w", c, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return chunks
}

func snapshotOnce(b *testing.B, chunks [][]byte) (took time.Duration, peakRSS uint64) {
	b.StopTimer()
	s, err := sim.New(sim.Config{Readers: sim.Readers(2)})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	httpAddr := l.Addr().String()
	l.Close()
	pw := filepath.Join(b.TempDir(), "mqtt.password")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	pub := base64.StdEncoding.EncodeToString(cloudKey.Public().(ed25519.PublicKey))
	path := writeConfig(b, s.Path(), "[mqtt]\nbroker = \"tcp://"+mosquitto+"\"\nusername = \"e2e\"\npassword_file = \""+pw+"\"\n"+
		"cloud_keys = [\""+cloudKeyID+"="+pub+"\"]\n")
	text, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	text = []byte(strings.Replace(strings.Replace(string(text), `http_addr = "127.0.0.1:0"`, `http_addr = "`+httpAddr+`"`, 1),
		`log_level = "debug"`, `log_level = "info"`, 1))
	if err := os.WriteFile(path, text, 0o600); err != nil {
		b.Fatal(err)
	}

	cloud := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + mosquitto).
		SetClientID("varco-bench-cloud-" + strconv.Itoa(os.Getpid())).SetCleanSession(true))
	if tok := cloud.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		b.Fatalf("connect: %v", tok.Error())
	}
	defer cloud.Disconnect(100)
	births := make(chan *vsync.Birth, 4)
	birthTopic, _ := vsync.BirthTopic("acme", "e2e")
	if tok := cloud.Subscribe(birthTopic, 1, func(_ paho.Client, m paho.Message) {
		if msg, err := vsync.Unmarshal(m.Payload()); err == nil {
			births <- msg.(*vsync.Birth)
		}
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		b.Fatalf("subscribe: %v", tok.Error())
	}

	logPath := filepath.Join(b.TempDir(), "edge.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	defer logFile.Close()
	child := exec.Command(os.Args[0], "-test.run=^TestHelperDaemon$")
	child.Env = append(os.Environ(), helperConfig+"="+path, "GOMEMLIMIT=96MiB")
	child.Stdout, child.Stderr = logFile, logFile
	if err := child.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	defer func() {
		child.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			child.Process.Kill()
			<-exited
		}
		if b.Failed() {
			log, _ := os.ReadFile(logPath)
			b.Logf("edge log:\n%s", tail(log, 4000))
		}
	}()
	select {
	case birth := <-births:
		if birth.CacheVersion != 0 {
			b.Fatalf("the edge is not fresh: cache version %d", birth.CacheVersion)
		}
	case err := <-exited:
		b.Fatalf("the edge exited: %v", err)
	case <-time.After(30 * time.Second):
		b.Fatal("no birth from the edge")
	}

	syncTopic, _ := vsync.SyncTopic("acme", "e2e")
	b.StartTimer()
	start := time.Now()
	var last paho.Token
	for _, c := range chunks {
		last = cloud.Publish(syncTopic, 1, false, c)
	}
	if !last.WaitTimeout(time.Minute) || last.Error() != nil {
		b.Fatalf("publish: %v", last.Error())
	}
	deadline := time.Now().Add(5 * time.Minute)
	for cacheVersion(b, httpAddr) != 1000 {
		if time.Now().After(deadline) {
			b.Fatal("the snapshot never loaded")
		}
		select {
		case err := <-exited:
			b.Fatalf("the edge exited: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	took = time.Since(start)
	b.StopTimer()
	return took, vmHWM(b, child.Process.Pid)
}

func cacheVersion(b *testing.B, addr string) uint64 {
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		return 0 // not listening yet
	}
	defer resp.Body.Close()
	var h struct {
		CacheVersion uint64 `json:"cache_version"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		b.Fatalf("healthz: %v", err)
	}
	return h.CacheVersion
}

// vmHWM is the peak resident set of process pid, from /proc.
func vmHWM(b *testing.B, pid int) uint64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM")
	return 0
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
