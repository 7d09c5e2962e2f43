// The contract test of the fake Vercel Sandbox API: the published @vercel/sandbox SDK (pinned in
// package.json) drives the fake through its `fetch` option, which rewrites the SDK's base URL
// https://vercel.com/api to the fake. Every step asserts what a real user of the SDK would rely
// on and prints one line; any failure exits non-zero. The SDK's zod validators check every
// response, so a missing required field fails here too.
//
// Environment: FAKE_URL (e.g. http://127.0.0.1:12345), FAKE_TOKEN, FAKE_TEAM, FAKE_PROJECT;
// FAKE_OIDC_TOKEN, an OIDC token of the fake that expires within the SDK's 5-minute margin, and
// XDG_DATA_HOME holding a Vercel CLI login (com.vercel.cli/auth.json) the fake's token endpoint
// accepts: the last step has @vercel/oidc renew the token there (its requests to
// https://api.vercel.com go to the fake through the global fetch).
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { Sandbox, Snapshot } from "@vercel/sandbox";

const { FAKE_URL, FAKE_TOKEN, FAKE_TEAM, FAKE_PROJECT } = process.env;
for (const [k, v] of Object.entries({ FAKE_URL, FAKE_TOKEN, FAKE_TEAM, FAKE_PROJECT })) {
  if (!v) {
    console.error(`${k} is not set`);
    process.exit(2);
  }
}

const SDK_BASE = "https://vercel.com/api";
const OIDC_BASE = "https://api.vercel.com";
const seen = [];
const realFetch = globalThis.fetch;
// @vercel/oidc calls the global fetch with https://api.vercel.com URLs: those go to the fake too.
globalThis.fetch = async (input, init) => {
  const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
  if (url.startsWith(OIDC_BASE + "/")) {
    const target = FAKE_URL + url.slice(OIDC_BASE.length);
    seen.push(`${init?.method ?? "GET"} ${new URL(target).pathname} (api.vercel.com)`);
    return realFetch(target, init);
  }
  return realFetch(input, init);
};
// The SDK's seam: every request goes through this fetch. The init (headers, body, the SDK's
// undici dispatcher, the abort signal) is passed on untouched.
async function fakeFetch(input, init) {
  const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
  if (!url.startsWith(SDK_BASE + "/")) {
    throw new Error(`the SDK asked for ${url}, which is not under ${SDK_BASE}`);
  }
  const target = FAKE_URL + "/api" + url.slice(SDK_BASE.length);
  seen.push(`${init?.method ?? "GET"} ${new URL(target).pathname}`);
  return realFetch(target, init);
}

const creds = { token: FAKE_TOKEN, teamId: FAKE_TEAM, projectId: FAKE_PROJECT, fetch: fakeFetch };
const started = Date.now();
let stepNo = 0;
async function step(name, fn) {
  stepNo++;
  const t0 = Date.now();
  try {
    await fn();
  } catch (err) {
    console.error(`FAIL ${stepNo}. ${name}: ${err?.stack ?? err}`);
    if (err?.json) console.error("response JSON:", JSON.stringify(err.json));
    if (err?.text) console.error("response text:", err.text);
    console.error("requests so far:\n  " + seen.join("\n  "));
    process.exit(1);
  }
  console.log(`ok ${stepNo}. ${name} (${Date.now() - t0} ms)`);
}

let sandbox, snapshot, restored;

await step("Sandbox.create with ports [3000] and persistent:false", async () => {
  sandbox = await Sandbox.create({ ...creds, ports: [3000], persistent: false, timeout: 120_000, env: { FROM_CREATE: "yes" } });
  assert.equal(sandbox.status, "running");
  assert.equal(sandbox.persistent, false);
  assert.equal(sandbox.cwd, "/vercel/sandbox");
  assert.equal(sandbox.routes.length, 1);
  assert.match(sandbox.domain(3000), /^https:\/\/sb-[a-z0-9]{12}\.vercel\.run$/);
  assert.match(sandbox.name, /^[a-z]+-[a-z]+-[a-z]+-[a-z0-9]{6}$/);
  assert.ok(sandbox.expiresAt instanceof Date && sandbox.expiresAt.getTime() > Date.now());
});

await step("runCommand('echo', ['hello']) attached: stdout", async () => {
  const r = await sandbox.runCommand("echo", ["hello"]);
  assert.equal(r.exitCode, 0);
  assert.equal(await r.stdout(), "hello\n");
  assert.equal(await r.stderr(), "");
  assert.equal(typeof r.durationMs, "number");
});

await step("runCommand attached: stderr apart, exit status, env from create and per command", async () => {
  const r = await sandbox.runCommand({ cmd: "sh", args: ["-c", 'echo "$FROM_CREATE $PER_CMD"; echo oops >&2; exit 3'], env: { PER_CMD: "too" } });
  assert.equal(r.exitCode, 3);
  assert.equal(await r.stdout(), "yes too\n");
  assert.equal(await r.stderr(), "oops\n");
});

await step("runCommand detached, then wait and its logs", async () => {
  const cmd = await sandbox.runCommand({ cmd: "sh", args: ["-c", "echo one; sleep 0.3; echo two"], detached: true });
  assert.equal(cmd.exitCode, null);
  const done = await cmd.wait();
  assert.equal(done.exitCode, 0);
  assert.equal(await done.stdout(), "one\ntwo\n");
  const lines = [];
  for await (const log of cmd.logs()) lines.push(log.data);
  assert.equal(lines.join(""), "one\ntwo\n");
  const again = await sandbox.getCommand(cmd.cmdId);
  assert.equal(again.exitCode, 0);
});

await step("kill a detached command (SIGTERM: exit 143)", async () => {
  const cmd = await sandbox.runCommand({ cmd: "sleep", args: ["60"], detached: true });
  await cmd.kill();
  const done = await cmd.wait();
  assert.equal(done.exitCode, 143);
});

const content = Buffer.from("hello from the SDK\n");
const binary = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 31) % 256));
await step("writeFiles([{path:'hello.txt', content}]) and a binary file", async () => {
  await sandbox.writeFiles([
    { path: "hello.txt", content },
    { path: "/vercel/sandbox/data/blob.bin", content: binary },
  ]);
  const r = await sandbox.runCommand("cat", ["hello.txt"]);
  assert.equal(await r.stdout(), content.toString());
});

await step("readFileToBuffer sees the file; a missing file is null", async () => {
  assert.deepEqual(await sandbox.readFileToBuffer({ path: "hello.txt" }), content);
  assert.deepEqual(await sandbox.readFileToBuffer({ path: "data/blob.bin" }), binary);
  assert.equal(await sandbox.readFileToBuffer({ path: "no-such-file.txt" }), null);
});

await step("mkDir", async () => {
  await sandbox.mkDir("made");
  const r = await sandbox.runCommand("test", ["-d", "made"]);
  assert.equal(r.exitCode, 0);
});

await step("updateNetworkPolicy deny-all, then an allow-list with a transform header", async () => {
  assert.equal(await sandbox.updateNetworkPolicy("deny-all"), "deny-all");
  const policy = await sandbox.updateNetworkPolicy({
    allow: {
      "api.example.com": [{ transform: [{ headers: { authorization: "Bearer sdk-secret-value" } }] }],
      "registry.npmjs.org": [],
    },
  });
  assert.deepEqual(policy, {
    allow: {
      "api.example.com": [{ transform: [{ headers: { authorization: "<redacted>" } }] }],
      "registry.npmjs.org": [],
    },
  });
});

await step("snapshot(): the session stops", async () => {
  snapshot = await sandbox.snapshot();
  assert.match(snapshot.snapshotId, /^snap_[a-zA-Z0-9]{28}$/);
  assert.equal(snapshot.status, "created");
  assert.equal(sandbox.status, "stopped");
  assert.ok(snapshot.expiresAt.getTime() > Date.now() + 29 * 24 * 3600 * 1000);
});

await step("Sandbox.create from the snapshot sees the file", async () => {
  restored = await Sandbox.create({ ...creds, source: { type: "snapshot", snapshotId: snapshot.snapshotId }, persistent: false });
  assert.equal(restored.status, "running");
  assert.equal(restored.sourceSnapshotId, snapshot.snapshotId);
  assert.deepEqual(await restored.readFileToBuffer({ path: "hello.txt" }), content);
});

await step("extendTimeout", async () => {
  const before = restored.expiresAt.getTime();
  await restored.extendTimeout(60_000);
  assert.equal(restored.expiresAt.getTime() - before, 60_000);
});

await step("the snapshotted sandbox resumes by itself on its next command (410, then resume)", async () => {
  const r = await sandbox.runCommand("cat", ["hello.txt"]);
  assert.equal(await r.stdout(), content.toString());
  assert.equal(sandbox.status, "running");
  assert.ok(seen.some((s) => s.startsWith("GET /api/v2/sandboxes/" + sandbox.name)), "no resume request was seen");
});

await step("Sandbox.get and Snapshot.list", async () => {
  const got = await Sandbox.get({ ...creds, name: restored.name });
  assert.equal(got.status, "running");
  const list = await Snapshot.list({ ...creds });
  assert.ok(list.snapshots.some((s) => s.id === snapshot.snapshotId));
});

await step("stop()", async () => {
  const s = await restored.stop();
  assert.equal(s.status, "stopped");
  assert.equal(restored.status, "stopped");
  const s2 = await sandbox.stop();
  assert.equal(s2.status, "stopped");
});

await step("an OIDC token near its exp is renewed by @vercel/oidc with the CLI login, at the fake's token endpoint", async () => {
  const { FAKE_OIDC_TOKEN, XDG_DATA_HOME } = process.env;
  assert.ok(FAKE_OIDC_TOKEN && XDG_DATA_HOME, "FAKE_OIDC_TOKEN and XDG_DATA_HOME are required");
  process.env.VERCEL_OIDC_TOKEN = FAKE_OIDC_TOKEN; // where getVercelOidcToken reads it
  const oidc = await Sandbox.create({ token: FAKE_OIDC_TOKEN, teamId: FAKE_TEAM, projectId: FAKE_PROJECT, fetch: fakeFetch, persistent: false });
  const renewal = `POST /v1/projects/${FAKE_PROJECT}/token (api.vercel.com)`;
  assert.ok(seen.includes(renewal), "no token renewal was seen");
  assert.notEqual(process.env.VERCEL_OIDC_TOKEN, FAKE_OIDC_TOKEN, "the token was not replaced");
  const cached = JSON.parse(fs.readFileSync(path.join(XDG_DATA_HOME, "com.vercel.token", `${FAKE_PROJECT}.json`), "utf8"));
  assert.equal(cached.token, process.env.VERCEL_OIDC_TOKEN);
  const r = await oidc.runCommand("echo", ["renewed"]);
  assert.equal(await r.stdout(), "renewed\n");
  await oidc.stop();
});

console.log(`contract: all ${stepNo} steps passed in ${Date.now() - started} ms (${seen.length} requests)`);
