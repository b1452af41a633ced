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

// A compiled classic-BPF program, made before any child exists and installed by the child with
// InstallSeccompProgram, which only makes syscalls.
struct SeccompProgram {
  std::vector<sock_filter> instructions;
};

// The default filter above, for the native architecture: compiled from its rules
// (seccomp_rules.h) by libseccomp when Nightshift was built, and embedded. The same object for
// the process's whole life; thread-safe.
const SeccompProgram& DefaultSeccompProgram();

// prctl(PR_SET_NO_NEW_PRIVS) then seccomp(SECCOMP_SET_MODE_FILTER), raw system calls only (a
// sandbox's payload installs it: raw_syscall.h). Returns 0 or an errno value.
NS_CHILD int InstallSeccompProgram(const SeccompProgram& program);

}  // namespace nightshift::sandbox
