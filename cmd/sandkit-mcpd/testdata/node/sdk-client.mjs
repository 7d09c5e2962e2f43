// Drives sandkit-mcp over stdio with the official TypeScript SDK (@modelcontextprotocol/sdk) —
// run by TestTypeScriptSDK (node_e2e_test.go), which judges the output.
//
//   node sdk-client.mjs            env SANDKIT_BIN (the binary), SANDKIT_DATA_DIR (its data dir)
//
// listTools() comes first: the SDK's Client caches a validator for each tool's outputSchema then,
// and every later callTool() checks the result's structuredContent against it (isError results
// too, whenever they carry structuredContent) and throws when it does not match. Each call prints
// one JSON line on stdout:
//   {"tool", "step", "expect":"ok"|"error", "isError", "ok", "hasOutputSchema",
//    "hasStructuredContent", "validationError"?, "protocolError"?, "text", "structuredContent"}
// where ok means the call went as expected (no validation or protocol error, isError as expected).
// The first line is {"tools":[{"name","hasOutputSchema"}]}, the last {"done":true}. The script
// itself exits 0 unless it crashes: the Go test decides what fails.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const bin = process.env.SANDKIT_BIN;
const dataDir = process.env.SANDKIT_DATA_DIR;
if (!bin || !dataDir) {
  console.error('SANDKIT_BIN and SANDKIT_DATA_DIR must be set');
  process.exit(2);
}
const CALL_TIMEOUT_MS = 180_000; // a noisy 2-core machine; sandboxes start in tens of ms normally

const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');

const transport = new StdioClientTransport({
  command: bin,
  args: ['--data-dir', dataDir, '--log-level', 'warn'],
  env: { ...process.env },
  stderr: 'inherit', // the door's stderr goes to the test log
});
const client = new Client({ name: 'sandkit-ts-sdk-e2e', version: '1.0.0' });

// The last tools/call result as it came off the wire, before the SDK validated it: printed with
// a validation error so the failing structuredContent can be read.
let lastWireResult;
await client.connect(transport, { timeout: CALL_TIMEOUT_MS });
{
  const orig = transport.onmessage;
  transport.onmessage = (msg, extra) => {
    if (msg && typeof msg === 'object' && 'result' in msg) lastWireResult = msg.result;
    orig?.(msg, extra);
  };
}
emit({ server: client.getServerVersion() });

let listed;
try {
  listed = await client.listTools(undefined, { timeout: CALL_TIMEOUT_MS });
} catch (e) {
  // Also what happens when an outputSchema does not compile (the SDK compiles them here, with Ajv).
  emit({ step: 'tools/list', tool: 'tools/list', ok: false, protocolError: e instanceof Error ? e.message : String(e) });
  await client.close();
  process.exit(1);
}
const schemaOf = new Map(listed.tools.map((t) => [t.name, t.outputSchema]));
emit({ tools: listed.tools.map((t) => ({ name: t.name, hasOutputSchema: !!t.outputSchema })) });

const VALIDATION = /output schema|structured content/i;

// invoke makes one call through the SDK's callTool and describes how it went.
async function invoke(step, tool, args, expect) {
  lastWireResult = undefined;
  const line = { step, tool, expect, hasOutputSchema: !!schemaOf.get(tool) };
  let result;
  try {
    result = await client.callTool({ name: tool, arguments: args }, undefined, { timeout: CALL_TIMEOUT_MS });
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    if (VALIDATION.test(msg) && lastWireResult !== undefined) {
      line.validationError = msg;
    } else {
      line.protocolError = msg;
    }
    line.ok = false;
    line.isError = lastWireResult?.isError === true;
    line.hasStructuredContent = lastWireResult?.structuredContent != null;
    line.structuredContent = lastWireResult?.structuredContent ?? null;
    return line;
  }
  line.isError = result.isError === true;
  line.hasStructuredContent = result.structuredContent != null;
  line.ok = line.isError === (expect === 'error');
  line.text = (result.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');
  line.structuredContent = result.structuredContent ?? null;
  return line;
}

// call invokes, prints the line and returns the structuredContent (null when the call failed).
async function call(step, tool, args, expect) {
  const line = await invoke(step, tool, args, expect);
  emit(line);
  return line.validationError || line.protocolError ? null : (line.structuredContent ?? {});
}

try {
  // Calls that succeed; the first ones on empty lists (a Go nil slice is JSON null, which an
  // array schema refuses).
  await call('list-none', 'list_workspaces', {}, 'ok');
  const ws = await call('create', 'create_workspace', { name: 'ts' }, 'ok');
  await call('list-files-empty', 'list_files', { workspace: 'ts' }, 'ok');
  await call('write', 'write_files', { workspace: 'ts', files: [{ path: 'hello.txt', content: 'hello\n' }, { path: 'src/a.txt', content: 'a' }] }, 'ok');
  const run = await call('run', 'run_command', { workspace: 'ts', command: 'echo', args: ['hi'] }, 'ok');
  await call('run-exit', 'run_command', { workspace: 'ts', command: 'sh', args: ['-c', 'echo out; echo err >&2; exit 3'] }, 'ok');
  await call('read', 'read_file', { workspace: 'ts', path: 'hello.txt' }, 'ok');
  await call('list-files', 'list_files', { workspace: 'ts', depth: 2 }, 'ok');
  await call('history', 'workspace_history', { workspace: 'ts' }, 'ok');
  if (run?.run_id) await call('get-run', 'get_run', { run_id: run.run_id, wait_ms: 60000 }, 'ok');
  else emit({ step: 'get-run', tool: 'get_run', ok: false, protocolError: 'run_command returned no run_id in structuredContent' });
  await call('fork', 'fork_workspace', { workspace: 'ts', name: 'ts-fork' }, 'ok');
  await call('list', 'list_workspaces', {}, 'ok');
  await call('get', 'get_workspace', { workspace: ws?.workspace_id ?? 'ts' }, 'ok');

  // Calls that fail: isError results (which must validate too when they carry structuredContent).
  await call('get-missing', 'get_workspace', { workspace: 'nope' }, 'error');
  await call('run-empty', 'run_command', { workspace: 'ts', command: '' }, 'error');
  await call('read-missing', 'read_file', { workspace: 'ts', path: 'missing.txt' }, 'error');
  await call('attach-none', 'attach_session', { workspace: 'ts' }, 'error');
  await call('get-run-missing', 'get_run', { run_id: 'run_nope' }, 'error');

  // A live session: open, exec, a server that crashes and its report, commit.
  const ses = await call('open', 'open_session', { workspace: 'ts', exposed_ports: [8000] }, 'ok');
  if (ses?.session_id) {
    await call('exec', 'session_exec', { session_id: ses.session_id, command: 'sh', args: ['-c', 'echo live > live.txt; cat live.txt'] }, 'ok');
    await call('run-leased', 'run_command', { workspace: 'ts', command: 'true' }, 'error');
    await call('exec-crash', 'session_exec', { session_id: ses.session_id, command: 'echo boom >&2; exit 3', background: true }, 'ok');
    await call('url-none', 'session_url', { session_id: ses.session_id, port: 8000, wait_ms: 300 }, 'ok');
    await call('update-labels', 'update_workspace', { workspace: 'ts', labels: { via: 'ts-sdk' } }, 'ok');
    await call('update-ports-leased', 'update_workspace', { workspace: 'ts', exposed_ports: [8000] }, 'error');
    await call('commit', 'commit_session', { session_id: ses.session_id, message: 'from the TS SDK' }, 'ok');
    await call('read-committed', 'read_file', { workspace: 'ts', path: 'live.txt' }, 'ok');
    await call('exec-ended', 'session_exec', { session_id: ses.session_id, command: 'true' }, 'error');
  } else {
    emit({ step: 'open', tool: 'open_session', ok: false, protocolError: 'open_session returned no session_id in structuredContent' });
  }

  // Self-test of the harness: with a schema list_workspaces cannot match cached in the SDK's place,
  // its call must come back as a validation error. Then the real schemas are cached again.
  client.cacheToolMetadata(listed.tools.map((t) => (t.name === 'list_workspaces'
    ? { ...t, outputSchema: { type: 'object', properties: {}, required: ['__sandkit_selftest_never__'] } }
    : t)));
  const st = await invoke('selftest', 'list_workspaces', {}, 'ok');
  emit({ selftest: true, validationError: st.validationError ?? '', protocolError: st.protocolError ?? '' });
  client.cacheToolMetadata(listed.tools);
  emit({ done: true });
} finally {
  await client.close();
}
