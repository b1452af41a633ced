#pragma once

// Starting a sandbox in two moves, so the expensive part can happen ahead of time (pool.h):
//  1. Spawn: clone() PID 1 into new mount/PID/UTS/IPC namespaces (and the sandbox's own
//     cgroup, if any). PID 1 first clones the payload, the process that will exec the command,
//     into new user and cgroup namespaces (sharing its memory, pinned to another CPU for now).
//     Then both work at once: the payload makes the sandbox's network namespace, empties its
//     capability bounding set and installs the seccomp filter; PID 1 runs ContainWarm — the
//     overlay root, /proc (then it writes the payload's uid/gid maps), /dev, /tmp, masks,
//     pivot_root, joining the payload's network namespace, /sys. The payload becomes root
//     inside with no capabilities. Both then wait: PID 1 on the control socket, still the
//     host's root; the payload on its own socket to the supervisor, unprivileged and filtered.
//  2. Launch: the parent sets the cgroup's limits and sends, with SCM_RIGHTS, the command
//     (argv, env, PATH candidates, working dir, hostname, masks) in a memfd and the workspace as
//     a detached mount to PID 1, and the output and status pipes and stdin to the payload. PID 1
//     decodes the command (into the memory it shares with the payload), attaches the workspace
//     and its masks, sets the hostname, tells the payload, which execs at once, and becomes init:
//     reaps orphans, forwards SIGTERM/SIGINT/ SIGHUP, exits with the command's status. The command
//     never shares PID 1's credentials: it cannot signal, trace or read PID 1.
// The cold path does both at once. Internal to src/sandbox.

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/fs.h"
#include "core/status.h"
#include "sandbox/cgroups.h"
#include "sandbox/child.h"
#include "sandbox/contain.h"
#include "sandbox/contain_internal.h"
#include "sandbox/seccomp.h"

namespace nightshift::sandbox::internal {

// The per-command half of a sandbox.
struct LaunchRequest {
  std::vector<std::string> argv;
  std::vector<std::string> env;         // "NAME=value"
  std::vector<std::string> candidates;  // paths to try with execve, in order
  std::string working_dir;              // inside the sandbox; empty = /workspace
  std::string hostname;
  std::filesystem::path workspace;  // host directory, bound at /workspace, or the upper dir of:
  std::vector<std::filesystem::path> workspace_layers;  // an overlay's read-only layers, top first
  std::filesystem::path workspace_work;
  std::vector<std::string> workspace_masks;  // "d/workspace/…" or "f/workspace/…"
  CgroupLimits limits;     // applied to the sandbox's cgroup (it must have one if any is set)
  std::string stdin_data;  // the command's stdin (empty: at EOF)
};

struct Launched {
  UniqueFd stdout_read, stderr_read, failure_read;  // the status pipe: EOF once exec'd
  std::unique_ptr<Cgroup> cgroup;                   // null if spawned without one
  // Readable once PID 1 sends its FinalReport, or exits without one.
  UniqueFd control;
};

// What PID 1 sends when the command has exited and nothing else is left in the sandbox, just
// before it exits itself: the caller can then return at once and leave the kernel's teardown
// of the namespaces (~1.5 ms) and the reaping to ReapInBackground.
struct FinalReport {
  int32_t tag;
  int32_t exit_code;  // the command's status, 128 + signal when killed (PID 1's own exit code)
  int64_t user_us, system_us, max_rss_kb;  // the command's (and its reaped children's) usage
};

// Reads a FinalReport from a readable `control`; nullopt if PID 1 exited without one (other
// processes were still running: its exit kills them, and the caller must wait for that).
std::optional<FinalReport> ReadFinalReport(int control);

// Reaps `pid` (a sandbox's PID 1 that sent its FinalReport) on a background thread, then
// removes `cgroup`, which cannot go before its last process.
void ReapInBackground(pid_t pid, std::unique_ptr<Cgroup> cgroup);

class WarmSandbox {
 public:
  // Clones from the calling thread, which the sandbox's parent-death signal is tied to: that
  // thread must outlive the sandbox. `with_cgroup`: in a cgroup of its own, made now without
  // limits (Launch sets them). Returns once the sandbox waits (or failed: an error naming the
  // step).
  // `command_policy`: the scheduling policy the command gets (SCHED_OTHER for a pool whose
  // thread runs SCHED_BATCH), or -1 for the calling thread's.
  static StatusOr<std::unique_ptr<WarmSandbox>> Spawn(const SandboxSpec& shape,
                                                      const SeccompProgram* seccomp,
                                                      bool with_cgroup, int command_policy = -1);
  // Kills the sandbox if it was never handed over (Release).
  ~WarmSandbox();
  WarmSandbox(const WarmSandbox&) = delete;
  WarmSandbox& operator=(const WarmSandbox&) = delete;

  // Sends the command. On success the child runs it; a failure in the child after this point
  // arrives on failure_read like any exec failure. An error here (the sandbox died while
  // waiting, a mount or cgroup failed in the parent) leaves the sandbox to the destructor.
  StatusOr<Launched> Launch(const LaunchRequest& request);

  pid_t pid() const { return pid_; }
  // The caller now owns the process (reaps it).
  pid_t Release() {
    released_ = true;
    return pid_;
  }
  // Whether the sandbox still waits (has not died since Spawn).
  bool Alive() const;

 private:
  WarmSandbox() = default;
  pid_t pid_ = -1;
  bool released_ = false;
  UniqueFd control_;  // to PID 1
  UniqueFd direct_;   // to the payload
  std::unique_ptr<PreparedSandbox> prepared_;
  std::unique_ptr<Cgroup> cgroup_;  // the waiting sandbox's, handed over by Launch
};

// The memfd a launch sends: a header, pointer slots holding offsets (turned into pointers by the
// child), then the strings. Exposed for tests.
std::string BuildLaunchBlob(const LaunchRequest& request);

}  // namespace nightshift::sandbox::internal
