package vercel

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// ctJWT makes an unsigned-looking JWT with the given claims.
func ctJWT(t *testing.T, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + enc(claims) + ".c2lnbmF0dXJlX1NFQ1JFVA"
}

func TestConfigFromEnv(t *testing.T) {
	now := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	exp := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC).Unix()
	good := ctJWT(t, map[string]any{"owner_id": "team_oidc", "project_id": "prj_oidc", "exp": exp, "iat": exp - 43200})
	expired := ctJWT(t, map[string]any{"owner_id": "team_oidc", "project_id": "prj_oidc", "exp": now.Add(-time.Minute).Unix()})
	noOwner := ctJWT(t, map[string]any{"project_id": "prj_oidc", "exp": exp})
	noClaims := ctJWT(t, map[string]any{"exp": exp})
	badPayload := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`not json SECRETPAYLOAD`)) + ".c2ln"
	const access = "vca_ACCESS_SECRET_123"
	later := ctJWT(t, map[string]any{"owner_id": "team_oidc", "project_id": "prj_oidc", "exp": exp + 3600})
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fileGood := write("good.env", "# Created by Vercel CLI\nVERCEL_ENV=\"development\"\nVERCEL_OIDC_TOKEN=\""+good+"\"\n")
	fileLater := write("later.env", "export VERCEL_OIDC_TOKEN='"+later+"'\n")
	fileOther := write("other.env", "OTHER=SECRET_OTHER\n")
	fileExpired := write("expired.env", "VERCEL_OIDC_TOKEN="+expired+"\n")
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(filepath.Join(home, ".local", "share", "com.vercel.cli"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".local", "share", "com.vercel.cli", "auth.json"), []byte(`{"token":"SECRET_LOGIN"}`), 0o600); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name    string
		env     map[string]string
		want    Config // when wantErr is ""
		wantErr string // substring of the error
		secrets []string
	}{
		{
			name: "nothing", env: map[string]string{},
			wantErr: "no Vercel credentials: set VERCEL_OIDC_TOKEN (vercel env pull) or VERCEL_ACCESS_TOKEN, VERCEL_TEAM_ID and VERCEL_PROJECT_ID",
		},
		{
			name: "team and project without a token", env: map[string]string{"VERCEL_TEAM_ID": "t", "VERCEL_PROJECT_ID": "p"},
			wantErr: "no Vercel credentials",
		},
		{
			name:    "access token alone",
			env:     map[string]string{"VERCEL_ACCESS_TOKEN": access},
			wantErr: "VERCEL_ACCESS_TOKEN is set but VERCEL_TEAM_ID and VERCEL_PROJECT_ID are not: an access token needs both (find them in the project's settings)",
			secrets: []string{access},
		},
		{
			name:    "access token without project",
			env:     map[string]string{"VERCEL_ACCESS_TOKEN": access, "VERCEL_TEAM_ID": "team_a"},
			wantErr: "VERCEL_ACCESS_TOKEN is set but VERCEL_PROJECT_ID is not",
			secrets: []string{access},
		},
		{
			name:    "access token without team",
			env:     map[string]string{"VERCEL_ACCESS_TOKEN": access, "VERCEL_PROJECT_ID": "prj_a"},
			wantErr: "VERCEL_ACCESS_TOKEN is set but VERCEL_TEAM_ID is not",
			secrets: []string{access},
		},
		{
			name: "access token complete",
			env:  map[string]string{"VERCEL_ACCESS_TOKEN": access, "VERCEL_TEAM_ID": "team_a", "VERCEL_PROJECT_ID": "prj_a", "VERCEL_OIDC_TOKEN": good},
			want: Config{Token: access, TeamID: "team_a", ProjectID: "prj_a"},
		},
		{
			name:    "access token with a newline",
			env:     map[string]string{"VERCEL_ACCESS_TOKEN": access + "\n", "VERCEL_TEAM_ID": "team_a", "VERCEL_PROJECT_ID": "prj_a"},
			wantErr: "VERCEL_ACCESS_TOKEN contains whitespace or control characters",
			secrets: []string{access},
		},
		{
			name: "oidc",
			env:  map[string]string{"VERCEL_OIDC_TOKEN": good},
			want: Config{Token: good, TokenSource: "VERCEL_OIDC_TOKEN", TeamID: "team_oidc", ProjectID: "prj_oidc"},
		},
		{
			name: "oidc with overrides and an API URL",
			env:  map[string]string{"VERCEL_OIDC_TOKEN": good, "VERCEL_TEAM_ID": "team_x", "VERCEL_PROJECT_ID": "prj_x", "SANDKIT_VERCEL_API_URL": "http://127.0.0.1:8080/api"},
			want: Config{Token: good, TokenSource: "VERCEL_OIDC_TOKEN", TeamID: "team_x", ProjectID: "prj_x", BaseURL: "http://127.0.0.1:8080/api"},
		},
		{
			name: "oidc without owner_id but VERCEL_TEAM_ID set",
			env:  map[string]string{"VERCEL_OIDC_TOKEN": noOwner, "VERCEL_TEAM_ID": "team_x"},
			want: Config{Token: noOwner, TokenSource: "VERCEL_OIDC_TOKEN", TeamID: "team_x", ProjectID: "prj_oidc"},
		},
		{
			name:    "oidc without owner_id",
			env:     map[string]string{"VERCEL_OIDC_TOKEN": noOwner},
			wantErr: "VERCEL_OIDC_TOKEN has no owner_id claim and VERCEL_TEAM_ID is not set",
			secrets: []string{noOwner, strings.Split(noOwner, ".")[1]},
		},
		{
			name:    "oidc without claims",
			env:     map[string]string{"VERCEL_OIDC_TOKEN": noClaims},
			wantErr: "no owner_id and no project_id claim",
		},
		{
			name:    "oidc expired",
			env:     map[string]string{"VERCEL_OIDC_TOKEN": expired},
			wantErr: "the OIDC token from VERCEL_OIDC_TOKEN expired at 2026-11-20T08:59:00Z and could not be renewed (no token file is configured and there is no Vercel CLI login). To go on: run `vercel env pull`",
			secrets: []string{expired, strings.Split(expired, ".")[1], strings.Split(expired, ".")[2]},
		},
		{
			name:    "oidc not a JWT",
			env:     map[string]string{"VERCEL_OIDC_TOKEN": "SECRET_opaque_token"},
			wantErr: "VERCEL_OIDC_TOKEN is not a JWT (expected three dot-separated base64url parts)",
			secrets: []string{"SECRET_opaque_token"},
		},
		{
			name:    "oidc with four parts",
			env:     map[string]string{"VERCEL_OIDC_TOKEN": good + ".x"},
			wantErr: "is not a JWT (expected three",
			secrets: []string{good},
		},
		{
			name:    "oidc with bad base64",
			env:     map[string]string{"VERCEL_OIDC_TOKEN": "abc.d$$SECRET.efg"},
			wantErr: "is not a JWT (expected three",
			secrets: []string{"SECRET"},
		},
		{
			name:    "oidc with an empty part",
			env:     map[string]string{"VERCEL_OIDC_TOKEN": strings.Join(strings.Split(good, ".")[:2], ".") + "."},
			wantErr: "is not a JWT (expected three",
		},
		{
			name:    "oidc payload not JSON",
			env:     map[string]string{"VERCEL_OIDC_TOKEN": badPayload},
			wantErr: "VERCEL_OIDC_TOKEN is not a JWT: its payload is not a JSON object",
			secrets: []string{"SECRETPAYLOAD", "not json"},
		},
		{
			name:    "oidc with a space",
			env:     map[string]string{"VERCEL_OIDC_TOKEN": "Bearer " + good},
			wantErr: "VERCEL_OIDC_TOKEN contains whitespace or control characters",
			secrets: []string{good},
		},
		{
			name:    "oidc with a control character",
			env:     map[string]string{"VERCEL_OIDC_TOKEN": good + "\x00"},
			wantErr: "contains whitespace or control characters",
			secrets: []string{good},
		},
		{
			name: "oidc from a token file",
			env:  map[string]string{"SANDKIT_VERCEL_OIDC_TOKEN_FILE": fileGood},
			want: Config{Token: good, TokenSource: fileGood, OIDCTokenFile: fileGood, TeamID: "team_oidc", ProjectID: "prj_oidc"},
		},
		{
			name: "oidc from a token file expiring later than the variable's",
			env:  map[string]string{"SANDKIT_VERCEL_OIDC_TOKEN_FILE": fileLater, "VERCEL_OIDC_TOKEN": good},
			want: Config{Token: later, TokenSource: fileLater, OIDCTokenFile: fileLater, TeamID: "team_oidc", ProjectID: "prj_oidc"},
		},
		{
			name: "oidc from the variable expiring later than the file's",
			env:  map[string]string{"SANDKIT_VERCEL_OIDC_TOKEN_FILE": fileGood, "VERCEL_OIDC_TOKEN": later},
			want: Config{Token: later, TokenSource: "VERCEL_OIDC_TOKEN", OIDCTokenFile: fileGood, TeamID: "team_oidc", ProjectID: "prj_oidc"},
		},
		{
			name: "oidc variable with an unreadable token file",
			env:  map[string]string{"SANDKIT_VERCEL_OIDC_TOKEN_FILE": dir + "/missing", "VERCEL_OIDC_TOKEN": good},
			want: Config{Token: good, TokenSource: "VERCEL_OIDC_TOKEN", OIDCTokenFile: dir + "/missing", TeamID: "team_oidc", ProjectID: "prj_oidc"},
		},
		{
			name:    "oidc token file alone, missing",
			env:     map[string]string{"SANDKIT_VERCEL_OIDC_TOKEN_FILE": dir + "/missing"},
			wantErr: "SANDKIT_VERCEL_OIDC_TOKEN_FILE: the token file cannot be read: open " + dir + "/missing: no such file or directory",
		},
		{
			name:    "oidc token file without the variable's line",
			env:     map[string]string{"SANDKIT_VERCEL_OIDC_TOKEN_FILE": fileOther},
			wantErr: "holds no VERCEL_OIDC_TOKEN=… line",
			secrets: []string{"SECRET_OTHER"},
		},
		{
			name: "oidc expired with a token file to renew it",
			env:  map[string]string{"VERCEL_OIDC_TOKEN": expired, "SANDKIT_VERCEL_OIDC_TOKEN_FILE": fileExpired},
			want: Config{Token: expired, TokenSource: "VERCEL_OIDC_TOKEN", OIDCTokenFile: fileExpired, TeamID: "team_oidc", ProjectID: "prj_oidc"},
		},
		{
			name: "oidc expired with a CLI login to renew it",
			env:  map[string]string{"VERCEL_OIDC_TOKEN": expired, "HOME": home, "SANDKIT_VERCEL_OIDC_REFRESH_URL": "http://127.0.0.1:9/"},
			want: Config{Token: expired, TokenSource: "VERCEL_OIDC_TOKEN", CLIDataDir: home + "/.local/share", OIDCRefreshURL: "http://127.0.0.1:9/", TeamID: "team_oidc", ProjectID: "prj_oidc"},
		},
		{
			name:    "oidc expired, CLI data dir without a login",
			env:     map[string]string{"VERCEL_OIDC_TOKEN": expired, "XDG_DATA_HOME": dir},
			wantErr: "no token file is configured and there is no Vercel CLI login at " + dir + "/com.vercel.cli/auth.json",
		},
		{
			name:    "bad API URL",
			env:     map[string]string{"VERCEL_OIDC_TOKEN": good, "SANDKIT_VERCEL_API_URL": "vercel.com/api"},
			wantErr: "SANDKIT_VERCEL_API_URL is not a usable API URL",
			secrets: []string{good},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := configFromEnv(func(k string) string { return tc.env[k] }, now)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if !reflect.DeepEqual(cfg, tc.want) {
					t.Errorf("config = %+v, want %+v", cfg, tc.want)
				}
				if _, err := newClient(cfg); err != nil {
					t.Errorf("NewClient refuses the config: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, config %+v", cfg)
			}
			if !errors.Is(err, ErrCredentials) {
				t.Errorf("err %v does not wrap ErrCredentials", err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %q\nwant it to contain %q", err, tc.wantErr)
			}
			for _, secret := range append(tc.secrets, tc.env["VERCEL_ACCESS_TOKEN"], tc.env["VERCEL_OIDC_TOKEN"]) {
				if secret != "" && strings.Contains(err.Error(), secret) {
					t.Errorf("err %q shows a secret %q", err, secret)
				}
			}
			if !reflect.DeepEqual(cfg, Config{}) {
				t.Errorf("config %+v returned with an error", cfg)
			}
		})
	}
}

func TestConfigFromEnvUsesTheClock(t *testing.T) {
	// The exported function checks expiry against the real clock.
	past := ctJWT(t, map[string]any{"owner_id": "t", "project_id": "p", "exp": 1_000_000_000})
	future := ctJWT(t, map[string]any{"owner_id": "t", "project_id": "p", "exp": time.Now().Add(time.Hour).Unix()})
	if _, err := ConfigFromEnv(func(k string) string {
		if k == "VERCEL_OIDC_TOKEN" {
			return past
		}
		return ""
	}); err == nil || !strings.Contains(err.Error(), "expired at 2001-09-09T01:46:40Z") {
		t.Errorf("expired token: err = %v", err)
	}
	cfg, err := ConfigFromEnv(func(k string) string {
		if k == "VERCEL_OIDC_TOKEN" {
			return future
		}
		return ""
	})
	if err != nil || cfg.TeamID != "t" || cfg.ProjectID != "p" {
		t.Errorf("valid token: %+v, %v", cfg, err)
	}
}
