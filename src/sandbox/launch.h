#pragma once

// Starting a sandbox in two moves, so the expensive part can happen ahead of time (pool.h):
//  1. Start: clone() PID 1 into new mount, PID and UTS namespaces, sharing the supervisor's
//     memory (CLONE_VM: no page tables to copy; SandboxMemory holds all it reads). PID 1 clones
//     the payload — the process that will exec the command — pinned to another CPU for its
//     set-up; meanwhile the supervisor's thread makes the sandbox's network namespace (netns.h)
//     and sends it to both. Then both run the checklist (contain_internal.h): PID 1 mounts; the
//     payload joins the sandbox's cgroup, if any, makes an IPC namespace, joins the network
//     namespace, makes its user and cgroup namespaces and its filter. PID 1 tells the supervisor
//     "ready" and waits for its command, still root of the host's user namespace; the payload
//     waits, unprivileged and filtered. Only the payload joins the cgroup: the OOM killer kills
//     every process sharing its victim's memory, so a process running in the supervisor's must
//     never be one. Until its exec the payload charges the cgroup little (kernel objects of its
//     namespaces), far below the smallest memory limit a sandbox accepts.
//  2. Launch: the supervisor sets the cgroup's limits, writes the command into SandboxMemory,
//     and sends with SCM_RIGHTS the workspace as a detached mount to PID 1, and the output and
//     status pipes and stdin straight to the payload (PID 1 never holds them, so they reach EOF
//     when the command is done). PID 1 attaches the workspace, sets the hostname, tells the
//     payload, which execs at once, and becomes init: reaps orphans, forwards SIGTERM/SIGINT/
//     SIGHUP, exits with the command's status. The command never shares PID 1's credentials: it
//     cannot signal, trace or read PID 1.
// A cold start launches right after Start, without waiting: PID 1 finds the command queued when
// its set-up is done, and a set-up failure arrives on the control socket (ReadSetupFailure).
// Internal to src/sandbox.

#include <sched.h>
#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
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
  bool workspace_read_only = false;
  std::vector<std::string> workspace_masks;  // "/workspace/…", masked over the workspace
  CgroupLimits limits;     // applied to the sandbox's cgroup (it must have one if any is set)
  std::string stdin_data;  // the command's stdin (empty: at EOF)
};

// A stack for a process cloned with CLONE_VM: anonymous memory with an inaccessible guard page
// below it, so an overflow faults instead of writing into the supervisor's memory.
class ChildStack {
 public:
  static StatusOr<ChildStack> Make(size_t bytes);
  ChildStack() = default;
  ChildStack(ChildStack&& other) noexcept;
  ChildStack& operator=(ChildStack&& other) noexcept;
  ~ChildStack();
  char* top() const { return base_ + size_; }

 private:
  char* base_ = nullptr;  // the mapping, guard page first
  size_t size_ = 0;
};

// What of the supervisor's memory a sandbox's PID 1 and payload use. Nothing in it may change or
// go while either runs: it is freed only once PID 1 has been reaped (PID 1's exit waits for every
// other process of its PID namespace). Filled by Start and Launch.
struct SandboxMemory {
  std::unique_ptr<PreparedSandbox> prepared;
  const SeccompProgram* seccomp = nullptr;
  ChildStack init_stack, payload_stack;
  std::vector<std::string> cgroup_procs;       // the cgroup.procs files the payload joins
  std::vector<const char*> cgroup_procs_ptrs;  // null-terminated
  int control = -1;  // PID 1's end of its socket to the supervisor (its descriptor number)
  int direct = -1;   // the payload's end of its socket to the supervisor
  // While setting up, the payload is pinned to this CPU (-1: not pinned), and PID 1 to another;
  // both go back to `affinity`, the supervisor's.
  int payload_cpu = -1;
  cpu_set_t affinity;
  int command_policy = -1;  // the command's scheduling policy, or -1 for the cloning thread's

  // A cold start's launch (StartLaunched), made before the clone and inherited: PID 1 attaches
  // `workspace` as soon as it is set up and leaves `fds` (stdout, stderr, status, stdin; -1:
  // none) to the payload. All -1: the launch comes later, by message (Launch).
  struct InheritedLaunch {
    int workspace = -1;
    int fds[4] = {-1, -1, -1, -1};
  } inherited;

  // The command, written before PID 1 and the payload are told of the launch.
  std::vector<std::string> argv, env, candidates, masks;
  std::string hostname, working_dir;
  std::vector<char*> argv_ptrs, env_ptrs;
  std::vector<const char*> candidate_ptrs, mask_ptrs;
  Command command{};
};

// Counts the sandboxes of this process being set up; a sandbox that starts alone pins its payload
// to another CPU, so the two halves of its set-up really overlap (under load the other CPU is
// busy too, and pinning would only cost throughput: ~15% measured with two threads starting
// sandboxes). Held from Start until the sandbox is ready.
class SetupSlot {
 public:
  SetupSlot() = default;
  static SetupSlot Take();
  SetupSlot(SetupSlot&& other) noexcept : held_(std::exchange(other.held_, false)) {}
  SetupSlot& operator=(SetupSlot&& other) noexcept;
  ~SetupSlot() { Release(); }
  bool alone() const { return alone_; }
  void Release();

 private:
  bool held_ = false;
  bool alone_ = false;
};

struct Launched {
  pid_t pid = -1;  // PID 1, the caller's to reap (it must keep `memory` until then)
  UniqueFd stdout_read, stderr_read, failure_read;  // the status pipe: EOF once exec'd
  std::unique_ptr<Cgroup> cgroup;                   // null if started without one
  // PID 1's: readable once it sends its FinalReport, or exits without one.
  UniqueFd control;
  // Freed only once PID 1 has been reaped (ReapInBackground, or by the caller after waitpid).
  std::unique_ptr<SandboxMemory> memory;
  SetupSlot setup;  // release once the status pipe says the command started (or could not)
};

// What PID 1 sends when the command has exited and nothing else is left in the sandbox, just
// before it exits itself: the caller can then return at once and leave the kernel's teardown
// of the namespaces (~1.5 ms) and the reaping to ReapInBackground.
struct FinalReport {
  int32_t tag;
  int32_t exit_code;  // the command's status, 128 + signal when killed (PID 1's own exit code)
  int64_t user_us, system_us, max_rss_kb;  // the command's (and its reaped children's) usage
};

// What a readable `control` held: PID 1's FinalReport; nothing yet (only a cold start's late
// "ready"); or nothing ever — PID 1 exited without one (other processes were still running: its
// exit kills them, and the caller must wait for that).
struct InitReport {
  enum State { kPending, kReport, kGone } state;
  FinalReport report;
};
InitReport ReadFinalReport(int control);

// Once the command's status pipe has reached EOF (it exec'd, or the sandbox died before it
// could): the set-up failure PID 1 reported on `control`, if any. Consumes PID 1's "ready" and
// never blocks. A cold start's launch is sent before PID 1 is ready, so this is where its set-up
// failures show.
std::optional<ChildFailure> ReadSetupFailure(int control);

// Reaps `pid` (a sandbox's PID 1 that sent its FinalReport) on a background thread, then
// removes `cgroup`, which cannot go before its last process, and frees `memory`.
void ReapInBackground(pid_t pid, std::unique_ptr<Cgroup> cgroup,
                      std::unique_ptr<SandboxMemory> memory);

class WarmSandbox {
 public:
  // Clones PID 1 from the calling thread, which the sandbox's parent-death signal is tied to:
  // that thread must outlive the sandbox. `with_cgroup`: in a cgroup of its own, made now
  // without limits (Launch sets them). Returns once PID 1 runs; WaitReady waits for its set-up.
  // `command_policy`: the scheduling policy the command gets (SCHED_OTHER for a pool whose
  // thread runs SCHED_BATCH), or -1 for the calling thread's.
  static StatusOr<std::unique_ptr<WarmSandbox>> Start(const SandboxSpec& shape,
                                                      const SeccompProgram* seccomp,
                                                      bool with_cgroup, int command_policy = -1);
  // A cold start: Start and Launch in one. The launch's descriptors are made before the clone
  // and inherited, so neither PID 1 nor the payload waits for a message; a failure while they
  // set up arrives through ReadSetupFailure. With the request's limits, the cgroup is made with
  // them.
  static StatusOr<Launched> StartLaunched(const SandboxSpec& shape, const SeccompProgram* seccomp,
                                          const LaunchRequest& request);
  // Kills the sandbox if it was never handed over (Launch).
  ~WarmSandbox();
  WarmSandbox(const WarmSandbox&) = delete;
  WarmSandbox& operator=(const WarmSandbox&) = delete;

  // Blocks until the sandbox waits for its command, or failed (an error naming the step).
  Status WaitReady();

  // For a ready sandbox (WaitReady): sends the command and hands the sandbox over, the caller
  // now owns PID 1 (Launched::pid). A failure in the child after this point arrives on
  // failure_read like any exec failure. An error here (the sandbox died, a mount or cgroup
  // failed in the supervisor) leaves the sandbox to the destructor.
  StatusOr<Launched> Launch(const LaunchRequest& request);

  // Whether the sandbox still waits (has not died since WaitReady).
  bool Alive() const;

 private:
  WarmSandbox() = default;
  // Clones PID 1 with `memory` (NewMemory's, and StartLaunched's launch) and gives it and the
  // payload their network namespace.
  static StatusOr<std::unique_ptr<WarmSandbox>> Clone(std::unique_ptr<SandboxMemory> memory,
                                                      std::unique_ptr<Cgroup> cgroup);
  // The launched sandbox, with our ends of its pipes, to the caller; this one is spent.
  Launched HandOver(UniqueFd stdout_read, UniqueFd stderr_read, UniqueFd status_read);
  // Until Launch hands it over; the destructor reaps PID 1 before any member goes.
  std::unique_ptr<SandboxMemory> memory_;
  pid_t pid_ = -1;
  bool released_ = false;
  UniqueFd control_;                // to PID 1
  UniqueFd direct_;                 // to the payload
  std::unique_ptr<Cgroup> cgroup_;  // the waiting sandbox's, handed over by Launch
  SetupSlot setup_;
};

}  // namespace nightshift::sandbox::internal
