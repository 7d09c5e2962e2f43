package tools

import (
	"fmt"
	"strings"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/policies"
)

// instructions are sent to the client at initialize; they orient a model that has never seen
// this server. Instructions adds what this server's operator configured. Pinned by
// testdata/instructions.golden (TestInstructions).
const instructions = `sandkit-mcp gives you durable sandboxed workspaces (Linux, no network unless a policy allows it).
A workspace is a directory (/workspace, plus the sandbox user's home ~) with a history of commits.
- create_workspace, then run_command: every command runs in a fresh sandbox started from the workspace head,
  and what it changed (whatever the exit code) becomes a new commit; a command that changes nothing makes
  none. Commands on one workspace run one at a time, in order. Long commands return running after yield_ms:
  follow them with get_run.
- write_files, edit_file, read_file and list_files work on the head (read_file and list_files also at a
  commit); a write or an edit makes one commit.
- workspace_history lists commits, workspace_diff shows what changed between two; restore_workspace moves
  head back to an earlier state (history is kept); fork_workspace copies a workspace at any commit, instantly.
- Where the server shares host directories: create_workspace from_host_dir imports a project (a git work
  tree as git sees it), export_workspace hands the result back as files, a git branch or a patch.
- For interactive work (dev servers, previews, many quick steps) open_session gives you a live sandbox that
  only your connection drives: session_exec (background=true for servers), session_url for a URL of a
  port, then commit_session (one commit) or discard_session. While it is open, durable tools on that
  workspace are refused; after a reconnect, attach_session takes your session back.
- Network: each workspace has a default egress policy (create_workspace policy, changed with set_policy).
  Presets (services by id) bring their hosts and inject their credential from the server's environment, so
  secrets never enter the sandbox. run_command and open_session take a policy for that run or session only;
  only those may carry a literal secret, which is never stored.`

// ServerFacts is what the instructions tell about this server's configuration.
type ServerFacts struct {
	// DefaultPolicy applies to new workspaces; MaxPolicy, when set, bounds every policy.
	DefaultPolicy policies.Policy
	MaxPolicy     *policies.Policy
	// Templates are the setup templates create_workspace takes.
	Templates []engine.TemplateStatus
}

// Instructions are the server instructions with what this server's operator configured: the
// default policy, the limit, the presets and the templates.
func Instructions(f ServerFacts) string {
	var b strings.Builder
	b.WriteString(instructions)
	fmt.Fprintf(&b, "\n- On this server: new workspaces default to policy %s", f.DefaultPolicy.String())
	if f.MaxPolicy != nil {
		fmt.Fprintf(&b, "; no policy may go beyond %s (the operator's limit)", f.MaxPolicy.String())
	}
	ids := []string{}
	for _, p := range policies.Presets() {
		ids = append(ids, p.ID)
	}
	fmt.Fprintf(&b, ". Presets: %s.", strings.Join(ids, ", "))
	if len(f.Templates) == 0 {
		b.WriteString("\n- This server defines no setup templates: workspaces start empty.")
		return b.String()
	}
	b.WriteString("\n- Setup templates (create_workspace template=NAME starts the workspace from the template's prepared state;\n" +
		"  the first use of a template runs its setup, which may take minutes, later ones are instant):")
	for _, t := range f.Templates {
		fmt.Fprintf(&b, "\n  - %s", t.Name)
		if t.Description != "" {
			fmt.Fprintf(&b, ": %s", t.Description)
		}
		fmt.Fprintf(&b, " (setup: %s)", strings.Join(append([]string{t.Command}, t.Args...), " "))
	}
	return b.String()
}
