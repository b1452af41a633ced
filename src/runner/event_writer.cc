#include "runner/event_writer.h"

#include <chrono>

#include "core/clock.h"

namespace nightshift::runner {

EventWriter::EventWriter(LeaseSource& source, int64_t run_id, int64_t flush_interval_ms,
                         size_t max_batch)
    : source_(source),
      run_id_(run_id),
      flush_interval_ms_(flush_interval_ms),
      max_batch_(max_batch),
      flusher_([this] { FlusherLoop(); }) {}

EventWriter::~EventWriter() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  flusher_.join();
  (void)Flush();
}

void EventWriter::Log(std::string_view stream, std::string_view line) {
  // Output is untrusted bytes; Serialize replaces invalid UTF-8 rather than rejecting it.
  Emit(api::LogEvent{.stream = std::string(stream), .line = std::string(line)});
}

void EventWriter::Emit(const api::EventRecord& event) {
  std::string data = event.Serialize();
  bool full = false;
  {
    std::lock_guard lock(mu_);
    // Stamped now: the batch reaches the store up to a flush interval later.
    pending_.push_back(
        store::NewEvent{std::string(event.kind()), std::move(data), SystemClock::Get().NowMs()});
    full = pending_.size() >= max_batch_;
  }
  if (full) cv_.notify_all();
}

Status EventWriter::Flush() {
  Status st = AppendPending();
  std::lock_guard lock(mu_);
  if (st.ok()) std::swap(st, error_);
  return st;
}

Status EventWriter::AppendPending() {
  // Lock order: append_mu_, then mu_ (never the other way round). mu_ is held only to take the
  // batch, so Log() never waits for the store.
  std::lock_guard order(append_mu_);
  std::vector<store::NewEvent> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(pending_);
  }
  if (batch.empty()) return OkStatus();
  return source_.Append(run_id_, batch).status();
}

void EventWriter::FlusherLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::milliseconds(flush_interval_ms_),
                 [this] { return stopping_ || pending_.size() >= max_batch_; });
    lock.unlock();
    Status st = AppendPending();
    lock.lock();
    if (!st.ok() && error_.ok()) error_ = st;
  }
}

}  // namespace nightshift::runner
