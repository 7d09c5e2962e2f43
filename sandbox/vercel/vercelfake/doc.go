// Package vercelfake is a faithful fake of the Vercel Sandbox REST API, v2 "named sandbox +
// sessions" generation (the API the @vercel/sandbox SDK 2.x/3.x speaks; see
// shared/reference/vercel-sandbox-api.md), for testing clients of that API — the Go client and
// provider in sandbox/vercel, which this package deliberately does not import: it is their
// independent check. The published SDK itself is run against it (TestSDKContract).
//
// It is not an in-memory imitation: every session is a live sandbox of a sandbox.Provider
// backend (Backend.Start with Detached: true), commands really run, files are really written
// and read, snapshots are backend snapshots, the network policy is really applied where the
// backend can express it, routes really serve the ports inside the sandbox, and a session's
// timeout really ends it.
//
// # Using it in tests
//
//	backend, err := local.New(local.Options{Dir: t.TempDir(), HomeDir: vercelfake.HomeDir})
//	if err != nil { t.Fatal(err) }
//	localtest.StopLiveAtCleanup(t, backend)
//	fake, err := vercelfake.New(vercelfake.Options{
//		Backend: backend, Token: "tok", TeamID: "team_x", ProjectID: "prj_x",
//	})
//	if err != nil { t.Fatal(err) }
//	srv := httptest.NewServer(fake) // 127.0.0.1
//	t.Cleanup(func() { fake.Close(); srv.Close() })
//	// Point the client at srv.URL (or srv.URL+"/api", the SDK's base path): both are served.
//
// Register the fake's cleanup after StopLiveAtCleanup so it runs first. Tests can inject
// faults (Inject: 429 with Retry-After, 5xx before or after the real operation, connections cut
// before an answer or after N NDJSON lines), count requests (Requests: "exactly one command
// was posted"; RequestLog shows their query and headers), refuse one network-policy shape
// (RejectPolicyShape, as production once refused the V2 one), expire a snapshot (ExpireSnapshot) and look at sessions and snapshots
// (Sessions, Snapshots). SnapshotDelay makes snapshots last long enough to observe the 422
// sandbox_snapshotting window; MaxTimeout sets the plan maximum (400 sandbox_timeout_invalid).
//
// # What it reproduces
//
// The endpoints of reference §5.1–§5.5 (create on /v2 and /v3, get and resume, list with
// cursor pagination and filters, PATCH, DELETE, fork; sessions: get, list, stop, extend-timeout,
// network-policy, snapshot on /v2 and /v3; commands: run attached (NDJSON, exactly
// "application/x-ndjson", one flushed line at a time) and detached, list newest first, get, wait,
// logs (replay then follow), kill; fs/write, fs/read, fs/mkdir; snapshots: get, list, delete)
// with the objects' required fields (§4), error bodies {error:{code,message}}, and the state
// rules of §10: every session operation answers 422 sandbox_stopping / sandbox_snapshotting
// while the session ends and 410 sandbox_stopped afterwards; a snapshot stops the session (not
// like the official mock); stopping a persistent sandbox takes an "automatic" snapshot; a
// named sandbox's currentSnapshotId moves with every snapshot and resume (GET ?resume=true)
// starts a new session from it; an expired or deleted snapshot answers 410 snapshot_not_found.
// A command outlives the client that started it; streams of a session that stops end with a
// {"stream":"error","data":{"code":"sandbox_stopped",...}} line. Request bodies are validated
// strictly, like the API's validator ("should NOT have additional property"), except the SDK's
// private "__" parameters on create and fork, which are ignored; an empty body with
// content-type application/json is accepted. Besides Options.Token (an access token) the
// Sandbox endpoints accept OIDC tokens the fake issued (IssueOIDCToken: a JWT with owner_id,
// project_id and exp) until their exp by the fake's clock (Options.Clock), and the fake serves
// the endpoint @vercel/oidc renews them with, POST /v1/projects/{project}/token (bearer: the
// CLI login's token, Options.CLIToken; answered {token}) and the OAuth endpoints the CLI login
// is refreshed at (GET /.well-known/openid-configuration, POST /login/oauth/token with the
// refresh_token grant; oauth.go).
//
// # Where it is deliberately simpler than the real service
//
//   - The VM is the backend's sandbox: with the local provider, a bubblewrap sandbox seeing the
//     host's /usr, user "sandbox" (uid 1000; its home: see Paths). runtime and image are
//     validated and reported but not honoured; sudo:true runs the command as that same user
//     (there is no root). vcpus/memory are reported, not enforced.
//   - Paths: sessions report cwd "/vercel/sandbox", which is the backend's durable /workspace:
//     a path (or cwd) equal to or under /vercel/sandbox is mapped onto /workspace for fs/* and
//     for a command's cwd. The VM user's home is HomeDir (/home/vercel-sandbox, as on Vercel's
//     runtimes): give the backend that home (local.Options.HomeDir, as above) and commands see
//     it as $HOME too; with a backend whose home is elsewhere, fs/* and cwd map HomeDir onto it.
//     The text of commands is NOT rewritten: `cat /vercel/sandbox/x` fails and `pwd` prints
//     /workspace; use paths relative to the working directory. Only /workspace and the home
//     directory survive a snapshot (the provider contract); a real VM snapshot keeps the whole
//     filesystem.
//   - Detached commands are the backend's background processes, which interleave stdout and
//     stderr: their logs are all "stdout". Their output is kept in /tmp/.vercelfake-<cmd>.out
//     inside the VM (commands can see that file) and read along every 50 ms, so none is lost
//     however fast it comes. Attached commands keep the two streams apart.
//   - kill: a detached command receives the real signal. An attached command cannot: a kill
//     with a terminating signal ends its whole process tree (SIGKILL) and reports 128+signal;
//     signals that do not terminate by default (0, SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN,
//     SIGTTOU, SIGURG, SIGWINCH) are accepted and do nothing. A command's timeout kills with
//     SIGKILL and reports 137 (the real exit code is undocumented).
//   - Each command keeps at most 16 MiB of output for replay; older output is dropped.
//   - Network policy: allow-all, deny-all and the domains a custom policy allows are applied
//     with the backend's SetPolicy (so with the backend's matching: "*.x.com" matches
//     subdomains at any depth, not one label; a "*" domain is allow-all; no domain at all is
//     deny-all; the local backend also refuses private and loopback destinations). Subnets
//     (allowedCIDRs/deniedCIDRs) and the rules' header transforms, forwardURL and direct
//     responses are validated, stored and echoed but NOT enforced. Echoes use the legacy
//     response shape with header names only; direct-response rules, which that shape lacks,
//     are echoed as "responseRules" (domain, match, statusCode, contentType, headerNames,
//     hasBody) — an inferred shape the SDK's validator passes through.
//   - Routes: each port's route is served for real by a reverse proxy on 127.0.0.1:0 to the
//     port inside the sandbox (plain HTTP; no TLS); its url is "http://127.0.0.1:<port>", where
//     the real one is https://<subdomain>.vercel.run.
//     The subdomain ("sb-" + 12 characters) is stable per sandbox and port, the url changes
//     with every session; a stopped session's listener is closed (connection refused) and its
//     route then shows the vercel.run address. A port nothing listens on answers 502.
//   - Metrics: networkTransfer counts only route traffic; activeCpuDurationMs is approximated
//     by the wall time of the session's commands; snapshot sizeBytes is the backend's changed
//     bytes plus the parent snapshot's size.
//   - A session ends at (startedAt + timeout) by the fake's own timer; the backend sandbox's
//     lifetime is that plus one minute, as a safety net only (a persistent sandbox's automatic
//     snapshot needs the VM alive at the deadline).
//   - Snapshot expiry is checked when snapshots are used or listed, not by a background
//     clock (expirations are at least a day; tests use ExpireSnapshot). An expired or deleted
//     snapshot stays readable with status "deleted" (GET answers 200, not 404): the validator's
//     status enum has "deleted", and §10.4 says a DELETE, an expiry or an eviction leads to it.
//     Its backend data is freed at once. expiresAt counts from the last use (a restore
//     refreshes lastUsedAt), per the changelog.
//   - Not offered: the v1 API, interactive shells (POST .../interactive answers 400), drives and
//     mounts (400), git and tarball sources (400), the snapshot tree (GET
//     /v2/sandboxes/snapshots/tree is taken as the unknown snapshot "tree": 404), regions
//     (region and failoverRegions are validated and reported; everything runs here), rate and
//     concurrency limits and 402 (inject them with Inject).
//   - State lives in memory; Close stops every backend sandbox and route listener.
//
// # Inferred behaviour (the reference does not settle it)
//
//   - A duplicate sandbox name answers 409 {error:{code:"conflict"}}.
//   - Creating from a snapshot sets the new sandbox's currentSnapshotId to it, so a resume
//     before any new snapshot restores that snapshot; without a current snapshot a resume
//     starts empty.
//   - keepLastSnapshots: after each snapshot of a sandbox, its snapshots beyond the newest
//     count (never the current one) are deleted (deleteEvicted, the default) or, with
//     deleteEvicted false, made to expire keepLastSnapshots.expiration after eviction.
//   - POST stop of a stopping session waits until it has stopped; of a stopped one it returns
//     the session as it is. A session still starting answers 422 "sandbox_pending".
//   - Timeouts above the plan maximum on create answer 400 sandbox_timeout_invalid too.
//   - Snapshot expirations (and snapshotExpiration) must be 0 or at least one day.
//   - OIDC tokens are signed HS256 with a key of the fake's own (Vercel's are RS256). An OIDC
//     token past its exp is 403 forbidden with invalidToken ("the OIDC token has expired"); the
//     token endpoint refuses an OIDC token as its bearer (403) and takes the project by id or
//     name (404 otherwise), scoped by ?teamId= like every request.
//   - Auth: a missing or wrong token is 403 forbidden (with missingToken/invalidToken, as
//     Vercel's API does elsewhere); a wrong team 403 forbidden naming it; a project that is
//     neither Options.ProjectID nor ProjectName 404 "Project not found".
//   - fs/mkdir of an existing directory, or without its parent (non-recursive), answers 400
//     bad_request; fs/read of a directory 400, of an unreadable file 403.
//   - List endpoints: limit 1–100 (default 50); the cursor is an opaque offset.
//   - Validation messages follow the API's style ("Invalid request: `field` ..."); only the
//     ports message is known verbatim.
package vercelfake
