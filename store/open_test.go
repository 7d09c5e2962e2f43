package store

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sandkit/sandkit-mcp/policies"
)

// rawVersion reads the schema version straight from the file.
func rawVersion(t *testing.T, path string) string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatalf("raw open: %v", err)
	}
	defer db.Close()
	var v string
	_ = db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte(bucketSchema)); b != nil {
			v = string(b.Get([]byte(keySchemaVersion)))
		}
		return nil
	})
	return v
}

// newFile makes a state file at the built-in schema holding workspace ws_a (alpha) and returns
// its path, closed.
func newFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, s, func(tx *Tx) error { return tx.CreateWorkspace(ws("ws_a", "alpha")) })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpenNewFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "dir", "state.db") // directories are created
	s := openAt(t, path)
	if s.Path() != path {
		t.Errorf("Path() = %q, want %q", s.Path(), path)
	}
	_ = s.Close()
	if got := rawVersion(t, path); got != cur {
		t.Errorf("schema version of a new file = %q, want %s", got, cur)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode = %v, %v; want 0600", fi.Mode(), err)
	}
}

// cur is the built-in schema version as the file stores it.
var cur = strconv.FormatUint(SchemaVersion, 10)

func TestSchemaNewerIsRefused(t *testing.T) {
	path := newFile(t)
	newer := strconv.FormatUint(SchemaVersion+1, 10)
	damage(t, path, rawPut(bucketSchema, keySchemaVersion, []byte(newer)))
	_, err := Open(path, Options{})
	wantErr(t, "Open(newer)", err, ErrSchema, path, "unsupported schema version "+newer, "up to "+cur, "upgrade sandkit-mcp")
	if got := rawVersion(t, path); got != newer {
		t.Errorf("refused file was changed: version %q, want %s", got, newer)
	}
}

// openAsVersion makes the file at path one of an older schema version, without the buckets drop
// that later versions added, and opens it (migrating it), closing it when the test ends.
func openAsVersion(t *testing.T, path, version string, drop ...string) *Store {
	t.Helper()
	damage(t, path, func(tx *bolt.Tx) error {
		for _, b := range drop {
			if err := tx.DeleteBucket([]byte(b)); err != nil {
				return err
			}
		}
		return tx.Bucket([]byte(bucketSchema)).Put([]byte(keySchemaVersion), []byte(version))
	})
	return openAt(t, path)
}

// TestMigrateVersion1 opens a file of schema version 1 (no sessions or templates bucket) with
// this binary: it is migrated, step by step, to the current version and keeps its data.
func TestMigrateVersion1(t *testing.T) {
	path := newFile(t)
	s := openAsVersion(t, path, "1", bucketSessions, bucketTemplates)
	mustView(t, s, func(tx *Tx) error {
		if w, err := tx.Workspace("ws_a"); err != nil || w.Name == "" {
			t.Errorf("workspace lost in migration: %+v %v", w, err)
		}
		if got, err := tx.Sessions(nil); err != nil || len(got) != 0 {
			t.Errorf("sessions after migration: %v %v", got, err)
		}
		if got, err := tx.TemplateSnapshots(); err != nil || len(got) != 0 {
			t.Errorf("template snapshots after migration: %v %v", got, err)
		}
		return nil
	})
	mustUpdate(t, s, func(tx *Tx) error {
		return tx.PutSession(Session{ID: "ses_1", Workspace: "ws_a", State: SessionAttached})
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := rawVersion(t, path); got != cur {
		t.Fatalf("version after migration = %q, want %s", got, cur)
	}
}

func TestSchemaMigrations(t *testing.T) {
	// v2 labels every workspace, v3 adds a bucket: stand-ins for real layout changes.
	var ran []uint64
	labelAll := func(tx *bolt.Tx) error {
		ran = append(ran, 1)
		b := tx.Bucket([]byte(bucketWorkspaces))
		return b.ForEach(func(k, v []byte) error {
			var w map[string]any
			if err := json.Unmarshal(v, &w); err != nil {
				return err
			}
			w["labels"] = map[string]string{"migrated": "v2"}
			raw, _ := json.Marshal(w)
			return b.Put(k, raw)
		})
	}
	addBucket := func(tx *bolt.Tx) error {
		ran = append(ran, 2)
		_, err := tx.CreateBucket([]byte("extra"))
		return err
	}
	failing := func(tx *bolt.Tx) error {
		ran = append(ran, 1)
		if err := labelAll(tx); err != nil { // writes, then fails: the writes must not stick
			return err
		}
		return errors.New("disk says no")
	}
	// The file starts at the built-in version c; fake schemas go beyond it.
	c := uint64(SchemaVersion)
	fake := func(version uint64, m map[uint64]migration) *schema {
		return &schema{version: version, migrations: m, buckets: dataBuckets()}
	}
	v := func(n uint64) string { return strconv.FormatUint(n, 10) }
	cases := []struct {
		name        string
		schema      *schema
		want        error
		msg         []string
		ran         []uint64
		fileVersion string
		label       string // the label ws_a must carry afterwards ("" = none)
	}{
		{"one step", fake(c+1, map[uint64]migration{c: labelAll}), nil, nil, []uint64{1}, v(c + 1), "v2"},
		{"two steps in order", fake(c+2, map[uint64]migration{c + 1: addBucket, c: labelAll}), nil, nil, []uint64{1, 2}, v(c + 2), "v2"},
		{"failing step rolls back", fake(c+1, map[uint64]migration{c: failing}), errAny,
			[]string{"migrate schema version " + v(c) + " to " + v(c+1), "disk says no"}, []uint64{1, 1}, v(c), ""},
		{"missing step", fake(c+2, map[uint64]migration{c: labelAll}), ErrSchema,
			[]string{"no migration from version " + v(c+1) + " to " + v(c+2)}, []uint64{1}, v(c), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ran = nil
			path := newFile(t)
			s, err := Open(path, Options{schema: tc.schema})
			wantErr(t, "Open", err, tc.want, tc.msg...)
			if err == nil {
				_ = s.Close()
			}
			if !reflect.DeepEqual(ran, tc.ran) {
				t.Errorf("migrations ran %v, want %v", ran, tc.ran)
			}
			if got := rawVersion(t, path); got != tc.fileVersion {
				t.Errorf("file version after Open = %q, want %q", got, tc.fileVersion)
			}
			// Read back with the schema the file is now at.
			readWith := tc.schema
			if tc.fileVersion == v(c) {
				readWith = builtinSchema()
			}
			s, err = Open(path, Options{schema: readWith})
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			defer s.Close()
			mustView(t, s, func(tx *Tx) error {
				w, err := tx.Workspace("ws_a")
				if err != nil || w.Labels["migrated"] != tc.label {
					t.Errorf("ws_a after migration = %v, %v; want label migrated=%q", w.Labels, err, tc.label)
				}
				return nil
			})
			if tc.fileVersion != v(c) && !reflect.DeepEqual(ran, tc.ran) {
				t.Errorf("reopening at the current version ran migrations again: %v", ran)
			}
			if tc.fileVersion != v(c) {
				_ = s.Close()
				_, err := Open(path, Options{})
				wantErr(t, "Open(migrated file) with the built-in schema", err, ErrSchema, "upgrade")
			}
		})
	}
}

func TestOpenRefusesForeignFiles(t *testing.T) {
	t.Run("bbolt file of another program", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "other.db")
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("theirs")); return err })
		_ = db.Close()
		_, err = Open(path, Options{})
		wantErr(t, "Open", err, ErrSchema, path, "not a sandkit-mcp state file")
	})
	t.Run("not a bbolt file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "garbage.db")
		junk := make([]byte, 32<<10)
		_, _ = rand.Read(junk)
		if err := os.WriteFile(path, junk, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Open(path, Options{})
		wantErr(t, "Open", err, ErrCorrupt, path)
	})
	t.Run("garbage schema version", func(t *testing.T) {
		path := newFile(t)
		damage(t, path, rawPut(bucketSchema, keySchemaVersion, []byte("one")))
		_, err := Open(path, Options{})
		wantErr(t, "Open", err, ErrCorrupt, `bucket "schema" key "version"`)
	})
}

func TestOpenHealsMissingBuckets(t *testing.T) {
	path := newFile(t)
	damage(t, path, func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte(bucketMeta)) })
	s := openAt(t, path)
	mustUpdate(t, s, func(tx *Tx) error { return tx.PutMeta("k", []byte("v")) })
}

// TestHelperHoldLock is not a test: TestOpenLockedByAnotherProcess runs the test binary with it to
// hold a state file open from a second process.
func TestHelperHoldLock(t *testing.T) {
	path := os.Getenv("SANDKIT_STORE_HOLD")
	if path == "" {
		t.Skip("helper process only")
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	os.Stdout.WriteString("ready\n")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // hold until the parent says so
	_ = s.Close()
}

func TestOpenLockedByAnotherProcess(t *testing.T) {
	path := newFile(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldLock$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SANDKIT_STORE_HOLD="+path)
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("helper did not open the file: %q, %v", line, err)
	}

	start := time.Now()
	_, err := Open(path, Options{})
	took := time.Since(start)
	wantErr(t, "Open while another process holds the file", err, ErrLocked, path,
		"another sandkit-mcp process is using this data dir")
	if took > 3*time.Second {
		t.Errorf("Open took %v to give up; want about 1s", took)
	}

	_, _ = stdin.Write([]byte("release\n"))
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	s := openAt(t, path)
	mustView(t, s, func(tx *Tx) error { _, err := tx.Workspace("ws_a"); return err })
}

func TestOpenLockedInProcess(t *testing.T) {
	path := newFile(t)
	first := openAt(t, path)
	cases := []struct {
		timeout, atMost time.Duration
	}{
		{0, 3 * time.Second}, // the default, 1s
		{200 * time.Millisecond, time.Second},
	}
	for _, tc := range cases {
		start := time.Now()
		_, err := Open(path, Options{Timeout: tc.timeout})
		if took := time.Since(start); took > tc.atMost {
			t.Errorf("Open(timeout %v) took %v", tc.timeout, took)
		}
		wantErr(t, "second Open", err, ErrLocked, path, "another sandkit-mcp process")
	}
	// The first handle is unaffected, and the file opens once it is closed.
	mustUpdate(t, first, func(tx *Tx) error { return tx.PutMeta("k", []byte("v")) })
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second := openAt(t, path)
	mustView(t, second, func(tx *Tx) error { _, err := tx.GetMeta("k"); return err })
}

func TestDataSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := ws("ws_a", "alpha")
	w.Policy = policies.Policy{Mode: policies.Allow, Domains: []string{"registry.npmjs.org"}}
	w.Template = "tpl"
	c := commit("c_1", "ws_a", "", "snap_1", 1)
	r := run("run_1", "ws_a", "key", 2)
	started, finished := at(3), at(4)
	r.Started, r.Finished, r.EnvNames, r.Warnings = &started, &finished, []string{"TOKEN"}, []string{"w"}
	stdout := Output{Head: []byte{0, 1, 2}, Tail: []byte("end"), Omitted: 10, Total: 16}
	var stored Workspace
	mustUpdate(t, s, func(tx *Tx) error {
		if err := tx.CreateWorkspace(w); err != nil {
			return err
		}
		if err := tx.PutCommit(c); err != nil {
			return err
		}
		w.Head = c.ID
		if stored, err = tx.PutWorkspace(w); err != nil {
			return err
		}
		if err := tx.PutRun(r); err != nil {
			return err
		}
		if err := tx.PutRunOutput(r.ID, stdout, Output{}); err != nil {
			return err
		}
		return tx.PutMeta("settings", []byte("{}"))
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openAt(t, path)
	mustView(t, s, func(tx *Tx) error {
		gotW, err := tx.WorkspaceByName("alpha")
		if err != nil || !reflect.DeepEqual(gotW, stored) || gotW.Version != 2 {
			t.Errorf("workspace after reopen = %+v, %v; want %+v", gotW, err, stored)
		}
		gotC, err := tx.Commit("c_1")
		if err != nil || !reflect.DeepEqual(gotC, c) {
			t.Errorf("commit after reopen = %+v, %v", gotC, err)
		}
		gotR, err := tx.RunByIdempotencyKey("ws_a", "key")
		if err != nil || !reflect.DeepEqual(gotR, r) {
			t.Errorf("run after reopen = %+v, %v; want %+v", gotR, err, r)
		}
		out, _, err := tx.RunOutput("run_1")
		if err != nil || !reflect.DeepEqual(out, stdout) {
			t.Errorf("output after reopen = %+v, %v", out, err)
		}
		m, err := tx.GetMeta("settings")
		if err != nil || string(m) != "{}" {
			t.Errorf("meta after reopen = %q, %v", m, err)
		}
		return nil
	})
}

func TestUpdateRollsBack(t *testing.T) {
	// Each mutation runs in an Update that then fails; the file must look as if it never ran.
	mutations := []struct {
		name string
		do   func(tx *Tx) error
	}{
		{"CreateWorkspace", func(tx *Tx) error { return tx.CreateWorkspace(ws("ws_new", "new")) }},
		{"PutWorkspace", func(tx *Tx) error { _, err := tx.PutWorkspace(ws("ws_a", "renamed")); return err }},
		{"PutCommit", func(tx *Tx) error { return tx.PutCommit(commit("c_2", "ws_a", "c_1", "s2", 2)) }},
		{"PutRun", func(tx *Tx) error { return tx.PutRun(run("run_2", "ws_a", "k2", 2)) }},
		{"PutRunOutput", func(tx *Tx) error { return tx.PutRunOutput("run_1", Output{Head: []byte("new")}, Output{}) }},
		{"PutMeta", func(tx *Tx) error { return tx.PutMeta("m", []byte("new")) }},
		{"DeleteWorkspace", func(tx *Tx) error { return tx.DeleteWorkspace("ws_a") }},
	}
	snapshot := func(s *Store) string {
		var b strings.Builder
		mustView(t, s, func(tx *Tx) error {
			for _, name := range dataBuckets() {
				_ = tx.tx.Bucket([]byte(name)).ForEach(func(k, v []byte) error {
					b.WriteString(name + "/" + string(k) + "=" + string(v) + "\n")
					if v == nil {
						_ = tx.tx.Bucket([]byte(name)).Bucket(k).ForEach(func(kk, vv []byte) error {
							b.WriteString("  " + string(kk) + "=" + string(vv) + "\n")
							return nil
						})
					}
					return nil
				})
			}
			return nil
		})
		return b.String()
	}
	for _, ending := range []string{"error", "panic"} {
		t.Run(ending, func(t *testing.T) {
			s := openStore(t)
			mustUpdate(t, s, func(tx *Tx) error {
				if err := tx.CreateWorkspace(ws("ws_a", "alpha")); err != nil {
					return err
				}
				if err := tx.PutCommit(commit("c_1", "ws_a", "", "s1", 1)); err != nil {
					return err
				}
				if err := tx.PutRun(run("run_1", "ws_a", "k1", 1)); err != nil {
					return err
				}
				if err := tx.PutRunOutput("run_1", Output{Head: []byte("old")}, Output{}); err != nil {
					return err
				}
				return tx.PutMeta("m", []byte("old"))
			})
			before := snapshot(s)
			boom := errors.New("boom")
			err := func() (err error) {
				defer func() {
					if p := recover(); p != nil {
						err = boom
					}
				}()
				return s.Update(func(tx *Tx) error {
					for _, m := range mutations {
						if err := m.do(tx); err != nil {
							t.Fatalf("%s inside the failing Update: %v", m.name, err)
						}
					}
					if ending == "panic" {
						panic("boom")
					}
					return boom
				})
			}()
			if !errors.Is(err, boom) {
				t.Fatalf("Update returned %v, want boom", err)
			}
			if after := snapshot(s); after != before {
				t.Errorf("a failed Update left changes:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			// The store is still usable: the write lock was released.
			mustUpdate(t, s, func(tx *Tx) error { return tx.PutMeta("m", []byte("later")) })
		})
	}
}

func TestViewCannotWrite(t *testing.T) {
	s := openStore(t)
	err := s.View(func(tx *Tx) error { return tx.CreateWorkspace(ws("ws_a", "alpha")) })
	wantErr(t, "CreateWorkspace in View", err, errAny, "not writable")
	mustView(t, s, func(tx *Tx) error {
		if _, err := tx.Workspace("ws_a"); !isNotFound(err) {
			t.Errorf("write in View was stored: %v", err)
		}
		return nil
	})
}
