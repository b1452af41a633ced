#include "server/run_service.h"

#include <algorithm>

#include "core/clock.h"
#include "runner/recipe_executor.h"

namespace nightshift::server {
namespace {

using store::RunKind;

constexpr size_t kMaxTextBytes = 64 * 1024;
constexpr size_t kMaxContextBytes = 1024 * 1024;

}  // namespace

std::string Principal::Describe() const { return name.empty() ? kind : StrCat(kind, ":", name); }

StatusOr<store::RunSpec> RunService::Check(const SubmitRequest& r) const {
  const RunKind kind = r.kind.value_or(r.task.empty() ? RunKind::kRecipe : RunKind::kAgent);
  const std::string_view name = store::RunKindName(kind);
  if (r.repo.empty()) return InvalidArgumentError("'repo' is required");
  if (kind == RunKind::kRecipe && r.recipe.empty()) {
    return InvalidArgumentError("'recipe' (or a 'task' for the agent) is required");
  }
  if (kind != RunKind::kRecipe && !r.recipe.empty()) {
    return InvalidArgumentError(StrCat("a run of kind ", name, " takes no 'recipe'"));
  }
  if (kind != RunKind::kAgent && (!r.task.empty() || !r.model.empty())) {
    return InvalidArgumentError("'task' and 'model' are for runs of kind agent");
  }
  if (kind == RunKind::kAgent && r.task.empty()) return InvalidArgumentError("'task' is required");
  if (r.task.size() > kMaxTextBytes) return InvalidArgumentError("'task' is longer than 64 KiB");
  if (r.recipe.size() > kMaxTextBytes) {
    return InvalidArgumentError("'recipe' is longer than 64 KiB");
  }
  if (r.timeout_seconds < 1 || r.timeout_seconds > 86400) {
    return InvalidArgumentError("'timeout_seconds' must be from 1 to 86400");
  }
  if (r.max_attempts < 1 || r.max_attempts > 10) {
    return InvalidArgumentError("'max_attempts' must be from 1 to 10");
  }
  RETURN_IF_ERROR(runner::ValidateRef(r.ref));
  size_t context_bytes = 0;
  for (const auto& [path, text] : r.context) {
    RETURN_IF_ERROR(runner::ValidateContextPath(path));
    context_bytes += text.size();
  }
  if (context_bytes > kMaxContextBytes) {
    return InvalidArgumentError("the run's context files are larger than 1 MiB");
  }
  // What this server can run.
  if (kind != RunKind::kRecipe && !capabilities_.sandbox) {
    return FailedPreconditionError(
        StrCat("runs of kind ", name,
               " need the sandbox, and this server runs without it (serve --sandbox off, or not "
               "root)"));
  }
  if (kind == RunKind::kAgent) {
    if (capabilities_.models.empty()) {
      return FailedPreconditionError(
          "no model is configured: start the server with --config FILE (docs/agents.md)");
    }
    const std::string wanted = r.model.empty() ? "default" : r.model;
    if (std::find(capabilities_.models.begin(), capabilities_.models.end(), wanted) ==
        capabilities_.models.end()) {
      std::string names;
      for (const auto& m : capabilities_.models) names += (names.empty() ? "" : ", ") + m;
      return InvalidArgumentError(StrCat("unknown model '", wanted, "' (configured: ", names, ")"));
    }
  }
  return store::RunSpec{.repo = r.repo,
                        .ref = r.ref,
                        .recipe = r.recipe,
                        .kind = kind,
                        .task = r.task,
                        .model = r.model,
                        .change_request_id = r.change_request_id,
                        .timeout_seconds = static_cast<int32_t>(r.timeout_seconds),
                        .max_attempts = static_cast<int32_t>(r.max_attempts),
                        .idempotency_key = r.idempotency_key,
                        .trigger = r.trigger,
                        .concurrency_key = r.concurrency_key,
                        .context = r.context};
}

Status RunService::Permitted(const store::RunSpec& spec, const Principal& principal) const {
  if (gate_ == nullptr) return OkStatus();
  policy::Request request{.principal = {.kind = principal.kind, .name = principal.name},
                          .action = "run.start",
                          .resource = {{"repository", spec.repo},
                                       {"kind", std::string(store::RunKindName(spec.kind))},
                                       {"ref", spec.ref}},
                          .context = {{"task", spec.task},
                                      {"recipe", spec.recipe},
                                      {"model", spec.model},
                                      {"trigger", spec.trigger}}};
  if (principal.kind == "trigger" || principal.kind == "schedule") {
    request.resource["agent"] = principal.name;
  }
  if (spec.change_request_id != 0) request.resource["change_request"] = spec.change_request_id;
  policy::AddTimeFacts(request.context, SystemClock::Get().NowMs());
  const policy::Decision decision = gate_->Decide(request);
  if (decision.allowed) return OkStatus();
  return PermissionDeniedError(StrCat("run.start: ", decision.reason));
}

namespace {

// The agent a run acts as (policy::RunPrincipal), from who asked.
std::string AgentOf(const Principal& principal) {
  return (principal.kind == "trigger" || principal.kind == "schedule") && !principal.name.empty()
             ? principal.name
             : "adhoc";
}

// … from a run's requested_by ("schedule:nightly").
std::string AgentOfRequester(const std::string& requested_by) {
  const policy::Principal p = policy::PrincipalOf(requested_by);
  return AgentOf(Principal{.kind = p.kind, .name = p.name});
}

bool Covers(const store::Pause& pause, const std::string& repo, const std::string& agent) {
  return pause.scope == "all" || (pause.scope == "repo" && pause.name == repo) ||
         (pause.scope == "agent" && pause.name == agent);
}

std::string Describe(const store::Pause& pause) {
  return pause.scope == "all"
             ? "everything is paused"
             : StrCat(pause.scope == "repo" ? "repository " : "agent ", pause.name, " is paused");
}

std::string ResumeCommand(const store::Pause& pause) {
  return pause.scope == "all" ? "nightshift resume --all"
                              : StrCat("nightshift resume --", pause.scope, " ", pause.name);
}

}  // namespace

Status RunService::NotPaused(const std::vector<store::Pause>& pauses, const store::RunSpec& spec,
                             const Principal& principal) {
  const std::string agent = AgentOf(principal);
  for (const auto& pause : pauses) {
    if (Covers(pause, spec.repo, agent)) {
      return FailedPreconditionError(StrCat("paused: ", Describe(pause), " (by ", pause.created_by,
                                            "; ", ResumeCommand(pause), ")"));
    }
  }
  return OkStatus();
}

StatusOr<RunService::Paused> RunService::Pause(const std::string& scope, const std::string& name,
                                               const Principal& principal) {
  if (scope != "all" && scope != "repo" && scope != "agent") {
    return InvalidArgumentError("'scope' must be all, repo or agent");
  }
  if ((scope == "all") != name.empty()) {
    return InvalidArgumentError(scope == "all" ? "pausing all takes no name"
                                               : StrCat("pausing a ", scope, " needs its name"));
  }
  if (name.size() > 256) return InvalidArgumentError("the name is longer than 256 bytes");
  if (scope == "repo") RETURN_IF_ERROR(store_.GetRepository(name).status());
  Paused out;
  ASSIGN_OR_RETURN(
      out.pause,
      store_.AddPause({.scope = scope, .name = name, .created_by = principal.Describe()}));
  // What is already queued or running in the scope stops now.
  for (store::RunState state :
       {store::RunState::kQueued, store::RunState::kPreparing, store::RunState::kRunning}) {
    for (int64_t before = 0;;) {
      ASSIGN_OR_RETURN(std::vector<store::Run> runs,
                       store_.ListRuns({.state = state, .before_id = before, .limit = 500}));
      for (const auto& run : runs) {
        if (!Covers(out.pause, run.repo, policy::RunPrincipal(run).name)) continue;
        auto cancelled = store_.CancelRun(
            run.id, StrCat("cancelled: ", Describe(out.pause), " (by ", principal.Describe(), ")"));
        if (cancelled.ok()) out.cancelled.push_back(run.id);
      }
      if (runs.size() < 500) break;
      before = runs.back().id;
    }
  }
  return out;
}

Status RunService::Resume(const std::string& scope, const std::string& name) {
  return store_.RemovePause(scope, name);
}

Status RunService::WithinBudgets(const store::RunSpec& spec, const Principal& principal,
                                 const std::vector<store::RunSpec>& batch) const {
  if (budgets_.empty()) return OkStatus();
  const std::string agent = AgentOf(principal);
  const double reserve =
      spec.kind == store::RunKind::kAgent ? capabilities_.agent_cost_budget_usd : 0;
  const int64_t now = SystemClock::Get().NowMs();
  auto check = [&](const policy::Caps& caps, const std::string& repo, const std::string& who,
                   const std::string& what) -> Status {
    if (caps.empty()) return OkStatus();
    ASSIGN_OR_RETURN(store::Usage usage, store_.GetUsage({.repo = repo,
                                                          .agent = who,
                                                          .hour_since_ms = now - 3'600'000,
                                                          .day_since_ms = now - 86'400'000}));
    // The runs of this batch already admitted count as queued.
    for (const auto& earlier : batch) {
      if ((!repo.empty() && earlier.repo != repo) ||
          (!who.empty() && AgentOfRequester(earlier.requested_by) != who)) {
        continue;
      }
      ++usage.unfinished;
      ++usage.started;
      if (earlier.kind == store::RunKind::kAgent) ++usage.unfinished_agents;
    }
    return policy::CheckCaps(caps, usage, reserve, what);
  };
  RETURN_IF_ERROR(check(budgets_.global, "", "", "everything"));
  if (auto it = budgets_.repositories.find(spec.repo); it != budgets_.repositories.end()) {
    RETURN_IF_ERROR(check(it->second, spec.repo, "", StrCat("repository ", spec.repo)));
  }
  if (auto it = budgets_.agents.find(agent); it != budgets_.agents.end()) {
    RETURN_IF_ERROR(check(it->second, "", agent, StrCat("agent ", agent)));
  }
  return OkStatus();
}

StatusOr<store::Run> RunService::Submit(const SubmitRequest& request, const Principal& principal) {
  return std::move(SubmitMany({{request, principal}}).front());
}

std::vector<StatusOr<store::Run>> RunService::SubmitMany(
    const std::vector<std::pair<SubmitRequest, Principal>>& requests) {
  std::vector<StatusOr<store::Run>> results(requests.size(), InternalError("not submitted"));
  std::unique_lock admission(admission_mu_, std::defer_lock);
  if (!budgets_.empty()) admission.lock();
  auto pauses = store_.ListPauses();
  if (!pauses.ok()) {
    for (auto& r : results) r = pauses.status();
    return results;
  }
  std::vector<store::RunSpec> specs;
  std::vector<size_t> checked;  // the index in `requests` of each of `specs`
  for (size_t i = 0; i < requests.size(); ++i) {
    auto spec = Check(requests[i].first);
    if (!spec.ok()) {
      results[i] = spec.status();
      continue;
    }
    if (Status paused = NotPaused(*pauses, *spec, requests[i].second); !paused.ok()) {
      results[i] = paused;
      continue;
    }
    if (Status permitted = Permitted(*spec, requests[i].second); !permitted.ok()) {
      results[i] = permitted;
      continue;
    }
    spec->requested_by = requests[i].second.Describe();
    if (Status within = WithinBudgets(*spec, requests[i].second, specs); !within.ok()) {
      results[i] = within;
      continue;
    }
    specs.push_back(*std::move(spec));
    checked.push_back(i);
  }
  if (specs.empty()) return results;
  auto created = store_.CreateRuns(specs);
  for (size_t j = 0; j < checked.size(); ++j) {
    results[checked[j]] =
        created.ok() ? std::move((*created)[j]) : StatusOr<store::Run>(created.status());
  }
  return results;
}

StatusOr<store::Run> RunService::Cancel(int64_t run_id, const Principal& principal) {
  return store_.CancelRun(run_id, StrCat("cancelled by ", principal.Describe()));
}

StatusOr<std::pair<store::CrComment, std::optional<store::Run>>> RunService::Comment(
    int64_t change_request_id, const std::string& body, const Principal& principal) {
  if (body.empty()) return InvalidArgumentError("'body' is required");
  if (body.size() > kMaxTextBytes) return InvalidArgumentError("'body' is longer than 64 KiB");
  ASSIGN_OR_RETURN(store::ChangeRequest cr, forge_.Get(change_request_id));
  std::optional<store::RunSpec> follow_up;
  if (auto instruction = forge::FollowUpInstruction(body);
      instruction && cr.state == store::CrState::kOpen) {
    ASSIGN_OR_RETURN(store::Run original, store_.GetRun(cr.run_id));
    SubmitRequest request{.repo = cr.repo,
                          .ref = cr.branch,
                          .kind = original.kind,
                          .timeout_seconds = original.timeout_seconds,
                          .change_request_id = cr.id};
    if (original.kind == RunKind::kAgent) {
      request.task = forge::FollowUpTask(cr, *instruction);
      request.model = original.model;
    } else {
      request.recipe = *instruction;  // a recipe's change request is followed by a command
    }
    ASSIGN_OR_RETURN(follow_up, Check(request));
    ASSIGN_OR_RETURN(std::vector<store::Pause> pauses, store_.ListPauses());
    RETURN_IF_ERROR(NotPaused(pauses, *follow_up, principal));
    RETURN_IF_ERROR(Permitted(*follow_up, principal));
    follow_up->requested_by = principal.Describe();
  }
  std::unique_lock admission(admission_mu_, std::defer_lock);
  if (follow_up && !budgets_.empty()) {
    admission.lock();
    RETURN_IF_ERROR(WithinBudgets(*follow_up, principal, {}));
  }
  ASSIGN_OR_RETURN(
      store::CrComment comment,
      forge_.AddComment(change_request_id, principal.name.empty() ? principal.kind : principal.name,
                        body));
  if (!follow_up) return std::make_pair(comment, std::optional<store::Run>());
  ASSIGN_OR_RETURN(store::Run run, store_.CreateRun(*follow_up));
  return std::make_pair(comment, std::optional<store::Run>(run));
}

}  // namespace nightshift::server
