#pragma once

// The seccomp filter every sandboxed process runs under: denies what no build or test needs
// (kexec, module loading, bpf, perf, keyctl, mount/umount/pivot_root, new namespaces via
// unshare/setns/clone with namespace flags, ptrace, reboot, swap, clock/time setting, acct,
// quotactl, open_by_handle_at, userfaultfd, personality changes that disable ASLR, iopl/ioperm,
// add_key/request_key, …) with EPERM, and allows everything else. clone3 fails with ENOSYS
// instead: its flags are in memory seccomp cannot read, and on ENOSYS glibc falls back to
// clone(), whose namespace flags the filter does check.

#include <linux/filter.h>

#include <vector>

#include "core/status.h"
#include "sandbox/child.h"

namespace nightshift::sandbox {

// A compiled classic-BPF program, built once in the parent (libseccomp allocates; that is not
// allowed between fork and exec in a multi-threaded process) and installed by the child with
// InstallSeccompProgram, which only makes syscalls.
struct SeccompProgram {
  std::vector<sock_filter> instructions;
};

// Compiles the default deny list for the native architecture (x86-64 and i386/x32 entry points
// are covered by the same rules: a 32-bit syscall ABI must not be a way around the filter).
// Fails only if libseccomp does; the program fits the kernel's BPF_MAXINSNS.
StatusOr<SeccompProgram> BuildDefaultSeccompProgram();

// prctl(PR_SET_NO_NEW_PRIVS) then seccomp(SECCOMP_SET_MODE_FILTER), raw system calls only (a
// sandbox's payload installs it: raw_syscall.h). Returns 0 or an errno value.
NS_CHILD int InstallSeccompProgram(const SeccompProgram& program);

}  // namespace nightshift::sandbox
