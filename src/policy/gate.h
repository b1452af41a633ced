#pragma once

// Where the platform asks the policy engine and acts on its answer (docs/governance.md): the
// rules in force, and the audit log that records every deny and every allow by an `audit` rule,
// with the rules that decided. One Gate per server; thread-safe.

#include <memory>
#include <mutex>
#include <string>

#include "policy/audit.h"
#include "policy/engine.h"
#include "store/model.h"

namespace nightshift::policy {

// The principal a run acts as: kind "agent", named after the agent that started it (a trigger's
// or schedule's agent: "nightly-deps", "acme/api/fixer") or "adhoc" for a run someone started
// by hand; its attributes say which run (`run`), who or what asked (`requested_by`, e.g.
// "user:alice"), and the run's kind (`kind`: agent, recipe, prebuild).
Principal RunPrincipal(const store::Run& run);

// A principal that is not a run: a caller of the API, a trigger, a schedule — "user:alice" as
// runs' requested_by writes it.
Principal PrincipalOf(std::string_view described);

// The time facts every request's context may use: `hour` (0-23) and `weekday` ("mon" … "sun"),
// in UTC, at `now_ms`.
void AddTimeFacts(Attributes& context, int64_t now_ms);

class Gate {
 public:
  // `audit` may be null: nothing is recorded.
  Gate(std::shared_ptr<const PolicySet> set, AuditLog* audit)
      : set_(std::move(set)), audit_(audit) {}

  // Decides, and records a deny or an audited allow (actor, action, resource, the decision,
  // the rules and the reason; the context's strings cut to 512 bytes).
  Decision Decide(const Request& request, int64_t run_id = 0) const;

  // A run's own request: its principal (RunPrincipal), and the run's repository and ref in the
  // resource unless `resource` says otherwise.
  Decision DecideForRun(const store::Run& run, std::string action, Attributes resource,
                        Attributes context) const;

  std::shared_ptr<const PolicySet> set() const;

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const PolicySet> set_;  // GUARDED_BY(mu_)
  AuditLog* const audit_;
};

}  // namespace nightshift::policy
