//go:build linux

package local

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Memory and process-count limits per sandbox, through cgroups when the host lets us:
//
//   - cgroup v2 (unified /sys/fs/cgroup): only in a delegated subtree named by
//     Options.CgroupParent, whose cgroup.subtree_control enables memory and pids. Each sandbox
//     gets a leaf there (memory.max, memory.swap.max, pids.max).
//   - cgroup v1 (hybrid hosts like Debian 12 VMs without systemd): only as root. Each sandbox gets
//     a child of the provider's own memory and pids cgroups, so the limits nest inside whatever
//     already bounds the provider.
//
// Otherwise limits are skipped (Diagnose says so). The helper joins the cgroups before it becomes
// bwrap, so nothing in the sandbox ever runs outside them.

const cgroupRoot = "/sys/fs/cgroup"

type cgroupLimits struct {
	memory int64 // bytes; 0 = none
	pids   int64 // 0 = none
	parent string
}

func (l cgroupLimits) any() bool { return l.memory > 0 || l.pids > 0 }

// sandboxCgroup is the set of cgroup directories made for one sandbox.
type sandboxCgroup struct {
	dirs []string
}

// procsFiles are the files the helper writes its pid to.
func (c *sandboxCgroup) procsFiles() []string {
	if c == nil {
		return nil
	}
	out := make([]string, len(c.dirs))
	for i, d := range c.dirs {
		out[i] = filepath.Join(d, "cgroup.procs")
	}
	return out
}

// dirList returns the cgroup directories (for meta.json).
func (c *sandboxCgroup) dirList() []string {
	if c == nil {
		return nil
	}
	return c.dirs
}

// remove deletes the cgroup directories once their processes are gone (they may take a moment
// to leave after the sandbox was killed).
func (c *sandboxCgroup) remove() error {
	if c == nil {
		return nil
	}
	var errs []error
	for _, d := range c.dirs {
		var err error
		for i := 0; i < 50; i++ {
			if err = os.Remove(d); err == nil || errors.Is(err, os.ErrNotExist) {
				err = nil
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func cgroupV2() bool {
	_, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers"))
	return err == nil
}

// ownV1Cgroup returns the provider's cgroup path in a v1 hierarchy ("memory", "pids").
func ownV1Cgroup(controller string) (string, bool) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == controller {
				return parts[2], true
			}
		}
	}
	return "", false
}

// v1Base returns the directory under which sandbox cgroups of a v1 controller are made.
func v1Base(controller string) (string, error) {
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("cgroup v1 limits need root")
	}
	own, ok := ownV1Cgroup(controller)
	if !ok {
		return "", fmt.Errorf("no %s cgroup v1 hierarchy", controller)
	}
	base := filepath.Join(cgroupRoot, controller, own)
	if _, err := os.Stat(filepath.Join(base, "cgroup.procs")); err != nil {
		return "", fmt.Errorf("%s cgroup v1 not mounted at %s", controller, filepath.Join(cgroupRoot, controller))
	}
	return base, nil
}

// cgroupSupport says whether limits can be enforced, and how, for Diagnose.
func cgroupSupport(parent string) (bool, string) {
	if cgroupV2() {
		if parent == "" {
			return false, "cgroup v2 host: memory/pids limits need a delegated cgroup (Options.CgroupParent)"
		}
		b, err := os.ReadFile(filepath.Join(parent, "cgroup.subtree_control"))
		if err != nil {
			return false, fmt.Sprintf("cgroup v2 parent %s: %v", parent, err)
		}
		ctl := string(b)
		if !strings.Contains(ctl, "memory") || !strings.Contains(ctl, "pids") {
			return false, fmt.Sprintf("cgroup v2 parent %s does not enable memory and pids in cgroup.subtree_control", parent)
		}
		return true, "cgroup v2 (delegated at " + parent + ")"
	}
	var msgs []string
	for _, c := range []string{"memory", "pids"} {
		if _, err := v1Base(c); err != nil {
			msgs = append(msgs, err.Error())
		}
	}
	if len(msgs) > 0 {
		return false, strings.Join(msgs, "; ")
	}
	return true, "cgroup v1 memory + pids (as root)"
}

// newSandboxCgroup creates the cgroups of one sandbox with the given limits, or returns nil
// when there are no limits or the host offers no usable cgroups.
func newSandboxCgroup(id string, lim cgroupLimits) (*sandboxCgroup, error) {
	if !lim.any() {
		return nil, nil
	}
	name := "sandkit-" + id
	c := &sandboxCgroup{}
	fail := func(err error) (*sandboxCgroup, error) {
		_ = c.remove()
		return nil, err
	}
	if cgroupV2() {
		if ok, why := cgroupSupport(lim.parent); !ok {
			return nil, errors.New(why)
		}
		d := filepath.Join(lim.parent, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, err
		}
		c.dirs = append(c.dirs, d)
		if lim.memory > 0 {
			if err := writeCg(d, "memory.max", lim.memory); err != nil {
				return fail(err)
			}
			_ = writeCg(d, "memory.swap.max", 0)
		}
		if lim.pids > 0 {
			if err := writeCg(d, "pids.max", lim.pids); err != nil {
				return fail(err)
			}
		}
		return c, nil
	}
	if lim.memory > 0 {
		base, err := v1Base("memory")
		if err != nil {
			return nil, err
		}
		d := filepath.Join(base, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			return fail(err)
		}
		c.dirs = append(c.dirs, d)
		if err := writeCg(d, "memory.limit_in_bytes", lim.memory); err != nil {
			return fail(err)
		}
		// Without swap accounting this file is absent; then swap is not limited.
		_ = writeCg(d, "memory.memsw.limit_in_bytes", lim.memory)
	}
	if lim.pids > 0 {
		base, err := v1Base("pids")
		if err != nil {
			return fail(err)
		}
		d := filepath.Join(base, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			return fail(err)
		}
		c.dirs = append(c.dirs, d)
		if err := writeCg(d, "pids.max", lim.pids); err != nil {
			return fail(err)
		}
	}
	return c, nil
}

func writeCg(dir, file string, v int64) error {
	return os.WriteFile(filepath.Join(dir, file), []byte(strconv.FormatInt(v, 10)), 0)
}

// staleCgroupAge is how old an empty sandbox cgroup must be before removeStaleCgroups takes it
// for a leftover: a younger one may belong to a sandbox or spare another provider is starting.
const staleCgroupAge = time.Minute

// removeStaleCgroups removes sandbox cgroups a previous run left (empty ones only: a cgroup
// with processes cannot be removed, and its processes are not ours to kill). New runs it, and
// once more staleCgroupAge later: a provider killed just before this one started leaves empty
// cgroups (its sandboxes' and its spares') too young to take at first.
func removeStaleCgroups(lim cgroupLimits) {
	var bases []string
	if cgroupV2() {
		if lim.parent != "" {
			bases = append(bases, lim.parent)
		}
	} else {
		for _, c := range []string{"memory", "pids"} {
			if b, err := v1Base(c); err == nil {
				bases = append(bases, b)
			}
		}
	}
	for _, b := range bases {
		m, _ := filepath.Glob(filepath.Join(b, "sandkit-*"))
		for _, d := range m {
			// Young ones may belong to a sandbox another provider is starting right now.
			if fi, err := os.Stat(d); err == nil && time.Since(fi.ModTime()) > staleCgroupAge {
				_ = os.Remove(d)
			}
		}
	}
}
