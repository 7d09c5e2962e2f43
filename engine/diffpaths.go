package engine

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/sandkit/sandkit-mcp/sandbox"
)

// Which paths a workspace diff lists (see diff.go): Provider.Diff's list where the provider can
// compare snapshots, with deleted directories looked into; otherwise, or for a paths filter
// beyond Provider.Diff's bound, the listings of both trees compared.

// wanted reports whether p passes the paths filter; a directory also when a filter lies inside it
// (a deleted directory is looked into).
func (j *diffJob) wanted(p filePath, dir bool) bool {
	if len(j.filters) == 0 {
		return true
	}
	return slices.ContainsFunc(j.filters, func(f filePath) bool { return p.within(f) || (dir && f.within(p)) })
}

// agentPath parses a path in the agent's form that a provider reported.
func (j *diffJob) agentPath(p string) (filePath, error) {
	fp, err := parsePath(showPath(p, j.home), j.home, true, "")
	if err != nil {
		return filePath{}, fmt.Errorf("the provider reported a change at %q, which is not a path of the workspace: %w", p, err)
	}
	return fp, nil
}

// changes lists the changed paths the filter wants, with the number of changes in all and whether
// the list misses some.
func (j *diffJob) changes() ([]diffEntry, int64, bool, error) {
	if !j.e.prov.Capabilities().Diff {
		return j.walk()
	}
	ch, err := j.e.prov.Diff(j.ctx, j.sides[0].ref, j.sides[1].ref)
	if err != nil {
		return nil, 0, false, j.e.provErr(err, "compare the commits")
	}
	if ch.Truncated() && len(j.filters) > 0 {
		return j.walk()
	}
	var list []diffEntry
	total := ch.Files
	for _, c := range ch.Paths {
		p, err := j.agentPath(c.Path)
		if err != nil {
			return nil, 0, false, err
		}
		dir := c.Type == "dir"
		if !j.wanted(p, dir) {
			continue
		}
		if c.Op != sandbox.Deleted || !dir {
			list = append(list, diffEntry{DiffFile: DiffFile{Path: p.show, Op: c.Op, Type: c.Type}, p: p})
			continue
		}
		// A deleted directory: the files it held, from a listing at from.
		if err := j.start(); err != nil {
			return nil, 0, false, err
		}
		held, err := j.tree(j.sides[0], p)
		if err != nil {
			return nil, 0, false, err
		}
		if len(held) >= maxDiffWalk { // too many to list one by one: the directory stands for them
			list = append(list, diffEntry{DiffFile: DiffFile{Path: p.show, Op: c.Op, Type: c.Type,
				Note: fmt.Sprintf("a directory of %d or more entries, not listed one by one", len(held))}, p: p})
			continue
		}
		n := 0
		for _, en := range leaves(held) {
			q, err := j.agentPath(en.Path)
			if err != nil {
				return nil, 0, false, err
			}
			if j.wanted(q, false) {
				list = append(list, diffEntry{DiffFile: DiffFile{Path: q.show, Op: sandbox.Deleted, Type: en.Type}, p: q, before: &en})
				n++
			}
		}
		total += int64(n) - 1
	}
	if len(j.filters) > 0 {
		total = int64(len(list))
	}
	return list, total, ch.Truncated(), nil
}

// walk lists the filter's paths (or both roots) at both commits and compares the listings.
func (j *diffJob) walk() ([]diffEntry, int64, bool, error) {
	if err := j.start(); err != nil {
		return nil, 0, false, err
	}
	roots := j.filters
	if len(roots) == 0 {
		roots = []filePath{{prov: ".", show: ".", rel: "."}}
		if j.home != "" {
			roots = append(roots, filePath{prov: j.home, show: "~", rel: ".", home: true})
		}
	}
	var trees [2]map[string]sandbox.FileEntry
	for i, s := range j.sides {
		trees[i] = map[string]sandbox.FileEntry{}
		for _, r := range roots {
			entries, err := j.tree(s, r)
			if err != nil {
				return nil, 0, false, err
			}
			if len(entries) >= maxDiffWalk {
				return nil, 0, false, badArg("paths", ptr(int64(maxDiffWalk)), ptr(int64(len(entries))),
					"%s holds %d or more entries at commit %s, more than workspace_diff compares in one listing (this provider cannot compare snapshots, so the trees are listed); give paths to narrow the diff to the files or directories you need",
					r.show, len(entries), s.commit)
			}
			for _, en := range entries {
				trees[i][showPath(en.Path, j.home)] = en
			}
		}
	}
	keys := make([]string, 0, len(trees[1]))
	for k := range trees[0] {
		keys = append(keys, k)
	}
	for k := range trees[1] {
		if _, ok := trees[0][k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, comparePaths)
	var raw []diffEntry
	for _, k := range keys {
		a, okA := trees[0][k]
		b, okB := trees[1][k]
		var d diffEntry
		switch {
		case okA && okB && sameEntry(a, b):
			continue
		case okA && okB:
			d = diffEntry{DiffFile: DiffFile{Op: sandbox.Modified, Type: b.Type}, before: &a, after: &b}
		case okB:
			d = diffEntry{DiffFile: DiffFile{Op: sandbox.Added, Type: b.Type}, after: &b}
		default:
			d = diffEntry{DiffFile: DiffFile{Op: sandbox.Deleted, Type: a.Type}, before: &a}
		}
		p, err := j.agentPath(k)
		if err != nil {
			return nil, 0, false, err
		}
		d.p, d.Path = p, p.show
		raw = append(raw, d)
	}
	// A directory added or deleted is listed only when nothing under it is.
	under := map[string]bool{}
	for _, d := range raw {
		for p := path.Dir(d.Path); p != "." && p != "/" && !under[p]; p = path.Dir(p) {
			under[p] = true
		}
	}
	list := raw[:0]
	for _, d := range raw {
		if d.Type == "dir" && d.Op != sandbox.Modified && under[d.Path] {
			continue
		}
		list = append(list, d)
	}
	return list, int64(len(list)), false, nil
}

// comparePaths orders paths as sandbox.Changes does: the workspace's before the home's, each
// depth first with names in byte order.
func comparePaths(a, b string) int {
	ha, hb := strings.HasPrefix(a, "~"), strings.HasPrefix(b, "~")
	if ha != hb {
		if ha {
			return 1
		}
		return -1
	}
	return slices.Compare(strings.Split(a, "/"), strings.Split(b, "/"))
}

// sameEntry reports whether two listed entries show no change (a directory's modification time
// alone is none, see sandbox.Changes).
func sameEntry(a, b sandbox.FileEntry) bool {
	if a.Type != b.Type || a.Mode != b.Mode {
		return false
	}
	return a.Type == "dir" || (a.Size == b.Size && a.ModTime.Equal(b.ModTime) && a.Target == b.Target)
}

// leaves keeps the entries of a listing that are not directories, and the directories with
// nothing under them.
func leaves(entries []sandbox.FileEntry) []sandbox.FileEntry {
	parents := map[string]bool{}
	for _, en := range entries {
		parents[path.Dir(en.Path)] = true
	}
	var out []sandbox.FileEntry
	for _, en := range entries {
		if en.Type != "dir" || !parents[en.Path] {
			out = append(out, en)
		}
	}
	return out
}

// tree lists what side s holds at p and under it (nothing for the empty state or a path that is
// not there); a path that is not a directory is found in its parent's listing.
func (j *diffJob) tree(s *diffSide, p filePath) ([]sandbox.FileEntry, error) {
	if s.sb == nil {
		return nil, nil
	}
	entries, err := s.sb.ListFiles(j.ctx, p.prov, MaxListDepth)
	switch {
	case errors.Is(err, sandbox.ErrNotFound):
		return nil, nil
	case errors.Is(err, sandbox.ErrInvalid) && p.rel != ".":
		around, err := s.sb.ListFiles(j.ctx, path.Dir(p.prov), 1)
		if err != nil {
			return nil, j.e.provErr(err, "list "+p.show)
		}
		for _, en := range around {
			if showPath(en.Path, j.home) == p.show {
				return []sandbox.FileEntry{en}, nil
			}
		}
		return nil, nil
	case err != nil:
		return nil, j.e.provErr(err, "list "+p.show)
	}
	return entries, nil
}
