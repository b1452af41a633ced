#pragma once

// What a runner needs from the control plane. The embedded runner reads and writes the store
// directly (StoreLeaseSource); a remote runner implements the same calls over the HTTP API,
// so the runner itself does not care where it lives. A run's result goes back the same way
// (Conclude): delivering it — policy, push, change request — is the control plane's.

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/digest.h"
#include "core/status.h"
#include "forge/delivery.h"
#include "policy/gate.h"
#include "policy/secrets.h"
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
  // Whether the run may do `action` now, by the control plane's policy (policy/gate.h), which
  // records what it must: "exec" with the command line as the context's `command`,
  // "file.write" with the path as the resource's. FailedPrecondition when `lease` is no longer
  // held.
  virtual StatusOr<policy::Decision> Authorize(int64_t run_id, const store::Lease& lease,
                                               const std::string& action,
                                               policy::Attributes resource,
                                               policy::Attributes context) = 0;
  // The secrets the run gets, as environment variables (policy/secrets.h): those in its scope
  // that the policy permits, each read recorded. FailedPrecondition when `lease` is no longer
  // held.
  virtual StatusOr<std::vector<policy::SecretValue>> Secrets(int64_t run_id,
                                                             const store::Lease& lease) = 0;
};

// The embedded runner's: the control plane's store and its delivery, in the same process.
class StoreLeaseSource final : public LeaseSource {
 public:
  // `delivery` may be null: nothing is delivered (results are only shown). `gate` may be null:
  // every action is allowed. `vault` may be null: no secrets. With a vault, every event a run
  // appends is redacted of every form of the secrets in its scope before it is stored.
  StoreLeaseSource(store::Store& store, forge::Delivery* delivery,
                   const policy::Gate* gate = nullptr, const policy::SecretVault* vault = nullptr)
      : store_(store), delivery_(delivery), gate_(gate), vault_(vault) {}
  StatusOr<std::optional<store::Run>> Lease(const std::string& owner, int64_t ttl_ms) override {
    return store_.LeaseRun(owner, ttl_ms);
  }
  StatusOr<store::Run> Heartbeat(int64_t run_id, const store::Lease& lease,
                                 int64_t ttl_ms) override {
    return store_.Heartbeat(run_id, lease, ttl_ms);
  }
  StatusOr<store::Run> Transition(int64_t run_id, const store::Lease& lease,
                                  const store::Transition& t) override;
  StatusOr<int64_t> Append(int64_t run_id, const std::vector<store::NewEvent>& events) override;
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
  StatusOr<policy::Decision> Authorize(int64_t run_id, const store::Lease& lease,
                                       const std::string& action, policy::Attributes resource,
                                       policy::Attributes context) override {
    ASSIGN_OR_RETURN(store::Run run, store_.GetRun(run_id));
    if (run.lease_owner != lease.owner || run.attempt != lease.attempt) {
      return FailedPreconditionError(
          StrCat("run ", run_id, " is no longer leased by ", lease.owner));
    }
    if (gate_ == nullptr) return policy::Decision{.allowed = true, .reason = "no policy"};
    return gate_->DecideForRun(run, action, std::move(resource), std::move(context));
  }
  StatusOr<std::vector<policy::SecretValue>> Secrets(int64_t run_id,
                                                     const store::Lease& lease) override;

 private:
  // The forms of the run's secrets, read once per run (and forgotten when it ends).
  StatusOr<std::shared_ptr<const std::vector<std::string>>> FormsOf(int64_t run_id);

  store::Store& store_;
  forge::Delivery* const delivery_;
  const policy::Gate* const gate_;
  const policy::SecretVault* const vault_;
  std::mutex forms_mu_;
  std::map<int64_t, std::shared_ptr<const std::vector<std::string>>> forms_;  // by run
};

}  // namespace nightshift::runner
