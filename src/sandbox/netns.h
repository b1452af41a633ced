#pragma once

// The sandbox's network namespace: loopback only, and up, so servers the command starts on
// 127.0.0.1 work; nothing of the host's network is reachable. The payload makes it, owned by the
// sandbox's user namespace, while PID 1 mounts (it is the largest single cost of a start, ~0.25 ms
// of kernel work); PID 1 joins it before mounting /sys. NS_CHILD steps (raw_syscall.h). Internal
// to src/sandbox.

#include <sys/types.h>

#include "sandbox/contain_step.h"

namespace nightshift::sandbox::internal {

// In the payload: a new network namespace with its loopback up.
NS_CHILD ContainFailure MakeLoopbackNetns();

// In PID 1: joins the network namespace of `pid` (a pid of the sandbox's /proc, once pivoted).
NS_CHILD ContainFailure JoinNetnsOf(pid_t pid);

}  // namespace nightshift::sandbox::internal
