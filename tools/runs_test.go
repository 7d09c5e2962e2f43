package tools

import (
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/sandkit/sandkit-mcp/engine"
)

func TestRunViewAndText(t *testing.T) {
	ts := newToolset(nil, nil, Options{})
	code := func(c int) *int { return &c }
	tests := []struct {
		name string
		res  engine.RunResult
		want []string
		not  []string
	}{
		{name: "exited", res: engine.RunResult{
			Run:    engine.Run{ID: "run_a", Status: engine.RunExited, ExitCode: code(0), DurationMS: 12, CommitID: "c_x"},
			Stdout: whole("hi\n")},
			want: []string{"run run_a exited 0 in 12 ms; commit c_x", "--- stdout (3 bytes) ---\nhi"},
			not:  []string{"stderr"}},
		{name: "non-zero exit", res: engine.RunResult{
			Run:    engine.Run{ID: "run_b", Status: engine.RunExited, ExitCode: code(2), DurationMS: 5, CommitID: "c_y"},
			Stderr: whole("no such file")},
			want: []string{"exited 2", "--- stderr (12 bytes) ---\nno such file"}},
		{name: "timed out", res: engine.RunResult{
			Run: engine.Run{ID: "run_c", Status: engine.RunExited, ExitCode: code(-1), TimedOut: true, DurationMS: 1000, CommitID: "c_z"}},
			want: []string{"timed out after 1000 ms", "commit c_z"}},
		{name: "background", res: engine.RunResult{Run: engine.Run{ID: "run_d", Status: engine.RunQueued}},
			want: []string{"run run_d is queued", `next: get_run {"run_id":"run_d","stderr_offset":0,"stdout_offset":0,"wait_ms":30000}`, `next: cancel_run {"run_id":"run_d"}`}},
		{name: "cancelled", res: engine.RunResult{Run: engine.Run{ID: "run_e", Status: engine.RunCancelled,
			Error: "cancelled: the caller cancelled the request; nothing was committed"}},
			want: []string{"run run_e cancelled: the caller cancelled the request; nothing was committed"},
			not:  []string{"cancelled: cancelled"}},
		{name: "binary output", res: engine.RunResult{
			Run:    engine.Run{ID: "run_f", Status: engine.RunExited, ExitCode: code(0), CommitID: "c_w"},
			Stdout: whole("\xff\xfe")},
			want: []string{"note: stdout is not valid UTF-8"}},
		{name: "warnings", res: engine.RunResult{
			Run: engine.Run{ID: "run_g", Status: engine.RunExited, ExitCode: code(0), CommitID: "c_v", Warnings: []string{"egress not enforced"}}},
			want: []string{"warning: egress not enforced"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := ts.runView(tc.res, 100, 100)
			text := rendered(v).Content[0].(mcp.TextContent).Text
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("text %q lacks %q", text, w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(text, n) {
					t.Errorf("text %q contains %q", text, n)
				}
			}
			if v.StdoutBytes != tc.res.Stdout.Total || v.StderrBytes != tc.res.Stderr.Total {
				t.Errorf("byte counts %d/%d, want %d/%d", v.StdoutBytes, v.StderrBytes, tc.res.Stdout.Total, tc.res.Stderr.Total)
			}
		})
	}
}
