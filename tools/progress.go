package tools

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Progress for long calls. When a request carries _meta.progressToken, the handler starts a
// progress reporter: the engine hands it each complete output line (Line must never block the
// command's output), and a goroutine sends notifications/progress for the token with
//
//   - progress: milliseconds since the call started, strictly increasing;
//   - message: the latest output line, trimmed to progressMessageMax characters.
//
// At most one notification per Options.ProgressInterval; lines arriving faster replace each other
// (only the latest is sent). While nothing is printed, a heartbeat goes out every
// Options.ProgressHeartbeat so clients that reset their timeout on progress keep waiting. Stop
// sends a final notification when a line arrived since the last one, then returns.
//
// Notifications are sent with the handler's ctx: it carries the client session and routes them
// onto the right stream. mcp-go's sends never block (a full session queue drops them), so a slow
// client cannot stall a command.

// ansiEscape matches terminal control sequences (colours, cursor moves) in output lines.
var ansiEscape = regexp.MustCompile(`\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])`)

// progressMessageMax bounds a progress message, in characters.
const progressMessageMax = 200

// finalFlushPause lets the last notification leave before the result: on Streamable HTTP a
// notification sent just before the handler returns can lose the race with the response
// (mcp-go PR #969).
const finalFlushPause = 20 * time.Millisecond

type progressReporter struct {
	srv       *server.MCPServer
	ctx       context.Context
	token     mcp.ProgressToken
	start     time.Time
	interval  time.Duration
	heartbeat time.Duration

	mu      sync.Mutex
	line    string // latest line
	pending bool   // line not sent yet

	wake chan struct{} // capacity 1: "a line arrived"
	stop chan struct{}
	done chan struct{}

	// owned by the goroutine
	lastSent time.Time
	lastProg float64
}

// startProgress starts a reporter for req, or returns nil when the client gave no progress token.
// A nil reporter's methods do nothing.
func (t *toolset) startProgress(ctx context.Context, req mcp.CallToolRequest) *progressReporter {
	if req.Params.Meta == nil || req.Params.Meta.ProgressToken == nil {
		return nil
	}
	p := &progressReporter{
		srv: t.srv, ctx: ctx, token: req.Params.Meta.ProgressToken,
		start: time.Now(), interval: t.opts.ProgressInterval, heartbeat: t.opts.ProgressHeartbeat,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	go p.loop()
	return p
}

// startProgressIf is startProgress when on is set (a call that waits), else no reporter.
func (t *toolset) startProgressIf(ctx context.Context, req mcp.CallToolRequest, on bool) *progressReporter {
	if !on {
		return nil
	}
	return t.startProgress(ctx, req)
}

// stdinBytes is a command's stdin argument as the engine takes it: none when it is empty.
func stdinBytes(stdin string) []byte {
	if stdin == "" {
		return nil
	}
	return []byte(stdin)
}

// Line records the latest output line. It never blocks.
func (p *progressReporter) Line(line string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.line = line
	p.pending = true
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// callback returns Line as an engine progress callback, or nil for a nil reporter.
func (p *progressReporter) callback() func(string) {
	if p == nil {
		return nil
	}
	return p.Line
}

// Stop sends the final notification (if a line is still unsent) and ends the reporter.
func (p *progressReporter) Stop() {
	if p == nil {
		return
	}
	close(p.stop)
	<-p.done
}

func (p *progressReporter) loop() {
	defer close(p.done)
	beat := time.NewTimer(p.heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-p.wake:
			// Keep the rate: wait out the rest of the interval, unless asked to stop.
			if wait := time.Until(p.lastSent.Add(p.interval)); !p.lastSent.IsZero() && wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-p.stop:
					t.Stop()
					p.final()
					return
				case <-p.ctx.Done():
					t.Stop()
					return
				}
			}
			p.send(false)
		case <-beat.C:
			p.send(true)
		case <-p.stop:
			p.final()
			return
		case <-p.ctx.Done():
			return
		}
		beat.Reset(p.heartbeat)
	}
}

// final sends the last line if it has not been sent, then pauses briefly so it leaves first.
func (p *progressReporter) final() {
	if p.ctx.Err() != nil {
		return
	}
	p.mu.Lock()
	pending := p.pending
	p.mu.Unlock()
	if pending && p.send(false) {
		time.Sleep(finalFlushPause)
	}
}

// send sends one notification; heartbeat sends even when no new line arrived.
func (p *progressReporter) send(heartbeat bool) bool {
	p.mu.Lock()
	line, pending := p.line, p.pending
	p.pending = false
	p.mu.Unlock()
	if !pending && !heartbeat {
		return false
	}
	elapsed := time.Since(p.start)
	msg := progressMessage(line)
	if msg == "" {
		msg = fmt.Sprintf("running for %s, no output yet", elapsed.Round(time.Second))
	}
	prog := max(float64(elapsed.Milliseconds()), p.lastProg+1)
	p.lastProg = prog
	p.lastSent = time.Now()
	err := p.srv.SendNotificationToClient(p.ctx, "notifications/progress", map[string]any{
		"progressToken": p.token,
		"progress":      prog,
		"message":       msg,
	})
	return err == nil
}

// progressMessage makes an output line fit for a progress message: valid UTF-8, no control
// characters, trimmed, at most progressMessageMax characters.
func progressMessage(line string) string {
	line = strings.ToValidUTF8(line, "\uFFFD")
	line = ansiEscape.ReplaceAllString(line, "")
	line = strings.Map(func(r rune) rune {
		if r == '\t' {
			return ' '
		}
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, line)
	line = strings.TrimSpace(line)
	if utf8.RuneCountInString(line) > progressMessageMax {
		r := []rune(line)
		line = string(r[:progressMessageMax-1]) + "…"
	}
	return line
}
