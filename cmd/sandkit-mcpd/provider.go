package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/sandbox/local"
	"github.com/sandkit/sandkit-mcp/sandbox/vercel"
)

// providerName is the provider to run: --provider, else $SANDKIT_PROVIDER (both in
// cfg.provider), else the config file's "provider", else local.
func providerName(cfg config, oc operatorConfig) string {
	switch {
	case cfg.provider != "":
		return cfg.provider
	case oc.provider != "":
		return oc.provider
	}
	return "local"
}

// providerHere refuses, before a daemon is started, a provider this system cannot run at all
// (the local provider off Linux): the door then says what to do itself instead of quoting the
// log of a daemon that could not start. A config that does not load is left to the daemon,
// which names the field.
func providerHere(cfg config) error {
	if local.Usable() == nil {
		return nil
	}
	if oc, err := loadOperatorConfig(cfg); err != nil || providerName(cfg, oc) != "local" {
		return nil
	}
	return local.Usable()
}

// warmOption is --warm-sandboxes as local.Options has it (0 there is the default; none is
// negative).
func warmOption(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// openProvider makes the provider cfg and the operator config ask for.
func openProvider(cfg config, oc operatorConfig, logger *slog.Logger) (sandbox.Provider, error) {
	if providerName(cfg, oc) == "vercel" {
		return openVercel(cfg, oc, logger)
	}
	prov, err := local.New(local.Options{
		Dir: filepath.Join(cfg.dataDir, "local"), Bwrap: cfg.bwrap, Logger: logger,
		MemoryLimit: cfg.memoryLimit, PidsLimit: cfg.pidsLimit, Egress: oc.egress,
		WarmSandboxes: warmOption(cfg.warmSandboxes),
	})
	if err != nil {
		return nil, fmt.Errorf("%w\nrun `sandkit-mcp doctor` for a full check", err)
	}
	return prov, nil
}

// vercelOptions builds the Vercel provider's options from the environment and the config (the
// environment wins: SANDKIT_VERCEL_API_URL over api_url, SANDKIT_VERCEL_OIDC_TOKEN_FILE over
// oidc_token_file).
func vercelOptions(cfg config, oc operatorConfig, logger *slog.Logger) (vercel.Options, error) {
	vc, err := vercel.ConfigFromEnv(func(k string) string {
		v := os.Getenv(k)
		if v == "" && k == vercel.EnvOIDCTokenFile {
			return oc.vercel.oidcTokenFile
		}
		return v
	})
	if err != nil {
		return vercel.Options{}, err
	}
	if oc.vercel.apiURL != "" && os.Getenv("SANDKIT_VERCEL_API_URL") == "" {
		vc.BaseURL = oc.vercel.apiURL
	}
	vc.PolicyShape = oc.vercel.policyShape
	vc.UserAgent = "sandkit-mcp/" + version
	owner, err := installationID(cfg.dataDir)
	if err != nil {
		return vercel.Options{}, err
	}
	return vercel.Options{
		Config: vc, Owner: owner, Runtime: oc.vercel.runtime, VCPUs: oc.vercel.vcpus,
		DefaultLifetime: oc.vercel.defaultLifetime, MaxLifetime: oc.vercel.maxLifetime,
		SnapshotExpiration: oc.vercel.snapshotExpiration, Logger: logger,
	}, nil
}

// openVercel makes the Vercel provider. Operator egress exceptions do not apply there (the
// sandbox runs in Vercel's cloud, not next to this machine's network).
func openVercel(cfg config, oc operatorConfig, logger *slog.Logger) (sandbox.Provider, error) {
	opts, err := vercelOptions(cfg, oc, logger)
	if err != nil {
		return nil, fmt.Errorf("vercel provider: %w\nrun `sandkit-mcp doctor --provider vercel` for a full check", err)
	}
	if len(oc.egress.AllowAddrs)+len(oc.egress.AllowPrefixes)+len(oc.egress.Resolve) > 0 {
		logger.Warn("the config's egress section applies to the local provider only; Vercel sandboxes reach the internet through Vercel's own egress proxy")
	}
	return vercel.New(opts)
}

var installationIDRe = regexp.MustCompile(`^[a-z0-9]{12}$`)

// installationID returns the data dir's installation id (made on first use): 12 characters of
// [a-z0-9] that tag this installation's Vercel sandboxes, so several installations can share a
// Vercel project without touching one another's sandboxes and snapshots.
func installationID(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "installation-id")
	if b, err := os.ReadFile(path); err == nil {
		id := strings.TrimSpace(string(b))
		if !installationIDRe.MatchString(id) {
			return "", fmt.Errorf("%s holds %q, not an installation id (12 characters of a-z and 0-9); restore it from a backup, or remove it only if no Vercel sandbox or snapshot of this data dir exists", path, id)
		}
		return id, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", err
	}
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	var b [12]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b[:], '\n'), 0o600); err != nil {
		return "", err
	}
	// Link, not rename: when two processes race, the first id wins and both read it.
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, os.ErrExist) {
		os.Remove(tmp)
		return "", err
	}
	os.Remove(tmp)
	return installationID(dataDir)
}

// vercelChecks are doctor's checks of the Vercel provider: credentials present and well formed
// (the configuration, read here), then the provider's own diagnosis (vercel.Diagnose: the token's
// expiry and renewal, the API accepting the credentials).
func vercelChecks(ctx context.Context, cfg config, oc operatorConfig) []local.Check {
	cred := local.Check{Name: "vercel credentials"}
	opts, err := vercelOptions(cfg, oc, slog.New(slog.DiscardHandler))
	if err != nil {
		cred.Detail = err.Error()
		cred.Fix = "set VERCEL_OIDC_TOKEN (run `vercel env pull` in a linked project; it lasts 12 h; name the file it writes in vercel.oidc_token_file or SANDKIT_VERCEL_OIDC_TOKEN_FILE to have it re-read, or log in with `vercel login` to have it renewed), or VERCEL_ACCESS_TOKEN (a token from https://vercel.com/account/tokens) with VERCEL_TEAM_ID and VERCEL_PROJECT_ID (the project's settings page), in the environment the daemon starts from"
		return []local.Check{cred}
	}
	cred.OK = true
	cred.Detail = fmt.Sprintf("team %s, project %s, API %s", opts.Config.TeamID, opts.Config.ProjectID, opts.Config.APIAddress())
	return append([]local.Check{cred}, vercel.Diagnose(ctx, opts)...)
}
