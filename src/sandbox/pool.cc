#include "sandbox/pool.h"

#include <pthread.h>
#include <sched.h>

#include <chrono>

#include "core/fs.h"
#include "core/log.h"
#include "sandbox/cgroups.h"
#include "sandbox/launch.h"
#include "sandbox/seccomp.h"

namespace nightshift::sandbox {

namespace {
constexpr auto kSpawnRetryDelay = std::chrono::seconds(1);
constexpr auto kRefillHold = std::chrono::milliseconds(20);
}  // namespace

StatusOr<std::unique_ptr<SandboxPool>> SandboxPool::Start(const SandboxSpec& shape, int size) {
  if (size < 1) return InvalidArgumentError("a sandbox pool needs a size of at least 1");
  RETURN_IF_ERROR(ValidateSandboxSpec(shape));
  // Each waiting sandbox has a cgroup of its own where cgroups work, so runs with limits can
  // take one (the limits are set at launch).
  const bool cgroups = Cgroup::Create(StrCat("pool-probe-", RandomHex(8)), CgroupLimits{}).ok();
  std::unique_ptr<SandboxPool> pool(new SandboxPool(shape, size, cgroups));
  // The first sandbox is built on the pool's own thread too (it must be their parent); wait
  // for it, so a shape that cannot work fails here and not on every run.
  std::unique_lock lock(pool->mu_);
  pool->changed_.wait(lock,
                      [&] { return !pool->idle_.empty() || pool->stats_.spawn_failures > 0; });
  if (pool->idle_.empty()) return InternalError("sandbox pool: cannot build a sandbox (see log)");
  return pool;
}

SandboxPool::SandboxPool(const SandboxSpec& shape, int size, bool cgroups)
    : shape_(shape), size_(size), cgroups_(cgroups), filler_([this] { Fill(); }) {}

SandboxPool::~SandboxPool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  changed_.notify_all();
  filler_.join();
}

bool SandboxPool::Matches(const SandboxSpec& spec) const {
  return (cgroups_ || !spec.limits.any()) && spec.rootfs == shape_.rootfs &&
         spec.layers == shape_.layers && spec.host_paths == shape_.host_paths &&
         spec.masked == shape_.masked && spec.host_uid == shape_.host_uid &&
         spec.host_gid == shape_.host_gid && spec.upper_bytes == shape_.upper_bytes &&
         spec.seccomp == shape_.seccomp;
}

std::unique_ptr<internal::WarmSandbox> SandboxPool::Take(const SandboxSpec& spec) {
  if (!Matches(spec)) return nullptr;
  std::unique_ptr<internal::WarmSandbox> taken;
  {
    std::lock_guard lock(mu_);
    while (!idle_.empty() && !taken) {
      taken = std::move(idle_.front());
      idle_.pop_front();
      if (!taken->Alive()) taken.reset();  // killed meanwhile (OOM killer, an operator)
    }
    ++(taken ? stats_.taken : stats_.missed);
    if (taken) ++launching_;
  }
  changed_.notify_all();
  return taken;
}

void SandboxPool::LaunchDone() {
  {
    std::lock_guard lock(mu_);
    --launching_;
  }
  changed_.notify_all();
}

bool SandboxPool::WaitFull(int64_t timeout_ms) {
  std::unique_lock lock(mu_);
  return changed_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                           [&] { return static_cast<int>(idle_.size()) >= size_; });
}

SandboxPool::Stats SandboxPool::stats() const {
  std::lock_guard lock(mu_);
  Stats s = stats_;
  s.idle = static_cast<int>(idle_.size());
  return s;
}

void SandboxPool::Fill() {
  // Refills run SCHED_BATCH: woken when a run ends, a normal thread would preempt the caller on
  // its CPU and start cloning before the caller has returned (~50–150 µs a warm run, measured).
  // The sandboxes' commands get the normal policy back (launch.cc).
  int command_policy = -1;
  if (::sched_getscheduler(0) == SCHED_OTHER) {
    const struct sched_param batch {};
    if (::pthread_setschedparam(::pthread_self(), SCHED_BATCH, &batch) == 0) {
      command_policy = SCHED_OTHER;
    }
  }
  const SeccompProgram* seccomp = shape_.seccomp ? &DefaultSeccompProgram() : nullptr;
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (static_cast<int>(idle_.size()) >= size_) {
      changed_.wait(lock);
      continue;
    }
    if (launching_ > 0) {
      changed_.wait_for(lock, kRefillHold, [&] { return stopping_ || launching_ == 0; });
      if (stopping_) break;
    }
    lock.unlock();
    auto warm = internal::WarmSandbox::Start(shape_, seccomp, cgroups_, command_policy);
    if (warm.ok()) {
      if (Status ready = (*warm)->WaitReady(); !ready.ok()) warm = ready;
    }
    lock.lock();
    if (warm.ok()) {
      ++stats_.spawned;
      idle_.push_back(std::move(*warm));
      changed_.notify_all();
      continue;
    }
    ++stats_.spawn_failures;
    log::Get("sandbox")->error("sandbox pool: {}", warm.status().message());
    changed_.notify_all();
    changed_.wait_for(lock, kSpawnRetryDelay, [&] { return stopping_; });
  }
  // Our thread is their parent: they go before it does.
  idle_.clear();
}

}  // namespace nightshift::sandbox
