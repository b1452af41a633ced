#include "server/task_queue.h"

#include <chrono>
#include <thread>

namespace nightshift::server {

void ElasticTaskQueue::enqueue(std::function<void()> fn) {
  std::lock_guard lock(mu_);
  jobs_.push_back(std::move(fn));
  // Idle workers only leave `idle_` once they wake, so several jobs may be queued against the
  // same idle worker: start a thread whenever queued jobs outnumber the workers that will take
  // them. A job never waits behind a long-lived one.
  if (jobs_.size() > idle_ && live_ < max_threads_) {
    ++live_;
    std::thread(&ElasticTaskQueue::Worker, this).detach();
  } else {
    cv_.notify_one();
  }
}

void ElasticTaskQueue::shutdown() {
  std::unique_lock lock(mu_);
  shutdown_ = true;
  cv_.notify_all();
  done_cv_.wait(lock, [this] { return live_ == 0; });
}

size_t ElasticTaskQueue::live_threads() const {
  std::lock_guard lock(mu_);
  return live_;
}

void ElasticTaskQueue::Worker() {
  std::unique_lock lock(mu_);
  for (;;) {
    ++idle_;
    bool got = cv_.wait_for(lock, std::chrono::milliseconds(idle_ms_),
                            [this] { return shutdown_ || !jobs_.empty(); });
    --idle_;
    if (jobs_.empty() && (shutdown_ || !got)) break;
    auto fn = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    fn();
    lock.lock();
  }
  // Notify under the lock: the queue may be destroyed as soon as shutdown() sees live_ == 0.
  if (--live_ == 0) done_cv_.notify_all();
}

}  // namespace nightshift::server
