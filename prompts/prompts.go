// Package prompts holds the MCP prompts that teach an agent sandkit-mcp's workflows in a few
// lines each. They only describe how to use the tools; they never act.
package prompts

import (
	"context"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Register adds every prompt to s.
func Register(s *server.MCPServer) {
	s.AddPrompt(mcp.NewPrompt("durable_task",
		mcp.WithPromptDescription("How to carry out a task in a durable sandboxed workspace: every command commits, history can be restored or forked."),
		mcp.WithArgument("task", mcp.ArgumentDescription("What you want to get done."), mcp.RequiredArgument()),
		mcp.WithArgument("workspace", mcp.ArgumentDescription("An existing workspace to use (id or name); omit it to create one.")),
	), durableTask)
	s.AddPrompt(mcp.NewPrompt("recover_after_reconnect",
		mcp.WithPromptDescription("How to pick up after a lost connection or a server restart without losing or repeating work."),
		mcp.WithArgument("workspace", mcp.ArgumentDescription("The workspace you were working in (id or name)."), mcp.RequiredArgument()),
	), recoverAfterReconnect)
}

func durableTask(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	task := strings.TrimSpace(req.Params.Arguments["task"])
	if task == "" {
		return nil, fmt.Errorf("the task argument is required: say what you want to get done")
	}
	ws := strings.TrimSpace(req.Params.Arguments["workspace"])
	start := "1. Create a workspace with create_workspace (give it a short name you can reuse)."
	if ws != "" {
		start = fmt.Sprintf("1. Use the workspace %q (get_workspace shows its head and policy).", ws)
	}
	text := fmt.Sprintf(`Task: %s

Work in a durable sandboxed workspace with the sandkit tools:
%s
2. Put files in place with write_files (one commit for the whole batch), or generate them with run_command.
3. Run each step with run_command. Every command starts from the workspace head and its result is committed,
   whatever its exit code: check exit_code, stdout and stderr before going on. Commands are not shell lines:
   use command "sh" with args ["-c", "..."] for pipes and redirects.
4. For anything that may take more than a minute, pass background=true and poll get_run with wait_ms.
   Pass an idempotency_key to any call you might retry, so a retry never runs the command twice.
5. Inspect results with read_file and list_files.
6. If a step made things worse, restore_workspace to an earlier commit from workspace_history (nothing is
   lost: later commits stay restorable). To try an alternative without risk, fork_workspace and work in the fork.
The sandbox has no network unless the workspace policy allows it: set_policy (or run_command's own policy)
with mode "allow" and presets such as {"id": "npm"} or {"id": "github"} opens just those hosts; the server
adds their credentials outside the sandbox, so never paste tokens into files or commands.`, task, start)
	return mcp.NewGetPromptResult("Durable task workflow", []mcp.PromptMessage{
		mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent(text)),
	}), nil
}

func recoverAfterReconnect(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	ws := strings.TrimSpace(req.Params.Arguments["workspace"])
	if ws == "" {
		return nil, fmt.Errorf("the workspace argument is required: give the id or name you were working in")
	}
	text := fmt.Sprintf(`You lost your connection to sandkit-mcp while working in workspace %q. To continue safely:
1. get_workspace %q: its head is the last committed state; nothing uncommitted survives a restart.
2. workspace_history %q: the newest commits tell you which commands finished (each run commit names its command
   and exit code).
3. For a run_id you were waiting on, get_run tells its status: "exited" (finished and committed), "cancelled" or
   "failed" (not committed), or "lost" (the server stopped meanwhile; not committed: run it again).
4. If you retry a run_command, reuse the idempotency_key you gave it: the server returns the recorded run
   instead of running the command a second time.`, ws, ws, ws)
	return mcp.NewGetPromptResult("Recovering after a reconnect", []mcp.PromptMessage{
		mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent(text)),
	}), nil
}
