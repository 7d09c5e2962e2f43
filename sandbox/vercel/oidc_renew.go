package vercel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"
)

// The two renewals of an OIDC token (see client_token.go): the token file, and the Vercel CLI's
// login as @vercel/oidc uses it.

// maxTokenFile bounds what is read of a token file or of the CLI's JSON files.
const maxTokenFile = 1 << 20

// tokenFile is a file the OIDC token is re-read from when it changes.
type tokenFile struct {
	path string
	// seen is set once the file has been read; size and mod are what it was then.
	seen bool
	size int64
	mod  time.Time
}

// readIfChanged returns the file's token when the file changed (size or modification time)
// since the last call, on the first call, or always when force is set (after the API refused
// the token: a file rewritten with a token of the same length within the file system's
// timestamp granularity looks unchanged); "" when it has not changed.
func (f *tokenFile) readIfChanged(force bool) (string, error) {
	fi, err := os.Stat(f.path)
	if err != nil {
		return "", fmt.Errorf("the token file cannot be read: %w", err)
	}
	if !force && f.seen && fi.Size() == f.size && fi.ModTime().Equal(f.mod) {
		return "", nil
	}
	tok, err := readTokenFile(f.path)
	if err != nil {
		return "", err
	}
	f.seen, f.size, f.mod = true, fi.Size(), fi.ModTime()
	return tok, nil
}

// readTokenFile reads an OIDC token from path: the value of its VERCEL_OIDC_TOKEN line in the
// dotenv form `vercel env pull` writes (VERCEL_OIDC_TOKEN="…", optionally after "export ",
// single or double quotes or none), or else the file's whole content when that is one word
// (the form of VERCEL_OIDC_TOKEN_FILE in newer @vercel/oidc). Errors name the file, never its
// content.
func readTokenFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("the token file cannot be read: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxTokenFile))
	if err != nil {
		return "", fmt.Errorf("the token file cannot be read: %w", err)
	}
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		line = strings.TrimSpace(strings.TrimPrefix(line, "export "))
		key, val, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(key) != EnvOIDCToken {
			continue
		}
		val = strings.TrimSpace(val)
		if len(val) >= 2 && (val[0] == '"' || val[0] == '\'') && val[len(val)-1] == val[0] {
			val = val[1 : len(val)-1]
		}
		if val == "" {
			return "", fmt.Errorf("the token file %s has an empty %s line", path, EnvOIDCToken)
		}
		if !tokenWellFormed(val) {
			return "", fmt.Errorf("the token file %s has a %s with whitespace or control characters", path, EnvOIDCToken)
		}
		return val, nil
	}
	if word := strings.TrimSpace(string(data)); word != "" && !strings.ContainsAny(word, "= \t\r\n") && tokenWellFormed(word) {
		return word, nil
	}
	return "", fmt.Errorf("the token file %s holds no %s=… line (the form `vercel env pull` writes)", path, EnvOIDCToken)
}

// cliDataDir is where @vercel/oidc looks for the Vercel CLI's files: $XDG_DATA_HOME, else
// ~/.local/share on Linux, ~/Library/Application Support on macOS, %LOCALAPPDATA% on Windows;
// "" when unknown.
func cliDataDir(getenv func(string) string) string {
	if d := getenv("XDG_DATA_HOME"); d != "" {
		return d
	}
	home := getenv("HOME")
	switch runtime.GOOS {
	case "darwin":
		if home != "" {
			return filepath.Join(home, "Library", "Application Support")
		}
	case "windows":
		return getenv("LOCALAPPDATA")
	default:
		if home != "" {
			return filepath.Join(home, ".local", "share")
		}
	}
	return ""
}

// cliAuthPath is the CLI login's file under the data directory.
func cliAuthPath(dataDir string) string { return filepath.Join(dataDir, "com.vercel.cli", "auth.json") }

// cliLoginPresent reports whether the CLI login's file exists.
func cliLoginPresent(dataDir string) bool {
	if dataDir == "" {
		return false
	}
	_, err := os.Stat(cliAuthPath(dataDir))
	return err == nil
}

// cliLoginWhere is " at <auth.json>" for messages ("" when the data directory is unknown).
func cliLoginWhere(dataDir string) string {
	if dataDir == "" {
		return ""
	}
	return " at " + cliAuthPath(dataDir)
}

// cliLogin renews OIDC tokens with the Vercel CLI's login, as @vercel/oidc does.
type cliLogin struct {
	dataDir   string
	url       string // the token endpoint's API root, without a trailing slash
	http      *http.Client
	userAgent string

	// issuer is the OAuth issuer whose discovery document names the token endpoint the login
	// is refreshed at, without a trailing slash (cli_oauth.go).
	issuer string

	mu sync.Mutex
	// failedAuth is a login token the endpoint refused at failedAt, with failedErr.
	failedAuth string
	failedAt   time.Time
	failedErr  error
	// The OAuth refresh of the login (cli_oauth.go): the token endpoint once discovered; the
	// refresh token that failed at failedRefreshAt with failedRefreshErr; the refreshed login
	// kept in memory when auth.json could not be written (see loginToken).
	oauthEndpoint    string
	failedRefresh    string
	failedRefreshAt  time.Time
	failedRefreshErr error
	unsaved          *unsavedLogin
}

// cliRequest is one renewal: the project and team ("" : from .vercel/project.json), the token
// the API refused ("" when none was) and the time.
type cliRequest struct {
	project, team, refused string
	now                    time.Time
}

// authFile is the CLI login's auth.json (the fields @vercel/oidc reads and writes).
type authFile struct {
	Token        string   `json:"token"`
	ExpiresAt    *float64 `json:"expiresAt"` // seconds since the epoch
	RefreshToken string   `json:"refreshToken"`
}

// expiry is the login token's expiry (zero: none, it does not expire).
func (a authFile) expiry() time.Time {
	if a.ExpiresAt == nil {
		return time.Time{}
	}
	return time.Unix(int64(*a.ExpiresAt), 0).UTC()
}

var projectIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// resolve fills the project and team from .vercel/project.json when the token's claims lack
// them, as @vercel/oidc does (it looks for a .vercel directory from the working directory up).
func (r *cliRequest) resolve() error {
	if r.project == "" || r.team == "" {
		p, t, err := linkedProject()
		if err != nil {
			return err
		}
		if r.project == "" {
			r.project = p
		}
		if r.team == "" {
			r.team = t
		}
	}
	if !projectIDRe.MatchString(r.project) {
		return fmt.Errorf("the project %q is not a project id the token endpoint takes", r.project)
	}
	return nil
}

// linkedProject reads projectId and orgId from the .vercel/project.json nearest the working
// directory.
func linkedProject() (project, team string, err error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", "", fmt.Errorf("the token names no project and the working directory is unknown: %w", err)
	}
	for {
		p := filepath.Join(dir, ".vercel", "project.json")
		if data, err := os.ReadFile(p); err == nil {
			var pj struct {
				ProjectID string `json:"projectId"`
				OrgID     string `json:"orgId"`
			}
			if json.Unmarshal(data, &pj) != nil || pj.ProjectID == "" {
				return "", "", fmt.Errorf("%s has no projectId: run `vercel link` again", p)
			}
			return pj.ProjectID, pj.OrgID, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", "", fmt.Errorf("the token names no project and no .vercel/project.json was found from the working directory up: run `vercel link`")
		}
		dir = parent
	}
}

// cachePath is @vercel/oidc's cache of the project's renewed token.
func (l *cliLogin) cachePath(project string) string {
	return filepath.Join(l.dataDir, "com.vercel.token", project+".json")
}

// readAuth reads the CLI login and returns it with the file's bytes; an error says why there
// is no usable one. An expired login is returned (loginToken refreshes it).
func (l *cliLogin) readAuth() (authFile, []byte, error) {
	p := cliAuthPath(l.dataDir)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return authFile{}, nil, fmt.Errorf("there is no Vercel CLI login at %s", p)
	}
	if err != nil {
		return authFile{}, nil, fmt.Errorf("the Vercel CLI login cannot be read: %w", err)
	}
	var a authFile
	if json.Unmarshal(data, &a) != nil || a.Token == "" {
		return authFile{}, nil, fmt.Errorf("the Vercel CLI login at %s holds no token: run `vercel login`", p)
	}
	if !tokenWellFormed(a.Token) || a.RefreshToken != "" && !tokenWellFormed(a.RefreshToken) {
		return authFile{}, nil, fmt.Errorf("the Vercel CLI login at %s holds a token with whitespace or control characters", p)
	}
	return a, data, nil
}

// readCache returns the cached token of the project when it has more than refreshBuffer left
// and is not refused.
func (l *cliLogin) readCache(project, refused string, now time.Time) string {
	data, err := os.ReadFile(l.cachePath(project))
	if err != nil || len(data) > maxTokenFile {
		return ""
	}
	var c struct {
		Token string `json:"token"`
	}
	if json.Unmarshal(data, &c) != nil || c.Token == "" || c.Token == refused || !tokenWellFormed(c.Token) {
		return ""
	}
	claims, err := parseOIDCClaims(c.Token, "")
	if err != nil {
		return ""
	}
	if exp := claims.expiry(); !exp.IsZero() && exp.Sub(now) <= refreshBuffer {
		return ""
	}
	return c.Token
}

// writeCache saves a renewed token where @vercel/oidc keeps it (owner-only permissions),
// replacing the file atomically. Failures only cost a later renewal.
func (l *cliLogin) writeCache(project, tok string) {
	p := l.cachePath(project)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), "."+project+".*.tmp")
	if err != nil {
		return
	}
	data, _ := json.Marshal(map[string]string{"token": tok})
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Rename(tmp.Name(), p) != nil {
		os.Remove(tmp.Name())
	}
}

// token returns a renewed OIDC token: the cached one when it is fresh, else one from the token
// endpoint (then cached) with the CLI login's token, refreshed first when it nears its expiry. Errors say why there is none, without any token.
func (l *cliLogin) token(ctx context.Context, r cliRequest) (string, error) {
	if err := r.resolve(); err != nil {
		return "", err
	}
	if tok := l.readCache(r.project, r.refused, r.now); tok != "" {
		return tok, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	login, err := l.loginToken(ctx, r.now)
	if err != nil {
		return "", err
	}
	if r.refused == "" && login == l.failedAuth && r.now.Sub(l.failedAt) < cliRetryPause {
		return "", l.failedErr
	}
	tok, err := l.request(ctx, login, r)
	if err != nil {
		l.failedAuth, l.failedAt, l.failedErr = login, r.now, err
		return "", err
	}
	l.failedAuth = ""
	l.writeCache(r.project, tok)
	return tok, nil
}

// request asks the token endpoint for a new token, as @vercel/oidc does: POST
// /v1/projects/{project}/token?source=vercel-oidc-refresh&teamId={team} (teamId only when
// known) with the login's token as bearer and no body.
func (l *cliLogin) request(ctx context.Context, login string, r cliRequest) (string, error) {
	u := l.url + "/v1/projects/" + url.PathEscape(r.project) + "/token?source=vercel-oidc-refresh"
	if r.team != "" {
		u += "&teamId=" + url.QueryEscape(r.team)
	}
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, http.NoBody)
	if err != nil {
		return "", fmt.Errorf("the token endpoint %s: %w", l.url, err)
	}
	req.Header.Set("Authorization", "Bearer "+login)
	req.Header.Set("User-Agent", l.userAgent)
	resp, err := l.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("the token endpoint at %s could not be reached: %w", l.url, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		ae := apiErrorFromResponse("renew the OIDC token", resp)
		return "", fmt.Errorf("the token endpoint at %s refused the Vercel CLI login: %s", l.url, strings.TrimPrefix(ae.Error(), "vercel: renew the OIDC token: "))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenFile))
	if err != nil {
		return "", fmt.Errorf("the token endpoint at %s: reading its answer: %w", l.url, err)
	}
	var out struct {
		Token string `json:"token"`
	}
	if json.Unmarshal(bytes.TrimSpace(data), &out) != nil || out.Token == "" {
		return "", fmt.Errorf("the token endpoint at %s answered without a token", l.url)
	}
	return out.Token, nil
}

// status says how the CLI login would renew the token, or why it would not, without sending
// anything.
func (l *cliLogin) status(project, team string, now time.Time) (string, error) {
	r := cliRequest{project: project, team: team, now: now}
	if err := r.resolve(); err != nil {
		return "", err
	}
	auth, _, err := l.readAuth()
	if err != nil {
		return "", err
	}
	p := cliAuthPath(l.dataDir)
	what := fmt.Sprintf("renewed with the Vercel CLI login at %s for project %s from %s when it nears its exp", p, r.project, l.url)
	exp := auth.expiry()
	switch {
	case exp.IsZero():
	case auth.RefreshToken != "" && exp.Sub(now) < refreshBuffer:
		what += fmt.Sprintf(" (the login expires at %s; it is refreshed first with its refresh token at %s's token endpoint)", exp.Format(time.RFC3339), l.issuer)
	case auth.RefreshToken != "":
		what += fmt.Sprintf(" (the login expires at %s, then it is refreshed with its refresh token at %s's token endpoint)", exp.Format(time.RFC3339), l.issuer)
	case !now.Before(exp):
		return "", loginExpiredError(p, exp, "holds no refresh token to renew it")
	default:
		what += fmt.Sprintf(" (the login expires at %s and holds no refresh token: then run `vercel login`)", exp.Format(time.RFC3339))
	}
	return what, nil
}
