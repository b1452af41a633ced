#pragma once

// What every child of the supervisor does between clone() and execve(), plain or sandboxed, and
// the messages a sandbox's processes exchange while they set up. System calls only
// (raw_syscall.h): a plain child is a fork of a multi-threaded process, and a sandbox's PID 1
// and payload share the supervisor's memory. Internal to src/sandbox.

#include <cstdint>
#include <optional>
#include <string_view>

namespace nightshift::sandbox::internal {

inline constexpr int kChildFailedExitCode = 127;

// For code that runs in a child sharing the supervisor's memory (CLONE_VM) on a stack of its
// own: AddressSanitizer would take the stack switch for a bug (and its fake stacks are the
// cloning thread's), and the stack protector reads its canary from that thread's TLS.
#if defined(__has_attribute) && __has_attribute(no_stack_protector)
#define NS_CHILD __attribute__((no_sanitize("address"), no_stack_protector))
#else
#define NS_CHILD __attribute__((no_sanitize("address")))
#endif

// A step a child reports through the close-on-exec status pipe when it cannot reach execve().
// Sandbox set-up steps (ContainStep, contain_step.h) share the numbering from 100 on.
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
[[noreturn]] NS_CHILD void FailChild(int failure_fd, int32_t step, int error);

// stdin from `stdin_fd` (-1: /dev/null), stdout and stderr onto the given descriptors, and every
// other descriptor marked close-on-exec. Fails the child on error.
NS_CHILD void RedirectStdio(int stdin_fd, int stdout_fd, int stderr_fd, int failure_fd);

// Tries each null-terminated `candidates` path with execve, like execvp(): past entries that do
// not exist, remembering EACCES. Reports kExec with ENOENT, EACCES or the first other error.
[[noreturn]] NS_CHILD void ExecOrFail(const char* const* candidates, char* const* argv,
                                      char* const* envp, int failure_fd);

// Closes every descriptor above stderr except those in `keep` (unsorted, at most 8; negative
// entries are ignored).
NS_CHILD void CloseAllBut(const int* keep, int count);

// --- Messages over a SOCK_SEQPACKET socket between a sandbox's processes and the supervisor:
// a one-byte tag, or a ChildFailure. ---

// Sends the one-byte `tag`; false if the peer is gone.
NS_CHILD bool SendTag(int socket, char tag);
// Sends `failure`; false if the peer is gone.
NS_CHILD bool SendFailure(int socket, const ChildFailure& failure);

// Receives one message: a one-byte tag with `min_count` to `max_count` descriptors (at most
// kMaxReceivedFds; their number in *received, if not null), close-on-exec. Returns the tag, 0 at
// EOF, or -1 for anything else.
inline constexpr int kMaxReceivedFds = 4;
NS_CHILD int ReceiveFds(int socket, int* fds, int min_count, int max_count,
                        int* received = nullptr);

// Waits for the next message. `tag` on success; otherwise the failure the peer reported, or
// {fallback step, EPROTO} for EOF or anything unexpected.
NS_CHILD std::optional<ChildFailure> AwaitTag(int socket, char tag, int32_t fallback_step);

}  // namespace nightshift::sandbox::internal
