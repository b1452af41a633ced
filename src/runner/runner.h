#pragma once

// The runner: leases queued runs, hands each to an Executor on one of its slots, keeps the
// leases alive with heartbeats, stops a run's process tree as soon as its lease is lost or the
// run is cancelled, and records how each run ended with one guarded transition.

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runner/executor.h"
#include "runner/lease_source.h"
#include "store/store.h"

namespace nightshift::runner {

struct RunnerOptions {
  std::string name;                 // lease owner; stable across restarts of one server
  int slots = 2;                    // runs executed at once
  int64_t lease_ttl_ms = 15'000;    // a lease not renewed for this long expires
  int64_t heartbeat_ms = 3'000;     // how often leases are renewed
  int64_t idle_poll_ms = 1'000;     // how often to look for work when not woken
  std::filesystem::path work_root;  // scratch directories for runs live here
};

class Runner final : public store::RunObserver {
 public:
  Runner(LeaseSource& source, Executor& executor, RunnerOptions options);
  ~Runner() override;  // Stop()s

  // Recovers leases this runner's name held before a restart, then starts the slots.
  Status Start();
  // Stops leasing, stops the processes of runs in flight and joins the threads. Runs in flight
  // keep their lease until it expires, then they are requeued. Idempotent.
  void Stop();

  // Called by the store after any run changed: wakes idle slots (new work may be queued) and
  // checks at once whether a run in flight was cancelled. Cheap; never blocks.
  void OnRunChanged(int64_t run_id) override;

  int active_runs() const;

 private:
  // One execution in flight. Keyed by an execution number, not the run id: after losing a
  // lease this runner may lease the same run again while the old execution winds down.
  struct Active {
    int64_t run_id = 0;
    store::Lease lease;
    std::shared_ptr<CancelToken> cancel;
    bool check_now = false;
  };

  void SlotLoop(int slot);
  void HeartbeatLoop();
  void Execute(const store::Run& run);

  LeaseSource& source_;
  Executor& executor_;
  const RunnerOptions options_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;       // slots wait here for work
  std::condition_variable heartbeat_cv_;  // the heartbeat loop waits here
  bool stopping_ = false;                 // GUARDED_BY(mu_)
  uint64_t wake_generation_ = 0;          // GUARDED_BY(mu_)
  uint64_t next_execution_ = 0;           // GUARDED_BY(mu_)
  std::map<uint64_t, Active> active_;     // GUARDED_BY(mu_)
  std::vector<std::thread> threads_;
};

}  // namespace nightshift::runner
