#include "server/event_hub.h"

#include <chrono>

namespace nightshift::server {

void EventHub::OnRunChanged(int64_t run_id) {
  bool watched = false;
  {
    std::lock_guard lock(mu_);
    auto it = runs_.find(run_id);
    if (it != runs_.end()) {
      ++it->second.version;
      watched = true;
    }
  }
  if (watched) cv_.notify_all();
  for (store::RunObserver* next : listeners_) next->OnRunChanged(run_id);
}

void EventHub::Shutdown() {
  {
    std::lock_guard lock(mu_);
    shutdown_ = true;
  }
  cv_.notify_all();
}

EventHub::Subscription::Subscription(EventHub& hub, int64_t run_id) : hub_(hub), run_id_(run_id) {
  std::lock_guard lock(hub_.mu_);
  Watched& w = hub_.runs_[run_id_];
  ++w.subscribers;
  seen_ = w.version;
}

EventHub::Subscription::~Subscription() {
  std::lock_guard lock(hub_.mu_);
  auto it = hub_.runs_.find(run_id_);
  if (it != hub_.runs_.end() && --it->second.subscribers == 0) hub_.runs_.erase(it);
}

bool EventHub::Subscription::WaitForChange(int64_t timeout_ms) {
  std::unique_lock lock(hub_.mu_);
  bool changed = hub_.cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] {
    return hub_.shutdown_ || hub_.runs_[run_id_].version != seen_;
  });
  if (hub_.shutdown_) return false;
  seen_ = hub_.runs_[run_id_].version;
  return changed;
}

}  // namespace nightshift::server
