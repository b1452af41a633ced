#pragma once

// Wakes server-sent-event streams when a run changes. The store tells the hub after each
// commit (RunObserver); a stream waits for a newer version of its run, then reads the new
// events from the store itself, so a subscriber that falls behind loses nothing.

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "store/store.h"

namespace nightshift::server {

class EventHub final : public store::RunObserver {
 public:
  // Forwards every notification to `next` too (e.g. the embedded runner). Not owned.
  void AddListener(store::RunObserver* next) { listeners_.push_back(next); }

  void OnRunChanged(int64_t run_id) override;

  // A subscription keeps a run's version counter alive while someone watches it.
  class Subscription {
   public:
    Subscription(EventHub& hub, int64_t run_id);
    ~Subscription();
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;
    // Blocks until the run changed since the last call (true), `timeout_ms` passed, or the hub
    // is shut down (false).
    bool WaitForChange(int64_t timeout_ms);

   private:
    EventHub& hub_;
    int64_t run_id_;
    uint64_t seen_ = 0;
  };

  // Wakes every waiter for good (server shutdown).
  void Shutdown();

 private:
  struct Watched {
    uint64_t version = 0;
    int subscribers = 0;
  };
  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<int64_t, Watched> runs_;  // GUARDED_BY(mu_)
  bool shutdown_ = false;                      // GUARDED_BY(mu_)
  std::vector<store::RunObserver*> listeners_;
};

}  // namespace nightshift::server
