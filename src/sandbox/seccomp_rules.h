#pragma once

// The rules of the seccomp filter (seccomp.h), compiled with libseccomp. Only the build runs
// this: seccomp_compile writes the program into the source of the sandbox part, which embeds it
// (DefaultSeccompProgram), so a process that starts sandboxes neither loads libseccomp nor
// compiles the same program again (~1 ms). seccomp_test checks the embedded program against
// this one.

#include "core/status.h"
#include "sandbox/seccomp.h"

namespace nightshift::sandbox {

// Compiles the default deny list for the native architecture (x86-64 and i386/x32 entry points
// are covered by the same rules: a 32-bit syscall ABI must not be a way around the filter).
// Fails only if libseccomp does; the program fits the kernel's BPF_MAXINSNS. Deterministic.
StatusOr<SeccompProgram> BuildDefaultSeccompProgram();

}  // namespace nightshift::sandbox
