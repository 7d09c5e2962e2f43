package tools

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// fakeSession is a client session whose notifications land in a channel the test reads.
type fakeSession struct{ ch chan mcp.JSONRPCNotification }

func (f *fakeSession) Initialize()                                         {}
func (f *fakeSession) Initialized() bool                                   { return true }
func (f *fakeSession) NotificationChannel() chan<- mcp.JSONRPCNotification { return f.ch }
func (f *fakeSession) SessionID() string                                   { return "fake" }

func progressRig(t *testing.T, capacity int, opts Options) (*toolset, context.Context, *fakeSession, mcp.CallToolRequest) {
	t.Helper()
	s := server.NewMCPServer("t", "0")
	sess := &fakeSession{ch: make(chan mcp.JSONRPCNotification, capacity)}
	ctx, cancel := context.WithCancel(s.WithContext(context.Background(), sess))
	t.Cleanup(cancel)
	var req mcp.CallToolRequest
	req.Params.Meta = &mcp.Meta{ProgressToken: "tok"}
	return newToolset(s, nil, opts), ctx, sess, req
}

func drain(ch chan mcp.JSONRPCNotification) []map[string]any {
	var out []map[string]any
	for {
		select {
		case n := <-ch:
			out = append(out, n.Params.AdditionalFields)
		default:
			return out
		}
	}
}

// TestProgressRateLimited: a flood of lines yields few notifications, each newer than the last,
// ending with the latest line.
func TestProgressRateLimited(t *testing.T) {
	ts, ctx, sess, req := progressRig(t, 1000, Options{ProgressInterval: 50 * time.Millisecond, ProgressHeartbeat: time.Hour})
	p := ts.startProgress(ctx, req)
	start := time.Now()
	for i := range 20000 {
		p.Line(fmt.Sprintf("line %d", i))
		if i%1000 == 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	p.Stop()
	elapsed := time.Since(start)
	got := drain(sess.ch)
	if limit := int(elapsed/(50*time.Millisecond)) + 2; len(got) == 0 || len(got) > limit {
		t.Fatalf("%d notifications in %v, want 1..%d", len(got), elapsed, limit)
	}
	last := -1.0
	for _, n := range got {
		if n["progressToken"] != "tok" {
			t.Errorf("token %v, want tok", n["progressToken"])
		}
		prog := n["progress"].(float64)
		if prog <= last {
			t.Errorf("progress %v after %v: not increasing", prog, last)
		}
		last = prog
	}
	if msg := got[len(got)-1]["message"]; msg != "line 19999" {
		t.Errorf("final message %q, want the latest line", msg)
	}
}

// TestProgressHeartbeat: while nothing is printed, heartbeats keep coming.
func TestProgressHeartbeat(t *testing.T) {
	ts, ctx, sess, req := progressRig(t, 100, Options{ProgressInterval: 10 * time.Millisecond, ProgressHeartbeat: 30 * time.Millisecond})
	p := ts.startProgress(ctx, req)
	time.Sleep(200 * time.Millisecond)
	p.Stop()
	got := drain(sess.ch)
	if len(got) < 3 {
		t.Fatalf("%d heartbeats in 200 ms at 30 ms, want several", len(got))
	}
	if msg, _ := got[0]["message"].(string); msg == "" {
		t.Errorf("heartbeat without a message: %v", got[0])
	}
}

// TestProgressNeverBlocks: a client that reads nothing (full queue) must not stall the command.
func TestProgressNeverBlocks(t *testing.T) {
	ts, ctx, _, req := progressRig(t, 0, Options{ProgressInterval: time.Millisecond, ProgressHeartbeat: time.Millisecond})
	p := ts.startProgress(ctx, req)
	done := make(chan struct{})
	go func() {
		for i := range 100000 {
			p.Line(fmt.Sprint(i))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Line blocked")
	}
	p.Stop()
}

// TestProgressNoToken: without a progress token nothing is started and a nil reporter is inert.
func TestProgressNoToken(t *testing.T) {
	ts, ctx, sess, _ := progressRig(t, 10, Options{})
	p := ts.startProgress(ctx, mcp.CallToolRequest{})
	if p != nil || p.callback() != nil {
		t.Fatal("a reporter was started without a token")
	}
	p.Line("x")
	p.Stop()
	if got := drain(sess.ch); len(got) != 0 {
		t.Errorf("notifications without a token: %v", got)
	}
}
