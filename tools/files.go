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
	Path     string `json:"path" jsonschema:"required" jsonschema_description:"Path of the file, relative to /workspace (\"src/main.py\") or absolute under it (\"/workspace/src/main.py\"). Parent directories are created."`
	Content  string `json:"content" jsonschema:"required" jsonschema_description:"The complete new content of the file (an existing file is replaced). \"\" makes an empty file."`
	Encoding string `json:"encoding,omitempty" jsonschema:"enum=utf8,enum=base64" jsonschema_description:"How content is encoded: \"utf8\" (default) for text as it is, \"base64\" for binary data."`
	Mode     string `json:"mode,omitempty" jsonschema:"pattern=^0?[0-7]{3\\,4}$" jsonschema_description:"Permission bits in octal, e.g. \"0755\" for an executable script. Default \"0644\"."`
}

type writeFilesArgs struct {
	Workspace string    `json:"workspace,omitempty" jsonschema_description:"The workspace to write into durably (a new commit): its id (ws_…) or its name. Give either workspace or session_id, not both."`
	SessionID string    `json:"session_id,omitempty" jsonschema_description:"A live session (ses_…) to write into instead: the files land in the running sandbox at once, without a commit (commit_session saves them). Give either workspace or session_id, not both."`
	Files     []fileArg `json:"files" jsonschema:"required,minItems=1,maxItems=1000" jsonschema_description:"The files to create or replace (1 to 1000; at most 16 MiB each and 64 MiB in all)."`
}

// writeResult is write_files' structured result.
type writeResult struct {
	WorkspaceID string        `json:"workspace_id"`
	CommitID    string        `json:"commit_id"`
	Files       int           `json:"files"`
	Bytes       int64         `json:"bytes"`
	Commit      engine.Commit `json:"commit"`
}

// sessionWriteResult is write_files' structured result in a session: nothing is committed.
type sessionWriteResult struct {
	SessionID string `json:"session_id"`
	Files     int    `json:"files"`
	Bytes     int64  `json:"bytes"`
	Committed bool   `json:"committed"`
}

func (t *toolset) writeFiles() server.ServerTool {
	return define(t, toolDef[writeFilesArgs]{
		name:  "write_files",
		title: "Write files",
		description: "Create or replace files in a workspace, durably: all the files are written together and committed as ONE new commit " +
			"(all or nothing), so the next run_command sees them. Use it instead of echo/cat through run_command for writing source files, " +
			"configs or data: the content arrives exactly as given. Content is text (encoding \"utf8\", the default) or binary (encoding \"base64\"). " +
			"Limits: 1000 files, 16 MiB per file, 64 MiB per call. It waits behind commands already queued on the workspace, " +
			"and fails while a live session holds the workspace. Returns the new commit_id. " +
			"With session_id instead of workspace, the files are written into that live session at once and not committed " +
			"(commit_session saves them with the rest of the session). " +
			"To delete or move files, use run_command or session_exec (rm, mv).",
		hints: hints{},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *writeFilesArgs) *mcp.CallToolResult {
			if msg := fileTarget(a.Workspace, a.SessionID); msg != "" {
				return errorText(msg)
			}
			files, msg := decodeFiles(a.Files)
			if msg != "" {
				return errorText(msg)
			}
			var total int64
			for _, f := range files {
				total += int64(len(f.Content))
			}
			if a.SessionID != "" {
				h, fail := t.holder(ctx, "write_files")
				if fail != nil {
					return fail
				}
				if err := t.eng.SessionWriteFiles(ctx, h, a.SessionID, engine.WriteRequest{Files: files}); err != nil {
					return t.fail("write_files", err)
				}
				return result(sessionWriteResult{SessionID: a.SessionID, Files: len(files), Bytes: total},
					fmt.Sprintf("wrote %d file(s), %s, into session %s (not committed; commit_session saves them)", len(files), sizeText(total), a.SessionID))
			}
			c, err := t.eng.WriteFiles(ctx, a.Workspace, engine.WriteRequest{Files: files})
			if err != nil {
				return t.fail("write_files", err)
			}
			return result(writeResult{WorkspaceID: c.Workspace, CommitID: c.ID, Files: len(files), Bytes: total, Commit: c},
				fmt.Sprintf("wrote %d file(s), %s; commit %s", len(files), sizeText(total), c.ID))
		},
	})
}

// fileTarget checks that a file tool got exactly one of workspace (its committed head) and
// session_id (a live session).
func fileTarget(workspace, sessionID string) string {
	switch {
	case workspace != "" && sessionID != "":
		return fmt.Sprintf("invalid arguments: give either \"workspace\" or \"session_id\", not both (got workspace %q and session_id %q): "+
			"workspace works on the workspace's committed head, session_id on a live session's current files", workspace, sessionID)
	case sessionID != "":
		return sessionRef(sessionID)
	case workspace != "":
		return workspaceRef(workspace)
	}
	return invalidArg("workspace", "missing; give either workspace (a workspace id ws_… or name; list_workspaces lists them) "+
		"or session_id (a live session ses_… from open_session)")
}

// decodeFiles checks and decodes write_files' files argument.
func decodeFiles(in []fileArg) ([]engine.WriteFile, string) {
	if len(in) == 0 {
		return nil, invalidArg("files", "missing or empty; give at least one {\"path\": …, \"content\": …}")
	}
	if len(in) > engine.MaxFilesPerWrite {
		return nil, invalidArg("files", fmt.Sprintf("%d files is more than the %d allowed per call; split the write", len(in), engine.MaxFilesPerWrite))
	}
	out := make([]engine.WriteFile, 0, len(in))
	for i, f := range in {
		name := fmt.Sprintf("files[%d]", i)
		if strings.TrimSpace(f.Path) == "" {
			return nil, invalidArg(name+".path", "missing; give a path relative to /workspace")
		}
		var content []byte
		switch f.Encoding {
		case "", encUTF8:
			content = []byte(f.Content)
		case encBase64:
			b, err := decodeBase64(f.Content)
			if err != nil {
				return nil, invalidArg(name+".content", fmt.Sprintf("not valid base64 (%v); encode the bytes with standard base64, or use encoding \"utf8\" for text", err))
			}
			content = b
		default:
			return nil, invalidArg(name+".encoding", fmt.Sprintf("%q is not an encoding; use \"utf8\" (text, the default) or \"base64\" (binary)", f.Encoding))
		}
		var mode uint64
		if f.Mode != "" {
			m, err := strconv.ParseUint(f.Mode, 8, 32)
			if err != nil || m > 0o7777 {
				return nil, invalidArg(name+".mode", fmt.Sprintf("%q is not an octal permission like \"0644\" or \"0755\"", f.Mode))
			}
			mode = m
		}
		out = append(out, engine.WriteFile{Path: f.Path, Content: content, Mode: uint32(mode)})
	}
	return out, ""
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
	Workspace string `json:"workspace,omitempty" jsonschema_description:"The workspace to read from (its committed head): its id (ws_…) or its name. Give either workspace or session_id, not both."`
	SessionID string `json:"session_id,omitempty" jsonschema_description:"A live session (ses_…) to read from instead: its current, uncommitted files. Give either workspace or session_id, not both."`
	Path      string `json:"path" jsonschema:"required" jsonschema_description:"Path of the file, relative to /workspace or absolute under it."`
	Encoding  string `json:"encoding,omitempty" jsonschema:"enum=utf8,enum=base64" jsonschema_description:"How to return the content. Omit it to get text when the bytes are valid UTF-8 and base64 otherwise. \"utf8\": always text (invalid bytes become U+FFFD). \"base64\": always base64 (exact bytes)."`
	Offset    int64  `json:"offset,omitempty" jsonschema:"minimum=0" jsonschema_description:"Byte offset to start reading at. Default 0. To continue a partial read, pass the next_offset of the previous result."`
	MaxBytes  int64  `json:"max_bytes,omitempty" jsonschema:"minimum=1,maximum=16777216" jsonschema_description:"Read at most this many bytes. Default 131072 (128 KiB), maximum 16777216 (16 MiB)."`
}

// fileView is read_file's structured result.
type fileView struct {
	Path string `json:"path"`
	// Content is the bytes read, as text or base64 (see Encoding).
	Content  string `json:"content"`
	Encoding string `json:"encoding"`
	// Size is the whole file's size; Offset and Bytes locate what Content holds.
	Size   int64 `json:"size"`
	Offset int64 `json:"offset"`
	Bytes  int64 `json:"bytes"`
	// Truncated is true when the file continues after what was returned; NextOffset is where.
	Truncated  bool   `json:"truncated"`
	NextOffset *int64 `json:"next_offset,omitempty"`
	// Replaced is true when invalid UTF-8 was replaced (encoding "utf8" asked for explicitly).
	Replaced bool `json:"replaced_invalid_utf8,omitempty"`
}

func (t *toolset) readFile() server.ServerTool {
	return define(t, toolDef[readFileArgs]{
		name:  "read_file",
		title: "Read file",
		description: "Read a file from a workspace's current state (its head), or, with session_id instead of workspace, from a live session's " +
			"current (uncommitted) files. Returns content as text when the bytes are valid UTF-8, " +
			"otherwise as base64; encoding says which, size the whole file's size in bytes. " +
			"Reads at most max_bytes (default 128 KiB) from offset: when truncated is true, call again with offset = next_offset for the rest. " +
			"Use list_files to find files; use run_command or session_exec (grep, head, …) to search large files.",
		hints: hints{readOnly: true, idempotent: true},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *readFileArgs) *mcp.CallToolResult {
			if msg := fileTarget(a.Workspace, a.SessionID); msg != "" {
				return errorText(msg)
			}
			if strings.TrimSpace(a.Path) == "" {
				return errorText(invalidArg("path", "missing; give a file path relative to /workspace; list_files shows what is there"))
			}
			switch a.Encoding {
			case "", encUTF8, encBase64:
			default:
				return errorText(invalidArg("encoding", fmt.Sprintf("%q is not an encoding; use \"utf8\" or \"base64\", or omit it to get text when possible", a.Encoding)))
			}
			if a.Offset < 0 {
				return errorText(invalidArg("offset", "must be 0 or more"))
			}
			if a.MaxBytes < 0 || a.MaxBytes > engine.MaxFileSize {
				return errorText(invalidArg("max_bytes", fmt.Sprintf("%d is out of range: give 1 to %d, or omit it for %d", a.MaxBytes, engine.MaxFileSize, t.opts.ReadDefaultBytes)))
			}
			max := a.MaxBytes
			if max == 0 {
				max = int64(t.opts.ReadDefaultBytes)
			}
			var fc engine.FileContent
			var err error
			if a.SessionID != "" {
				h, fail := t.holder(ctx, "read_file")
				if fail != nil {
					return fail
				}
				fc, err = t.eng.SessionReadFile(ctx, h, a.SessionID, a.Path, a.Offset, max)
			} else {
				fc, err = t.eng.ReadFile(ctx, a.Workspace, a.Path, a.Offset, max)
			}
			if err != nil {
				return t.fail("read_file", err)
			}
			v := fileContentView(fc, a.Encoding)
			return result(v, fileText(v))
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
		v.Truncated = true
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

// fileText is read_file's human text: a summary line, then the content.
func fileText(v fileView) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", v.Path, sizeText(v.Size))
	if v.Truncated || v.Offset > 0 {
		fmt.Fprintf(&b, "; bytes %d-%d shown", v.Offset, v.Offset+v.Bytes)
	}
	if v.Truncated {
		fmt.Fprintf(&b, "; %d more bytes: call read_file again with offset %d", v.Size-v.Offset-v.Bytes, *v.NextOffset)
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
	Workspace string `json:"workspace,omitempty" jsonschema_description:"The workspace to list (its committed head): its id (ws_…) or its name. Give either workspace or session_id, not both."`
	SessionID string `json:"session_id,omitempty" jsonschema_description:"A live session (ses_…) to list instead: its current, uncommitted files. Give either workspace or session_id, not both."`
	Path      string `json:"path,omitempty" jsonschema_description:"Directory to list, relative to /workspace or absolute under it. Default: /workspace itself."`
	Depth     int    `json:"depth,omitempty" jsonschema:"minimum=1,maximum=16" jsonschema_description:"How many levels to descend: 1 (default) lists only the directory's own entries, 2 also their children, and so on; maximum 16."`
}

// fileList is list_files' structured result.
type fileList struct {
	Path    string             `json:"path"`
	Entries []engine.FileEntry `json:"entries"`
	// Truncated is true when the listing stopped at the server's limit.
	Truncated bool `json:"truncated"`
}

func (t *toolset) listFiles() server.ServerTool {
	return define(t, toolDef[listFilesArgs]{
		name:  "list_files",
		title: "List files",
		description: "List a directory of a workspace's current state (its head), or, with session_id instead of workspace, of a live session's " +
			"current (uncommitted) files: each entry's path (relative to /workspace), " +
			"type (file, dir, symlink, other), size, mode and modification time. depth 1 (default) lists the directory itself, " +
			"larger depths descend (maximum 16). At most 5000 entries are returned; truncated says when the listing was cut: " +
			"then list subdirectories separately or use find through run_command or session_exec.",
		hints: hints{readOnly: true, idempotent: true},
		handle: func(ctx context.Context, _ mcp.CallToolRequest, a *listFilesArgs) *mcp.CallToolResult {
			if msg := fileTarget(a.Workspace, a.SessionID); msg != "" {
				return errorText(msg)
			}
			if a.Depth < 0 || a.Depth > engine.MaxListDepth {
				return errorText(invalidArg("depth", fmt.Sprintf("%d is out of range: give 1 to %d, or omit it for 1", a.Depth, engine.MaxListDepth)))
			}
			var entries []engine.FileEntry
			var err error
			if a.SessionID != "" {
				h, fail := t.holder(ctx, "list_files")
				if fail != nil {
					return fail
				}
				entries, err = t.eng.SessionListFiles(ctx, h, a.SessionID, a.Path, a.Depth)
			} else {
				entries, err = t.eng.ListFiles(ctx, a.Workspace, a.Path, a.Depth)
			}
			if err != nil {
				return t.fail("list_files", err)
			}
			if entries == nil {
				entries = []engine.FileEntry{}
			}
			dir := a.Path
			if dir == "" {
				dir = "/workspace"
			}
			v := fileList{Path: dir, Entries: entries, Truncated: len(entries) >= engine.MaxListEntries}
			return result(v, listText(v))
		},
	})
}

// listText is list_files' human text: one line per entry.
func listText(v fileList) string {
	var b strings.Builder
	if len(v.Entries) == 0 {
		fmt.Fprintf(&b, "%s is empty", v.Path)
		return b.String()
	}
	fmt.Fprintf(&b, "%s: %d entries", v.Path, len(v.Entries))
	if v.Truncated {
		b.WriteString(" (listing cut at the limit; list subdirectories separately)")
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
