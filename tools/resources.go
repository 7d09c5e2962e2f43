package tools

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/url"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/sandkit/sandkit-mcp/engine"
)

// MCP resources: read-only views of what the tools show, addressable by URI so a client can
// attach them to a conversation. Each is JSON except file contents.
//
//	sandkit://workspaces                                                the workspaces (first maxResourceWorkspaces)
//	sandkit://workspaces/{workspace}                                    one workspace and its recent history
//	sandkit://workspaces/{workspace}/files/{+path}                      a file (or a directory listing) at head
//	sandkit://workspaces/{workspace}/commits/{commit}/files/{+path}     the same at a commit
//	sandkit://runs/{run_id}                                             a run and its bounded output, as get_run
//
// A failed read is a JSON-RPC error whose message is the engine's, with what to do next.
// mcp-go v1.2.1 reports every handler error as -32603 (its handlerError); only a URI that
// matches no template gets -32002 (resource not found).

// URIs and templates of the resources.
const (
	resourceWorkspaces     = "sandkit://workspaces"
	templateWorkspace      = "sandkit://workspaces/{workspace}"
	templateFile           = "sandkit://workspaces/{workspace}/files/{+path}"
	templateFileAt         = "sandkit://workspaces/{workspace}/commits/{commit}/files/{+path}"
	templateRun            = "sandkit://runs/{run_id}"
	maxResourceWorkspaces  = 1000
	resourceHistory        = 20
	mimeJSON               = "application/json"
	mimeBinary             = "application/octet-stream"
	resourceWorkspacesHint = "read sandkit://workspaces or call list_workspaces for the workspace names"
)

// registerResources adds the resources and templates to s.
func (t *toolset) registerResources(s *server.MCPServer) {
	s.AddResource(mcp.NewResource(resourceWorkspaces, "workspaces",
		mcp.WithResourceDescription(fmt.Sprintf("The workspaces (id, name, head, labels, updated), by name; the first %d (list_workspaces pages on).", maxResourceWorkspaces)),
		mcp.WithMIMEType(mimeJSON)), t.readWorkspaces)
	s.AddResourceTemplate(mcp.NewResourceTemplate(templateWorkspace, "workspace",
		mcp.WithTemplateDescription(fmt.Sprintf("A workspace (id or name): head, policy, labels, session, and its last %d commits.", resourceHistory)),
		mcp.WithTemplateMIMEType(mimeJSON)), t.readWorkspace)
	fileDesc := fmt.Sprintf("A file under /workspace at %%s (text, or base64 blob if binary; at most %d MiB: read_file with offset reads larger files), "+
		"or a directory's JSON listing. Each read starts a throwaway sandbox; on the Vercel provider that boots a VM.", engine.MaxFileSize>>20)
	s.AddResourceTemplate(mcp.NewResourceTemplate(templateFile, "file at head",
		mcp.WithTemplateDescription(fmt.Sprintf(fileDesc, "the workspace head"))), t.readFileResource)
	s.AddResourceTemplate(mcp.NewResourceTemplate(templateFileAt, "file at a commit",
		mcp.WithTemplateDescription(fmt.Sprintf(fileDesc, "a commit (from workspace_history)"))), t.readFileResource)
	s.AddResourceTemplate(mcp.NewResourceTemplate(templateRun, "run",
		mcp.WithTemplateDescription("A run's record and bounded output, as get_run returns it."),
		mcp.WithTemplateMIMEType(mimeJSON)), t.readRun)
}

// workspaceItem is one entry of sandkit://workspaces.
type workspaceItem struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	Head    string            `json:"head"`
	Labels  map[string]string `json:"labels,omitempty"`
	Updated string            `json:"updated"`
}

func (t *toolset) readWorkspaces(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	out := struct {
		Workspaces []workspaceItem `json:"workspaces"`
		Note       string          `json:"note,omitempty"`
	}{Workspaces: []workspaceItem{}}
	cursor := ""
	for {
		ws, next, err := t.eng.ListWorkspaces(ctx, engine.ListWorkspacesRequest{Limit: engine.MaxListWorkspaces, Cursor: cursor})
		if err != nil {
			return nil, resourceErr(err)
		}
		for _, w := range ws {
			if len(out.Workspaces) == maxResourceWorkspaces {
				out.Note = fmt.Sprintf("only the first %d workspaces are listed; list_workspaces pages through all of them", maxResourceWorkspaces)
				return jsonContents(req.Params.URI, out)
			}
			out.Workspaces = append(out.Workspaces, workspaceItem{ID: w.ID, Name: w.Name, Head: w.Head, Labels: w.Labels,
				Updated: w.Updated.UTC().Format("2006-01-02T15:04:05Z")})
		}
		if next == "" {
			return jsonContents(req.Params.URI, out)
		}
		cursor = next
	}
}

// historyItem is one commit of a workspace resource's history.
type historyItem struct {
	ID           string `json:"id"`
	Kind         string `json:"kind"`
	Message      string `json:"message"`
	Created      string `json:"created"`
	ChangedFiles int64  `json:"changed_files"`
}

func (t *toolset) readWorkspace(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	ref, err := resourceArg(req, "workspace")
	if err != nil {
		return nil, err
	}
	w, err := t.eng.GetWorkspace(ctx, ref)
	if err != nil {
		return nil, resourceErr(err)
	}
	commits, err := t.eng.History(ctx, w.ID, resourceHistory)
	if err != nil {
		return nil, resourceErr(err)
	}
	out := struct {
		workspaceView
		History []historyItem `json:"history"`
	}{workspaceView: newWorkspaceView(ctx, w), History: []historyItem{}}
	for _, c := range commits {
		out.History = append(out.History, historyItem{ID: c.ID, Kind: c.Kind, Message: c.Message,
			Created: c.Created.UTC().Format("2006-01-02T15:04:05Z"), ChangedFiles: c.ChangedFiles})
	}
	return jsonContents(req.Params.URI, out)
}

func (t *toolset) readRun(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	id, err := resourceArg(req, "run_id")
	if err != nil {
		return nil, err
	}
	res, err := t.eng.GetRun(ctx, engine.GetRunRequest{ID: id})
	if err != nil {
		return nil, resourceErr(err)
	}
	return jsonContents(req.Params.URI, t.runView(res, t.opts.PollHeadBytes, t.opts.PollTailBytes))
}

// readFileResource serves both file templates (with and without a commit).
func (t *toolset) readFileResource(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	ref, err := resourceArg(req, "workspace")
	if err != nil {
		return nil, err
	}
	commit := ""
	if _, ok := req.Params.Arguments["commit"]; ok {
		if commit, err = resourceArg(req, "commit"); err != nil {
			return nil, err
		}
	}
	p, err := resourcePath(req)
	if err != nil {
		return nil, err
	}
	fc, err := t.eng.ReadFileAt(ctx, ref, commit, p, 0, engine.MaxFileSize)
	if isDirectory(err) {
		entries, lerr := t.eng.ListFilesAt(ctx, ref, commit, p, 1)
		if lerr != nil {
			return nil, resourceErr(lerr)
		}
		return jsonContents(req.Params.URI, struct {
			Path    string             `json:"path"`
			Entries []engine.FileEntry `json:"entries"`
		}{Path: p, Entries: entries})
	}
	if err != nil {
		return nil, resourceErr(err)
	}
	if fc.Size > int64(len(fc.Data)) {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d MiB a resource returns; read it in parts with read_file (offset, max_bytes)",
			fc.Path, fc.Size, engine.MaxFileSize>>20)
	}
	return []mcp.ResourceContents{fileContents(req.Params.URI, fc.Path, fc.Data)}, nil
}

// fileContents is text when data is UTF-8 without NUL bytes, else a base64 blob; the MIME type
// comes from the extension.
func fileContents(uri, name string, data []byte) mcp.ResourceContents {
	typ := mime.TypeByExtension(path.Ext(name))
	if utf8.Valid(data) && !strings.ContainsRune(string(data), 0) {
		if typ == "" {
			typ = "text/plain; charset=utf-8"
		}
		return mcp.TextResourceContents{URI: uri, MIMEType: typ, Text: string(data)}
	}
	if typ == "" || strings.HasPrefix(typ, "text/") {
		typ = mimeBinary
	}
	return mcp.BlobResourceContents{URI: uri, MIMEType: typ, Blob: base64.StdEncoding.EncodeToString(data)}
}

// isDirectory reports whether a read failed because the path is a directory.
func isDirectory(err error) bool {
	e, ok := engine.AsError(err)
	return ok && errors.Is(e, engine.ErrInvalid) && strings.Contains(e.Msg, "is a directory")
}

// resourceArg is a template variable, non-empty.
func resourceArg(req mcp.ReadResourceRequest, name string) (string, error) {
	v := templateValue(req.Params.Arguments[name])
	if strings.TrimSpace(v) == "" {
		return "", fmt.Errorf("invalid resource URI %s: %s is empty", req.Params.URI, name)
	}
	return v, nil
}

// templateValue flattens a matched template variable (a string, or a list of them).
func templateValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []string:
		return strings.Join(x, "/")
	case []any:
		parts := make([]string, len(x))
		for i, p := range x {
			parts[i] = fmt.Sprint(p)
		}
		return strings.Join(parts, "/")
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// resourcePath is the path variable, percent-decoded, checked by the engine's path rules
// (engine.WorkspacePath) and relative to /workspace. The home (~) is refused here: resources
// serve /workspace only.
func resourcePath(req mcp.ReadResourceRequest) (string, error) {
	raw := templateValue(req.Params.Arguments["path"])
	p, err := url.PathUnescape(raw)
	if err != nil {
		return "", fmt.Errorf("invalid resource URI %s: path %q is not percent-encoded correctly", req.Params.URI, raw)
	}
	if strings.HasPrefix(p, "~") {
		return "", fmt.Errorf("invalid resource URI %s: resources serve /workspace only; read home files with read_file", req.Params.URI)
	}
	rel, err := engine.WorkspacePath(p)
	if err != nil {
		return "", fmt.Errorf("invalid resource URI %s: %v", req.Params.URI, err)
	}
	return rel, nil
}

// resourceErr is the JSON-RPC error for an engine failure: the engine's message, plus where to
// look next for what was not found.
func resourceErr(err error) error {
	e, ok := engine.AsError(err)
	if !ok {
		return err
	}
	msg := e.Error()
	if errors.Is(e, engine.ErrNotFound) && e.Fields.Workspace == "" && e.Fields.Path == "" && e.Fields.Commit == "" && !strings.Contains(msg, "run") {
		msg += "; " + resourceWorkspacesHint
	}
	for _, n := range e.Next {
		if n.Why != "" && !strings.Contains(msg, n.Tool) {
			msg += fmt.Sprintf("; %s: %s", n.Tool, n.Why)
		}
	}
	return errors.New(msg)
}

func jsonContents(uri string, v any) ([]mcp.ResourceContents, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return []mcp.ResourceContents{mcp.TextResourceContents{URI: uri, MIMEType: mimeJSON, Text: string(b)}}, nil
}

// refuseMissing is the hook (installed by Hooks) that makes a read of a resource that does not
// exist a resource-not-found error (-32002; -32602 for 2026-07-28 clients) rather than the
// internal error mcp-go v1.2.1 gives every handler error: it checks what costs only a store
// read (the workspace, the run, the path's form) and, failing, renames the request to a URI no
// template matches, carrying the reason, which mcp-go then reports as not found (the same
// device as prompts.Hooks). A missing file or commit is found only by the read itself and
// stays -32603 with the engine's message.
func refuseMissing(e *engine.Engine) server.OnBeforeReadResourceFunc {
	return func(ctx context.Context, _ any, req *mcp.ReadResourceRequest) {
		uri := req.Params.URI
		rest, ok := strings.CutPrefix(uri, "sandkit://")
		if !ok {
			return
		}
		var reason string
		switch parts := strings.SplitN(rest, "/", 3); {
		case len(parts) == 2 && parts[0] == "runs":
			if _, err := e.GetRun(ctx, engine.GetRunRequest{ID: parts[1]}); errors.Is(err, engine.ErrNotFound) {
				reason = resourceErr(err).Error() + "; list_runs lists a workspace's runs"
			}
		case len(parts) >= 2 && parts[0] == "workspaces":
			if _, err := e.GetWorkspace(ctx, parts[1]); errors.Is(err, engine.ErrNotFound) {
				reason = resourceErr(err).Error()
				if !strings.Contains(reason, "list_workspaces") {
					reason += "; " + resourceWorkspacesHint
				}
				break
			}
			if len(parts) < 3 {
				break
			}
			raw, found := strings.CutPrefix(parts[2], "files/")
			if !found {
				if _, after, ok := strings.Cut(parts[2], "/files/"); ok {
					raw, found = after, true
				}
			}
			if found {
				_, err := resourcePath(mcp.ReadResourceRequest{Params: mcp.ReadResourceParams{URI: uri, Arguments: map[string]any{"path": raw}}})
				if err != nil {
					reason = err.Error()
				}
			}
		}
		if reason != "" {
			req.Params.URI = uri + " — " + reason
		}
	}
}
