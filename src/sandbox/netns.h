#pragma once

// Network namespaces for sandboxes, made on a thread of their own. Creating one is the largest
// single cost of starting a sandbox (~0.4 ms here: the kernel sets up a whole network stack), so
// Spawn asks for it first and the namespace is built on the other core while the sandbox's PID 1
// mounts its root; PID 1 joins it (setns) before it mounts /sys. The loopback comes up before
// the namespace is handed over. Internal to src/sandbox.

#include <future>

#include "core/fs.h"
#include "core/status.h"

namespace nightshift::sandbox::internal {

// Starts making a new network namespace with its loopback up; the future holds a descriptor of
// it (for setns), or the error. Thread-safe; one thread for the whole process, started on first
// use, which returns to the process's own namespace after each.
std::future<StatusOr<UniqueFd>> MakeNetworkNamespace();

}  // namespace nightshift::sandbox::internal
