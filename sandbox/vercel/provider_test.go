package vercel_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/sandbox/vercel"
	"github.com/sandkit/sandkit-mcp/sandbox/vercel/vercelfake"
	"github.com/sandkit/sandkit-mcp/sandbox/vercel/vercelfake/vercelfaketest"
)

const cmdPath = `^/v2/sandboxes/sessions/[^/]+/cmd$`

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// sleeps records the client's backoff sleeps instead of sleeping.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

func start(t *testing.T, p sandbox.Provider, opts sandbox.StartOptions) sandbox.Sandbox {
	t.Helper()
	sb, err := p.Start(ctxT(t), opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = sb.Stop(context.Background()) })
	return sb
}

// startOnFake starts a fake API, a provider over it with owner and a sandbox on that; the
// provider is closed when the test ends.
func startOnFake(t *testing.T, owner string) (*vercelfaketest.TestEnv, *vercel.Provider, sandbox.Sandbox) {
	t.Helper()
	env := vercelfaketest.StartForTest(t, "", vercelfake.Options{})
	p := newProvider(t, env, owner)
	t.Cleanup(func() { _ = p.Close() })
	return env, p, start(t, p, sandbox.StartOptions{})
}

func sh(t *testing.T, sb sandbox.Sandbox, script string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	r, err := sb.Exec(ctxT(t), sandbox.ExecRequest{Command: "sh", Args: []string{"-c", script}, Stdout: &out, Stderr: &errb})
	if err != nil {
		t.Fatalf("Exec %q: %v", script, err)
	}
	return out.String(), errb.String(), r.ExitCode
}

// TestRetryAfterHonoured: a 429 on a command POST is retried after its Retry-After (the command
// then runs once); a Retry-After beyond 20 s is returned at once, naming the limit.
func TestRetryAfterHonoured(t *testing.T) {
	env := vercelfaketest.StartForTest(t, "", vercelfake.Options{})
	rec := &sleeps{}
	p := newProvider(t, env, "retry", func(o *vercel.Options) { o.Config.Sleep = rec.sleep })
	defer p.Close()
	sb := start(t, p, sandbox.StartOptions{})

	before := env.Fake.Requests("POST", cmdPath)
	env.Fake.Inject(vercelfake.Fault{Method: "POST", Path: cmdPath, Status: 429, RetryAfter: 3 * time.Second})
	out, _, code := sh(t, sb, "echo once >> ran.txt; cat ran.txt")
	if out != "once\n" || code != 0 {
		t.Fatalf("command after a 429: stdout %q, exit %d; want \"once\\n\", 0", out, code)
	}
	if n := env.Fake.Requests("POST", cmdPath) - before; n != 2 {
		t.Errorf("the fake saw %d command POSTs; want 2 (the refused one and its retry)", n)
	}
	waited := false
	for _, d := range rec.all() {
		if d >= 3*time.Second {
			waited = true
		}
	}
	if !waited {
		t.Errorf("backoff sleeps %v: none honours Retry-After: 3", rec.all())
	}

	env.Fake.Inject(vercelfake.Fault{Method: "POST", Path: cmdPath, Status: 429, RetryAfter: 60 * time.Second})
	n0 := len(rec.all())
	_, err := sb.Exec(ctxT(t), sandbox.ExecRequest{Command: "true"})
	if err == nil || !errors.Is(err, sandbox.ErrUnavailable) || !strings.Contains(err.Error(), "429") {
		t.Errorf("command answered 429 with Retry-After 60: %v; want an ErrUnavailable error naming the 429", err)
	}
	for _, d := range rec.all()[n0:] {
		if d >= 20*time.Second {
			t.Errorf("the client slept %v for a Retry-After of 60 s; it must give up at once past 20 s", d)
		}
	}
	if out, _, _ := sh(t, sb, "cat ran.txt"); out != "once\n" {
		t.Errorf("ran.txt = %q: a command ran more than once", out)
	}
}

// TestCommandPOSTNotResent: a 5xx answered after the command really started is not retried: the
// caller gets an error and the command ran exactly once.
func TestCommandPOSTNotResent(t *testing.T) {
	env, _, sb := startOnFake(t, "noresend")

	before := env.Fake.Requests("POST", cmdPath)
	env.Fake.Inject(vercelfake.Fault{Method: "POST", Path: cmdPath, Status: 502, AfterHandling: true})
	_, err := sb.Exec(ctxT(t), sandbox.ExecRequest{Command: "sh", Args: []string{"-c", "echo ran >> ran.txt"}})
	if err == nil {
		t.Fatal("Exec answered 502 succeeded; want an error")
	}
	if n := env.Fake.Requests("POST", cmdPath) - before; n != 1 {
		t.Fatalf("the fake saw %d command POSTs after a 502; want exactly 1 (a command is never re-sent)", n)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _, _ := sh(t, sb, "cat ran.txt 2>/dev/null")
		if out == "ran\n" {
			break
		}
		if out != "" || time.Now().After(deadline) {
			t.Fatalf("ran.txt = %q; want the command to have run exactly once", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStreamCutRecovered: the attached command's stream is cut mid-command; the output arrives
// whole, once, from the logs, and the exit code from wait, without re-sending the command.
func TestStreamCutRecovered(t *testing.T) {
	env, _, sb := startOnFake(t, "streamcut")

	before := env.Fake.Requests("POST", cmdPath)
	env.Fake.Inject(vercelfake.Fault{Method: "POST", Path: cmdPath, CutAfterLines: 2, Cut: true})
	out, errs, code := sh(t, sb, "echo ran >> ran.txt; for i in 1 2 3 4 5; do echo line $i; sleep 0.2; done; echo oops >&2; exit 3")
	if want := "line 1\nline 2\nline 3\nline 4\nline 5\n"; out != want || errs != "oops\n" || code != 3 {
		t.Errorf("after a cut stream: stdout %q, stderr %q, exit %d; want %q, \"oops\\n\", 3", out, errs, code, want)
	}
	if n := env.Fake.Requests("POST", cmdPath) - before; n != 1 {
		t.Errorf("the fake saw %d command POSTs; want 1", n)
	}
	if got, _, _ := sh(t, sb, "cat ran.txt"); got != "ran\n" {
		t.Errorf("ran.txt = %q; the command ran more than once", got)
	}
}

// TestSnapshotExpiry: starting from a snapshot that expired fails with ErrNotFound saying so;
// other snapshots are unaffected.
func TestSnapshotExpiry(t *testing.T) {
	env, p, sb := startOnFake(t, "expiry")
	if err := sb.WriteFiles(ctxT(t), []sandbox.File{{Path: "a.txt", Content: []byte("kept\n")}}); err != nil {
		t.Fatal(err)
	}
	s1, err := sb.Snapshot(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	sb2 := start(t, p, sandbox.StartOptions{Snapshot: s1.Ref})
	s2, err := sb2.Snapshot(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Fake.ExpireSnapshot(string(s2.Ref)); err != nil {
		t.Fatal(err)
	}
	_, err = p.Start(ctxT(t), sandbox.StartOptions{Snapshot: s2.Ref})
	if !errors.Is(err, sandbox.ErrNotFound) || !strings.Contains(err.Error(), string(s2.Ref)) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("Start from an expired snapshot: %v; want ErrNotFound naming %s and saying it expired", err, s2.Ref)
	}
	sb3 := start(t, p, sandbox.StartOptions{Snapshot: s1.Ref})
	fc, err := sb3.ReadFile(ctxT(t), "a.txt", 0, 0)
	if err != nil || string(fc.Data) != "kept\n" {
		t.Errorf("the older snapshot after another expired: %q, %v", fc.Data, err)
	}
}

// TestBadInput: what Vercel cannot do is refused before anything is created, saying why.
func TestBadInput(t *testing.T) {
	env := vercelfaketest.StartForTest(t, "", vercelfake.Options{})
	p := newProvider(t, env, "badinput", func(o *vercel.Options) { o.MaxLifetime = 45 * time.Minute })
	defer p.Close()
	ctx := ctxT(t)
	many := make([]int, 16)
	for i := range many {
		many[i] = 3000 + i
	}
	cases := []struct {
		name string
		opts sandbox.StartOptions
		want string
	}{
		{"port below 1024", sandbox.StartOptions{Ports: []int{80}}, "port 80"},
		{"16 ports", sandbox.StartOptions{Ports: many}, "at most 15"},
		{"lifetime beyond the plan", sandbox.StartOptions{Lifetime: 2 * time.Hour}, "45m"},
		{"header a proxy cannot set", sandbox.StartOptions{Policy: policies.Policy{Mode: policies.Allow, Services: []policies.Service{{ID: "x", Domains: []string{"api.example.com"}, Headers: []policies.Header{{Name: "host", Credential: policies.Credential{Env: "SANDKIT_CRED_TEST"}}}}}}}, `"host"`},
		{"credential missing", sandbox.StartOptions{Policy: policies.Policy{Mode: policies.Allow, Services: []policies.Service{{ID: "x", Domains: []string{"api.example.com"}, Headers: []policies.Header{{Name: "x-key", Credential: policies.Credential{Env: "SANDKIT_CRED_MISSING"}}}}}}}, "SANDKIT_CRED_MISSING"},
	}
	for _, c := range cases {
		_, err := p.Start(ctx, c.opts)
		if !errors.Is(err, sandbox.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want ErrInvalid mentioning %q", c.name, err, c.want)
		}
	}
	if n := len(env.Fake.Sessions()); n != 0 {
		t.Errorf("refused starts created %d sessions", n)
	}

	for _, c := range []struct {
		name   string
		change func(*vercel.Options)
		status string
	}{
		{"bad token", func(o *vercel.Options) { o.Config.Token = "wrong-token-value-77" }, "40"},
		{"unknown team", func(o *vercel.Options) { o.Config.TeamID = "team_other" }, "403"},
		{"unknown project", func(o *vercel.Options) { o.Config.ProjectID = "prj_other" }, "404"},
	} {
		q := newProvider(t, env, "badcreds", c.change)
		_, err := q.Start(ctx, sandbox.StartOptions{})
		q.Close()
		if err == nil || !strings.Contains(err.Error(), c.status) || strings.Contains(err.Error(), "wrong-token-value-77") || strings.Contains(err.Error(), vercelfaketest.TestToken) {
			t.Errorf("%s: %v; want an error with status %s that does not show the token", c.name, err, c.status)
		}
	}
}

// TestPolicyShapes: both request shapes reach the fake, which keeps the allow-list and the
// injected header's name, never its value; SetPolicy replaces it on a running sandbox.
func TestPolicyShapes(t *testing.T) {
	env := vercelfaketest.StartForTest(t, "", vercelfake.Options{})
	pol := policies.Policy{Mode: policies.Allow, Domains: []string{"example.com"}, Services: []policies.Service{
		{ID: "api", Domains: []string{"api.example.org"}, Headers: []policies.Header{{Name: "x-api-key", Credential: policies.Credential{Env: "SANDKIT_CRED_TEST"}}}},
	}}
	for _, shape := range []vercel.PolicyShape{vercel.PolicyLegacy, vercel.PolicyV2} {
		p := newProvider(t, env, "shapes", func(o *vercel.Options) { o.Config.PolicyShape = shape })
		sb := start(t, p, sandbox.StartOptions{Policy: pol})
		s, _, err := p.Client().GetSession(ctxT(t), sb.ID())
		if err != nil {
			t.Fatal(err)
		}
		np := s.NetworkPolicy
		if np == nil || np.Mode != "custom" || strings.Join(np.AllowedDomains, ",") != "api.example.org,example.com" ||
			len(np.InjectionRules) != 1 || np.InjectionRules[0].Domain != "api.example.org" || strings.Join(np.InjectionRules[0].HeaderNames, ",") != "x-api-key" {
			t.Errorf("shape %v: the session's policy is %+v; want custom with both domains and x-api-key injected on api.example.org", shape, np)
		}
		if err := sb.SetPolicy(ctxT(t), policies.Deny()); err != nil {
			t.Fatalf("SetPolicy: %v", err)
		}
		if s, _, _ = p.Client().GetSession(ctxT(t), sb.ID()); s.NetworkPolicy == nil || s.NetworkPolicy.Mode != "deny-all" {
			t.Errorf("shape %v: after SetPolicy(deny-all) the session's policy is %+v", shape, s.NetworkPolicy)
		}
		p.Close()
	}
}

// TestOwnersAreSeparate: a provider of another owner on the same project neither lists nor adopts
// this one's live sandboxes, and does not see its snapshots.
func TestOwnersAreSeparate(t *testing.T) {
	env := vercelfaketest.StartForTest(t, "", vercelfake.Options{})
	a := newProvider(t, env, "ownera")
	defer a.Close()
	b := newProvider(t, env, "ownerb")
	defer b.Close()
	live := start(t, a, sandbox.StartOptions{Detached: true})
	snap, err := start(t, a, sandbox.StartOptions{}).Snapshot(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if ids, err := a.Sandboxes(ctxT(t)); err != nil || len(ids) != 1 || ids[0] != live.ID() {
		t.Errorf("owner a lists %v, %v; want [%s]", ids, err, live.ID())
	}
	if ids, err := b.Sandboxes(ctxT(t)); err != nil || len(ids) != 0 {
		t.Errorf("owner b lists %v, %v; want none", ids, err)
	}
	if _, err := b.Reconnect(ctxT(t), live.ID()); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("owner b reconnects to a's sandbox: %v; want ErrNotFound", err)
	}
	if refs, err := b.Snapshots(ctxT(t)); err != nil || len(refs) != 0 {
		t.Errorf("owner b's snapshots: %v, %v; want none", refs, err)
	}
	if refs, err := a.Snapshots(ctxT(t)); err != nil || len(refs) != 1 || refs[0] != snap.Ref {
		t.Errorf("owner a's snapshots: %v, %v; want [%s]", refs, err, snap.Ref)
	}
}
