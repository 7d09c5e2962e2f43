package sandbox

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// ImportSource is a tree of host files that Provider.Import turns into a snapshot. The caller
// (the engine) has already decided what is imported and has resolved every path safely; the
// provider only copies. Entries are in the order to create them (a directory before what is in
// it is not required: missing parents are created as directories, mode 0755).
type ImportSource struct {
	// Entries are the files, directories and symlinks of the new /workspace.
	Entries []ImportEntry
	// Open opens the regular file at an entry's Path for reading. The provider closes it.
	Open func(path string) (*os.File, error)
	// Progress, when set, is called now and then with the bytes and entries copied so far. It
	// must not block.
	Progress func(bytes, entries int64)
}

// ImportEntry is one entry of an ImportSource.
type ImportEntry struct {
	// Path is relative to /workspace, slash-separated and clean ("src/main.go"); never "", ".",
	// absolute, or with a ".." element (CheckImportPath).
	Path string
	// Mode holds the type (fs.ModeDir, fs.ModeSymlink, or none for a regular file) and the
	// permission bits.
	Mode fs.FileMode
	// Size of a regular file, as seen when the tree was listed.
	Size int64
	// Target is a symlink's target, as stored (it is not followed, now or in the sandbox's
	// favour: it is resolved inside the sandbox like any other link).
	Target string
}

// CheckImportPath reports whether p is a valid ImportEntry.Path.
func CheckImportPath(p string) error {
	if p == "" || p == "." || strings.HasPrefix(p, "/") || path.Clean(p) != p || !fs.ValidPath(p) {
		return fmt.Errorf("%w: import path %q must be relative to /workspace, clean, without \"..\"", ErrInvalid, p)
	}
	return nil
}

// ImportByWrites is Provider.Import for providers that have no faster way: it starts an empty
// sandbox, writes the regular files in batches through WriteFiles, makes the directories and
// symlinks with one shell command per batch, and snapshots. Files larger than the provider's
// MaxFileSize fail with ErrInvalid.
func ImportByWrites(ctx context.Context, p Provider, src ImportSource) (SnapshotInfo, error) {
	for _, e := range src.Entries {
		if err := CheckImportPath(e.Path); err != nil {
			return SnapshotInfo{}, err
		}
	}
	if len(src.Entries) == 0 {
		return SnapshotInfo{Unchanged: true, Changes: Changes{Known: p.Capabilities().Changes}}, nil
	}
	maxSize := p.Capabilities().MaxFileSize
	sb, err := p.Start(ctx, StartOptions{Label: "import"})
	if err != nil {
		return SnapshotInfo{}, err
	}
	defer sb.Stop(context.Background())
	const batchBytes = 16 << 20
	const batchEntries = 500
	var batch []File
	var size, bytes, done int64
	var script []string
	flush := func() error {
		if len(batch) > 0 {
			if err := sb.WriteFiles(ctx, batch); err != nil {
				return err
			}
		}
		if len(script) > 0 {
			// Each "d PATH MODE" makes a directory, each "l PATH TARGET" a symlink.
			res, err := sb.Exec(ctx, ExecRequest{Command: "sh", Args: append([]string{"-c",
				`cd /workspace || exit 1; while [ $# -gt 0 ]; do case $1 in d) mkdir -p -- "$2" && chmod "$3" -- "$2" || exit 1;; l) mkdir -p -- "$(dirname -- "$2")" && ln -sfn -- "$3" "$2" || exit 1;; esac; shift 3; done`,
				"sh"}, script...)})
			if err != nil {
				return err
			}
			if res.ExitCode != 0 {
				return fmt.Errorf("%w: making the imported directories and symlinks failed (exit %d)", ErrInvalid, res.ExitCode)
			}
		}
		batch, script, size = batch[:0], script[:0], 0
		if src.Progress != nil {
			src.Progress(bytes, done)
		}
		return nil
	}
	for _, e := range src.Entries {
		if err := ctx.Err(); err != nil {
			return SnapshotInfo{}, err
		}
		switch {
		case e.Mode.IsDir():
			script = append(script, "d", e.Path, fmt.Sprintf("%o", e.Mode.Perm()))
		case e.Mode&fs.ModeSymlink != 0:
			script = append(script, "l", e.Path, e.Target)
		case e.Mode.IsRegular():
			if maxSize > 0 && e.Size > maxSize {
				return SnapshotInfo{}, fmt.Errorf("%w: %s is %d bytes; this provider takes files up to %d bytes", ErrInvalid, e.Path, e.Size, maxSize)
			}
			f, err := src.Open(e.Path)
			if err != nil {
				return SnapshotInfo{}, err
			}
			data, err := io.ReadAll(io.LimitReader(f, max(e.Size, maxSize)+1))
			f.Close()
			if err != nil {
				return SnapshotInfo{}, fmt.Errorf("read %s: %w", e.Path, err)
			}
			batch = append(batch, File{Path: e.Path, Content: data, Mode: e.Mode.Perm()})
			size += int64(len(data))
			bytes += int64(len(data))
		default:
			return SnapshotInfo{}, fmt.Errorf("%w: %s is neither a file, a directory nor a symlink", ErrInvalid, e.Path)
		}
		done++
		if size >= batchBytes || len(batch)+len(script)/3 >= batchEntries {
			if err := flush(); err != nil {
				return SnapshotInfo{}, err
			}
		}
	}
	if err := flush(); err != nil {
		return SnapshotInfo{}, err
	}
	return sb.Snapshot(ctx)
}
