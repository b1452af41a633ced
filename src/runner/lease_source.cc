#include "runner/lease_source.h"

#include <algorithm>

namespace nightshift::runner {
StatusOr<std::shared_ptr<const std::vector<std::string>>> StoreLeaseSource::FormsOf(
    int64_t run_id) {
  {
    std::lock_guard lock(forms_mu_);
    if (auto it = forms_.find(run_id); it != forms_.end()) return it->second;
  }
  ASSIGN_OR_RETURN(store::Run run, store_.GetRun(run_id));
  ASSIGN_OR_RETURN(std::vector<std::string> forms, vault_->FormsForRun(run));
  auto shared = std::make_shared<const std::vector<std::string>>(std::move(forms));
  std::lock_guard lock(forms_mu_);
  if (forms_.size() >= 256) {
    // A run cancelled through the store ends without a transition of the runner's, so its entry
    // is not dropped there: forget those of runs that have ended.
    std::erase_if(forms_, [&](const auto& entry) {
      auto r = store_.GetRun(entry.first);
      return !r.ok() || store::IsTerminal(r->state);
    });
  }
  return forms_.emplace(run_id, std::move(shared)).first->second;
}

StatusOr<int64_t> StoreLeaseSource::Append(int64_t run_id,
                                           const std::vector<store::NewEvent>& events) {
  if (vault_ == nullptr) return store_.AppendEvents(run_id, events);
  // No event of a run is stored unredacted: an error reading its secrets stores nothing.
  ASSIGN_OR_RETURN(auto forms, FormsOf(run_id));
  if (forms->empty()) return store_.AppendEvents(run_id, events);
  std::vector<store::NewEvent> redacted = events;
  for (auto& event : redacted) event.data = policy::RedactEventData(event.data, *forms);
  return store_.AppendEvents(run_id, redacted);
}

StatusOr<store::Run> StoreLeaseSource::Transition(int64_t run_id, const store::Lease& lease,
                                                  const store::Transition& t) {
  store::Transition redacted = t;
  if (vault_ != nullptr && !t.reason.empty()) {
    ASSIGN_OR_RETURN(auto forms, FormsOf(run_id));
    redacted.reason = RedactForms(t.reason, *forms);
  }
  if (store::IsTerminal(t.to)) {
    std::lock_guard lock(forms_mu_);
    forms_.erase(run_id);
  }
  return store_.TransitionRun(run_id, lease, redacted);
}

StatusOr<std::vector<policy::SecretValue>> StoreLeaseSource::Secrets(int64_t run_id,
                                                                     const store::Lease& lease) {
  ASSIGN_OR_RETURN(store::Run run, store_.GetRun(run_id));
  if (run.lease_owner != lease.owner || run.attempt != lease.attempt) {
    return FailedPreconditionError(StrCat("run ", run_id, " is no longer leased by ", lease.owner));
  }
  if (vault_ == nullptr) return std::vector<policy::SecretValue>{};
  return vault_->ForRun(run);
}

}  // namespace nightshift::runner
