// Package prompts holds the MCP prompts that teach an agent sandkit-mcp's workflows in a few
// lines each: a durable task, a live preview of a dev server, and recovery after a reconnect.
// They only describe how to use the tools; they never act.
package prompts

import (
	"context"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// prompt is one prompt: its definition and the text it renders from its arguments.
type prompt struct {
	def    mcp.Prompt
	title  string
	render func(args map[string]string) string
}

var all = []prompt{
	{
		def: mcp.NewPrompt("durable_task",
			mcp.WithPromptDescription("How to carry out a task in a durable sandboxed workspace: every command commits, history can be restored or forked."),
			mcp.WithArgument("task", mcp.ArgumentDescription("What you want to get done."), mcp.RequiredArgument()),
			mcp.WithArgument("workspace", mcp.ArgumentDescription("An existing workspace to use (id or name); omit it to create one.")),
		),
		title:  "Durable task workflow",
		render: durableTask,
	},
	{
		def: mcp.NewPrompt("live_preview",
			mcp.WithPromptDescription("How to run a dev server in a live session and open it from the host: open → start it in the background → URL → commit or discard."),
			mcp.WithArgument("workspace", mcp.ArgumentDescription("The workspace to preview (id or name)."), mcp.RequiredArgument()),
			mcp.WithArgument("command", mcp.ArgumentDescription("The shell line that starts the server, e.g. \"npm run dev -- --port 3000\"; omit it to decide yourself.")),
			mcp.WithArgument("port", mcp.ArgumentDescription("The port it listens on; it must be one of the workspace's exposed_ports.")),
		),
		title:  "Live preview workflow",
		render: livePreview,
	},
	{
		def: mcp.NewPrompt("recover_after_reconnect",
			mcp.WithPromptDescription("How to pick up after a lost connection or a server restart without losing or repeating work."),
			mcp.WithArgument("workspace", mcp.ArgumentDescription("The workspace you were working in (id or name)."), mcp.RequiredArgument()),
		),
		title:  "Recovering after a reconnect",
		render: recoverAfterReconnect,
	},
}

// Register adds every prompt to s. The server should also carry Hooks, so that a prompts/get
// without a required argument is refused as invalid params (-32602).
func Register(s *server.MCPServer) {
	for _, p := range all {
		p := p
		s.AddPrompt(p.def, func(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			if missing := missingArgument(p.def, req.Params.Arguments); missing != "" {
				// Only reached without Hooks: mcp-go then answers -32603.
				return nil, fmt.Errorf("the %s argument is required", missing)
			}
			return mcp.NewGetPromptResult(p.title, []mcp.PromptMessage{
				mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent(p.render(req.Params.Arguments))),
			}), nil
		})
	}
}

// Hooks adds to h the check that makes a prompts/get without a required argument an invalid
// params error (-32602) naming the argument. mcp-go v1.2.1 turns every error a prompt handler
// returns into -32603 and offers no other way to refuse a request, so the check renames the
// request to a prompt that does not exist, which mcp-go answers with -32602 "prompt '…' not
// found"; the name it reports says which argument is missing.
func Hooks(h *server.Hooks) {
	h.AddBeforeGetPrompt(func(_ context.Context, _ any, req *mcp.GetPromptRequest) {
		for _, p := range all {
			if p.def.Name != req.Params.Name {
				continue
			}
			if missing := missingArgument(p.def, req.Params.Arguments); missing != "" {
				req.Params.Name = fmt.Sprintf("%s: missing required argument %q (%s)", p.def.Name, missing, argumentDescription(p.def, missing))
			}
			return
		}
	})
}

// missingArgument names the first required argument of def that args lacks (or leaves blank).
func missingArgument(def mcp.Prompt, args map[string]string) string {
	for _, a := range def.Arguments {
		if a.Required && strings.TrimSpace(args[a.Name]) == "" {
			return a.Name
		}
	}
	return ""
}

func argumentDescription(def mcp.Prompt, name string) string {
	for _, a := range def.Arguments {
		if a.Name == name {
			return a.Description
		}
	}
	return ""
}

// commands is what every workflow says about command lines and the network.
const commands = `A command without args is a shell line (run as sh -lc in cwd): "cd app && npm test" works; give args (even []) to run a program directly.
The sandbox has no network unless the policy allows it: set_policy with {"allow": ["npm", "github"]} opens just those hosts, and the server adds
their credentials outside the sandbox, so never paste tokens into files or commands.`

func durableTask(args map[string]string) string {
	task := strings.TrimSpace(args["task"])
	ws := strings.TrimSpace(args["workspace"])
	start := "1. Create a workspace with create_workspace (give it a short name you can reuse)."
	if ws != "" {
		start = fmt.Sprintf("1. Use the workspace %q (get_workspace shows its head and policy).", ws)
	}
	return fmt.Sprintf(`Task: %s

Work in a durable sandboxed workspace with the sandkit tools:
%s
2. Put files in place with write_files (one commit for the whole batch, deletes included), change them in place with
   edit_file (exact old_text → new_text), or generate them with run_command.
3. Run each step with run_command. Every command starts from the workspace head, and what it changes is committed,
   whatever its exit code: check exit_code, stdout and stderr before going on. A command that changes nothing makes no commit.
4. A command still running after yield_ms returns running with its run_id and keeps going: follow it with get_run (wait_ms,
   and the stdout/stderr offsets for only what is new); list_runs finds runs you lost track of. Pass an idempotency_key
   to any call you might retry, so a retry never runs the command twice.
5. Inspect results with read_file and list_files (paths under /workspace, or ~/ for the home directory).
6. If a step made things worse, restore_workspace to an earlier commit from workspace_history (nothing is
   lost: later commits stay restorable). To try an alternative without risk, fork_workspace and work in the fork.
%s`, task, start, commands)
}

func livePreview(args map[string]string) string {
	ws := strings.TrimSpace(args["workspace"])
	cmd := strings.TrimSpace(args["command"])
	port := strings.TrimSpace(args["port"])
	if port == "" {
		port = "PORT (one of the workspace's exposed_ports)"
	}
	start := "the command that starts your dev server"
	if cmd != "" {
		start = fmt.Sprintf("%q", cmd)
	}
	return fmt.Sprintf(`Preview a running app of workspace %q from the host:
1. open_session {"workspace": %q, "exposed_ports": [the port]}: a live sandbox from the head, held by you; durable tools on
   the workspace wait until it ends (update_workspace exposed_ports sets a workspace's ports for every session).
2. session_exec {"session_id": …, "command": %s, "background": true}: the server keeps running; it must listen on %s
   (0.0.0.0 or 127.0.0.1).
3. session_url {"session_id": …, "port": %s}: it waits until the server listens and gives a URL a browser, curl or fetch on
   the host can open (the app at its root); if the server did not come up, it shows its last output instead.
4. Edit files with edit_file, write_files or session_exec using session_id; the server sees the changes at once.
5. commit_session saves /workspace and home as one commit and ends the session; discard_session drops the changes.
   If your connection drops, the session keeps running until it expires: attach_session takes it back.
%s`, ws, ws, start, port, port, commands)
}

func recoverAfterReconnect(args map[string]string) string {
	ws := strings.TrimSpace(args["workspace"])
	return fmt.Sprintf(`You lost your connection to sandkit-mcp while working in workspace %q. To continue safely:
1. get_workspace %q: its head is the last committed state. If it shows a session, attach_session takes it over once
   your old connection is gone (a detached session keeps its processes and uncommitted changes until it expires).
2. workspace_history %q: the newest commits tell you which commands finished (each run commit names its command).
3. list_runs %q lists the runs, newest first, also those whose call you never saw end: "exited" finished
   (and committed what it changed), "running" still goes on (get_run with wait_ms follows it), "cancelled" or "failed"
   committed nothing, "lost" means the server stopped meanwhile (nothing committed: run it again).
4. If you retry a run_command, reuse the idempotency_key you gave it: the server returns the recorded run
   instead of running the command a second time.`, ws, ws, ws, ws)
}
