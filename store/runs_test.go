package store

import (
	"bytes"
	"reflect"
	"testing"
)

func TestRunsPutGetList(t *testing.T) {
	s := openStore(t)
	mustUpdate(t, s, func(tx *Tx) error {
		if err := createWorkspaces(tx, ws("ws_a", "alpha"), ws("ws_b", "beta")); err != nil {
			return err
		}
		for _, r := range []Run{run("run_3", "ws_a", "", 3), run("run_1", "ws_b", "", 1),
			run("run_2", "ws_a", "", 2), run("run_0", "ws_a", "", 2)} {
			if err := tx.PutRun(r); err != nil {
				return err
			}
		}
		return nil
	})
	// Replace: a run moves from queued to exited.
	updated := run("run_2", "ws_a", "", 2)
	updated.Status = RunLost
	updated.Error = "server restarted"
	mustUpdate(t, s, func(tx *Tx) error { return tx.PutRun(updated) })

	err := s.Update(func(tx *Tx) error { return tx.PutRun(run("run_x", "ws_gone", "", 0)) })
	wantErr(t, "PutRun(no workspace)", err, ErrNotFound, `"run_x"`, `workspace "ws_gone"`)

	mustView(t, s, func(tx *Tx) error {
		got, err := tx.Run("run_2")
		if err != nil || !reflect.DeepEqual(got, updated) {
			t.Errorf("Run(run_2) = %+v, %v; want %+v", got, err, updated)
		}
		_, err = tx.Run("run_404")
		wantErr(t, "Run(missing)", err, ErrNotFound, `run "run_404" not found`)

		cases := []struct {
			name   string
			filter func(Run) bool
			want   string
		}{
			{"all (nil filter)", nil, "run_1,run_0,run_2,run_3"},
			{"one workspace", func(r Run) bool { return r.Workspace == "ws_a" }, "run_0,run_2,run_3"},
			{"lost runs", func(r Run) bool { return r.Status == RunLost }, "run_2"},
			{"none", func(Run) bool { return false }, ""},
		}
		for _, tc := range cases {
			rs, err := tx.Runs(tc.filter)
			if err != nil || runIDs(rs) != tc.want {
				t.Errorf("Runs(%s) = %s, %v; want %s (by created, then id)", tc.name, runIDs(rs), err, tc.want)
			}
		}
		return nil
	})
}

func TestIdempotencyIndex(t *testing.T) {
	cases := []struct {
		name string
		op   func(tx *Tx) error
		want error
		msg  []string
		// lookups: "workspace/key" → run id it must find ("" = not found).
		lookups map[string]string
	}{
		{
			name:    "lookup",
			op:      func(tx *Tx) error { return nil },
			lookups: map[string]string{"ws_a/k1": "run_1", "ws_b/k1": "run_b", "ws_a/k2": "", "ws_a/": "", "ws_c/k1": ""},
		},
		{
			name: "another run cannot take a held key",
			op:   func(tx *Tx) error { return tx.PutRun(run("run_2", "ws_a", "k1", 2)) },
			want: ErrExists, msg: []string{`idempotency key "k1"`, `"ws_a"`, `"run_1"`},
			lookups: map[string]string{"ws_a/k1": "run_1"},
		},
		{
			name:    "replacing the run keeps its key",
			op:      func(tx *Tx) error { r := run("run_1", "ws_a", "k1", 1); r.Status = RunLost; return tx.PutRun(r) },
			lookups: map[string]string{"ws_a/k1": "run_1"},
		},
		{
			name:    "changing the key moves the index",
			op:      func(tx *Tx) error { return tx.PutRun(run("run_1", "ws_a", "k2", 1)) },
			lookups: map[string]string{"ws_a/k1": "", "ws_a/k2": "run_1", "ws_b/k1": "run_b"},
		},
		{
			name:    "clearing the key removes it",
			op:      func(tx *Tx) error { return tx.PutRun(run("run_1", "ws_a", "", 1)) },
			lookups: map[string]string{"ws_a/k1": ""},
		},
		{
			name: "a freed key can be reused",
			op: func(tx *Tx) error {
				_ = tx.PutRun(run("run_1", "ws_a", "", 1))
				return tx.PutRun(run("run_2", "ws_a", "k1", 2))
			},
			lookups: map[string]string{"ws_a/k1": "run_2"},
		},
		{
			name:    "moving a run to another workspace moves its key",
			op:      func(tx *Tx) error { return tx.PutRun(run("run_1", "ws_c", "k1", 1)) },
			lookups: map[string]string{"ws_a/k1": "", "ws_c/k1": "run_1"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			mustUpdate(t, s, func(tx *Tx) error {
				if err := createWorkspaces(tx, ws("ws_a", "alpha"), ws("ws_b", "beta"), ws("ws_c", "gamma")); err != nil {
					return err
				}
				if err := tx.PutRun(run("run_1", "ws_a", "k1", 1)); err != nil {
					return err
				}
				return tx.PutRun(run("run_b", "ws_b", "k1", 1)) // same key, other workspace
			})
			wantErr(t, tc.name, s.Update(tc.op), tc.want, tc.msg...)
			mustView(t, s, func(tx *Tx) error {
				for wk, want := range tc.lookups {
					w, k, _ := bytes.Cut([]byte(wk), []byte("/"))
					r, err := tx.RunByIdempotencyKey(string(w), string(k))
					switch {
					case want == "" && !isNotFound(err):
						t.Errorf("RunByIdempotencyKey(%s) = %s, %v; want not found", wk, r.ID, err)
					case want != "" && (err != nil || r.ID != want):
						t.Errorf("RunByIdempotencyKey(%s) = %s, %v; want %s", wk, r.ID, err, want)
					}
				}
				return nil
			})
		})
	}
}

func TestRunOutputRoundTrip(t *testing.T) {
	s := openStore(t)
	every := make([]byte, 256)
	for i := range every {
		every[i] = byte(i)
	}
	cases := []struct {
		name           string
		stdout, stderr Output
	}{
		{"empty", Output{}, Output{}},
		{"text", Output{Head: []byte("hello\n"), Total: 6}, Output{Head: []byte("warn\n"), Total: 5}},
		{"binary, every byte value", Output{Head: every, Tail: []byte{0xff, 0xfe, 0, '\n'}, Omitted: 1 << 40, Total: 1<<40 + 260},
			Output{Head: []byte("\x00\xc3\x28 invalid utf-8 \xed\xa0\x80")}},
		{"only stderr", Output{}, Output{Tail: bytes.Repeat([]byte("x"), 64<<10), Omitted: 7, Total: 64<<10 + 7}},
	}
	mustUpdate(t, s, func(tx *Tx) error {
		if err := tx.CreateWorkspace(ws("ws_a", "alpha")); err != nil {
			return err
		}
		return tx.PutRun(run("run_1", "ws_a", "", 1))
	})
	mustView(t, s, func(tx *Tx) error {
		out, errOut, err := tx.RunOutput("run_1")
		if err != nil || !reflect.DeepEqual(out, Output{}) || !reflect.DeepEqual(errOut, Output{}) {
			t.Errorf("RunOutput before any output = %+v, %+v, %v; want zero, zero, nil", out, errOut, err)
		}
		_, _, err = tx.RunOutput("run_404")
		wantErr(t, "RunOutput(missing run)", err, ErrNotFound, `"run_404"`)
		return nil
	})
	err := s.Update(func(tx *Tx) error { return tx.PutRunOutput("run_404", Output{}, Output{}) })
	wantErr(t, "PutRunOutput(missing run)", err, ErrNotFound, `"run_404"`)

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mustUpdate(t, s, func(tx *Tx) error { return tx.PutRunOutput("run_1", tc.stdout, tc.stderr) })
			mustView(t, s, func(tx *Tx) error {
				out, errOut, err := tx.RunOutput("run_1")
				wantErr(t, "RunOutput", err, nil)
				for _, p := range []struct {
					name      string
					got, want Output
				}{{"stdout", out, tc.stdout}, {"stderr", errOut, tc.stderr}} {
					if !bytes.Equal(p.got.Head, p.want.Head) || !bytes.Equal(p.got.Tail, p.want.Tail) ||
						p.got.Omitted != p.want.Omitted || p.got.Total != p.want.Total {
						t.Errorf("%s = %+v, want %+v", p.name, p.got, p.want)
					}
				}
				return nil
			})
		})
	}

	// Output does not travel with the run record: listing runs stays cheap.
	mustView(t, s, func(tx *Tx) error {
		raw := tx.tx.Bucket([]byte(bucketRuns)).Get([]byte("run_1"))
		if len(raw) > 1024 {
			t.Errorf("run record is %d bytes; output should live in %q", len(raw), bucketRunOutputs)
		}
		return nil
	})
}

func TestMeta(t *testing.T) {
	s := openStore(t)
	err := s.View(func(tx *Tx) error { _, err := tx.GetMeta("settings"); return err })
	wantErr(t, "GetMeta(missing)", err, ErrNotFound, `meta key "settings" not found`)

	value := []byte(`{"gc":"daily"}`)
	mustUpdate(t, s, func(tx *Tx) error {
		if err := tx.PutMeta("settings", value); err != nil {
			return err
		}
		value[0] = 'X' // the caller's slice is not the stored one
		return tx.PutMeta("empty", nil)
	})
	mustView(t, s, func(tx *Tx) error {
		got, err := tx.GetMeta("settings")
		if err != nil || string(got) != `{"gc":"daily"}` {
			t.Errorf("GetMeta(settings) = %q, %v", got, err)
		}
		got, err = tx.GetMeta("empty")
		if err != nil || got == nil || len(got) != 0 {
			t.Errorf("GetMeta(empty) = %#v, %v; want empty non-nil", got, err)
		}
		_, err = tx.GetMeta("setting") // a prefix of a stored key is not that key
		wantErr(t, "GetMeta(prefix)", err, ErrNotFound)
		return nil
	})
}
