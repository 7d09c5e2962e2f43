package vercel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

const (
	ctCmdPath  = "/api/v2/sandboxes/sessions/" + ctSession + "/cmd"
	ctCmd1Path = ctCmdPath + "/cmd_1"
)

// ctBuffer is a goroutine-safe buffer.
type ctBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
	// onWrite, when set, is called after each write with everything written so far.
	onWrite func(string)
}

func (b *ctBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	n, _ := b.b.Write(p)
	s := b.b.String()
	b.mu.Unlock()
	if b.onWrite != nil {
		b.onWrite(s)
	}
	return n, nil
}

func (b *ctBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// ctCommandAnswer answers {command} with the given exit code (nil: running).
func ctCommandAnswer(exit *int) ctHandler {
	return func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, ctCommandJSON("cmd_1", exit))
	}
}

func TestClientRunCommandStreamsLineByLine(t *testing.T) {
	s := ctNewServer(t)
	firstSeen := make(chan struct{})
	s.handle("POST", ctCmdPath, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		send := ctStream(w)
		send(ctCommandJSON("cmd_1", nil), ctLog("stdout", "first "))
		// The rest is only sent once the client has delivered the first chunk: a client that
		// buffered the stream would never see it.
		select {
		case <-firstSeen:
		case <-r.Context().Done():
			return
		case <-time.After(10 * time.Second):
			t.Error("the first chunk was not delivered while the stream was still open")
		}
		send(ctLog("stderr", "warn\n"), ctLog("stdout", "second\n"), ctCommandJSON("cmd_1", ctInt(7)))
	})
	c, _ := ctClient(t, s, nil)
	var once sync.Once
	stdout := &ctBuffer{onWrite: func(string) { once.Do(func() { close(firstSeen) }) }}
	stderr := &ctBuffer{}
	cmd, err := c.runCommand(context.Background(), ctSession, commandRequest{Command: "make"}, stdout, stderr)
	if err != nil {
		t.Fatalf("RunCommand: %v", err)
	}
	if cmd.ExitCode == nil || *cmd.ExitCode != 7 || cmd.ID != "cmd_1" {
		t.Errorf("command = %+v, want exit code 7", cmd)
	}
	if stdout.String() != "first second\n" || stderr.String() != "warn\n" {
		t.Errorf("stdout %q stderr %q", stdout, stderr)
	}
	if n := s.count("", ""); n != 1 {
		t.Errorf("server saw %d requests, want 1", n)
	}
}

func TestClientCommandBodies(t *testing.T) {
	s := ctNewServer(t)
	s.handle("POST", ctCmdPath, func(w http.ResponseWriter, _ *http.Request, body []byte) {
		if strings.Contains(string(body), `"wait":true`) {
			ctStream(w)(ctCommandJSON("cmd_1", nil), ctCommandJSON("cmd_1", ctInt(0)))
			return
		}
		ctCommandAnswer(nil)(w, nil, body)
	})
	c, _ := ctClient(t, s, nil)
	ctx := context.Background()
	if _, err := c.runCommand(ctx, ctSession, commandRequest{Command: "ls"}, nil, nil); err != nil {
		t.Fatalf("RunCommand: %v", err)
	}
	if _, err := c.runCommand(ctx, ctSession, commandRequest{
		Command: "npm", Args: []string{"test"}, Cwd: "/vercel/sandbox/app", Env: map[string]string{"CI": "1"}, Sudo: true, Timeout: 90 * time.Second,
	}, nil, nil); err != nil {
		t.Fatalf("RunCommand: %v", err)
	}
	if _, err := c.startCommand(ctx, ctSession, commandRequest{Command: "server"}); err != nil {
		t.Fatalf("StartCommand: %v", err)
	}
	var got []string
	for _, r := range s.requests("POST", ctCmdPath) {
		got = append(got, string(r.Body))
	}
	want := []string{
		`{"command":"ls","args":[],"env":{},"sudo":false,"wait":true,"logs":true}`,
		`{"command":"npm","args":["test"],"cwd":"/vercel/sandbox/app","env":{"CI":"1"},"sudo":true,"wait":true,"logs":true,"timeout":90000}`,
		`{"command":"server","args":[],"env":{},"sudo":false}`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("bodies:\n got %q\nwant %q", got, want)
	}
}

func TestClientRunCommandRecoversFromACutStream(t *testing.T) {
	cases := []struct {
		name string
		// cut writes the POST's stream up to the cut.
		cut func(send func(...string))
		// replay is what GET logs sends (the whole output from the start).
		replay []string
		// delivered on the POST's stream before the cut
		wantOut, wantErr string
	}{
		{
			name: "cut after log lines",
			cut: func(send func(...string)) {
				send(ctCommandJSON("cmd_1", nil), ctLog("stdout", "hello "), ctLog("stderr", "e1"))
			},
			replay: []string{ctLog("stdout", "hel"), ctLog("stdout", "lo world\n"), ctLog("stderr", "e1e2")},
			// chunk boundaries differ in the replay: skipping is by bytes, not by lines
			wantOut: "hello world\n", wantErr: "e1e2",
		},
		{
			name:    "cut right after the first line",
			cut:     func(send func(...string)) { send(ctCommandJSON("cmd_1", nil)) },
			replay:  []string{ctLog("stdout", "all\n"), ctLog("stderr", "of it")},
			wantOut: "all\n", wantErr: "of it",
		},
		{
			name: "cut in the middle of a line",
			cut: func(send func(...string)) {
				send(ctCommandJSON("cmd_1", nil), ctLog("stdout", "ab"), `{"stream":"stdout","da`)
			},
			replay:  []string{ctLog("stdout", "abcd")},
			wantOut: "abcd",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := ctNewServer(t)
			s.handle("POST", ctCmdPath, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
				tc.cut(ctStream(w))
				ctCut()
			})
			s.handle("GET", ctCmd1Path+"/logs", func(w http.ResponseWriter, _ *http.Request, _ []byte) { ctStream(w)(tc.replay...) })
			s.handle("GET", ctCmd1Path, ctCommandAnswer(ctInt(3)))
			c, _ := ctClient(t, s, nil)
			var stdout, stderr ctBuffer
			cmd, err := c.runCommand(context.Background(), ctSession, commandRequest{Command: "build"}, &stdout, &stderr)
			if err != nil {
				t.Fatalf("RunCommand: %v", err)
			}
			if cmd.ExitCode == nil || *cmd.ExitCode != 3 {
				t.Errorf("command = %+v, want exit 3", cmd)
			}
			if stdout.String() != tc.wantOut || stderr.String() != tc.wantErr {
				t.Errorf("stdout %q stderr %q, want %q %q", stdout.String(), stderr.String(), tc.wantOut, tc.wantErr)
			}
			if n := s.count("POST", ""); n != 1 {
				t.Errorf("server saw %d POSTs, want exactly 1", n)
			}
			waits := 0
			for _, r := range s.requests("GET", ctCmd1Path) {
				if r.Query == "teamId=team_1&wait=true" {
					waits++
				}
			}
			if waits != 1 {
				t.Errorf("server saw %d waits, want 1", waits)
			}
		})
	}
}

func TestClientRunCommandCleanEndWithoutFinalLine(t *testing.T) {
	s := ctNewServer(t)
	s.handle("POST", ctCmdPath, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		ctStream(w)(ctCommandJSON("cmd_1", nil), ctLog("stdout", "partial"))
	})
	s.handle("GET", ctCmd1Path+"/logs", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		ctStream(w)(ctLog("stdout", "partial output"))
	})
	s.handle("GET", ctCmd1Path, ctCommandAnswer(ctInt(0)))
	c, _ := ctClient(t, s, nil)
	var stdout ctBuffer
	cmd, err := c.runCommand(context.Background(), ctSession, commandRequest{Command: "x"}, &stdout, nil)
	if err != nil || cmd.ExitCode == nil || *cmd.ExitCode != 0 {
		t.Fatalf("RunCommand = %+v, %v", cmd, err)
	}
	if stdout.String() != "partial output" {
		t.Errorf("stdout = %q", stdout.String())
	}
	if n := s.count("POST", ""); n != 1 {
		t.Errorf("%d POSTs", n)
	}
}

func TestClientRunCommandTwoLineStream(t *testing.T) {
	// Without a separate final line (the first command line already has the exit code), the
	// output that follows is still delivered, up to the clean end of the stream.
	s := ctNewServer(t)
	s.handle("POST", ctCmdPath, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		ctStream(w)(ctCommandJSON("cmd_1", ctInt(4)), ctLog("stdout", "late output"))
	})
	c, _ := ctClient(t, s, nil)
	var stdout ctBuffer
	cmd, err := c.runCommand(context.Background(), ctSession, commandRequest{Command: "x"}, &stdout, nil)
	if err != nil || cmd.ExitCode == nil || *cmd.ExitCode != 4 {
		t.Fatalf("RunCommand = %+v, %v", cmd, err)
	}
	if stdout.String() != "late output" {
		t.Errorf("stdout = %q", stdout.String())
	}
	if n := s.count("", ""); n != 1 {
		t.Errorf("server saw %d requests", n)
	}
}

func TestClientRunCommandCutBeforeFirstLine(t *testing.T) {
	for _, name := range []string{"reset", "empty stream"} {
		t.Run(name, func(t *testing.T) {
			s := ctNewServer(t)
			s.handle("POST", ctCmdPath, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
				ctStream(w)()
				if name == "reset" {
					ctCut()
				}
			})
			c, _ := ctClient(t, s, nil)
			_, err := c.runCommand(context.Background(), ctSession, commandRequest{Command: "x"}, nil, nil)
			if !errors.Is(err, errStreamCut) {
				t.Fatalf("err = %v, want ErrStreamCut", err)
			}
			if !strings.Contains(err.Error(), "may or may not have started") {
				t.Errorf("err = %q does not say the command may have started", err)
			}
			if n := s.count("", ""); n != 1 {
				t.Errorf("server saw %d requests, want only the POST", n)
			}
		})
	}
}

func TestClientRunCommandStreamErrorLine(t *testing.T) {
	s := ctNewServer(t)
	s.handle("POST", ctCmdPath, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		ctStream(w)(ctCommandJSON("cmd_1", nil), ctLog("stdout", "x"),
			`{"stream":"error","data":{"code":"sandbox_stopped","message":"Sandbox has stopped"}}`)
	})
	c, _ := ctClient(t, s, nil)
	_, err := c.runCommand(context.Background(), ctSession, commandRequest{Command: "x"}, nil, nil)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 0 || ae.Code != "sandbox_stopped" || ae.Message != "Sandbox has stopped" || ae.Op != "run command" {
		t.Fatalf("err = %#v", err)
	}
	if !errors.Is(err, sandbox.ErrEnded) {
		t.Errorf("stream error does not unwrap to ErrEnded")
	}
	if got := err.Error(); got != "vercel: run command: stream error sandbox_stopped: Sandbox has stopped" {
		t.Errorf("message = %q", got)
	}
	if n := s.count("", ""); n != 1 {
		t.Errorf("server saw %d requests", n)
	}
}

func TestClientRunCommandAPIErrorBeforeStream(t *testing.T) {
	s := ctNewServer(t)
	s.handle("POST", ctCmdPath, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		ctErr(w, 410, "sandbox_stopped", "Sandbox has stopped")
	})
	c, _ := ctClient(t, s, nil)
	_, err := c.runCommand(context.Background(), ctSession, commandRequest{Command: "x"}, nil, nil)
	if got := fmt.Sprint(err); got != "vercel: run command: 410 sandbox_stopped: Sandbox has stopped" || !errors.Is(err, sandbox.ErrEnded) {
		t.Fatalf("err = %q", got)
	}
}

func TestClientRunCommandCancelKills(t *testing.T) {
	for _, phase := range []string{"stream", "recovery"} {
		t.Run(phase, func(t *testing.T) {
			s := ctNewServer(t)
			waitUntilGone := func(w http.ResponseWriter, r *http.Request, lines ...string) {
				ctStream(w)(lines...)
				<-r.Context().Done()
			}
			s.handle("POST", ctCmdPath, func(w http.ResponseWriter, r *http.Request, _ []byte) {
				if phase == "recovery" {
					ctStream(w)(ctCommandJSON("cmd_1", nil))
					ctCut()
				}
				waitUntilGone(w, r, ctCommandJSON("cmd_1", nil), ctLog("stdout", "ready\n"))
			})
			s.handle("GET", ctCmd1Path+"/logs", func(w http.ResponseWriter, r *http.Request, _ []byte) {
				waitUntilGone(w, r, ctLog("stdout", "ready\n"))
			})
			killed := make(chan []byte, 1)
			s.handle("POST", ctCmd1Path+"/kill", func(w http.ResponseWriter, r *http.Request, body []byte) {
				killed <- body
				ctCommandAnswer(ctInt(137))(w, r, body)
			})
			c, _ := ctClient(t, s, nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stdout := &ctBuffer{onWrite: func(s string) {
				if strings.Contains(s, "ready") {
					cancel()
				}
			}}
			_, err := c.runCommand(ctx, ctSession, commandRequest{Command: "sleep", Args: []string{"600"}}, stdout, nil)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			select {
			case body := <-killed:
				if string(body) != `{"signal":9}` {
					t.Errorf("kill body = %s, want signal 9", body)
				}
			default:
				t.Fatal("RunCommand returned without killing the command")
			}
			if n := s.count("POST", ctCmdPath); n != 1 {
				t.Errorf("%d command POSTs", n)
			}
		})
	}
}

func TestClientRunCommandWriteErrorKills(t *testing.T) {
	s := ctNewServer(t)
	s.handle("POST", ctCmdPath, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		ctStream(w)(ctCommandJSON("cmd_1", nil), ctLog("stdout", "x"))
		<-r.Context().Done()
	})
	s.handle("POST", ctCmd1Path+"/kill", ctCommandAnswer(ctInt(137)))
	c, _ := ctClient(t, s, nil)
	boom := errors.New("disk full")
	_, err := c.runCommand(context.Background(), ctSession, commandRequest{Command: "x"}, ctFailingWriter{boom}, nil)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the write error", err)
	}
	if r := s.requests("POST", ctCmd1Path+"/kill"); len(r) != 1 || string(r[0].Body) != `{"signal":9}` {
		t.Errorf("kill requests: %+v", r)
	}
}

type ctFailingWriter struct{ err error }

func (w ctFailingWriter) Write([]byte) (int, error) { return 0, w.err }

func TestClientRunCommandJSONAnswerIsFollowed(t *testing.T) {
	s := ctNewServer(t)
	s.handle("POST", ctCmdPath, ctCommandAnswer(nil))
	s.handle("GET", ctCmd1Path+"/logs", func(w http.ResponseWriter, _ *http.Request, _ []byte) { ctStream(w)(ctLog("stdout", "out")) })
	s.handle("GET", ctCmd1Path, ctCommandAnswer(ctInt(1)))
	c, _ := ctClient(t, s, nil)
	var stdout ctBuffer
	cmd, err := c.runCommand(context.Background(), ctSession, commandRequest{Command: "x"}, &stdout, nil)
	if err != nil || *cmd.ExitCode != 1 || stdout.String() != "out" {
		t.Fatalf("RunCommand = %+v, %v, stdout %q", cmd, err, stdout.String())
	}
}

func TestClientWaitCommandReconnects(t *testing.T) {
	s := ctNewServer(t)
	var n atomic.Int32
	s.handle("GET", ctCmd1Path, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		switch n.Add(1) {
		case 1, 2, 3, 4: // more cuts than Retries: WaitCommand must not give up
			ctCut()
		case 5: // headers, then the body is cut
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"command":{"id":"cmd_1",`)
			w.(http.Flusher).Flush()
			ctCut()
		case 6:
			ctErr(w, 504, "", "gateway timeout")
		case 7: // answered without an exit code
			ctCommandAnswer(nil)(w, nil, nil)
		default:
			ctCommandAnswer(ctInt(42))(w, nil, nil)
		}
	})
	c, sl := ctClient(t, s, nil)
	cmd, err := c.waitCommand(context.Background(), ctSession, "cmd_1")
	if err != nil {
		t.Fatalf("WaitCommand: %v", err)
	}
	if cmd.ExitCode == nil || *cmd.ExitCode != 42 {
		t.Errorf("command = %+v", cmd)
	}
	if n.Load() != 8 {
		t.Errorf("server saw %d requests, want 8", n.Load())
	}
	for _, r := range s.requests("GET", ctCmd1Path) {
		if r.Query != "teamId=team_1&wait=true" {
			t.Errorf("query = %q", r.Query)
		}
	}
	if len(sl.all()) != 7 {
		t.Errorf("sleeps = %v, want one before each of the 7 retries", sl.all())
	}
}

func TestClientWaitCommandHonoursRetryAfter(t *testing.T) {
	s := ctNewServer(t)
	var n atomic.Int32
	s.handle("GET", ctCmd1Path, func(w http.ResponseWriter, r *http.Request, b []byte) {
		if n.Add(1) <= 4 { // more than one round of send's retries
			w.Header().Set("Retry-After", "5")
			ctErr(w, 429, "", "slow down")
			return
		}
		ctCommandAnswer(ctInt(0))(w, r, b)
	})
	c, sl := ctClient(t, s, nil)
	if _, err := c.waitCommand(context.Background(), ctSession, "cmd_1"); err != nil {
		t.Fatalf("WaitCommand: %v", err)
	}
	d := sl.all()
	if len(d) != 4 {
		t.Fatalf("sleeps = %v, want 4", d)
	}
	for _, x := range d {
		if x < 5*time.Second {
			t.Errorf("slept %v after a 429 asking for 5s (all: %v)", x, d)
		}
	}
}

func TestClientWaitCommandReturnsAPIErrors(t *testing.T) {
	s := ctNewServer(t)
	s.handle("GET", ctCmd1Path, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		ctErr(w, 410, "sandbox_stopped", "stopped")
	})
	c, _ := ctClient(t, s, nil)
	if _, err := c.waitCommand(context.Background(), ctSession, "cmd_1"); !errors.Is(err, sandbox.ErrEnded) {
		t.Fatalf("err = %v, want ErrEnded", err)
	}
	if n := s.count("", ""); n != 1 {
		t.Errorf("server saw %d requests", n)
	}
}

func TestClientFollowLogsSkipCounts(t *testing.T) {
	replay := []string{ctLog("stdout", "abc"), ctLog("stderr", "XY"), ctLog("stdout", "def"), ctLog("stderr", "Z")}
	cases := []struct {
		skipOut, skipErr int64
		wantOut, wantErr string
	}{
		{0, 0, "abcdef", "XYZ"},
		{4, 1, "ef", "YZ"},
		{3, 2, "def", "Z"},
		{6, 3, "", ""},
		{9, 9, "", ""}, // more than the replay holds: nothing, and the totals stay as given
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("skip %d,%d", tc.skipOut, tc.skipErr), func(t *testing.T) {
			s := ctNewServer(t)
			s.handle("GET", ctCmd1Path+"/logs", func(w http.ResponseWriter, _ *http.Request, _ []byte) { ctStream(w)(replay...) })
			s.handle("GET", ctCmd1Path, ctCommandAnswer(ctInt(0)))
			c, _ := ctClient(t, s, nil)
			var stdout, stderr ctBuffer
			outN, errN, err := c.followLogs(context.Background(), ctSession, "cmd_1", tc.skipOut, tc.skipErr, &stdout, &stderr)
			if err != nil {
				t.Fatalf("FollowLogs: %v", err)
			}
			if stdout.String() != tc.wantOut || stderr.String() != tc.wantErr {
				t.Errorf("stdout %q stderr %q, want %q %q", stdout.String(), stderr.String(), tc.wantOut, tc.wantErr)
			}
			if wantOutN, wantErrN := max(tc.skipOut, 6), max(tc.skipErr, 3); outN != wantOutN || errN != wantErrN {
				t.Errorf("totals %d,%d, want %d,%d", outN, errN, wantOutN, wantErrN)
			}
		})
	}
}

func TestClientFollowLogsReconnects(t *testing.T) {
	s := ctNewServer(t)
	var logs, gets atomic.Int32
	s.handle("GET", ctCmd1Path+"/logs", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		send := ctStream(w)
		switch logs.Add(1) {
		case 1: // cut
			send(ctLog("stdout", "one "), ctLog("stderr", "e"))
			ctCut()
		case 2: // clean end, but the command still runs
			send(ctLog("stdout", "one two "), ctLog("stderr", "e"))
		default:
			send(ctLog("stdout", "one two three"), ctLog("stderr", "ee"))
		}
	})
	s.handle("GET", ctCmd1Path, func(w http.ResponseWriter, r *http.Request, b []byte) {
		if gets.Add(1) == 1 {
			ctCommandAnswer(nil)(w, r, b)
			return
		}
		ctCommandAnswer(ctInt(0))(w, r, b)
	})
	c, _ := ctClient(t, s, nil)
	var stdout, stderr ctBuffer
	outN, errN, err := c.followLogs(context.Background(), ctSession, "cmd_1", 0, 0, &stdout, &stderr)
	if err != nil {
		t.Fatalf("FollowLogs: %v", err)
	}
	if stdout.String() != "one two three" || stderr.String() != "ee" || outN != 13 || errN != 2 {
		t.Errorf("stdout %q stderr %q totals %d %d", stdout.String(), stderr.String(), outN, errN)
	}
	if logs.Load() != 3 || gets.Load() != 2 {
		t.Errorf("logs requests %d, command GETs %d; want 3 and 2", logs.Load(), gets.Load())
	}
}

func TestClientFollowLogsStops(t *testing.T) {
	t.Run("410", func(t *testing.T) {
		s := ctNewServer(t)
		s.handle("GET", ctCmd1Path+"/logs", func(w http.ResponseWriter, _ *http.Request, _ []byte) { ctErr(w, 410, "sandbox_stopped", "gone") })
		c, _ := ctClient(t, s, nil)
		if _, _, err := c.followLogs(context.Background(), ctSession, "cmd_1", 0, 0, nil, nil); !errors.Is(err, sandbox.ErrEnded) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("wrong content type", func(t *testing.T) {
		s := ctNewServer(t)
		s.handle("GET", ctCmd1Path+"/logs", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
			w.Header().Set("Content-Type", "application/x-ndjson; charset=utf-8")
			_, _ = io.WriteString(w, ctLog("stdout", "x")+"\n")
		})
		c, _ := ctClient(t, s, nil)
		if _, _, err := c.followLogs(context.Background(), ctSession, "cmd_1", 0, 0, nil, nil); err == nil || !strings.Contains(err.Error(), "content-type") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("stream error line", func(t *testing.T) {
		s := ctNewServer(t)
		s.handle("GET", ctCmd1Path+"/logs", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
			ctStream(w)(`{"stream":"error","data":{"code":"sandbox_stream_closed","message":"closed"}}`)
		})
		c, _ := ctClient(t, s, nil)
		_, _, err := c.followLogs(context.Background(), ctSession, "cmd_1", 0, 0, nil, nil)
		var ae *APIError
		if !errors.As(err, &ae) || ae.Code != "sandbox_stream_closed" || !errors.Is(err, sandbox.ErrEnded) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestClientReadLogs(t *testing.T) {
	t.Run("maxWait ends a stream that goes on", func(t *testing.T) {
		s := ctNewServer(t)
		s.handle("GET", ctCmd1Path+"/logs", func(w http.ResponseWriter, r *http.Request, _ []byte) {
			ctStream(w)(ctLog("stdout", "tick\n"), ctLog("stderr", "warn\n"))
			<-r.Context().Done() // the process runs on; the client must hang up
		})
		c, _ := ctClient(t, s, nil)
		var got []string
		start := time.Now()
		ended, err := c.readLogs(context.Background(), ctSession, "cmd_1", 100*time.Millisecond, func(stream string, data []byte) {
			got = append(got, stream+":"+string(data))
		})
		if err != nil || ended {
			t.Fatalf("ReadLogs = %v, %v; want not ended, no error", ended, err)
		}
		if !reflect.DeepEqual(got, []string{"stdout:tick\n", "stderr:warn\n"}) {
			t.Errorf("lines = %q", got)
		}
		if el := time.Since(start); el > 5*time.Second {
			t.Errorf("ReadLogs took %v", el)
		}
		if n := s.count("GET", ctCmd1Path); n != 0 {
			t.Errorf("asked for the command %d times on a timeout", n)
		}
	})
	t.Run("a finished command's stream ends", func(t *testing.T) {
		s := ctNewServer(t)
		s.handle("GET", ctCmd1Path+"/logs", func(w http.ResponseWriter, _ *http.Request, _ []byte) { ctStream(w)(ctLog("stdout", "done")) })
		s.handle("GET", ctCmd1Path, ctCommandAnswer(ctInt(0)))
		c, _ := ctClient(t, s, nil)
		var got []string
		ended, err := c.readLogs(context.Background(), ctSession, "cmd_1", time.Minute, func(stream string, data []byte) {
			got = append(got, stream+":"+string(data))
		})
		if err != nil || !ended || !reflect.DeepEqual(got, []string{"stdout:done"}) {
			t.Fatalf("ReadLogs = %v, %v, %q", ended, err, got)
		}
	})
	t.Run("a cut stream is ErrStreamCut", func(t *testing.T) {
		s := ctNewServer(t)
		s.handle("GET", ctCmd1Path+"/logs", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
			ctStream(w)(ctLog("stdout", "a"))
			ctCut()
		})
		c, _ := ctClient(t, s, nil)
		ended, err := c.readLogs(context.Background(), ctSession, "cmd_1", time.Minute, func(string, []byte) {})
		if ended || !errors.Is(err, errStreamCut) {
			t.Fatalf("ReadLogs = %v, %v", ended, err)
		}
	})
}

func TestClientKillCommand(t *testing.T) {
	s := ctNewServer(t)
	s.handle("POST", ctCmd1Path+"/kill", ctCommandAnswer(ctInt(143)))
	c, _ := ctClient(t, s, nil)
	cmd, err := c.killCommand(context.Background(), ctSession, "cmd_1", 15)
	if err != nil || *cmd.ExitCode != 143 {
		t.Fatalf("KillCommand = %+v, %v", cmd, err)
	}
	if b := s.requests("POST", "")[0].Body; string(b) != `{"signal":15}` {
		t.Errorf("body = %s", b)
	}
}
