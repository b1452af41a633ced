#pragma once

// The one way a run starts, and is cancelled: every entry point — the HTTP API, a follow-up
// comment on a change request, and the triggers, schedules and campaigns to come — translates
// its input into a SubmitRequest and calls RunService with the principal that asked. The rules
// live here and nowhere else: which kinds exist, what each needs, models, refs, limits, and
// whether this server can run the kind at all. The principal is recorded on the run
// (`requested_by`).
//
// Thread-safe: every method is one store operation (or a check, then one).

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "forge/builtin.h"
#include "policy/budgets.h"
#include "policy/gate.h"
#include "store/store.h"

namespace nightshift::server {

// Who or what asks. Today the admin token and a change request's commenter; later users,
// tokens, triggers, schedules and campaigns.
struct Principal {
  std::string kind;  // "admin", "comment", …
  std::string name;  // within the kind: the commenter's name; empty for the admin token
  // "admin", "comment:alice": what `requested_by` shows.
  std::string Describe() const;
};

struct SubmitRequest {
  std::string repo;
  std::string ref;                     // empty: the repository's HEAD
  std::optional<store::RunKind> kind;  // unset: agent when there is a task, else recipe
  std::string recipe;
  std::string task;
  std::string model;
  int64_t timeout_seconds = 3600;
  int64_t max_attempts = 3;
  int64_t change_request_id = 0;  // a follow-up of this change request
  // A submitter that may submit the same thing twice (a trigger after a crash) names it: the
  // second Submit answers AlreadyExists.
  std::string idempotency_key;
  std::string trigger;  // what started it, for people (shown with the run and its change request)
  std::string concurrency_key;  // a trigger's: the run becomes the key's run
  // Files for the run's workspace, under .nightshift/context/ (store::RunSpec::context).
  std::map<std::string, std::string> context;
};

// What this server can do, fixed at start.
struct RunCapabilities {
  bool sandbox = false;              // runs execute in a sandbox (needed by agent and prebuild)
  std::vector<std::string> models;   // the configured model names
  double agent_cost_budget_usd = 0;  // what one agent run may spend (agent.max_cost_usd)
};

class RunService {
 public:
  // `gate` may be null: no policy on run.start. `budgets`: the caps runs are admitted under.
  RunService(store::Store& store, forge::BuiltinForge& forge, RunCapabilities capabilities,
             const policy::Gate* gate = nullptr, policy::BudgetsConfig budgets = {})
      : store_(store),
        forge_(forge),
        capabilities_(std::move(capabilities)),
        gate_(gate),
        budgets_(std::move(budgets)) {}

  // Checks `request` and queues the run. InvalidArgument for a bad request (the message names
  // the field), FailedPrecondition for one this server cannot run (no sandbox, no model),
  // NotFound for an unknown repository, ResourceExhausted naming a budget's cap it would exceed
  // (policy/budgets.h), PermissionDenied when the policy forbids it (run.start:
  // the principal; the repository, kind, ref and a trigger's agent as the resource; the task,
  // recipe, model, trigger and the time as the context).
  StatusOr<store::Run> Submit(const SubmitRequest& request, const Principal& principal);
  // Several, under the same rules, queued in one store transaction (a trigger's batch): each
  // one's result, in order. An error of the store as a whole fails every one.
  std::vector<StatusOr<store::Run>> SubmitMany(
      const std::vector<std::pair<SubmitRequest, Principal>>& requests);

  // FailedPrecondition when the run already finished.
  StatusOr<store::Run> Cancel(int64_t run_id, const Principal& principal);

  // The kill switch: `scope` "all" (name empty), "repo" or "agent" (a trigger's or schedule's
  // agent, or "adhoc"). From now on no run in the scope starts — Submit, triggers, schedules and
  // follow-ups answer FailedPrecondition naming the pause — and every queued or running one in
  // it is cancelled now (the runner stops it at once). Pausing what is paused changes nothing
  // but cancels again. The runs cancelled, and the pause.
  struct Paused {
    store::Pause pause;
    std::vector<int64_t> cancelled;
  };
  StatusOr<Paused> Pause(const std::string& scope, const std::string& name,
                         const Principal& principal);
  // NotFound when nothing is paused so.
  Status Resume(const std::string& scope, const std::string& name);
  StatusOr<std::vector<store::Pause>> Pauses() const { return store_.ListPauses(); }

  // A comment on a change request. A "/nightshift <instruction>" on an open one also starts a
  // follow-up run on its branch — for an agent's change request the agent with the instruction
  // as its task and the same model, for a recipe's the instruction as the next command — under
  // the same rules as Submit: a follow-up that would be refused is refused before the comment
  // is stored. Returns the comment and the follow-up run, if any.
  StatusOr<std::pair<store::CrComment, std::optional<store::Run>>> Comment(
      int64_t change_request_id, const std::string& body, const Principal& principal);

  const RunCapabilities& capabilities() const { return capabilities_; }

 private:
  // The request with its defaults filled in, or why it cannot run here.
  StatusOr<store::RunSpec> Check(const SubmitRequest& request) const;
  // PermissionDenied, naming the rule, when the policy forbids `principal` run.start of `spec`.
  Status Permitted(const store::RunSpec& spec, const Principal& principal) const;
  // FailedPrecondition naming the pause when one of `pauses` covers `spec`.
  static Status NotPaused(const std::vector<store::Pause>& pauses, const store::RunSpec& spec,
                          const Principal& principal);

  store::Store& store_;
  forge::BuiltinForge& forge_;
  const RunCapabilities capabilities_;
  // ResourceExhausted naming the cap when `spec`, on top of what is running and what `batch`
  // already admitted, would exceed a budget (policy/budgets.h).
  Status WithinBudgets(const store::RunSpec& spec, const Principal& principal,
                       const std::vector<store::RunSpec>& batch) const;

  const policy::Gate* const gate_;
  const policy::BudgetsConfig budgets_;
  // Checking budgets and queueing the runs they admit is one step: two submissions side by side
  // cannot both take the last room under a cap.
  std::mutex admission_mu_;
};

}  // namespace nightshift::server
