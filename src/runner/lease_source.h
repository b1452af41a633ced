#pragma once

// What a runner needs from the control plane. The embedded runner reads and writes the store
// directly (StoreLeaseSource); a remote runner implements the same calls over the HTTP API,
// so the runner itself does not care where it lives. A run's result goes back the same way
// (Conclude): delivering it — policy, push, change request — is the control plane's.

#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "forge/delivery.h"
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
  // Hands the finished run's result over to the control plane, which delivers it (policy,
  // push, change request: forge/delivery.h) and says how the run ends. The runner holds no
  // forge credentials and no policy: it only reports what the run left. FailedPrecondition
  // when `lease` is no longer held.
  virtual StatusOr<forge::Conclusion> Conclude(int64_t run_id, const store::Lease& lease,
                                               const forge::RunHandover& handover) = 0;
};

// The embedded runner's: the control plane's store and its delivery, in the same process.
class StoreLeaseSource final : public LeaseSource {
 public:
  // `delivery` may be null: nothing is delivered (results are only shown).
  StoreLeaseSource(store::Store& store, forge::Delivery* delivery)
      : store_(store), delivery_(delivery) {}
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
  StatusOr<forge::Conclusion> Conclude(int64_t run_id, const store::Lease& lease,
                                       const forge::RunHandover& handover) override {
    ASSIGN_OR_RETURN(store::Run run, store_.GetRun(run_id));
    if (run.lease_owner != lease.owner || run.attempt != lease.attempt) {
      return FailedPreconditionError(
          StrCat("run ", run_id, " is no longer leased by ", lease.owner));
    }
    if (delivery_ == nullptr) return forge::Conclusion{};
    return delivery_->Conclude(run, handover);
  }

 private:
  store::Store& store_;
  forge::Delivery* const delivery_;
};

}  // namespace nightshift::runner
