#pragma once

// What every child of the supervisor does between clone() and execve(), plain or sandboxed.
// Async-signal-safe only: the supervisor is multi-threaded, so the child may not allocate.
// Internal to src/sandbox.

#include <cstdint>
#include <string_view>

namespace nightshift::sandbox::internal {

inline constexpr int kChildFailedExitCode = 127;

// For code that may run on a stack of its own in a child sharing the parent's memory
// (clone(CLONE_VM | CLONE_VFORK)): AddressSanitizer would take the stack switch for a bug and
// print a warning into the command's stderr before every noreturn call.
#define NS_CHILD_NO_ASAN __attribute__((no_sanitize("address")))

// A step a child reports through the close-on-exec status pipe when it cannot reach execve().
// Sandbox set-up steps (ContainStep, contain_internal.h) share the numbering from 100 on.
enum class ChildStep : int32_t {
  kSetsid = 1,
  kDeathSignal,
  kDevNull,
  kRedirect,
  kChdir,
  kExec,
  kMount
};

struct ChildFailure {
  int32_t step;
  int32_t error;
};

std::string_view ChildStepName(ChildStep step);

// Writes {step, error} to `failure_fd` (one atomic write) and exits 127.
[[noreturn]] NS_CHILD_NO_ASAN void FailChild(int failure_fd, int32_t step, int error);

// stdin from `stdin_fd` (-1: /dev/null), stdout and stderr onto the given descriptors, and every
// other descriptor marked close-on-exec. Fails the child on error.
NS_CHILD_NO_ASAN void RedirectStdio(int stdin_fd, int stdout_fd, int stderr_fd, int failure_fd);

// Tries each null-terminated `candidates` path with execve, like execvp(): past entries that do
// not exist, remembering EACCES. Reports kExec with ENOENT, EACCES or the first other error.
[[noreturn]] NS_CHILD_NO_ASAN void ExecOrFail(const char* const* candidates, char* const* argv,
                                              char* const* envp, int failure_fd);

// Closes every descriptor above stderr except those in `keep` (unsorted, at most 8).
void CloseAllBut(const int* keep, int count);

}  // namespace nightshift::sandbox::internal
