package main

import (
	"bytes"
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/goleak"
	"varco.dev/firmware-sim/internal/testcp"
)

// With VARCO_SIM_TEST_CP set, the test binary is the CP that --exec starts:
// it polls readers 1 and 2 of the line at os.Args[1] with testcp.Rules
// until SIGTERM.
func TestMain(m *testing.M) {
	if os.Getenv("VARCO_SIM_TEST_CP") != "" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		edge := testcp.Edge{Readers: []byte{1, 2}, Decide: testcp.Rules}
		if err := edge.Run(ctx, os.Args[len(os.Args)-1]); err != nil {
			os.Stderr.WriteString(err.Error())
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// cpCommand is the --exec command line that starts the test CP.
func cpCommand(t *testing.T) string {
	t.Setenv("VARCO_SIM_TEST_CP", "1")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return shellQuote(exe) + " {pty}"
}

func run(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errs bytes.Buffer
	code = Main(t.Context(), args, strings.NewReader(stdin), &out, &errs)
	return code, out.String(), errs.String()
}

func writeFile(t *testing.T, name, content string) string {
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		if code, out, _ := run(t, "", arg); code != 0 || out != "varco-sim dev\n" {
			t.Errorf("%s: %d %q", arg, code, out)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	bad := writeFile(t, "bad.scn", "readers 2\ncard 3 H10301 1 1\nexpect 1 led mauve\n")
	tests := []struct {
		args []string
		want string
	}{
		{nil, "usage: varco-sim COMMAND"},
		{[]string{"fly"}, `unknown command "fly"`},
		{[]string{"scenario"}, "want one scenario file"},
		{[]string{"scenario", bad}, "bad.scn:3: unknown colour \"mauve\""},
		{[]string{"scenario", bad}, "bad.scn:2: no reader 3"},
		{[]string{"run", "--readers", "0"}, "--readers 0: want 1–126"},
		{[]string{"run", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"load", "--members", "10", "--cards", "x"}, "want one of --cards FILE or --members K"},
		{[]string{"load", "--members", "70000"}, "H10301 holds card numbers up to 65535"},
		{[]string{"load", "--cards", writeFile(t, "cards", "H10301 1 1\n# fine\n26 0xZZ\n")}, "cards:3: card bits \"0xZZ\""},
	}
	for _, tt := range tests {
		code, _, errs := run(t, "", tt.args...)
		if code != exitUsage || !strings.Contains(errs, tt.want) {
			t.Errorf("%q: exit %d, stderr\n%s\nwant exit 2 and %q", tt.args, code, errs, tt.want)
		}
	}
}

func TestScenarioPasses(t *testing.T) {
	link := filepath.Join(t.TempDir(), "ttyOSDP")
	code, out, errs := run(t, "", "scenario", "--link", link, "--exec", cpCommand(t), "../../scenario/testdata/turnstile.scn")
	if code != 0 || !strings.Contains(out, "PASS ../../scenario/testdata/turnstile.scn: 20 steps") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "poll reader 1, 2 on "+link) {
		t.Errorf("output does not name the link:\n%s", out)
	}
}

func TestScenarioFails(t *testing.T) {
	file := writeFile(t, "fail.scn", "readers 2\ncard 1 H10301 1 200\nexpect 1 gate open within 200ms\n")
	code, out, errs := run(t, "", "scenario", "--exec", cpCommand(t), file)
	if code != exitFail || !strings.Contains(out, "FAIL    3  expect 1 gate open within 200ms") ||
		!strings.Contains(errs, "fail.scn:3: expect 1 gate open within 200ms\n  want: the gate opening within 200ms\n  got:  reader 1:") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
}

func TestScenarioCPExits(t *testing.T) {
	file := writeFile(t, "x.scn", "connect 20s\ncard 1 H10301 1 1\n")
	code, _, errs := run(t, "", "scenario", "--exec", "exit 3", file)
	if code != exitFail || !strings.Contains(errs, "the CP exited: exit status 3") {
		t.Fatalf("exit %d, stderr:\n%s", code, errs)
	}
}

func TestRun(t *testing.T) {
	stdin := "help\ncard 1 H10301 1 100\nexpect 1 grant\nexpect 1 display \"Welcome\"\npower 2 off\nshow\ncard 9 H10301 1 1\nfly\nquit\n"
	code, out, errs := run(t, stdin, "run", "--readers", "2", "--exec", cpCommand(t))
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{
		"/dev/pts/",             // the path first
		"card R FORMAT [FC] CN", // help
		"reader 1: \"Welcome\"", // a change, printed as it happens
		"gate open, 1 passages", //
		"reader 2: powered off", // show
		"error: card 9 H10301 1 1: sim: no reader at that address 9",
		`error: unknown directive "fly"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if n := len(slices.DeleteFunc(strings.Split(out, "\n"), func(l string) bool { return l != "ok" })); n != 4 {
		t.Errorf("want 4 steps ok:\n%s", out)
	}
}

func TestLoad(t *testing.T) {
	code, out, errs := run(t, "", "load", "--readers", "2", "--members", "50", "--rate", "40", "--duration", "250ms",
		"--baud-pacing", "--exec", cpCommand(t))
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{"2 readers at 115200 baud (paced), 40 badges/s", "unanswered 0", "p50 ", "wire-time lower bound"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
