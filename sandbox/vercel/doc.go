// Package vercel is the Vercel Sandbox provider: it speaks Vercel's REST API (v2 sessions, the
// endpoints the official @vercel/sandbox SDK 3.x uses) directly, with no Node.js involved.
//
// # The client
//
// Client covers what the provider needs: create a sandbox (from a snapshot, persistent:false,
// ports, timeout, resources, env, tags, network policy), get/list/delete named sandboxes, get and
// stop sessions, extend their timeout, set their network policy, snapshot them (which stops the
// VM), get/list/delete snapshots, run commands attached (one NDJSON stream) or detached, wait for
// them and follow their logs with reconnects, kill them, and write/read/mkdir files. Credentials
// come from VERCEL_OIDC_TOKEN (or the token file SANDKIT_VERCEL_OIDC_TOKEN_FILE names), or
// VERCEL_ACCESS_TOKEN with VERCEL_TEAM_ID and VERCEL_PROJECT_ID (ConfigFromEnv); an OIDC token
// is renewed past its exp from the token file or with the Vercel CLI's login, as @vercel/oidc
// does (client_token.go), and one nothing renews fails with a TokenExpiredError. Idempotent calls are retried on 429 (honouring Retry-After), 5xx and network
// errors; a command, a create, a snapshot or an extension is never sent twice: a lost answer is
// recovered by looking (the sandbox by its name, the command's output by its id, the snapshot by
// its session) instead. The wire API is unexported except what code outside the package uses:
// Provider.Client's ListSandboxes, GetSession and TokenStatus, and the errors.
//
// # The provider
//
// Provider implements the sandbox contract on top of the client:
//
//   - Start creates a sandbox named "sk-<owner>-<label>-<random>", tagged sandkit=<owner> (and
//     sandkit-live=<owner> when Detached), from the snapshot, with the compiled network policy,
//     the ports and the lifetime as Vercel's timeout. A fresh one (no snapshot) gets /workspace
//     made first: Vercel's working directory is /vercel/sandbox, but every sandkit provider keeps
//     the workspace at /workspace.
//   - A durable run is therefore create-from-snapshot → run → snapshot: one sandbox creation and
//     one snapshot per command (Vercel bills both). A read (read_file, list_files) creates one
//     sandbox and stops it.
//   - Snapshot keeps the VM's whole disk (Capabilities.WholeDisk): system packages installed with
//     sudo survive too. The stopped sandbox stays as the record that the snapshot belongs to this
//     owner; DeleteSnapshot deletes both. Snapshots never expire unless Options.SnapshotExpiration
//     says so; one that vanished anyway makes Start fail with ErrNotFound, naming it.
//   - Live sandboxes (sessions) are found again after a restart by their session id; Sandboxes
//     lists this owner's running live ones (and, the first time, stops orphaned sandboxes of
//     durable runs of a server that died).
//   - File operations that the API lacks (windows of files, listings, symlink-aware containment
//     in /workspace) run small shell scripts in the VM; stdin is uploaded to a file first, since
//     Vercel commands have none.
//   - Exposed ports are Vercel's public routes (Capabilities.PortURLs: PortURL, no DialPort);
//     ports must be given at Start, at most 15, from 1024 up.
//   - Deadlines only move later (Capabilities.FixedDeadline); the plan limit is
//     Options.MaxLifetime (45 min on Hobby, 24 h on Pro).
//   - Policies compile to Vercel's network policy: allow-all, deny-all, or an allow-list of
//     domains with header injection (credential brokering at Vercel's egress proxy; the secret
//     travels to Vercel's API, never into the VM). The V2 request shape (allow: {domain:
//     [transform]}), which the newest SDK sends, goes first; a 400 naming it is retried once in
//     the legacy shape (mode:"custom", injectionRules), which the client then keeps using;
//     Config.PolicyShape forces either. A Vercel wildcard stands for one label; headers Vercel
//     cannot set are refused.
//
// # Testing
//
// Package vercelfake is a faithful fake of the API, checked against the official SDK by a
// contract test; the provider passes the conformance suite (sandboxtest) against it.
package vercel
