#pragma once

// A pool of pre-forked sandboxes: the namespaces, overlay root, /proc, /dev, masks, cgroup and
// the command's unprivileged, filtered process are made ahead of time by a background thread,
// so a run only pays for attaching its workspace, setting its limits, and exec (launch.h).
// RunProcess takes from the pool when ProcessSpec::pool is set and the spec has the pool's shape,
// and starts cold otherwise.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/status.h"
#include "sandbox/contain.h"

namespace nightshift::sandbox {

namespace internal {
class WarmSandbox;
}

class SandboxPool {
 public:
  // Keeps `size` (≥ 1) sandboxes of `shape` waiting. The shape is everything in a SandboxSpec
  // (rootfs, layers, host paths, masks, uid…) but the workspace, hostname and limits, which each
  // run brings. Validates the shape (its
  // workspace is not used but must be valid) and fails if a first sandbox cannot be built.
  static StatusOr<std::unique_ptr<SandboxPool>> Start(const SandboxSpec& shape, int size);
  // Kills the waiting sandboxes. The pool's thread is every sandbox's parent (their death signal
  // is tied to it), so the pool must outlive every run that took one.
  ~SandboxPool();
  SandboxPool(const SandboxPool&) = delete;
  SandboxPool& operator=(const SandboxPool&) = delete;

  // Whether `spec` can use one of this pool's sandboxes.
  bool Matches(const SandboxSpec& spec) const;
  // A waiting sandbox, or null when none is ready (the caller starts one cold) or `spec` does
  // not match. Thread-safe.
  std::unique_ptr<internal::WarmSandbox> Take(const SandboxSpec& spec);

  // Called by the taker once its run is over. Refills wait until no run that took a sandbox is
  // in progress, or kRefillHold (20 ms) passed since the last take: on a small machine a
  // refill's clone() and mounts compete with a short command for the CPUs and the kernel's
  // namespace locks (measured: a warm `true` took ~1.7 ms with refills during the run, ~1.2 ms
  // without).
  void LaunchDone();

  // Blocks until `size` sandboxes wait, or `timeout_ms` passes. For benchmarks and tests.
  bool WaitFull(int64_t timeout_ms);

  struct Stats {
    int64_t taken = 0;   // runs that started warm
    int64_t missed = 0;  // runs of this shape that found the pool empty
    int64_t spawned = 0;
    int64_t spawn_failures = 0;
    int idle = 0;
  };
  Stats stats() const;

 private:
  SandboxPool(const SandboxSpec& shape, int size, bool cgroups);
  void Fill();

  const SandboxSpec shape_;
  const int size_;
  const bool cgroups_;  // each waiting sandbox has a cgroup (runs with limits can take one)
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::deque<std::unique_ptr<internal::WarmSandbox>> idle_;
  bool stopping_ = false;
  int launching_ = 0;
  Stats stats_;
  std::thread filler_;
};

}  // namespace nightshift::sandbox
