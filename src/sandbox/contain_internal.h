#pragma once

// Between the supervisor (launch.cc, process.cc) and the sandbox checklist (contain.cc). Not for
// other parts.

#include <sys/types.h>

#include <memory>

#include "sandbox/cgroups.h"
#include "sandbox/contain.h"
#include "sandbox/contain_step.h"
#include "sandbox/mounts.h"
#include "sandbox/seccomp.h"
#include "sandbox/userns.h"

namespace nightshift::sandbox::internal {

// Every string the sandbox's processes need, built in the supervisor: they run in its memory
// and may not allocate.
struct PreparedSandbox {
  MountPlan mounts;
  IdMaps ids;
};

// Validates `spec`'s shape and builds its strings (everything but the workspace, hostname and
// limits, which come with the launch).
StatusOr<std::unique_ptr<PreparedSandbox>> PrepareSandbox(const SandboxSpec& spec);

// A launched command as PID 1 and the payload read it, in the supervisor's memory.
struct Command {
  char* const* argv;
  char* const* envp;
  const char* const* candidates;  // paths to try with execve, in order
  const char* const* masks;       // "/workspace/…": masked once the workspace is attached
  const char* hostname;
  const char* working_dir;  // empty: /workspace
};

// The supervisor's message with the sandbox's network namespace (netns.h), to PID 1 on its
// control socket and to the payload on its own.
inline constexpr char kNetnsMessage = 'N';

// The checklist, in the sandbox's two processes (NS_CHILD). Each returns the failed step and
// errno, or nullopt. They meet over `link` (a SOCK_SEQPACKET pair, child.h's messages).
//
// ContainInit, in PID 1, right after it has cloned the payload (`payload`, its pid in the
// sandbox): the mount namespace, /proc, /dev, /tmp, masks, pivot_root; then the payload's
// uid/gid maps; joining the network namespace (from `control`); /sys and the masks under it.
// AwaitPayloadReady then returns once the payload is unprivileged and filtered (or its
// failure). PID 1 then waits, still root of the host's user namespace, for its command.
NS_CHILD ContainFailure ContainInit(const PreparedSandbox& prepared, pid_t payload, int link,
                                    int control);
NS_CHILD ContainFailure AwaitPayloadReady(int link);

// ContainPayload, in the payload, meanwhile: the sandbox's cgroup (`cgroup`, its cgroup.procs
// files as PID 1 opened them; none: no cgroup), an IPC namespace, the network namespace (from
// `direct`), the user and cgroup namespaces, rlimits, the capability bounding set and the
// seccomp filter (null: no filter, only no_new_privs); then, given its maps, root inside with no
// capabilities.
NS_CHILD ContainFailure ContainPayload(const SeccompProgram* seccomp, const CgroupFiles& cgroup,
                                       int direct, int link);

// ContainLaunch, in PID 1, per command: the workspace (a detached mount) at /workspace with the
// command's masks over it, and the hostname. PID 1 keeps its privileges for this; the command
// never has them.
NS_CHILD ContainFailure ContainLaunch(int workspace_fd, const Command& command);

}  // namespace nightshift::sandbox::internal
