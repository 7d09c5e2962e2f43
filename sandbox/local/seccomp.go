//go:build linux

package local

import (
	"bytes"
	"encoding/binary"
	"runtime"

	"golang.org/x/sys/unix"
)

// The seccomp filter bwrap installs (with no_new_privs) on the agent and therefore on every
// command in the sandbox. It is a hand-written classic BPF program, because the point is narrow:
//
//   - socket() is allowed for an allow-list of address families, AF_INET, AF_INET6 and
//     AF_NETLINK (glibc's getaddrinfo and Go's net.Interfaces ask the kernel over rtnetlink,
//     which, like the two IP families, sees the sandbox's own network namespace: loopback only).
//     Every other family fails with EPERM. Among them: AF_UNIX, because a read-only bind mount does not
//     stop connect() to a host Unix socket, so this is the backstop that keeps the sandbox away
//     from host services even if one ever becomes visible (the agent needs no Unix socket of its
//     own: its connections arrive as inherited or SCM_RIGHTS-passed descriptors); AF_VSOCK, which
//     is not namespaced and reaches the hypervisor's services on a VM such as Firecracker;
//     AF_PACKET; and the rarely used families whose modules the kernel would otherwise load on
//     demand. socketpair() stays allowed; it makes unnamed sockets that reach nothing outside.
//   - io_uring_setup/enter/register fail with EPERM (io_uring bypasses seccomp for the
//     operations it performs, and it is a frequent source of kernel bugs).
//   - keyctl/add_key/request_key fail with EPERM: the kernel keyring is not namespaced.
//   - Any system call made through a foreign ABI (i386 int 0x80 or x32 on x86-64, arm32 on
//     arm64) fails with EPERM, so the rules above cannot be dodged through socketcall(2).

const (
	bpfLd   = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	bpfJeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	bpfJge  = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	bpfRet  = unix.BPF_RET | unix.BPF_K
	retDeny = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)

	// Offsets in struct seccomp_data.
	offNr   = 0
	offArch = 4
	offArg0 = 16 // low 32 bits of args[0] on little-endian machines

	x32SyscallBit = 0x40000000
)

// socketFamilies are the address families socket() may create; see the filter's description.
var socketFamilies = []uint32{unix.AF_INET, unix.AF_INET6, unix.AF_NETLINK}

// seccompArch describes the system call numbers of one architecture.
type seccompArch struct {
	audit   uint32
	x32     bool // reject the x32 ABI (x86-64 only)
	socket  uint32
	denyAll []uint32 // denied whatever their arguments
}

var seccompArches = map[string]seccompArch{
	"amd64": {
		audit:  unix.AUDIT_ARCH_X86_64,
		x32:    true,
		socket: 41,
		// io_uring_setup, io_uring_enter, io_uring_register, add_key, request_key, keyctl
		denyAll: []uint32{425, 426, 427, 248, 249, 250},
	},
	"arm64": {
		audit:   unix.AUDIT_ARCH_AARCH64,
		socket:  198,
		denyAll: []uint32{425, 426, 427, 217, 218, 219},
	},
}

// seccompSupported reports whether a filter exists for this machine's architecture.
func seccompSupported() bool {
	_, ok := seccompArches[runtime.GOARCH]
	return ok
}

// seccompProgram returns the filter for this architecture as the raw sock_filter array bwrap
// reads from --seccomp FD, or nil when the architecture has no filter.
func seccompProgram() []byte {
	return encodeFilter(seccompFilter(runtime.GOARCH))
}

// encodeFilter writes prog as the raw sock_filter array (in this machine's byte order).
func encodeFilter(prog []unix.SockFilter) []byte {
	if prog == nil {
		return nil
	}
	var buf bytes.Buffer
	for _, f := range prog {
		_ = binary.Write(&buf, binary.NativeEndian, f)
	}
	return buf.Bytes()
}

// seccompFilter returns the filter for goarch, or nil when that architecture has none.
func seccompFilter(goarch string) []unix.SockFilter {
	a, ok := seccompArches[goarch]
	if !ok {
		return nil
	}
	var prog []unix.SockFilter
	add := func(code uint16, jt, jf uint8, k uint32) {
		prog = append(prog, unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k})
	}
	// Foreign ABI: deny everything.
	add(bpfLd, 0, 0, offArch)
	add(bpfJeq, 1, 0, a.audit)
	add(bpfRet, 0, 0, retDeny)
	add(bpfLd, 0, 0, offNr)
	if a.x32 {
		add(bpfJge, 0, 1, x32SyscallBit)
		add(bpfRet, 0, 0, retDeny)
	}
	for _, nr := range a.denyAll {
		add(bpfJeq, 0, 1, nr)
		add(bpfRet, 0, 0, retDeny)
	}
	// socket(family, ...): an allowed family jumps to the final allow, any other is denied. The
	// kernel reads the family as an int, so the low 32 bits are the whole of it.
	n := uint8(len(socketFamilies))
	add(bpfJeq, 0, n+2, a.socket)
	add(bpfLd, 0, 0, offArg0)
	for i, fam := range socketFamilies {
		add(bpfJeq, n-uint8(i), 0, fam)
	}
	add(bpfRet, 0, 0, retDeny)
	add(bpfRet, 0, 0, unix.SECCOMP_RET_ALLOW)
	return prog
}
