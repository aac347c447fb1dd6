package importer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"varco.dev/edge"
	"varco.dev/edge/badger"
	"varco.dev/edge/internal/benchdata"
	vsync "varco.dev/protocol/sync"
)

// benchChildEnv makes the test binary run one step of BenchmarkImport in a
// process of its own, so that its memory figures are that step's alone.
const benchChildEnv = "VARCO_IMPORT_BENCH_CHILD"

// BenchmarkImport imports $VARCO_BENCH_MEMBERS members (default 1M, the
// decision benchmark's club) from an NDJSON file, in a child process as
// `varco-edge import` would; then opens the cache in another child as the
// daemon does and makes 100k decisions. It reports the import's time and
// peak memory, the daemon's open time and memory, and the disk the cache
// takes.
//
//	go test -run '^$' -bench Import ./importer/
func BenchmarkImport(b *testing.B) {
	n := benchdata.Members(1_000_000)
	dir := b.TempDir()
	file := filepath.Join(dir, "members.ndjson")
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var line []byte
	for i := range n {
		line = benchdata.Line(line[:0], i)
		w.Write(line)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	fi, _ := os.Stat(file)

	var imp, open map[string]float64
	var cacheDir string
	round := 0
	for b.Loop() {
		cacheDir = filepath.Join(dir, fmt.Sprint("cache-", round))
		round++
		imp = benchChild(b, "import", file, cacheDir)
	}
	diskImport, _ := du(cacheDir)
	open = benchChild(b, "open", cacheDir, strconv.Itoa(n))
	limited := benchChild(b, "open", cacheDir, strconv.Itoa(n), "GOMEMLIMIT=96MiB")
	disk, apparent := du(cacheDir)
	b.ReportMetric(imp["records"]/imp["seconds"], "members/s")
	b.ReportMetric(imp["hwm_mb"], "import-hwm-MB")
	b.ReportMetric(open["seconds"], "open-s")
	b.ReportMetric(open["rss_mb"], "daemon-rss-MB")
	b.ReportMetric(open["hwm_mb"], "daemon-hwm-MB")
	b.ReportMetric(open["anon_mb"], "daemon-anon-MB")
	b.ReportMetric(limited["rss_mb"], "daemon-rss-memlimit-MB")
	b.ReportMetric(limited["anon_mb"], "daemon-anon-memlimit-MB")
	b.ReportMetric(disk/(1<<20), "disk-MB")
	b.Logf("%d members, file %d MB; import %+v; disk after import %.1f MB; daemon %+v; with GOMEMLIMIT=96MiB %+v; disk %.1f MB (apparent %.1f MB)",
		n, fi.Size()>>20, imp, diskImport/(1<<20), open, limited, disk/(1<<20), apparent/(1<<20))
}

// benchChild runs a step in a child process and returns the figures it
// printed as JSON. Arguments with '=' are the child's environment.
func benchChild(b *testing.B, args ...string) map[string]float64 {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = os.Environ()
	var step []string
	for _, a := range args {
		if strings.Contains(a, "=") {
			cmd.Env = append(cmd.Env, a)
		} else {
			step = append(step, a)
		}
	}
	cmd.Env = append(cmd.Env, benchChildEnv+"="+strings.Join(step, "|"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("%s: %v", args[0], err)
	}
	var m map[string]float64
	if err := json.Unmarshal(out, &m); err != nil {
		b.Fatalf("%s printed %q: %v", args[0], out, err)
	}
	return m
}

// benchStep is the child's side of benchChild.
func benchStep(spec string) int {
	args := strings.Split(spec, "|")
	res := map[string]float64{}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	start := time.Now()
	switch args[0] {
	case "import":
		c, err := badger.OpenCache(ctx, args[2], badger.CacheOptions{Logger: log})
		if err != nil {
			return fail(err)
		}
		st, err := Import(ctx, c, args[1], Options{TenantKey: benchdata.TenantKey, Version: 1})
		if err != nil {
			return fail(err)
		}
		if err := c.Close(); err != nil {
			return fail(err)
		}
		res["records"] = float64(st.Records)
		res["seconds"] = time.Since(start).Seconds()
	case "open":
		c, err := badger.OpenCache(ctx, args[1], badger.CacheOptions{Logger: log})
		if err != nil {
			return fail(err)
		}
		res["seconds"] = time.Since(start).Seconds()
		n, _ := strconv.Atoi(args[2])
		var r vsync.Record
		granted := 0
		for i := range 100_000 {
			in := edge.Input{Credential: benchdata.Key(i * 7919 % n), Now: benchdata.Now,
				Reader: edge.Reader{ID: "in-1", Site: "7", Device: vsync.DeviceEntrance, Rows: 2, Cols: 16}}
			if d, err := edge.DecideCached(c, &r, in); err != nil {
				return fail(err)
			} else if d.Grant {
				granted++
			}
		}
		if granted < 80_000 {
			return fail(fmt.Errorf("%d grants of 100000", granted))
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		res["heap_inuse_mb"] = float64(ms.HeapInuse) / (1 << 20)
		res["members"] = float64(c.Stats().Members)
		if p := os.Getenv("HEAPPROF"); p != "" {
			runtime.GC()
			f, _ := os.Create(p)
			pprof.WriteHeapProfile(f)
			f.Close()
		}
		defer c.Close()
	}
	for k, v := range procStatus() {
		res[k] = v
	}
	json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, err)
	return 1
}

// procStatus returns the process's memory from /proc/self/status in MB.
func procStatus() map[string]float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil
	}
	names := map[string]string{"VmRSS:": "rss_mb", "VmHWM:": "hwm_mb", "RssAnon:": "anon_mb", "RssFile:": "file_mb"}
	out := map[string]float64{}
	for _, l := range bytes.Split(b, []byte("\n")) {
		f := strings.Fields(string(l))
		if len(f) == 3 && names[f[0]] != "" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			out[names[f[0]]] = kb / 1024
		}
	}
	return out
}

// du returns the bytes allocated on disk to the files under dir, and their
// apparent size (Badger's files are sparse).
func du(dir string) (allocated, apparent float64) {
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			apparent += float64(fi.Size())
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				allocated += float64(st.Blocks) * 512
			}
		}
		return nil
	})
	return allocated, apparent
}
