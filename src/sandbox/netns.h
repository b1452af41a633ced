#pragma once

// The sandbox's network namespace: loopback only, and up, so servers the command starts on
// 127.0.0.1 work; nothing of the host's network is reachable.
//
// Making one is the largest single cost of a start (~0.15–0.25 ms of kernel work), so the
// supervisor makes it, on the thread that has just cloned PID 1, while PID 1 mounts and the
// payload joins its cgroup; it hands both the namespace as a descriptor. It is owned by the
// host's user namespace, so nothing in the sandbox — whose root is root only of its own user
// namespace — can reconfigure it. Internal to src/sandbox.

#include <sys/types.h>

#include "core/fs.h"
#include "core/status.h"
#include "sandbox/contain_step.h"

namespace nightshift::sandbox::internal {

// In the supervisor: a new network namespace with its loopback up. The calling thread enters it
// to make it and returns to its own before this returns (a thread left in another namespace
// would be an impossible state: this aborts). Needs CAP_SYS_ADMIN.
StatusOr<UniqueFd> MakeLoopbackNetns();

// In PID 1, and in the payload while still root of the host's user namespace: joins `netns`
// and closes it.
NS_CHILD ContainFailure JoinNetns(int netns);

}  // namespace nightshift::sandbox::internal
