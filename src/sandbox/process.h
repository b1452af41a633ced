#pragma once

// Process supervision: start a command as the leader of its own process group — or as the
// command of a sandbox (contain.h), whose PID namespace is then its tree — stream its output
// line by line, enforce a deadline, and stop its whole tree on request.
//
// The execution primitive of the runner, the workspace and the agent's tools, in two moves:
// StartProcess starts the command, Supervise follows it to its end; RunProcess does both.

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/cancel.h"
#include "core/fs.h"
#include "core/status.h"
#include "sandbox/contain.h"

namespace nightshift::sandbox {

class SandboxPool;

// Overlay options that keep an upper dir plain — files, directories, symlinks, whiteouts and
// opaque directories only — so the host can read it back as data: a renamed lower directory is
// copied (rename answers EXDEV), a copy-up copies the data too.
inline constexpr const char* kOverlayPlainOptions = "redirect_dir=off,metacopy=off";

struct ProcessSpec {
  // argv[0] is looked up in the PATH of `env` (the supervisor's PATH if `env` has none) unless
  // it contains a '/', in which case it is used as is (relative to working_dir).
  std::vector<std::string> argv;
  std::filesystem::path working_dir;           // empty = inherit
  std::map<std::string, std::string> env;      // the complete environment
  int64_t timeout_ms = 0;                      // 0 = no deadline
  int64_t kill_grace_ms = 500;                 // SIGTERM → SIGKILL delay
  size_t max_line_bytes = 16 * 1024;           // longer lines are split
  size_t max_output_bytes = 16 * 1024 * 1024;  // past this, output is dropped (and said so)
  std::string stdin_data;  // the command's stdin, from a memfd; empty: /dev/null
  // Keep stdout byte for byte in ProcessResult::stdout_data (within max_output_bytes) instead of
  // passing it to the sink as lines: for output that is data (git's -z listings, a diff).
  bool capture_stdout = false;
  // Run inside a sandbox (contain.h): namespaces, overlay root, cgroup limits, seccomp. Then
  // working_dir is a path inside the sandbox (empty = /workspace) and the process tree is the
  // sandbox's PID namespace, whose init (our PID 1) reaps orphans and forwards SIGTERM.
  std::optional<SandboxSpec> sandbox;
  // Plain processes only (no `sandbox`): run in a private mount namespace with an overlay of
  // `lowers` (top first) and `upper` mounted at `target` — how a workspace layer is built from
  // the one below it (src/workspace). Needs root. Nothing is mounted in the caller's namespace.
  // The overlay has kOverlayPlainOptions, as a sandbox's workspace does.
  struct PrivateOverlay {
    std::vector<std::filesystem::path> lowers;
    std::filesystem::path upper, work, target;
  };
  std::optional<PrivateOverlay> private_overlay;
  // Pre-forked sandboxes (pool.h), not owned; used when `sandbox` has the pool's shape and one
  // is waiting, else the sandbox starts cold. The pool must outlive the call.
  SandboxPool* pool = nullptr;
};

// kOom and kPidsLimit: the command failed after the kernel OOM-killed a process of its cgroup,
// or after a fork failed at the pids limit (sandboxed runs with those limits only).
enum class EndReason { kExited, kSignaled, kTimedOut, kCancelled, kOom, kPidsLimit };

std::string_view EndReasonName(EndReason reason);

struct ProcessResult {
  EndReason reason = EndReason::kExited;
  int exit_code = 0;  // exit status, or 128 + signal number when killed
  int64_t wall_ms = 0;
  int64_t cpu_ms = 0;             // user + system time of the whole tree
  int64_t peak_memory_bytes = 0;  // the cgroup's peak when sandboxed with limits, else the
                                  // largest single process's peak RSS
  bool output_truncated = false;
  std::string stdout_data;  // with ProcessSpec::capture_stdout
};

// Receives each complete output line (without the newline) as it arrives, on the supervising
// thread. `stream` is "stdout" or "stderr".
using LineSink = std::function<void(std::string_view stream, std::string_view line)>;

// A command StartProcess started and Supervise has not taken yet: it runs (it has exec'd), or it
// could not be executed and is already reaped. Move-only. Destroying one that was never
// supervised stops the command as an early return of RunProcess does: its whole process group
// (a sandbox: its PID namespace) is SIGKILLed and reaped before the destructor returns.
class StartedProcess {
 public:
  StartedProcess(StartedProcess&&) noexcept;
  StartedProcess& operator=(StartedProcess&&) noexcept;
  ~StartedProcess();

  // The leader: the command (the leader of its process group), or a sandbox's PID 1. 0 once
  // moved from.
  pid_t pid() const;

 private:
  struct State;
  explicit StartedProcess(std::unique_ptr<State> state);
  friend StatusOr<StartedProcess> StartProcess(const ProcessSpec& spec);
  friend StatusOr<ProcessResult> Supervise(StartedProcess&& started, const LineSink& sink,
                                           const CancelToken* cancel);
  std::unique_ptr<State> state_;
};

// Starts `spec`'s command and returns once it runs — it has exec'd — or could not be executed.
//  - The child runs in a new session/process group, with PR_SET_PDEATHSIG(SIGKILL) so it dies
//    if the supervising process dies (the death signal is tied to the calling thread); signal
//    dispositions and mask are reset to the defaults; no descriptor other than 0, 1, 2 is
//    inherited. stdin is `stdin_data` (or /dev/null); stdout and stderr are pipes that only
//    Supervise reads, so a command that writes much blocks until it is supervised.
//  - A command that cannot be executed is not an error here: Supervise reports it (below).
//  - Errors (Status) are for an invalid spec (InvalidArgument: empty argv[0], NUL bytes, '=' in
//    an env name, negative durations, max_line_bytes == 0) and the supervisor's own failures:
//    fork, pipe, waitpid, set-up steps in the child (a sandbox's included) before exec. Nothing
//    of the command is left running when an error is returned.
// REQUIRES: the calling thread lives until the command is supervised to its end (its death
// signal is tied to it): call Supervise on the same thread.
StatusOr<StartedProcess> StartProcess(const ProcessSpec& spec);

// Supervises a started command to its end on the calling thread, with `spec`'s bounds (the
// deadline counts from StartProcess).
//  - Each complete output line goes to `sink`, which runs on the calling thread and must not
//    throw; an empty sink discards the output.
//  - On timeout or cancel, the whole process group gets SIGTERM, then SIGKILL after
//    kill_grace_ms; the result is kTimedOut / kCancelled with the leader's exit code (128 +
//    signal when it was killed by a signal). A `cancel` already cancelled stops the command at
//    once the same way.
//  - When the leader exits on its own, processes it left in its group may still hold the pipes
//    (`cmd &`, double forks). Output keeps being read for 200 ms after the leader's exit or
//    until both pipes reach EOF; then the rest of the group is SIGKILLed, what is already in the
//    pipes is read, and the pipes are closed. Nothing started in the group outlives the call:
//    leftover group members are SIGKILLed even if they do not hold the pipes. (Processes that
//    leave the group with setsid/setpgid are out of reach of this primitive.)
//  - The call returns only when the direct child has been reaped and no process of the group is
//    left running. Members that are already dead but not yet reaped by their parent (zombies
//    re-parented to init) do not count: only that parent can reap them. Members re-parented to
//    the supervisor itself (it is PID 1 or a child subreaper) are reaped here.
//  - A command that could not be executed yields exit_code 127 (not found) or 126 (not
//    executable), with the reason written to `sink` as a "stderr" line, like a shell. A
//    working_dir the child cannot enter also yields 126, with a "cannot change directory to
//    DIR: ..." line.
//  - Output past max_output_bytes (both streams together) is dropped; one "stderr" line
//    "[nightshift: output truncated after N bytes]" says so and output_truncated is set. The
//    pipes are still drained so the command does not block.
//  - Errors (Status) are the supervisor's own failures: poll, read, waitpid, or a process group
//    that still runs 5 s after SIGKILL. The group is killed before such an error is returned.
// REQUIRES: `started` is not moved from.
StatusOr<ProcessResult> Supervise(StartedProcess&& started, const LineSink& sink,
                                  const CancelToken* cancel = nullptr);

// StartProcess, then Supervise, on the calling thread: runs `spec` to completion. May be called
// concurrently from several threads; each command gets its own process group. If `cancel` is
// already cancelled on entry, nothing is started: kCancelled, exit_code 137 (128 + SIGKILL, as
// if killed at once). Otherwise every outcome and error is StartProcess's or Supervise's.
StatusOr<ProcessResult> RunProcess(const ProcessSpec& spec, const LineSink& sink,
                                   const CancelToken* cancel = nullptr);

}  // namespace nightshift::sandbox
