package tools

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/policies"
)

// limits expands placeholders such as {timeout_max_ms} in tool and argument descriptions into
// the values in force: the engine's constants and this toolset's Options. A limit is written
// once, where it lives, and every description says it truthfully.
type limits struct {
	r *strings.Replacer
}

func newLimits(o Options) *limits {
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	size := func(v int) string { return sizeText(int64(v)) }
	pairs := []string{
		"{presets}", policies.PresetSummary(),
		"{policy_grammar}", strings.ReplaceAll(policyGrammar, "{presets}", policies.PresetSummary()),
		"{timeout_default_ms}", ms(engine.DefaultTimeout),
		"{timeout_max_ms}", ms(engine.MaxTimeout),
		"{session_default_ms}", ms(engine.DefaultSessionTimeout),
		"{session_min_ms}", ms(engine.MinSessionTimeout),
		"{session_max_ms}", ms(engine.MaxSessionTimeout),
		"{wait_max_ms}", ms(engine.MaxWait),
		"{port_wait_ms}", ms(engine.DefaultPortWait),
		"{yield_default_ms}", ms(engine.DefaultYield),
		"{yield_max_ms}", ms(engine.MaxYield),
		"{list_runs_default}", n(engine.DefaultListRuns),
		"{list_runs_max}", n(engine.MaxListRuns),
		"{list_workspaces_default}", n(engine.DefaultListWorkspaces),
		"{list_workspaces_max}", n(engine.MaxListWorkspaces),
		"{shell_rule}", engine.ShellRule,
		"{run_head}", size(o.RunHeadBytes),
		"{run_tail}", size(o.RunTailBytes),
		"{poll_head}", size(o.PollHeadBytes),
		"{poll_tail}", size(o.PollTailBytes),
		"{logs_tail}", size(o.LogsTailBytes),
		"{read_default}", n(int64(o.ReadDefaultBytes)),
		"{max_file}", n(engine.MaxFileSize),
		"{max_file_size}", sizeText(engine.MaxFileSize),
		"{max_write_total}", sizeText(engine.MaxWriteTotal),
		"{max_files}", n(engine.MaxFilesPerWrite),
		"{max_stdin}", sizeText(engine.MaxStdin),
		"{history_default}", n(engine.DefaultHistoryLimit),
		"{history_max}", n(engine.MaxHistoryLimit),
		"{depth_max}", n(engine.MaxListDepth),
		"{entries_max}", n(engine.MaxListEntries),
		"{ports_max}", n(engine.MaxExposedPorts),
		"{labels_max}", n(engine.MaxLabels),
		"{process_log}", sizeText(engine.MaxProcessLog),
		"{import_files}", n(engine.MaxImportFiles),
		"{import_bytes}", sizeText(engine.MaxImportBytes),
	}
	return &limits{r: strings.NewReplacer(pairs...)}
}

// expand replaces the placeholders in a plain string.
func (l *limits) expand(s string) string { return l.r.Replace(s) }

// placeholder matches a placeholder in a description.
var placeholder = regexp.MustCompile(`\{[a-z_]+\}`)

// expandJSON replaces the placeholders inside a marshalled JSON document, escaping the values.
func (l *limits) expandJSON(doc string) string {
	return placeholder.ReplaceAllStringFunc(doc, func(token string) string {
		v := l.r.Replace(token)
		if v == token {
			return token
		}
		q, _ := json.Marshal(v)
		return string(q[1 : len(q)-1])
	})
}
