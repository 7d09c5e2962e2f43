package vercel

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReadTokenFile(t *testing.T) {
	dir := t.TempDir()
	const tok = "aaa.bbb.ccc"
	cases := []struct {
		name, content, want, wantErr string
	}{
		{"dotenv, double quotes", "VERCEL_ENV=\"development\"\nVERCEL_OIDC_TOKEN=\"" + tok + "\"\n", tok, ""},
		{"dotenv, single quotes, export", "export VERCEL_OIDC_TOKEN='" + tok + "'", tok, ""},
		{"dotenv, bare, CRLF", "# c\r\nVERCEL_OIDC_TOKEN=" + tok + "\r\nX=1\r\n", tok, ""},
		{"dotenv, spaces around", "  VERCEL_OIDC_TOKEN = " + tok + "  \n", tok, ""},
		{"the token alone", tok + "\n", tok, ""},
		{"empty value", "VERCEL_OIDC_TOKEN=\"\"\n", "", "has an empty VERCEL_OIDC_TOKEN line"},
		{"value with a space", "VERCEL_OIDC_TOKEN=\"a SECRET\"\n", "", "whitespace or control characters"},
		{"other variables only", "OTHER=SECRET\n", "", "holds no VERCEL_OIDC_TOKEN=… line"},
		{"empty file", "", "", "holds no VERCEL_OIDC_TOKEN=… line"},
		{"a prefixed name", "MY_VERCEL_OIDC_TOKEN=SECRET\n", "", "holds no VERCEL_OIDC_TOKEN=… line"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, "f"+string(rune('a'+i)))
			if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := readTokenFile(p)
			if tc.wantErr == "" {
				if err != nil || got != tc.want {
					t.Fatalf("readTokenFile = %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), p) {
				t.Fatalf("err = %v; want one naming %s and saying %q", err, p, tc.wantErr)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("err %q shows the file's content", err)
			}
		})
	}
}

// TestTokenFileChanges: the file is read again only when its size or modification time changed,
// or when forced (after a refusal), which sees a same-size rewrite with the same timestamp.
func TestTokenFileChanges(t *testing.T) {
	p := filepath.Join(t.TempDir(), ".env.local")
	if err := os.WriteFile(p, []byte("VERCEL_OIDC_TOKEN=one.two.three\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &tokenFile{path: p}
	if tok, err := f.readIfChanged(false); err != nil || tok != "one.two.three" {
		t.Fatalf("first read: %q, %v", tok, err)
	}
	if tok, err := f.readIfChanged(false); err != nil || tok != "" {
		t.Fatalf("unchanged: %q, %v; want \"\"", tok, err)
	}
	if err := os.WriteFile(p, []byte("VERCEL_OIDC_TOKEN=four.five.sixsix\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if tok, err := f.readIfChanged(false); err != nil || tok != "four.five.sixsix" {
		t.Fatalf("changed: %q, %v", tok, err)
	}
	// Same size, and the modification time put back: only a forced read sees the new token.
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("VERCEL_OIDC_TOKEN=seven.eight.nine\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if tok, err := f.readIfChanged(false); err != nil || tok != "" {
		t.Fatalf("same size and time: %q, %v; want \"\" (not read)", tok, err)
	}
	if tok, err := f.readIfChanged(true); err != nil || tok != "seven.eight.nine" {
		t.Fatalf("forced: %q, %v", tok, err)
	}
	os.Remove(p)
	if _, err := f.readIfChanged(false); err == nil || !strings.Contains(err.Error(), "cannot be read") {
		t.Fatalf("removed: %v", err)
	}
}

// TestRefusedTokenRenewal: a 403 of an OIDC token is sent once more only with a renewed token
// (the file's new one); without one it is the API's 403 after a single request; an access
// token's 403 is never sent again.
func TestRefusedTokenRenewal(t *testing.T) {
	exp := time.Now().Add(time.Hour).Unix()
	first := ctJWT(t, map[string]any{"owner_id": ctTeam, "project_id": ctProject, "exp": exp})
	second := ctJWT(t, map[string]any{"owner_id": ctTeam, "project_id": ctProject, "exp": exp + 60})
	s := ctNewServer(t)
	s.handle("GET", "/api/v2/sandboxes/sessions/"+ctSession, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		if r.Header.Get("Authorization") != "Bearer "+second {
			ctErr(w, 403, "forbidden", "Not authorized")
			return
		}
		ctJSON(w, 200, map[string]any{"session": ctSessionJSON(ctSession, "running"), "routes": []any{}})
	})
	file := filepath.Join(t.TempDir(), ".env.local")
	if err := os.WriteFile(file, []byte("VERCEL_OIDC_TOKEN="+first+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _ := ctClient(t, s, func(cfg *Config) { cfg.Token, cfg.OIDCTokenFile = first, file })
	_, _, err := c.GetSession(context.Background(), ctSession)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 403 || s.count("", "") != 1 {
		t.Fatalf("refused, the file holding the same token: %v after %d requests; want the 403 after 1", err, s.count("", ""))
	}
	if err := os.WriteFile(file, []byte("VERCEL_OIDC_TOKEN="+second+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.GetSession(context.Background(), ctSession); err != nil {
		t.Fatalf("refused, then renewed from the file: %v", err)
	}
	reqs := s.requests("", "")
	if len(reqs) != 3 || reqs[1].Header.Get("Authorization") != "Bearer "+first || reqs[2].Header.Get("Authorization") != "Bearer "+second {
		t.Errorf("%d requests; want 3, the refused one with the old token and its retry with the new one", len(reqs))
	}

	access, _ := ctClient(t, s, nil)
	if _, _, err := access.GetSession(context.Background(), ctSession); !errors.As(err, &ae) || ae.Status != 403 || s.count("", "") != 4 {
		t.Errorf("access token refused: %v after %d requests in all; want the 403 after one more", err, s.count("", ""))
	}
}
