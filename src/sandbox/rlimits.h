#pragma once

// Resource limits the command starts with: no core dumps (a crashing test must not write
// gigabytes into the workspace), and 65536 open files (or the hard limit, if lower) — builds and
// test runners open many. Set by the payload itself: rlimits are per process, and the payload
// is cloned before PID 1 sets anything up. Memory, processes and CPU are the cgroup's
// (cgroups.h). Internal to src/sandbox.

#include "sandbox/contain_step.h"

namespace nightshift::sandbox::internal {

inline constexpr unsigned long kSandboxOpenFiles = 65536;

NS_CHILD ContainFailure ApplyRlimits();

}  // namespace nightshift::sandbox::internal
