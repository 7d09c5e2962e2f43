package vercel_test

import (
	"strings"
	"testing"

	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/sandbox/vercel"
	"github.com/sandkit/sandkit-mcp/sandbox/vercel/vercelfake"
	"github.com/sandkit/sandkit-mcp/sandbox/vercel/vercelfake/vercelfaketest"
)

const (
	createPath = `^/v[23]/sandboxes$`
	policyPath = `^/v2/sandboxes/sessions/[^/]+/network-policy$`
)

// TestPolicyShapeFallback: by default the client sends the V2 shape (the newest SDK's); an API
// refusing it with a 400 naming `allow` gets one retry in the legacy shape, and the client keeps
// sending the legacy shape first afterwards (create and the session update alike). An API
// refusing the legacy shape never sees it. A forced shape is never switched.
func TestPolicyShapeFallback(t *testing.T) {
	pol := policies.Policy{Mode: policies.Allow, Domains: []string{"example.com"}}
	other := policies.Policy{Mode: policies.Allow, Domains: []string{"example.org"}}
	cases := []struct {
		reject       string
		firstCreates int // create requests for the first sandbox
	}{
		{reject: "v2", firstCreates: 2},
		{reject: "legacy", firstCreates: 1},
	}
	for _, tc := range cases {
		t.Run("fake rejects "+tc.reject, func(t *testing.T) {
			env := vercelfaketest.StartForTest(t, "", vercelfake.Options{RejectPolicyShape: tc.reject})
			p := newProvider(t, env, "shapes")
			defer p.Close()
			sb := start(t, p, sandbox.StartOptions{Policy: pol})
			if n := env.Fake.Requests("POST", createPath); n != tc.firstCreates {
				t.Errorf("first create: %d requests, want %d", n, tc.firstCreates)
			}
			if err := sb.SetPolicy(ctxT(t), other); err != nil {
				t.Fatalf("SetPolicy: %v", err)
			}
			if n := env.Fake.Requests("POST", policyPath); n != 1 {
				t.Errorf("SetPolicy after the shape was learnt: %d requests, want 1", n)
			}
			s, _, err := p.Client().GetSession(ctxT(t), sb.ID())
			if err != nil {
				t.Fatal(err)
			}
			if s.NetworkPolicy == nil || s.NetworkPolicy.Mode != "custom" || strings.Join(s.NetworkPolicy.AllowedDomains, ",") != "example.org" {
				t.Errorf("the session's policy is %+v, want custom allowing example.org", s.NetworkPolicy)
			}
			start(t, p, sandbox.StartOptions{Policy: pol})
			if n := env.Fake.Requests("POST", createPath); n != tc.firstCreates+1 {
				t.Errorf("second create: %d requests in all, want %d (the working shape first)", n, tc.firstCreates+1)
			}
		})
	}

	t.Run("forced shape", func(t *testing.T) {
		env := vercelfaketest.StartForTest(t, "", vercelfake.Options{RejectPolicyShape: "v2"})
		p := newProvider(t, env, "forced", func(o *vercel.Options) { o.Config.PolicyShape = vercel.PolicyV2 })
		defer p.Close()
		_, err := p.Start(ctxT(t), sandbox.StartOptions{Policy: pol})
		if err == nil || !strings.Contains(err.Error(), "additional property `allow`") {
			t.Fatalf("Start with the V2 shape forced against an API refusing it: %v; want the 400 naming `allow`", err)
		}
		if n := env.Fake.Requests("POST", createPath); n != 1 {
			t.Errorf("%d create requests, want 1 (a forced shape is not retried)", n)
		}
	})
}

// TestUploadHeaders: file uploads carry x-cwd "/" and content-type application/gzip, as the SDK
// sends them.
func TestUploadHeaders(t *testing.T) {
	env, _, sb := startOnFake(t, "upload")
	if err := sb.WriteFiles(ctxT(t), []sandbox.File{{Path: "a.txt", Content: []byte("a\n")}}); err != nil {
		t.Fatal(err)
	}
	reqs := env.Fake.RequestLog("POST", `^/v2/sandboxes/sessions/[^/]+/fs/write$`)
	if len(reqs) == 0 {
		t.Fatal("no fs/write request reached the fake")
	}
	for _, r := range reqs {
		if got := r.Header.Values("X-Cwd"); len(got) != 1 || got[0] != "/" {
			t.Errorf("fs/write x-cwd = %q, want [\"/\"]", got)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/gzip" {
			t.Errorf("fs/write content-type = %q, want application/gzip", ct)
		}
	}
	if out, _, _ := sh(t, sb, "cat /workspace/a.txt"); out != "a\n" {
		t.Errorf("the uploaded file reads %q", out)
	}
}
