#include "server/run_service.h"

#include <algorithm>

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

StatusOr<store::Run> RunService::Submit(const SubmitRequest& request, const Principal& principal) {
  return std::move(SubmitMany({{request, principal}}).front());
}

std::vector<StatusOr<store::Run>> RunService::SubmitMany(
    const std::vector<std::pair<SubmitRequest, Principal>>& requests) {
  std::vector<StatusOr<store::Run>> results(requests.size(), InternalError("not submitted"));
  std::vector<store::RunSpec> specs;
  std::vector<size_t> checked;  // the index in `requests` of each of `specs`
  for (size_t i = 0; i < requests.size(); ++i) {
    auto spec = Check(requests[i].first);
    if (!spec.ok()) {
      results[i] = spec.status();
      continue;
    }
    spec->requested_by = requests[i].second.Describe();
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
    follow_up->requested_by = principal.Describe();
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
