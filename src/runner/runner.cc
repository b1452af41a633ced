#include "runner/runner.h"

#include <chrono>

#include "core/fs.h"
#include "core/log.h"

namespace nightshift::runner {

using store::RunState;

Runner::Runner(LeaseSource& source, Executor& executor, RunnerOptions options)
    : source_(source), executor_(executor), options_(std::move(options)) {}

Runner::~Runner() { Stop(); }

Status Runner::Start() {
  std::error_code ec;
  std::filesystem::create_directories(options_.work_root, ec);
  if (ec) return InternalError(StrCat("create ", options_.work_root.string(), ": ", ec.message()));
  // Scratch directories of a previous life are garbage now.
  for (const auto& entry : std::filesystem::directory_iterator(options_.work_root, ec)) {
    RemoveTreeQuietly(entry.path());
  }
  RETURN_IF_ERROR(source_.RecoverLeases(options_.name).WithContext("recover leases"));
  threads_.emplace_back([this] { HeartbeatLoop(); });
  for (int i = 0; i < options_.slots; ++i) threads_.emplace_back([this, i] { SlotLoop(i); });
  return OkStatus();
}

void Runner::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    for (auto& [id, active] : active_) active.cancel->Cancel();
  }
  work_cv_.notify_all();
  heartbeat_cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

int Runner::active_runs() const {
  std::lock_guard lock(mu_);
  return static_cast<int>(active_.size());
}

void Runner::OnRunChanged(int64_t run_id) {
  bool check = false;
  {
    std::lock_guard lock(mu_);
    ++wake_generation_;
    for (auto& [execution, active] : active_) {
      if (active.run_id == run_id) {
        active.check_now = true;
        check = true;
      }
    }
  }
  work_cv_.notify_one();
  if (check) heartbeat_cv_.notify_all();
}

void Runner::SlotLoop(int slot) {
  auto log = log::Get("runner");
  for (;;) {
    uint64_t generation = 0;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      generation = wake_generation_;
    }
    auto leased = source_.Lease(options_.name, options_.lease_ttl_ms);
    if (!leased.ok()) {
      log->warn("slot {}: lease failed: {}", slot, leased.status().ToString());
    } else if (leased->has_value()) {
      Execute(**leased);
      continue;
    }
    std::unique_lock lock(mu_);
    work_cv_.wait_for(lock, std::chrono::milliseconds(options_.idle_poll_ms),
                      [&] { return stopping_ || wake_generation_ != generation; });
  }
}

void Runner::HeartbeatLoop() {
  auto log = log::Get("runner");
  auto next_beat = std::chrono::steady_clock::now();
  std::unique_lock lock(mu_);
  while (!stopping_) {
    heartbeat_cv_.wait_until(lock, next_beat, [&] {
      if (stopping_) return true;
      for (const auto& [id, a] : active_) {
        if (a.check_now) return true;
      }
      return false;
    });
    if (stopping_) return;
    bool beat = std::chrono::steady_clock::now() >= next_beat;
    if (beat) next_beat += std::chrono::milliseconds(options_.heartbeat_ms);
    std::vector<Active> todo;
    for (auto& [execution, a] : active_) {
      if (beat || a.check_now) todo.push_back(a);
      a.check_now = false;
    }
    lock.unlock();
    for (const Active& a : todo) {
      const int64_t id = a.run_id;
      if (a.cancel->IsCancelled()) continue;
      // A full heartbeat renews the lease; a check only reads (it runs on every event).
      bool lost = false;
      std::string why;
      if (beat) {
        auto r = source_.Heartbeat(id, a.lease, options_.lease_ttl_ms);
        if (!r.ok()) {
          lost = IsFailedPrecondition(r.status()) || IsNotFound(r.status());
          why = r.status().message();
          if (!lost) log->warn("heartbeat for run {}: {}", id, why);
        }
      } else {
        auto r = source_.Get(id);
        if (r.ok() && (r->lease_owner != a.lease.owner || r->attempt != a.lease.attempt ||
                       store::IsTerminal(r->state))) {
          lost = true;
          why = StrCat("run ", id, " is ", store::RunStateName(r->state));
        }
      }
      if (lost) {
        log->info("stopping run {}: {}", id, why);
        a.cancel->Cancel();
      }
    }
    lock.lock();
  }
}

void Runner::Execute(const store::Run& run) {
  auto log = log::Get("runner");
  const store::Lease lease{options_.name, run.attempt};
  auto cancel = std::make_shared<CancelToken>();
  uint64_t execution = 0;
  {
    std::lock_guard lock(mu_);
    execution = next_execution_++;
    active_[execution] = Active{run.id, lease, cancel, false};
    if (stopping_) cancel->Cancel();
  }
  const std::filesystem::path work_dir =
      options_.work_root / StrCat("run-", run.id, "-", run.attempt);
  RemoveTreeQuietly(work_dir);

  Outcome outcome;
  RunState current = RunState::kPreparing;
  {
    EventWriter events(source_, run.id);
    auto repo = source_.Repository(run.repo);
    std::error_code ec;
    std::filesystem::create_directories(work_dir, ec);
    if (!repo.ok()) {
      outcome = {RunState::kFailed, std::nullopt, repo.status().message()};
    } else if (ec) {
      outcome = {RunState::kFailed, std::nullopt,
                 StrCat("create ", work_dir.string(), ": ", ec.message())};
    } else {
      Execution execution{
          .run = run,
          .repo = *repo,
          .work_dir = work_dir,
          .events = events,
          .cancel = *cancel,
          .mark_running = [&](const std::string& commit) -> Status {
            auto r = source_.Transition(
                run.id, lease,
                {.from = RunState::kPreparing, .to = RunState::kRunning, .commit = commit});
            if (!r.ok()) return r.status();
            current = RunState::kRunning;
            return OkStatus();
          },
          .conclude = [&](const forge::RunHandover& handover) -> StatusOr<forge::Conclusion> {
            // The run's own events first, so the control plane's come after them.
            if (Status st = events.Flush(); !st.ok()) {
              log->warn("run {}: appending events failed: {}", run.id, st.ToString());
            }
            return source_.Conclude(run.id, lease, handover);
          },
          .authorize = [&](const std::string& action, policy::Attributes resource,
                           policy::Attributes context) -> policy::Decision {
            auto decided =
                source_.Authorize(run.id, lease, action, std::move(resource), std::move(context));
            if (decided.ok()) return *std::move(decided);
            // No answer is a denial: a gate that cannot be asked stays shut.
            return policy::Decision{
                .reason = StrCat("the platform could not decide: ", decided.status().message())};
          },
          .secrets = [&]() { return source_.Secrets(run.id, lease); }};
      outcome = executor_.Execute(execution);
    }
    if (Status st = events.Flush(); !st.ok()) {
      log->warn("run {}: appending events failed: {}", run.id, st.ToString());
    }
  }
  RemoveTreeQuietly(work_dir);

  bool stopping = false;
  {
    std::lock_guard lock(mu_);
    active_.erase(execution);
    stopping = stopping_;
  }
  // A run cancelled through the store has its terminal state already; a run whose lease was
  // lost is someone else's now; a runner shutting down leaves the run to be requeued.
  if (cancel->IsCancelled() && (outcome.state == RunState::kCancelled || stopping)) return;
  auto done = source_.Transition(run.id, lease,
                                 {.from = current,
                                  .to = outcome.state,
                                  .exit_code = outcome.exit_code,
                                  .reason = outcome.reason});
  if (!done.ok()) {
    log->info("run {}: final transition to {} not applied: {}", run.id,
              store::RunStateName(outcome.state), done.status().message());
  }
}

}  // namespace nightshift::runner
