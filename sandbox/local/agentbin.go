//go:build linux

package local

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"embed"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/sandkit/sandkit-mcp/sandbox/local/agent"
	"github.com/sandkit/sandkit-mcp/sandbox/local/helper"
)

// The in-sandbox agent (package agent) comes in two forms:
//
//   - the static binary cmd/sandkit-agent, embedded here from agentbin/ when it was built there
//     (go generate ./sandbox/local: generate.go). The provider writes it once into its directory as
//     agent-<sha256 prefix> (content-addressed, mode 0555) and the helper bind-mounts it at
//     /.sb/agent. This is the default: about 3 MB on disk, a few MiB of memory per sandbox.
//   - the provider's own executable, bind-mounted the same way and switched to the agent role
//     by SANDKIT_LOCAL_REEXEC (reexec.go) — the fallback when nothing usable is embedded (a
//     build without go generate, a binary for another architecture, a stale protocol). It
//     works the same, with more memory per sandbox; Diagnose reports which one is used.

//go:embed agentbin
var agentFiles embed.FS

const embeddedAgentName = "agentbin/sandkit-agent"

// agentKind names the two forms in metadata and diagnostics.
const (
	agentStatic = "static"
	agentReexec = "re-exec"
)

// helperExe is the executable the provider starts as a sandbox's helper or a spare (package
// helper): the static agent binary, which carries the helper too and starts in about a
// millisecond of CPU, or this executable (the re-exec fallback), which costs several times that
// (the whole server's package initialization) on every cold start and every spare.
func (p *Provider) helperExe() string {
	if p.agent.kind == agentStatic {
		return p.agent.path
	}
	return "/proc/self/exe"
}

// agentBinary is the agent a provider runs in its sandboxes.
type agentBinary struct {
	kind string // agentStatic or agentReexec
	path string // agentStatic: the content-addressed file in the provider directory
	// why says why the fallback is used (agentReexec), or describes the static binary.
	why string
}

var embeddedOnce = sync.OnceValues(func() ([]byte, string) {
	b, err := agentFiles.ReadFile(embeddedAgentName)
	if err != nil {
		return nil, "no agent binary was embedded at build time (run `go generate ./sandbox/local` before `go build`)"
	}
	if why := checkAgentBinary(b); why != "" {
		return nil, "the embedded agent binary is unusable: " + why + " (rebuild it with `go generate ./sandbox/local`)"
	}
	return b, ""
})

// checkAgentBinary says what is wrong with an agent binary for this provider: it must be an ELF
// executable for this architecture, built from this version of the agent protocol.
func checkAgentBinary(b []byte) string {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return "not an ELF executable: " + err.Error()
	}
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "386": elf.EM_386, "arm": elf.EM_ARM, "riscv64": elf.EM_RISCV, "ppc64le": elf.EM_PPC64, "s390x": elf.EM_S390}
	if m, ok := want[runtime.GOARCH]; ok && f.Machine != m {
		return fmt.Sprintf("built for %v, this is %s", f.Machine, runtime.GOARCH)
	}
	if !bytes.Contains(b, []byte(agent.Protocol)) {
		return "built from another version of the agent (it does not speak " + agent.Protocol + ")"
	}
	if !bytes.Contains(b, []byte(helper.Protocol)) {
		return "built from another version of the helper (it does not speak " + helper.Protocol + ")"
	}
	return ""
}

// chooseAgent picks the agent for a provider over dir and installs the static binary there.
func chooseAgent(dir string, c agentChoice) (agentBinary, error) {
	if c.reexec {
		return agentBinary{kind: agentReexec, why: "the re-exec agent was requested"}, nil
	}
	bin, why := c.binary, ""
	if bin == nil {
		bin, why = embeddedOnce()
	} else if w := checkAgentBinary(bin); w != "" {
		return agentBinary{}, fmt.Errorf("agent binary: %s", w)
	}
	if bin == nil {
		return agentBinary{kind: agentReexec, why: why}, nil
	}
	path, err := installAgent(dir, bin)
	if err != nil {
		return agentBinary{}, err
	}
	return agentBinary{kind: agentStatic, path: path, why: fmt.Sprintf("static agent %s (%.1f MB)", filepath.Base(path), float64(len(bin))/1e6)}, nil
}

// installAgent writes bin as dir/agent-<sha256 prefix> unless it is there already, and removes
// older agent files (sandboxes still running with one keep it through their bind mount).
func installAgent(dir string, bin []byte) (string, error) {
	sum := sha256.Sum256(bin)
	name := "agent-" + hex.EncodeToString(sum[:8])
	path := filepath.Join(dir, name)
	if fi, err := os.Stat(path); err != nil || fi.Size() != int64(len(bin)) || fi.Mode().Perm() != 0o555 {
		tmp, err := os.CreateTemp(dir, name+".tmp*")
		if err != nil {
			return "", fmt.Errorf("install the sandbox agent: %w", err)
		}
		_, err = tmp.Write(bin)
		if err == nil {
			err = tmp.Chmod(0o555)
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp.Name(), path)
		}
		if err != nil {
			os.Remove(tmp.Name())
			return "", fmt.Errorf("install the sandbox agent: %w", err)
		}
	}
	old, _ := filepath.Glob(filepath.Join(dir, "agent-*"))
	for _, o := range old {
		if filepath.Base(o) != name {
			_ = os.Remove(o)
		}
	}
	return path, nil
}
