package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/sandkit/sandkit-mcp/policies"
	"github.com/sandkit/sandkit-mcp/sandbox"
	"github.com/sandkit/sandkit-mcp/store"
)

// Workspace diff: what differs between two commits of a workspace, file by file, with a unified
// diff of the text files, bounded.
//
// The list of changed paths costs what the change costs, not what the tree holds, where the
// provider can compare snapshots (Capabilities.Diff, the local provider): the engine asks
// Provider.Diff, then reads only the changed files, at both commits, in two throwaway sandboxes.
// A provider that cannot compare (Vercel) has both trees listed instead — the whole workspace and
// home, or only the paths asked for — in a sandbox at each commit, and the listings compared
// (type, size, permission bits, modification time, symlink target). The local provider's Diff
// lists at most sandbox.MaxChanges paths; when it has more and paths are given, the engine lists
// those paths the same way, so nothing inside them is missed.
//
// The rules of the list are those of sandbox.Changes, with one difference: a deleted directory is
// shown as the files it held (the directory itself only when it was empty, or when it held more
// than a listing compares), as an added one is. The diff shows diffContext lines of context; a binary file (a NUL byte, or not UTF-8) and a
// file larger than MaxDiffCompare are named as differing, not shown. The text is bounded:
// MaxDiffFileBytes per file and MaxDiffBytes in all; what is left out is named in the text and
// flagged on the file, and read_file with commit reads any file whole.

// Bounds of a workspace diff.
const (
	// MaxDiffBytes bounds the unified diff text of one call (the markers saying what was left out
	// aside).
	MaxDiffBytes = 64 << 10
	// MaxDiffFileBytes bounds one file's part of the diff text.
	MaxDiffFileBytes = 16 << 10
	// MaxDiffCompare is the largest file compared line by line; a larger one is only named as
	// differing.
	MaxDiffCompare = 1 << 20
	// MaxDiffFiles bounds the changed paths one diff lists (all are counted).
	MaxDiffFiles = sandbox.MaxChanges
	// MaxDiffPaths bounds the paths filter.
	MaxDiffPaths = 32
	// maxDiffWalk bounds the entries a listing of one tree may hold where the engine lists trees
	// to compare them; a larger tree asks for paths.
	maxDiffWalk = 20000
	// minDiffPart is the least room left in the bound worth showing a file's diff in; with less,
	// the file's diff is left out whole (and its content not read).
	minDiffPart = 512
	// cutMarkerRoom is what a cut file's marker line takes at most.
	cutMarkerRoom = 160
)

// DiffRequest holds workspace_diff's arguments.
type DiffRequest struct {
	// Workspace is an id or a name.
	Workspace string
	// To is a commit of the workspace ("" for its head); From another ("" for the parent of To,
	// the empty state when To is a first commit).
	From, To string
	// Paths, when given, limits the diff to these files and directories (the forms of
	// read_file's path; "~" is the whole home).
	Paths []string
}

// DiffFile is one changed path of a Diff.
type DiffFile struct {
	Path string `json:"path"`
	// Op is added, modified or deleted.
	Op string `json:"op"`
	// Type is what is there now (file, dir, symlink, other); for a deleted path, what was.
	Type string `json:"type"`
	// SizeBefore and SizeAfter are a file's sizes at from and at to, when it is a file there.
	SizeBefore *int64 `json:"size_before,omitempty"`
	SizeAfter  *int64 `json:"size_after,omitempty"`
	// Binary is set for a file whose content is not text: it is named, not shown.
	Binary       bool `json:"binary,omitempty"`
	LinesAdded   int  `json:"lines_added,omitempty"`
	LinesRemoved int  `json:"lines_removed,omitempty"`
	// DiffOmitted is set when the diff text leaves this file's diff out, or cuts it (Note says
	// which and why).
	DiffOmitted bool   `json:"diff_omitted,omitempty"`
	Note        string `json:"note,omitempty"`
}

// Diff is what differs from one commit to another.
type Diff struct {
	Workspace string
	// From is "" when To is a first commit without from: it is compared with the empty state.
	From, To string
	// Files lists the changed paths in order (the workspace's, then the home's), at most
	// MaxDiffFiles.
	Files []DiffFile
	// Text is the unified diff of the listed files, bounded, with markers naming what it leaves
	// out.
	Text string
	// Changed counts every changed path, also those beyond Files; Added, Modified and Deleted
	// count the listed ones, and LinesAdded and LinesRemoved the changed lines of the files
	// compared (also where the text cuts a file's diff).
	Changed                  int64
	Added, Modified, Deleted int
	LinesAdded, LinesRemoved int
	// Omitted counts the listed files whose diff Text leaves out or cuts; Incomplete is set when
	// Files does not list every change.
	Omitted    int
	Incomplete bool
}

// Diff compares two commits of a workspace (see the rules above). A from or to that is not a
// commit of the workspace fails naming the argument.
func (e *Engine) Diff(ctx context.Context, req DiffRequest) (Diff, error) {
	if e.isClosed() {
		return Diff{}, ErrClosed
	}
	home := e.homeDir()
	filters, err := diffFilters(req.Paths, home)
	if err != nil {
		return Diff{}, err
	}
	var w store.Workspace
	var from, to store.Commit
	if err := e.st.View(func(tx *store.Tx) error {
		var err error
		if w, err = lookupTx(tx, req.Workspace); err != nil {
			return err
		}
		if to, err = commitArg(tx, w, req.To, "to"); err != nil {
			return err
		}
		switch {
		case req.From != "":
			from, err = commitArg(tx, w, req.From, "from")
		case to.Parent != "":
			from, err = tx.Commit(to.Parent)
			if errors.Is(err, store.ErrNotFound) {
				if perr := prunedCommit(tx, w, to.Parent, "from", to.ID); perr != nil {
					return perr
				}
			}
		}
		return err
	}); err != nil {
		return Diff{}, err
	}
	out := Diff{Workspace: w.ID, From: from.ID, To: to.ID}
	if from.Snapshot == to.Snapshot {
		return out, nil
	}
	j := &diffJob{e: e, ctx: ctx, home: home, ws: w.ID, filters: filters, sides: [2]*diffSide{
		{ref: sandbox.SnapshotRef(from.Snapshot), commit: from.ID},
		{ref: sandbox.SnapshotRef(to.Snapshot), commit: to.ID},
	}}
	defer j.stop()
	list, total, incomplete, err := j.changes()
	if err != nil {
		return Diff{}, err
	}
	out.Changed, out.Incomplete = total, incomplete
	if err := j.render(&out, list); err != nil {
		return Diff{}, err
	}
	return out, nil
}

// diffFilters validates the paths filter.
func diffFilters(paths []string, home string) ([]filePath, error) {
	if n := len(paths); n > MaxDiffPaths {
		return nil, badArg("paths", ptr(int64(MaxDiffPaths)), ptr(int64(n)), "%d paths is more than the %d allowed; give their common directory instead", n, MaxDiffPaths)
	}
	out := make([]filePath, 0, len(paths))
	for i, p := range paths {
		fp, err := parsePath(p, home, true, fmt.Sprintf("paths[%d]", i))
		if err != nil {
			return nil, err
		}
		out = append(out, fp)
	}
	return out, nil
}

// diffSide is one commit of a diff: its snapshot and, once needed, a sandbox at it (none for the
// empty state).
type diffSide struct {
	ref    sandbox.SnapshotRef
	commit string
	sb     sandbox.Sandbox
}

// diffJob is one Diff call at work.
type diffJob struct {
	e       *Engine
	ctx     context.Context
	home    string
	ws      string
	filters []filePath
	sides   [2]*diffSide // before (from), after (to)
	started bool
}

// diffEntry is one changed path: what the diff reports, and what each side holds there when a
// listing told (nil otherwise).
type diffEntry struct {
	DiffFile
	p      filePath
	before *sandbox.FileEntry
	after  *sandbox.FileEntry
}

// start boots the sandboxes of both sides, at the same time (a boot is slow on some providers).
func (j *diffJob) start() error {
	if j.started {
		return nil
	}
	j.started = true
	var wg sync.WaitGroup
	errs := make([]error, len(j.sides))
	for i, s := range j.sides {
		if s.ref == "" {
			continue
		}
		wg.Go(func() {
			sb, err := j.e.prov.Start(j.ctx, sandbox.StartOptions{Snapshot: s.ref, Policy: policies.Deny(), Label: j.ws})
			if err != nil {
				errs[i] = j.e.provErr(err, "start a sandbox at commit "+s.commit)
				return
			}
			s.sb = sb
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (j *diffJob) stop() {
	for _, s := range j.sides {
		if s.sb != nil {
			_ = s.sb.Stop(context.Background())
		}
	}
}

// render reads the listed files at both commits and writes the diff: the files, the text, the
// totals.
func (j *diffJob) render(out *Diff, list []diffEntry) error {
	if len(list) > MaxDiffFiles {
		list, out.Incomplete = list[:MaxDiffFiles], true
	}
	for _, d := range list {
		switch d.Op {
		case sandbox.Added:
			out.Added++
		case sandbox.Modified:
			out.Modified++
		case sandbox.Deleted:
			out.Deleted++
		}
	}
	var text strings.Builder
	var omitted []string
	for i := range list {
		d := &list[i]
		room := MaxDiffBytes - text.Len()
		part, err := j.file(d, room)
		if err != nil {
			return err
		}
		text.WriteString(part)
		if d.DiffOmitted {
			omitted = append(omitted, d.Path)
		}
		out.LinesAdded += d.LinesAdded
		out.LinesRemoved += d.LinesRemoved
		out.Files = append(out.Files, d.DiffFile)
	}
	out.Omitted = len(omitted)
	if len(omitted) > 0 {
		names := omitted[:min(len(omitted), 5)]
		more := ""
		if len(omitted) > len(names) {
			more = fmt.Sprintf(" and %d more", len(omitted)-len(names))
		}
		fmt.Fprintf(&text, "[the diff of %d file(s) is left out or cut at the bound of %d bytes (%d per file): %s%s; give paths to see fewer files, or read_file with commit for a whole file]\n",
			len(omitted), MaxDiffBytes, MaxDiffFileBytes, strings.Join(names, ", "), more)
	}
	if out.Incomplete {
		fmt.Fprintf(&text, "[%d changed path(s) in all, %d listed; give paths to narrow the diff]\n", out.Changed, len(out.Files))
	}
	out.Text = text.String()
	return nil
}

// content is what one side holds of a file: its size and the bytes read (at most
// MaxDiffCompare, or none when only the size was asked for).
type content struct {
	file bool
	size int64
	data []byte
}

// read reads p at side s (up to max bytes); a side without a file there reads as no file.
func (j *diffJob) read(s *diffSide, p filePath, max int64) (content, error) {
	if s.sb == nil {
		return content{}, nil
	}
	c, err := s.sb.ReadFile(j.ctx, p.prov, 0, max)
	switch {
	case errors.Is(err, sandbox.ErrNotFound), errors.Is(err, sandbox.ErrInvalid):
		return content{}, nil // not there, or a directory
	case err != nil:
		return content{}, j.e.provErr(err, "read "+p.show+" at commit "+s.commit)
	}
	return content{file: true, size: c.Size, data: c.Data}, nil
}

// file fills in d's sizes and counts and returns its part of the diff text, in at most room
// bytes.
func (j *diffJob) file(d *diffEntry, room int) (string, error) {
	// Which sides may hold a file: a listing tells; Provider.Diff tells the type now (before,
	// for a deletion), so the other side of a modification is read to find out.
	beforeFile := d.Op != sandbox.Added && d.Type == "file"
	afterFile := d.Op != sandbox.Deleted && d.Type == "file"
	if d.Op == sandbox.Modified && d.before != nil {
		beforeFile = d.before.Type == "file"
	}
	if d.before != nil && d.before.Type == "file" {
		d.SizeBefore = ptr(d.before.Size)
	}
	if d.after != nil && d.after.Type == "file" {
		d.SizeAfter = ptr(d.after.Size)
	}
	if !beforeFile && !afterFile {
		return "", nil
	}
	if err := j.start(); err != nil {
		return "", err
	}
	show := room >= minDiffPart
	max := int64(MaxDiffCompare)
	if !show {
		max = 1 // only the size
	}
	var sides [2]content
	for i, want := range []bool{beforeFile, afterFile} {
		if !want {
			continue
		}
		var err error
		if sides[i], err = j.read(j.sides[i], d.p, max); err != nil {
			return "", err
		}
	}
	if sides[0].file {
		d.SizeBefore = ptr(sides[0].size)
	}
	if sides[1].file {
		d.SizeAfter = ptr(sides[1].size)
	}
	if !sides[0].file && !sides[1].file {
		return "", nil
	}
	if !show {
		d.DiffOmitted, d.Note = true, "diff left out: the diff text reached its bound"
		return "", nil
	}
	a, b := "a/"+d.Path, "b/"+d.Path
	if !sides[0].file {
		a = "/dev/null"
	}
	if !sides[1].file {
		b = "/dev/null"
	}
	if sides[0].size > MaxDiffCompare || sides[1].size > MaxDiffCompare {
		d.Binary = binary(sides[0].data, true) || binary(sides[1].data, true)
		d.Note = fmt.Sprintf("not compared line by line: larger than %d bytes", MaxDiffCompare)
		return fmt.Sprintf("Files %s and %s differ (larger than %d bytes; read_file with commit reads them in windows)\n", a, b, MaxDiffCompare), nil
	}
	if binary(sides[0].data, false) || binary(sides[1].data, false) {
		d.Binary = true
		if bytes.Equal(sides[0].data, sides[1].data) {
			d.Note = "content unchanged: only metadata (mode, owner or time) changed"
			return "", nil
		}
		return fmt.Sprintf("Binary files %s and %s differ\n", a, b), nil
	}
	la, lb := splitLines(string(sides[0].data)), splitLines(string(sides[1].data))
	hunks, added, removed := unified(la, lb, editScript(la, lb))
	d.LinesAdded, d.LinesRemoved = added, removed
	if hunks == "" {
		if sides[0].file && sides[1].file {
			d.Note = "content unchanged: only metadata (mode, owner or time) changed"
			return "", nil
		}
		d.Note = "empty file"
		return fmt.Sprintf("--- %s\n+++ %s\n", a, b), nil
	}
	part := fmt.Sprintf("--- %s\n+++ %s\n%s", a, b, hunks)
	if len(part) <= min(room, MaxDiffFileBytes) {
		return part, nil
	}
	// Cut at a line end, leaving room for the marker line.
	limit := min(room, MaxDiffFileBytes) - cutMarkerRoom
	cut := strings.LastIndexByte(part[:limit], '\n') + 1
	d.DiffOmitted = true
	d.Note = fmt.Sprintf("diff cut after %d of its %d bytes", cut, len(part))
	rest := part[cut:]
	return part[:cut] + fmt.Sprintf("[… %d more bytes (%d lines) of this file's diff left out; read_file with commit reads the file whole]\n", len(rest), strings.Count(rest, "\n")), nil
}

// binary reports whether data is not text: it holds a NUL byte, or is not UTF-8 (for the start
// of a file, partial, a multi-byte character cut at its end aside).
func binary(data []byte, partial bool) bool {
	if bytes.IndexByte(data, 0) >= 0 {
		return true
	}
	for k := 0; partial && k < 3 && len(data) > 0 && !utf8.Valid(data); k++ {
		data = data[:len(data)-1]
	}
	return !utf8.Valid(data)
}
