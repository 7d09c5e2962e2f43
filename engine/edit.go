package engine

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// Editing a file (edit_file) replaces exact text in one existing file, the way an agent edits
// code: it names the text to replace and the text to put there, instead of sending the whole
// file. The rules:
//
//   - The file must be a regular UTF-8 text file (no NUL byte) of at most MaxFileSize bytes, also
//     after the edit; a binary file is refused. A symlink to a file edits its target.
//   - OldText must not be empty and must occur in the file exactly as given (whitespace and line
//     ends included). Without ReplaceAll it must occur once: more occurrences (overlapping ones
//     included) are refused, with their count and first lines, since replacing one would be a
//     guess. With ReplaceAll every non-overlapping occurrence, left to right, is replaced.
//   - NewText equal to OldText is refused up front: the edit would change nothing. Any other edit
//     of found text changes the file's content, so it always is a change.
//   - The file keeps its permission bits.
//   - Durably (EditFile) the read and the write happen in one job of the workspace's queue, from
//     head, so nothing runs between them; the edit becomes one commit of kind "write" (message
//     "edit <path>"), like write_files, and waits, and is refused while a session holds the
//     workspace, as write_files is. On any failure head does not move. In a live session
//     (SessionEditFile) the file changes at once, without a commit; only the holder may edit.

// EditRequest is one edit_file call. Path takes the forms of read_file (relative, /workspace/...,
// ~/..., the home's absolute path).
type EditRequest struct {
	Path string
	// OldText is the exact text to replace; NewText replaces it ("" deletes it).
	OldText, NewText string
	// ReplaceAll replaces every occurrence instead of requiring exactly one.
	ReplaceAll bool
}

// Edit is what an edit did.
type Edit struct {
	// Path is the file as the engine shows paths (relative to /workspace, or ~/...).
	Path string
	// Replacements counts the occurrences replaced (1 without ReplaceAll).
	Replacements int
	// Size is the file's size after the edit.
	Size int64
	// Line is the line (1-based) of the new file where the first replacement starts, and Context
	// the lines around it, numbered as in the new file ("12\t<line>"), at most EditContextLines
	// before and after, long replacements shortened in their middle.
	Line    int
	Context string
	// Commit is the durable edit's commit (EditFile only); an empty ID means the provider saw no
	// change, so there is no commit and head stays.
	Commit Commit
}

// Bounds of an edit's context.
const (
	// EditContextLines is how many lines before and after the replacement Edit.Context shows.
	EditContextLines = 3
	// editContextMiddle bounds the replaced lines shown; a longer replacement shows its first
	// and last editContextMiddle/2 lines.
	editContextMiddle = 12
	// editContextWidth bounds each shown line, in bytes.
	editContextWidth = 200
	// editMatchLines bounds the line numbers an ambiguous or absent old_text error lists.
	editMatchLines = 5
	// maxLinkHops bounds the symlinks followed to find an edited file's mode.
	maxLinkHops = 8
)

// EditFile applies an edit_file call durably: in a sandbox started from head it reads the file,
// replaces the text and writes it back with its mode, and the result becomes one new commit (see
// the rules above). The read and the write run in one queued job, so no other durable operation
// of the workspace comes between them.
func (e *Engine) EditFile(ctx context.Context, ref string, req EditRequest) (Edit, error) {
	if e.isClosed() {
		return Edit{}, ErrClosed
	}
	p, err := validEdit(req, e.homeDir())
	if err != nil {
		return Edit{}, err
	}
	w, err := e.lookup(ref)
	if err != nil {
		return Edit{}, err
	}
	if err := e.checkLease(ctx, w.ID); err != nil {
		return Edit{}, err
	}
	if err := e.checkSpace("edit_file"); err != nil {
		return Edit{}, err
	}
	var ed Edit
	var failed, jerr error
	var commit Commit
	j := e.enqueue(w.ID, func(jctx context.Context) {
		commit, jerr = e.durably(jctx, w.ID, CommitWrite, "edit "+p.show, func(sb sandbox.Sandbox) error {
			ed, failed = e.edit(jctx, sb, p, req, func(err error) error { return e.provErr(err, "") })
			return failed
		})
	})
	select {
	case <-j.done:
	case <-ctx.Done():
		if e.withdraw(j) {
			return Edit{}, errorf(ErrCancelled, "edit_file was cancelled before it started; nothing was changed")
		}
		j.cancel()
		<-j.done
	}
	// durably reads an error of the edit as the provider's; the edit's own error says more.
	if failed != nil {
		return Edit{}, failed
	}
	if jerr != nil {
		return Edit{}, jerr
	}
	ed.Commit = commit
	return ed, nil
}

// SessionEditFile applies an edit_file call to the live session's files at once, without a
// commit (commit_session saves it). Only the session's holder may edit.
func (e *Engine) SessionEditFile(ctx context.Context, h Holder, sessionID string, req EditRequest) (Edit, error) {
	p, err := validEdit(req, e.homeDir())
	if err != nil {
		return Edit{}, err
	}
	ls, _, err := e.holding(h, sessionID)
	if err != nil {
		return Edit{}, err
	}
	return e.edit(ctx, ls.sb, p, req, func(err error) error { return e.sessionErr(ls, err) })
}

// validEdit checks an edit's arguments before any sandbox is involved.
func validEdit(req EditRequest, home string) (filePath, error) {
	p, err := parsePath(req.Path, home, false, "path")
	if err != nil {
		return filePath{}, err
	}
	switch {
	case req.OldText == "":
		return filePath{}, badArg("old_text", nil, nil, "old_text is empty; give the exact text to replace, copied from the file (read_file shows it); to create or overwrite a whole file use write_files")
	case !utf8.ValidString(req.OldText) || strings.ContainsRune(req.OldText, 0):
		return filePath{}, badArg("old_text", nil, nil, "old_text is not text (invalid UTF-8 or a NUL byte); edit_file edits text files only")
	case !utf8.ValidString(req.NewText) || strings.ContainsRune(req.NewText, 0):
		return filePath{}, badArg("new_text", nil, nil, "new_text is not text (invalid UTF-8 or a NUL byte); write binary content with write_files (encoding base64)")
	case req.OldText == req.NewText:
		return filePath{}, badArg("new_text", nil, nil, "new_text is the same as old_text, so the edit would change nothing; give the text that should replace old_text")
	}
	return p, nil
}

// edit reads p in sb, replaces the text and writes the file back with its mode. mapErr turns a
// provider error into the engine's (durable and session sandboxes end differently).
func (e *Engine) edit(ctx context.Context, sb sandbox.Sandbox, p filePath, req EditRequest, mapErr func(error) error) (Edit, error) {
	limit := int64(MaxFileSize)
	if m := e.prov.Capabilities().MaxFileSize; m > 0 && m < limit {
		limit = m
	}
	fc, err := sb.ReadFile(ctx, p.prov, 0, limit)
	if err != nil {
		return Edit{}, editReadErr(readErr(mapErr(err), p, req.Path), p)
	}
	if fc.Size > limit || int64(len(fc.Data)) < fc.Size {
		return Edit{}, badArg("path", ptr(limit), ptr(fc.Size), "%s is %d bytes, more than the %d bytes edit_file edits; change it with a command instead (e.g. sed -i through run_command)", p.show, fc.Size, limit).
			withPath(req.Path)
	}
	data := string(fc.Data)
	if err := textFile(data, p); err != nil {
		return Edit{}, err.withPath(req.Path)
	}
	n, at, err := matches(data, req, p)
	if err != nil {
		return Edit{}, err
	}
	var out string
	if req.ReplaceAll {
		out = strings.ReplaceAll(data, req.OldText, req.NewText)
	} else {
		out = data[:at] + req.NewText + data[at+len(req.OldText):]
	}
	if int64(len(out)) > limit {
		return Edit{}, badArg("new_text", ptr(limit), ptr(int64(len(out))), "the edited %s would be %d bytes, more than the %d bytes a file may have; make a smaller change", p.show, len(out), limit).
			withPath(req.Path)
	}
	mode, err := e.fileMode(ctx, sb, p, mapErr)
	if err == nil {
		err = sb.ChangeFiles(ctx, sandbox.FileChanges{Write: []sandbox.File{{Path: p.prov, Content: []byte(out), Mode: mode}}})
		if err != nil {
			err = mapErr(err)
		}
	}
	if err != nil {
		if ee, ok := AsError(err); ok && pathKind(ee) {
			ee.Fields.Argument, ee.Fields.Path = "path", req.Path
		}
		return Edit{}, err
	}
	line, ctxText := editContext(out, at, len(req.NewText))
	return Edit{Path: p.show, Replacements: n, Size: int64(len(out)), Line: line, Context: ctxText}, nil
}

// withPath sets the error's path field.
func (e *Error) withPath(p string) *Error {
	e.Fields.Path = p
	return e
}

// editReadErr completes the error of reading the file to edit: a missing file is created with
// write_files.
func editReadErr(err error, p filePath) error {
	if ee, ok := AsError(err); ok && ee.Kind == ErrNotFound && ee.Fields.Argument == "path" {
		ee.Msg += "; edit_file changes existing files only: create it with write_files"
		ee.then("write_files", "create the file", map[string]any{"files": []map[string]any{{"path": p.show, "content": "…"}}})
	}
	return err
}

// textFile refuses binary content: a NUL byte or invalid UTF-8.
func textFile(data string, p filePath) *Error {
	what := ""
	if i := strings.IndexByte(data, 0); i >= 0 {
		what = fmt.Sprintf("a NUL byte at offset %d", i)
	} else if !utf8.ValidString(data) {
		what = fmt.Sprintf("bytes that are not UTF-8 at offset %d", invalidAt(data))
	}
	if what == "" {
		return nil
	}
	return badArg("path", nil, nil, "%s is not a text file (it has %s); edit_file edits UTF-8 text only: replace the whole file with write_files (encoding base64) or change it with a command", p.show, what)
}

// invalidAt is the offset of the first byte of data that is not valid UTF-8.
func invalidAt(data string) int {
	for i, r := range data {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(data[i:]); size <= 1 {
				return i
			}
		}
	}
	return len(data)
}

// matches finds old_text in data: the number of replacements and the offset of the first. It
// fails when old_text is absent, or occurs more than once without ReplaceAll.
func matches(data string, req EditRequest, p filePath) (int, int, error) {
	old := req.OldText
	at := strings.Index(data, old)
	if at < 0 {
		return 0, 0, badArg("old_text", nil, ptr(int64(0)), "old_text was not found in %s; it must match the file exactly, whitespace, indentation and line ends included%s; read_file shows the current text", p.show, absentHint(data, old)).
			withPath(req.Path).then("read_file", "see the file's current text", map[string]any{"path": p.show})
	}
	n := strings.Count(data, old)
	if req.ReplaceAll {
		return n, at, nil
	}
	overlap := n == 1 && strings.Contains(data[at+1:], old)
	if n == 1 && !overlap {
		return 1, at, nil
	}
	count := fmt.Sprintf("%d times", n)
	if overlap {
		count, n = "twice, overlapping", 2
	}
	return 0, 0, badArg("old_text", ptr(int64(1)), ptr(int64(n)), "old_text occurs %s in %s (at %s), so which to replace is unclear; include more of the surrounding lines in old_text so that it matches once, or set replace_all to replace every occurrence", count, p.show, lineList(data, old)).
		withPath(req.Path)
}

// lineList names the lines where old occurs: "lines 4, 17, 30 and more", at most editMatchLines.
func lineList(data, old string) string {
	var lines []string
	line, from := 1, 0
	for i := 0; len(lines) < editMatchLines; {
		j := strings.Index(data[i:], old)
		if j < 0 {
			break
		}
		line += strings.Count(data[from:i+j], "\n")
		from = i + j
		lines = append(lines, fmt.Sprint(line))
		i += j + max(len(old), 1)
	}
	s := "line " + lines[0]
	if len(lines) > 1 {
		s = "lines " + strings.Join(lines, ", ")
	}
	if len(lines) == editMatchLines && strings.Count(data, old) > editMatchLines {
		s += " and more"
	}
	return s
}

// absentHint says what an old_text that is not in the file comes close to: its line ends, or
// the lines where its first line occurs (without its surrounding whitespace).
func absentHint(data, old string) string {
	if strings.Contains(data, "\r\n") && strings.Contains(old, "\n") && !strings.Contains(old, "\r\n") &&
		strings.Contains(data, strings.ReplaceAll(old, "\n", "\r\n")) {
		return " (the file's lines end in \\r\\n, old_text's in \\n: it matches with \\r\\n line ends)"
	}
	first, lines := "", 0
	for l := range strings.Lines(old) {
		if t := strings.TrimSpace(l); t != "" {
			if lines++; first == "" {
				first = t
			}
		}
	}
	if first == "" {
		return ""
	}
	var at []string
	n := 0
	for l := range strings.Lines(data) {
		n++
		if strings.Contains(l, first) {
			at = append(at, fmt.Sprint(n))
			if len(at) == editMatchLines {
				break
			}
		}
	}
	switch {
	case len(at) == 0 && lines > 1:
		return fmt.Sprintf(" (not even its first line %q occurs)", clipText(first, 80))
	case len(at) == 0:
		return ""
	case lines == 1:
		return fmt.Sprintf(" (without its surrounding whitespace it occurs at line(s) %s: check indentation and spacing)", strings.Join(at, ", "))
	}
	return fmt.Sprintf(" (its first line %q occurs at line(s) %s: compare the lines after it)", clipText(first, 80), strings.Join(at, ", "))
}

// fileMode finds the permission bits of the file p names (following symlinks), by listing its
// directory: an edit keeps them.
func (e *Engine) fileMode(ctx context.Context, sb sandbox.Sandbox, p filePath, mapErr func(error) error) (fs.FileMode, error) {
	cur := p
	for range maxLinkHops {
		ents, err := sb.ListFiles(ctx, path.Dir(cur.prov), 1)
		if err != nil {
			return 0, noted(mapErr(err), "reading the mode of "+p.show+" to keep it; nothing was changed")
		}
		var ent *sandbox.FileEntry
		for i := range ents {
			if path.Base(ents[i].Path) == path.Base(cur.prov) {
				ent = &ents[i]
				break
			}
		}
		switch {
		case ent == nil:
			return 0, errorf(ErrNotFound, "%s disappeared while it was edited; nothing was changed", p.show)
		case ent.Type == "file":
			return ent.Mode.Perm(), nil
		case ent.Type != "symlink":
			return 0, errorf(ErrInvalid, "%s is not a regular file; nothing was changed", p.show)
		}
		target := ent.Target
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(cur.rel), target)
			if cur.home {
				target = "~/" + target
			}
		}
		next, err := parsePath(target, e.homeDir(), false, "path")
		if err != nil {
			break
		}
		cur = next
	}
	return 0, errorf(ErrInvalid, "could not tell the mode of %s through its symlinks, so it was not edited; change it with a command instead", p.show)
}

// editContext numbers the lines of out around the text of length n placed at offset at: the
// line where it starts and the context (see Edit).
func editContext(out string, at, n int) (int, string) {
	first := 1 + strings.Count(out[:at], "\n")
	end := at + n
	if n > 0 {
		end-- // the replacement's last byte
	}
	last := first + strings.Count(out[at:end], "\n")
	lines := strings.Split(out, "\n")
	if strings.HasSuffix(out, "\n") {
		lines = lines[:len(lines)-1]
	}
	from, to := max(first-EditContextLines, 1), min(last+EditContextLines, len(lines))
	var b bytes.Buffer
	show := func(i int) { fmt.Fprintf(&b, "%d\t%s\n", i, clipText(lines[i-1], editContextWidth)) }
	if last-first+1 > editContextMiddle {
		for i := from; i < first+editContextMiddle/2; i++ {
			show(i)
		}
		fmt.Fprintf(&b, "…\t(%d more lines)\n", last-first+1-editContextMiddle)
		for i := last - editContextMiddle/2 + 1; i <= to; i++ {
			show(i)
		}
	} else {
		for i := from; i <= to; i++ {
			show(i)
		}
	}
	return first, strings.TrimSuffix(b.String(), "\n")
}

// clipText shortens s to at most n bytes, on a character boundary, marking the cut with "…".
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
