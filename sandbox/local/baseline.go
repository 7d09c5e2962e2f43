//go:build linux

package local

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/sandkit/sandkit-mcp/sandbox/local/helper"
	"os"
	"os/exec"
	"path/filepath"
)

// RunBare runs argv once in a sandbox with exactly the isolation and overlay mounts Start uses
// (the helper, bwrap with the same profile, an empty workspace over a fresh upper directory), but
// without the agent, the control channel or a snapshot, and waits for it. It is the raw baseline
// that benchmarks and `doctor` compare the provider against; nothing it writes is kept.
func (p *Provider) RunBare(ctx context.Context, argv ...string) error {
	if len(argv) == 0 {
		return fmt.Errorf("RunBare: empty command")
	}
	dir := filepath.Join(p.store.sandboxes, "bare-"+newID())
	defer removeTree(dir)
	for _, sub := range []string{"workspace", "home"} {
		for _, d := range []string{filepath.Join(dir, "upper", sub), filepath.Join(dir, "work", sub)} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		_ = os.Chown(filepath.Join(dir, "upper", sub), p.uid, p.gid)
	}
	rel := func(q string) string { r, _ := filepath.Rel(p.store.layers, q); return r }
	spec := helper.Spec{
		Protocol:  helper.Protocol,
		LayersDir: p.store.layers, Stage: p.profile.stage, Etc: "../etc",
		Drop: p.drop, UID: p.uid, GID: p.gid, ParentPid: os.Getpid(), Bwrap: p.bw.Path, Args: p.profile.args(launch{}),
		Seccomp: p.seccomp, Command: argv,
	}
	for _, o := range []struct{ sub, target string }{{"workspace", "ws"}, {"home", "home"}} {
		spec.Overlays = append(spec.Overlays, helper.Overlay{
			Lower: p.store.lowerDirs(nil, o.sub), Upper: rel(filepath.Join(dir, "upper", o.sub)),
			Work: rel(filepath.Join(dir, "work", o.sub)), Target: o.target,
		})
	}
	specR, specW, err := os.Pipe()
	if err != nil {
		return err
	}
	infoR, infoW, err := os.Pipe()
	if err != nil {
		specR.Close()
		specW.Close()
		return err
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer devnull.Close()
	defer infoR.Close()
	cmd := exec.CommandContext(ctx, p.helperExe())
	cmd.Args = []string{"sandkit-local-helper"}
	cmd.Env = []string{helper.Env + "=" + helper.RoleHelper}
	cmd.ExtraFiles = []*os.File{specR, devnull, infoW}
	cmd.SysProcAttr = helperSysProcAttr(p.drop, p.uid, p.gid, false)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		specR.Close()
		specW.Close()
		infoW.Close()
		return err
	}
	specR.Close()
	infoW.Close()
	_ = json.NewEncoder(specW).Encode(spec)
	specW.Close()
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("bare sandbox: %v: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}
