#pragma once

// What a runner needs from the control plane. The embedded runner reads and writes the store
// directly (StoreLeaseSource); a remote runner implements the same calls over the HTTP API,
// so the runner itself does not care where it lives.

#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/store.h"

namespace nightshift::runner {

class LeaseSource {
 public:
  virtual ~LeaseSource() = default;
  virtual StatusOr<std::optional<store::Run>> Lease(const std::string& owner, int64_t ttl_ms) = 0;
  virtual StatusOr<store::Run> Heartbeat(int64_t run_id, const store::Lease& lease,
                                         int64_t ttl_ms) = 0;
  virtual StatusOr<store::Run> Transition(int64_t run_id, const store::Lease& lease,
                                          const store::Transition& t) = 0;
  virtual StatusOr<int64_t> Append(int64_t run_id, const std::vector<store::NewEvent>& events) = 0;
  virtual StatusOr<store::Run> Get(int64_t run_id) = 0;
  virtual StatusOr<store::Repository> Repository(const std::string& name) = 0;
  // Leases this owner held before a restart are recovered (requeued or failed).
  virtual Status RecoverLeases(const std::string& owner) = 0;
};

class StoreLeaseSource final : public LeaseSource {
 public:
  explicit StoreLeaseSource(store::Store& store) : store_(store) {}
  StatusOr<std::optional<store::Run>> Lease(const std::string& owner, int64_t ttl_ms) override {
    return store_.LeaseRun(owner, ttl_ms);
  }
  StatusOr<store::Run> Heartbeat(int64_t run_id, const store::Lease& lease,
                                 int64_t ttl_ms) override {
    return store_.Heartbeat(run_id, lease, ttl_ms);
  }
  StatusOr<store::Run> Transition(int64_t run_id, const store::Lease& lease,
                                  const store::Transition& t) override {
    return store_.TransitionRun(run_id, lease, t);
  }
  StatusOr<int64_t> Append(int64_t run_id, const std::vector<store::NewEvent>& events) override {
    return store_.AppendEvents(run_id, events);
  }
  StatusOr<store::Run> Get(int64_t run_id) override { return store_.GetRun(run_id); }
  StatusOr<store::Repository> Repository(const std::string& name) override {
    return store_.GetRepository(name);
  }
  Status RecoverLeases(const std::string& owner) override {
    return store_.ExpireLeases(owner).status();
  }

 private:
  store::Store& store_;
};

}  // namespace nightshift::runner
