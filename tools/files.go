package tools

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/sandkit/sandkit-mcp/engine"
)

// Content encodings of write_files and read_file.
const (
	encUTF8   = "utf8"
	encBase64 = "base64"
)

type fileArg struct {
	Path     string `json:"path" jsonschema:"required" jsonschema_description:"Relative to /workspace, absolute under it, or ~/… in the home; parent directories are created."`
	Content  string `json:"content" jsonschema:"required" jsonschema_description:"The complete new content (replaces an existing file)."`
	Encoding string `json:"encoding,omitempty" jsonschema:"enum=utf8,enum=base64" jsonschema_description:"utf8 (default) or base64 for binary."`
	Mode     string `json:"mode,omitempty" jsonschema_description:"Octal permissions, e.g. \"0755\". Default \"0644\"."`
}

type writeFilesArgs struct {
	Workspace string    `json:"workspace,omitempty" jsonschema_description:"Workspace id (ws_…) or name: write durably, as one commit. Give workspace or session_id."`
	SessionID string    `json:"session_id,omitempty" jsonschema_description:"A live session (ses_…) to write into instead, without a commit."`
	Files     []fileArg `json:"files,omitempty" jsonschema_description:"Files to create or replace: at most {max_files}, {max_file_size} each, {max_write_total} in all."`
	Delete    []string  `json:"delete,omitempty" jsonschema_description:"Paths to remove in the same change; a directory only with recursive."`
	Recursive bool      `json:"recursive,omitempty" jsonschema_description:"Let delete remove directories with their contents."`
}

// writeResult is write_files' result.
type writeResult struct {
	WorkspaceID string `json:"workspace_id,omitempty"`
	SessionID   string `json:"session_id,omitempty"`
	Files       int    `json:"files" jsonschema:"required"`
	Bytes       int64  `json:"bytes"`
	Deleted     int    `json:"deleted,omitempty"`
	madeChange
	Steps
}

func (r writeResult) text() string {
	what := fmt.Sprintf("wrote %d file(s), %s", r.Files, sizeText(r.Bytes))
	if r.Deleted > 0 {
		what += fmt.Sprintf(", deleted %d path(s)", r.Deleted)
	}
	switch {
	case r.SessionID != "":
		return what + fmt.Sprintf(" in session %s (not committed)", r.SessionID)
	case r.Unchanged:
		return what + "; that changed nothing, so there is no commit and the head stays"
	}
	return what + "; commit " + r.Commit.ID + " (" + r.Commit.changeText() + ")"
}

func (t *toolset) writeFiles() server.ServerTool {
	return define(t, toolDef[writeFilesArgs, writeResult]{
		name:  "write_files",
		title: "Write files",
		description: "Create, replace and delete files exactly as given (text or base64), all or nothing: with workspace as ONE commit, after queued commands " +
			"(refused while a session holds it); with session_id in the live session at once, committed by commit_session. " +
			"Prefer it to echo/cat through a command.",
		hints: hints{},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *writeFilesArgs) (writeResult, error) {
			if err := fileTarget(a.Workspace, a.SessionID); err != nil {
				return writeResult{}, err
			}
			files, err := decodeFiles(a.Files)
			if err != nil {
				return writeResult{}, err
			}
			req := engine.WriteRequest{Files: files, Delete: a.Delete, Recursive: a.Recursive}
			var total int64
			for _, f := range files {
				total += int64(len(f.Content))
			}
			if a.SessionID != "" {
				h, err := t.holder(ctx, "write_files")
				if err != nil {
					return writeResult{}, err
				}
				if err := t.eng.SessionWriteFiles(ctx, h, a.SessionID, req); err != nil {
					return writeResult{}, err
				}
				r := writeResult{SessionID: a.SessionID, Files: len(files), Bytes: total, Deleted: len(a.Delete)}
				r.then("commit_session", "save the session's changes as one commit", map[string]any{"session_id": a.SessionID})
				return r, nil
			}
			c, err := t.eng.WriteFiles(ctx, a.Workspace, req)
			if err != nil {
				return writeResult{}, err
			}
			r := writeResult{WorkspaceID: c.Workspace, Files: len(files), Bytes: total, Deleted: len(a.Delete)}
			r.madeChange = madeCommit(c, c.ID)
			return r, nil
		},
	})
}

// fileTarget checks that a file tool got exactly one of workspace (its committed head) and
// session_id (a live session).
func fileTarget(workspace, sessionID string) error {
	switch {
	case workspace != "" && sessionID != "":
		return argError("session_id", fmt.Sprintf("give either \"workspace\" or \"session_id\", not both (got workspace %q and session_id %q): "+
			"workspace works on the workspace's committed head, session_id on a live session's current files", workspace, sessionID))
	case sessionID != "":
		return sessionRef(sessionID)
	case workspace != "":
		return workspaceRef(workspace)
	}
	return argError("workspace", "missing; give either workspace (a workspace id ws_… or name; list_workspaces lists them) "+
		"or session_id (a live session ses_… from open_session)")
}

// commitTarget checks that commit comes with workspace: a live session has no commits to read.
func commitTarget(commit, sessionID string) error {
	if commit != "" && sessionID != "" {
		return argError("commit", fmt.Sprintf("reads a commit of a workspace, so give it with workspace, not with session_id (got session_id %q and commit %q); "+
			"a session's files are read as they are now", sessionID, commit))
	}
	return nil
}

// decodeFiles decodes each file's content and mode of write_files' files argument (the engine
// checks paths, counts and sizes).
func decodeFiles(in []fileArg) ([]engine.WriteFile, error) {
	out := make([]engine.WriteFile, 0, len(in))
	for i, f := range in {
		name := fmt.Sprintf("files[%d]", i)
		var content []byte
		switch f.Encoding {
		case "", encUTF8:
			content = []byte(f.Content)
		case encBase64:
			b, err := decodeBase64(f.Content)
			if err != nil {
				return nil, argError(name+".content", fmt.Sprintf("not valid base64 (%v); encode the bytes with standard base64, or use encoding \"utf8\" for text", err))
			}
			content = b
		default:
			return nil, argError(name+".encoding", fmt.Sprintf("%q is not an encoding; use \"utf8\" (text, the default) or \"base64\" (binary)", f.Encoding))
		}
		var mode uint64
		if f.Mode != "" {
			m, err := strconv.ParseUint(f.Mode, 8, 32)
			if err != nil || m > 0o7777 {
				return nil, argError(name+".mode", fmt.Sprintf("%q is not an octal permission like \"0644\" or \"0755\"", f.Mode))
			}
			mode = m
		}
		out = append(out, engine.WriteFile{Path: f.Path, Content: content, Mode: uint32(mode)})
	}
	return out, nil
}

// decodeBase64 accepts standard base64 with or without padding, ignoring line breaks and spaces.
func decodeBase64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case '\n', '\r', ' ', '\t':
			return -1
		}
		return r
	}, s)
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}

type readFileArgs struct {
	Workspace string `json:"workspace,omitempty" jsonschema_description:"Workspace id (ws_…) or name: read its head. Give workspace or session_id."`
	SessionID string `json:"session_id,omitempty" jsonschema_description:"A live session (ses_…) to read its current files instead."`
	Path      string `json:"path" jsonschema:"required" jsonschema_description:"Relative to /workspace, absolute under it, or ~/… in the home."`
	Encoding  string `json:"encoding,omitempty" jsonschema:"enum=utf8,enum=base64" jsonschema_description:"Default: text when valid UTF-8, else base64. utf8 forces text, base64 exact bytes."`
	Offset    int64  `json:"offset,omitempty" jsonschema_description:"Byte offset to start at (a previous result's next_offset). Default 0."`
	MaxBytes  int64  `json:"max_bytes,omitempty" jsonschema_description:"Read at most this many bytes: default {read_default}, at most {max_file}."`
	Commit    string `json:"commit,omitempty" jsonschema_description:"With workspace: read this commit (c_…) instead of the head."`
}

// fileView is read_file's result.
type fileView struct {
	Path string `json:"path" jsonschema:"required"`
	// Content is the bytes read, as text or base64 (see Encoding).
	Content  string `json:"content" jsonschema:"required"`
	Encoding string `json:"encoding" jsonschema:"required"`
	// Size is the whole file's size; Offset and Bytes locate what Content holds.
	Size   int64 `json:"size"`
	Offset int64 `json:"offset"`
	Bytes  int64 `json:"bytes"`
	// NextOffset is where the rest starts, when the file continues after what was returned.
	NextOffset *int64 `json:"next_offset,omitempty"`
	// Replaced is true when invalid UTF-8 was replaced (encoding "utf8" asked for explicitly).
	Replaced bool `json:"replaced_invalid_utf8,omitempty"`
	// Commit is the commit read, with workspace.
	Commit string `json:"commit,omitempty"`
	Steps
}

func (t *toolset) readFile() server.ServerTool {
	return define(t, toolDef[readFileArgs, fileView]{
		name:  "read_file",
		title: "Read file",
		description: "Read a file of a workspace's head, or with session_id of a live session's current files: " +
			"text when valid UTF-8, else base64 (encoding says which), at most max_bytes from offset; next_offset is set when more follows.",
		hints: hints{readOnly: true, idempotent: true},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *readFileArgs) (fileView, error) {
			if err := fileTarget(a.Workspace, a.SessionID); err != nil {
				return fileView{}, err
			}
			if err := commitTarget(a.Commit, a.SessionID); err != nil {
				return fileView{}, err
			}
			switch a.Encoding {
			case "", encUTF8, encBase64:
			default:
				return fileView{}, argError("encoding", fmt.Sprintf("%q is not an encoding; use \"utf8\" or \"base64\", or omit it to get text when possible", a.Encoding))
			}
			max := a.MaxBytes
			if max == 0 {
				max = int64(t.opts.ReadDefaultBytes)
			}
			var fc engine.FileContent
			var err error
			if a.SessionID != "" {
				h, herr := t.holder(ctx, "read_file")
				if herr != nil {
					return fileView{}, herr
				}
				fc, err = t.eng.SessionReadFile(ctx, h, a.SessionID, a.Path, a.Offset, max)
			} else {
				fc, err = t.eng.ReadFileAt(ctx, a.Workspace, a.Commit, a.Path, a.Offset, max)
			}
			if err != nil {
				return fileView{}, err
			}
			v := fileContentView(fc, a.Encoding)
			v.Commit = fc.Commit
			if v.NextOffset != nil {
				args := map[string]any{"path": a.Path, "offset": *v.NextOffset}
				if a.SessionID != "" {
					args["session_id"] = a.SessionID
				} else {
					args["workspace"] = a.Workspace
				}
				if a.Commit != "" {
					args["commit"] = a.Commit
				}
				v.then("read_file", "read the rest", args)
			}
			return v, nil
		},
	})
}

// fileContentView encodes what ReadFile returned. With no encoding asked for, a window that cuts
// a multi-byte character at its end (or starts inside one) is narrowed to whole characters so the
// text stays valid; offset and next_offset then say exactly which bytes were returned.
func fileContentView(fc engine.FileContent, encoding string) fileView {
	data, offset := fc.Data, fc.Offset
	if encoding == "" && !utf8.Valid(data) {
		if trimmed, skip, ok := wholeRunes(data, offset > 0, offset+int64(len(data)) < fc.Size); ok {
			data, offset = trimmed, offset+int64(skip)
		}
	}
	v := fileView{Path: fc.Path, Size: fc.Size, Offset: offset, Bytes: int64(len(data))}
	switch {
	case encoding == encBase64 || (encoding == "" && !utf8.Valid(data)):
		v.Encoding = encBase64
		v.Content = base64.StdEncoding.EncodeToString(data)
	default:
		v.Encoding = encUTF8
		v.Content, v.Replaced = validUTF8(data)
	}
	if end := offset + int64(len(data)); end < fc.Size {
		v.NextOffset = &end
	}
	return v
}

// wholeRunes drops an incomplete UTF-8 sequence at the start (when the window starts mid-file)
// and at the end (when the file continues), if that makes data valid UTF-8.
func wholeRunes(data []byte, midStart, midEnd bool) ([]byte, int, bool) {
	skip := 0
	if midStart {
		for skip < 3 && skip < len(data) && !utf8.RuneStart(data[skip]) {
			skip++
		}
	}
	d := data[skip:]
	if midEnd {
		for k := 1; k <= 3 && k <= len(d); k++ {
			if utf8.RuneStart(d[len(d)-k]) {
				if !utf8.FullRune(d[len(d)-k:]) {
					d = d[:len(d)-k]
				}
				break
			}
		}
	}
	if len(d) == 0 || !utf8.Valid(d) {
		return nil, 0, false
	}
	return d, skip, true
}

// text is read_file's human text: a summary line, then the content.
func (v fileView) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", v.Path, sizeText(v.Size))
	if v.Commit != "" {
		fmt.Fprintf(&b, " at commit %s", v.Commit)
	}
	if v.NextOffset != nil || v.Offset > 0 {
		fmt.Fprintf(&b, "; bytes %d-%d shown", v.Offset, v.Offset+v.Bytes)
	}
	if v.NextOffset != nil {
		fmt.Fprintf(&b, "; %d more bytes from offset %d", v.Size-v.Offset-v.Bytes, *v.NextOffset)
	}
	if v.Encoding == encBase64 {
		b.WriteString("; binary content, base64-encoded")
	}
	if v.Replaced {
		b.WriteString("; not valid UTF-8: invalid bytes shown as U+FFFD (encoding \"base64\" gives the exact bytes)")
	}
	b.WriteString("\n")
	b.WriteString(v.Content)
	return b.String()
}

type listFilesArgs struct {
	Workspace string `json:"workspace,omitempty" jsonschema_description:"Workspace id (ws_…) or name: list its head. Give workspace or session_id."`
	SessionID string `json:"session_id,omitempty" jsonschema_description:"A live session (ses_…) to list its current files instead."`
	Path      string `json:"path,omitempty" jsonschema_description:"Directory, relative to /workspace, absolute under it, or ~ (the home). Default /workspace."`
	Depth     int    `json:"depth,omitempty" jsonschema_description:"Levels to descend: 1 (default) lists the directory's own entries, at most {depth_max}."`
	Commit    string `json:"commit,omitempty" jsonschema_description:"With workspace: list this commit (c_…) instead of the head."`
}

// fileList is list_files' result.
type fileList struct {
	Path    string             `json:"path" jsonschema:"required"`
	Entries []engine.FileEntry `json:"entries" jsonschema:"required"`
	// Truncated is true when the listing stopped at the server's limit.
	Truncated bool `json:"truncated,omitempty"`
	Steps
}

func (t *toolset) listFiles() server.ServerTool {
	return define(t, toolDef[listFilesArgs, fileList]{
		name:  "list_files",
		title: "List files",
		description: "List a directory of a workspace's head, or with session_id of a live session: each entry's path (relative to /workspace), " +
			"type (file, dir, symlink, other), size, mode and modification time; at most {entries_max} entries. Home entries read ~/….",
		hints: hints{readOnly: true, idempotent: true},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *listFilesArgs) (fileList, error) {
			if err := fileTarget(a.Workspace, a.SessionID); err != nil {
				return fileList{}, err
			}
			if err := commitTarget(a.Commit, a.SessionID); err != nil {
				return fileList{}, err
			}
			var entries []engine.FileEntry
			var err error
			if a.SessionID != "" {
				h, herr := t.holder(ctx, "list_files")
				if herr != nil {
					return fileList{}, herr
				}
				entries, err = t.eng.SessionListFiles(ctx, h, a.SessionID, a.Path, a.Depth)
			} else {
				entries, err = t.eng.ListFilesAt(ctx, a.Workspace, a.Commit, a.Path, a.Depth)
			}
			if err != nil {
				return fileList{}, err
			}
			if entries == nil {
				entries = []engine.FileEntry{}
			}
			dir := a.Path
			if dir == "" {
				dir = "/workspace"
			}
			return fileList{Path: dir, Entries: entries, Truncated: len(entries) >= engine.MaxListEntries}, nil
		},
	})
}

// text is list_files' human text: one line per entry.
func (v fileList) text() string {
	var b strings.Builder
	if len(v.Entries) == 0 {
		fmt.Fprintf(&b, "%s is empty", v.Path)
		return b.String()
	}
	fmt.Fprintf(&b, "%s: %d entries", v.Path, len(v.Entries))
	if v.Truncated {
		b.WriteString(" (listing cut at the limit; list subdirectories separately, or use find)")
	}
	for _, e := range v.Entries {
		switch e.Type {
		case "dir":
			fmt.Fprintf(&b, "\n%s/", e.Path)
		case "symlink":
			fmt.Fprintf(&b, "\n%s -> %s", e.Path, e.Target)
		case "file":
			fmt.Fprintf(&b, "\n%s  (%s", e.Path, sizeText(e.Size))
			if e.Mode != "0644" {
				fmt.Fprintf(&b, ", mode %s", e.Mode)
			}
			b.WriteString(")")
		default:
			fmt.Fprintf(&b, "\n%s  (%s)", e.Path, e.Type)
		}
	}
	return b.String()
}
