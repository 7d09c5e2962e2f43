package main_test

import (
	"os/exec"
	"strings"
	"testing"
)

// runBinary runs the built binary with args (no data dir: none of these cases gets that far) and
// returns its stdout, stderr and exit code.
func runBinary(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// TestHelp: help, --help and -h print the usage on stdout and exit 0, alone and after every
// subcommand, whatever else is on the line.
func TestHelp(t *testing.T) {
	cases := [][]string{{"help"}, {"--help"}, {"-h"}, {"-help"}, {"--data-dir", "/nonexistent", "--help"}}
	for _, sub := range []string{"stdio", "serve", "stop", "doctor", "demo", "bootstrap", "ls", "log", "runs", "show", "diff", "export", "version"} {
		cases = append(cases, []string{sub, "--help"}, []string{sub, "-h"})
	}
	cases = append(cases, []string{"log", "WS", "--json", "--help"}, []string{"serve", "--http", "127.0.0.1:0", "-h"})
	for _, args := range cases {
		out, errs, code := runBinary(t, args...)
		if code != 0 || errs != "" || !strings.HasPrefix(out, "sandkit-mcp: durable sandboxed workspaces") || !strings.Contains(out, "\nFlags of serve:\n") {
			t.Errorf("sandkit-mcp %s: exit %d, stderr %q, stdout begins %q", strings.Join(args, " "), code, errs, out[:min(len(out), 80)])
		}
	}
}

// TestUsageErrors: a mistake exits 2 with one line on stderr that says "sandkit-mcp:" once,
// names the subcommand it belongs to and where the help is; nothing goes to stdout.
func TestUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string // the first line of stderr
	}{
		{[]string{"--bogus"}, "sandkit-mcp: flag provided but not defined: -bogus (see sandkit-mcp --help)"},
		{[]string{"stdio", "extra"}, `sandkit-mcp: unexpected argument "extra" (see sandkit-mcp --help)`},
		{[]string{"serve", "--bogus"}, "sandkit-mcp: serve: flag provided but not defined: -bogus (see sandkit-mcp serve --help)"},
		{[]string{"stop", "--timeout", "soon"}, `sandkit-mcp: stop: invalid value "soon" for flag -timeout: parse error (see sandkit-mcp stop --help)`},
		{[]string{"doctor", "extra"}, `sandkit-mcp: doctor: unexpected argument "extra" (see sandkit-mcp doctor --help)`},
		{[]string{"log", "--bogus", "WS"}, "sandkit-mcp: log: flag provided but not defined: -bogus (see sandkit-mcp log --help)"},
		{[]string{"version", "extra"}, "sandkit-mcp: version takes no arguments (see sandkit-mcp --help)"},
		{[]string{"nope"}, `sandkit-mcp: unknown command "nope"`},
	} {
		out, errs, code := runBinary(t, c.args...)
		first, _, _ := strings.Cut(errs, "\n")
		if code != 2 || out != "" || first != c.want || strings.Count(errs, "sandkit-mcp: sandkit-mcp") > 0 {
			t.Errorf("sandkit-mcp %s: exit %d, stdout %q, stderr %q; want exit 2 and %q", strings.Join(c.args, " "), code, out, errs, c.want)
		}
	}
}
