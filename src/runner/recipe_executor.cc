#include "runner/recipe_executor.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "agent/loop.h"
#include "agent/process_sandbox.h"
#include "api/events.h"
#include "core/clock.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/log.h"

namespace nightshift::runner {
namespace {

using store::RunState;

Outcome FromProcess(const sandbox::ProcessResult& r, std::string_view what,
                    int32_t timeout_seconds) {
  switch (r.reason) {
    case sandbox::EndReason::kExited:
      if (r.exit_code == 0) return {RunState::kSucceeded, 0, ""};
      return {RunState::kFailed, r.exit_code, StrCat(what, " exited with status ", r.exit_code)};
    case sandbox::EndReason::kSignaled:
      return {RunState::kFailed, r.exit_code,
              StrCat(what, " was killed by signal ", r.exit_code - 128)};
    case sandbox::EndReason::kTimedOut:
      return {RunState::kTimedOut, r.exit_code,
              StrCat(what, " timed out after ", timeout_seconds, " s")};
    case sandbox::EndReason::kCancelled:
      return {RunState::kCancelled, r.exit_code, "cancelled"};
    case sandbox::EndReason::kOom:
      return {RunState::kFailed, r.exit_code, StrCat(what, " ran out of memory (OOM-killed)")};
    case sandbox::EndReason::kPidsLimit:
      return {RunState::kFailed, r.exit_code, StrCat(what, " hit the process limit")};
  }
  return {RunState::kFailed, r.exit_code, "unknown end"};
}

using Phase = api::PhaseTimer<EventWriter>;

// An overlay's writable layer and work dir; the layer is the sandbox's root's (whose uid the
// workspace's root directory takes).
Status MakeUpperDir(const std::filesystem::path& upper, const std::filesystem::path& work,
                    uid_t uid) {
  std::error_code ec;
  for (const auto& dir : {upper, work}) std::filesystem::create_directories(dir, ec);
  if (ec) return InternalError(StrCat("cannot prepare ", upper.string(), ": ", ec.message()));
  if (::chown(upper.c_str(), uid, uid) != 0) return ErrnoError("chown", upper.string());
  return OkStatus();
}

class EventsSink final : public agent::EventSink {
 public:
  explicit EventsSink(EventWriter& events) : events_(events) {}
  void Emit(const api::EventRecord& event) override { events_.Emit(event); }

 private:
  EventWriter& events_;
};

}  // namespace

Status ValidateContextPath(std::string_view path) {
  const std::string_view name =
      path.starts_with(kContextDir) ? path.substr(kContextDir.size()) : std::string_view();
  const bool ok =
      !name.empty() && name.size() <= 100 && name.front() != '.' &&
      std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
      });
  if (!ok) {
    return InvalidArgumentError(
        StrCat("context file '", path, "' must be ", kContextDir, "NAME with a plain name"));
  }
  return OkStatus();
}

namespace {

// Writes the run's context files under `root` (the checkout, or a layer over it).
Status WriteContext(const std::filesystem::path& root,
                    const std::map<std::string, std::string>& context) {
  for (const auto& [path, text] : context) {
    RETURN_IF_ERROR(ValidateContextPath(path));
    std::error_code ec;
    std::filesystem::create_directories(root / kContextDir, ec);
    if (ec) return InternalError(StrCat("cannot create ", (root / kContextDir).string()));
    RETURN_IF_ERROR(WriteFileAtomic(root / path, text, 0644));
  }
  return OkStatus();
}

}  // namespace

Status ValidateRef(std::string_view ref) {
  if (ref.empty()) return OkStatus();
  auto bad = [&](std::string_view why) {
    return InvalidArgumentError(StrCat("invalid ref '", ref, "': ", why));
  };
  if (ref.size() > 255) return bad("longer than 255 characters");
  if (ref.front() == '-') return bad("starts with '-'");
  if (ref.front() == '/' || ref.back() == '/') return bad("starts or ends with '/'");
  if (ref.back() == '.') return bad("ends with '.'");
  if (ref == "@") return bad("is '@'");
  if (ref.find("..") != std::string_view::npos) return bad("contains '..'");
  if (ref.find("//") != std::string_view::npos) return bad("contains '//'");
  if (ref.find("@{") != std::string_view::npos) return bad("contains '@{'");
  if (ref.ends_with(".lock")) return bad("ends with '.lock'");
  for (char c : ref) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == ' ' || c == '~' || c == '^' || c == ':' || c == '?' ||
        c == '*' || c == '[' || c == '\\') {
      return bad("contains a character git does not allow in ref names");
    }
  }
  size_t start = 0;
  while (start <= ref.size()) {
    size_t end = ref.find('/', start);
    std::string_view part =
        ref.substr(start, end == std::string_view::npos ? ref.npos : end - start);
    if (!part.empty() && part.front() == '.') return bad("a component starts with '.'");
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return OkStatus();
}

sandbox::SandboxSpec RecipeOptions::SandboxShape(const std::filesystem::path& workspace) const {
  return sandbox::SandboxSpec{.host_paths = host_paths,
                              .workspace = workspace,
                              .masked = masked,
                              .host_uid = sandbox_uid,
                              .host_gid = sandbox_uid};
}

Outcome RecipeExecutor::Execute(Execution& x) {
  if (options_.workspaces == nullptr) {
    return {RunState::kFailed, std::nullopt, "this runner has no workspaces"};
  }
  workspace::Workspaces& spaces = *options_.workspaces;
  const bool sandboxed = options_.sandbox;
  if (!sandboxed && x.run.kind != store::RunKind::kRecipe) {
    // The run service refuses these on a server without the sandbox; a runner may differ.
    return {RunState::kFailed, std::nullopt,
            StrCat("runs of kind ", store::RunKindName(x.run.kind),
                   " need the sandbox, and this runner has none")};
  }
  if (x.run.kind == store::RunKind::kRecipe && x.authorize) {
    // A recipe's command line is its one `exec`: decided before anything is prepared for it.
    const policy::Decision decision = x.authorize("exec", {}, {{"command", x.run.recipe}});
    if (!decision.allowed) {
      x.events.Emit(api::PolicyEvent{.violations = {decision.reason}});
      return {RunState::kBlockedByPolicy, std::nullopt,
              StrCat("blocked by policy: ", decision.reason)};
    }
  }
  const auto home = x.work_dir / "home";
  std::error_code ec;
  std::filesystem::create_directories(home, ec);
  workspace::GitContext git{
      .git = options_.git,
      .home = home,
      .cancel = &x.cancel,
      .log = [&](std::string_view stream, std::string_view line) { x.events.Log(stream, line); }};
  const std::string repo_key = StrCat(x.repo.id);
  auto log = [&](std::string_view stream, std::string_view line) { x.events.Log(stream, line); };
  auto failed = [&](Phase& phase, const Status& st) -> Outcome {
    if (st.code() == StatusCode::kCancelled || x.cancel.IsCancelled()) {
      phase.End("cancelled");
      return {RunState::kCancelled, std::nullopt, "cancelled"};
    }
    phase.End("failed");
    return {RunState::kFailed, std::nullopt, st.message()};
  };

  Phase fetch_phase(x.events, "fetch");
  auto mirror = spaces.Fetch(repo_key, x.repo.url, git);
  if (!mirror.ok()) return failed(fetch_phase, mirror.status());
  fetch_phase.End("ok");

  // The checkout: cached layers under the run's own upper dir in the sandbox; without it, a
  // private checkout the run writes in place (no overlay mounts without root).
  Phase checkout_phase(x.events, "checkout");
  auto prepared = sandboxed ? spaces.Checkout(repo_key, x.repo.url, *mirror, x.run.ref, git)
                            : spaces.CheckoutCopy(repo_key, x.repo.url, *mirror, x.run.ref,
                                                  x.work_dir / "repo", git);
  if (!prepared.ok()) {
    Status st = prepared.status();
    if (st.code() == StatusCode::kNotFound) {
      st = NotFoundError(StrCat(st.message(), " in repository ", x.repo.name));
    }
    return failed(checkout_phase, st);
  }
  workspace::RunWorkspace& ws = *prepared;
  checkout_phase.End("ok");
  x.events.Emit(
      api::CheckoutEvent{.commit = ws.commit, .ref = x.run.ref, .layers = ws.checkout.ids()});
  if (Status st = x.mark_running(ws.commit); !st.ok()) {
    return {RunState::kCancelled, std::nullopt, st.message()};
  }

  const bool prebuild_run = x.run.kind == store::RunKind::kPrebuild;
  Phase environment_phase(x.events, "environment");
  if (Status st = spaces.Environment(ws, repo_key, /*build=*/sandboxed, /*force=*/prebuild_run, log,
                                     &x.cancel);
      !st.ok()) {
    return failed(environment_phase,
                  st.code() == StatusCode::kInvalidArgument
                      ? InvalidArgumentError(StrCat("environment: ", st.message()))
                      : st);
  }
  x.events.Emit(
      api::EnvironmentEvent{.prebuild = ws.prebuild_status,
                            .prebuild_id = ws.prebuild_id,
                            .setup_commands = static_cast<int64_t>(ws.environment.setup.size()),
                            .sources = ws.environment.sources});
  if (prebuild_run) {
    if (ws.setup_pending) {
      environment_phase.End("failed");
      return {RunState::kFailed, std::nullopt, StrCat("prebuild ", ws.prebuild_status)};
    }
    environment_phase.End("ok");
    return {RunState::kSucceeded, 0,
            ws.prebuild_id.empty() ? "nothing to prebuild: the environment has no setup"
                                   : StrCat("prebuild ", ws.prebuild_status)};
  }

  std::map<std::string, std::string> env = {
      {"PATH", "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"},
      {"HOME", sandboxed ? std::string("/tmp") : home.string()},
      {"LANG", "C.UTF-8"},
      {"TERM", "dumb"},
  };
  for (const auto& [name, value] : ws.environment.env) env[name] = value;
  // The run's secrets, as the policy gives them (never logged: every event is redacted of them
  // by the control plane).
  std::vector<std::string> secret_values;
  if (x.secrets) {
    auto secrets = x.secrets();
    if (!secrets.ok()) {
      return failed(environment_phase,
                    FailedPreconditionError(StrCat("secrets: ", secrets.status().message())));
    }
    for (auto& secret : *secrets) {
      env[secret.name] = secret.value;
      secret_values.push_back(std::move(secret.value));
    }
  }
  env["NIGHTSHIFT_RUN_ID"] = std::to_string(x.run.id);
  env["NIGHTSHIFT_REPO"] = x.repo.name;
  env["NIGHTSHIFT_COMMIT"] = ws.commit;

  if (!sandboxed) {
    // A plain process group in the run's own checkout: development on a machine without root.
    // Nothing is delivered (a change request needs the result read from an overlay).
    if (ws.setup_pending) {
      auto setup = spaces.RunSetupPlain(ws.environment, ws.copy, log, &x.cancel);
      if (!setup.ok()) return failed(environment_phase, setup.status());
      if (!setup->ok) return failed(environment_phase, FailedPreconditionError(setup->reason));
    }
    if (Status st = WriteContext(ws.copy, x.run.context); !st.ok()) {
      return failed(environment_phase, st);
    }
    environment_phase.End("ok");
    Phase agent_phase(x.events, "agent");
    sandbox::ProcessSpec spec{.argv = {"/bin/sh", "-c", x.run.recipe},
                              .working_dir = ws.copy,
                              .env = env,
                              .timeout_ms = int64_t{x.run.timeout_seconds} * 1000};
    auto result = sandbox::RunProcess(spec, log, &x.cancel);
    if (!result.ok()) return failed(agent_phase, result.status());
    Outcome outcome = FromProcess(*result, "recipe", x.run.timeout_seconds);
    agent_phase.End(outcome.state == RunState::kSucceeded   ? "ok"
                    : outcome.state == RunState::kCancelled ? "cancelled"
                                                            : "failed");
    return outcome;
  }

  // The run's own writable layer, on the same filesystem as its work dir.
  const auto upper = x.work_dir / "upper";
  const auto work = x.work_dir / "overlay-work";
  if (Status st = MakeUpperDir(upper, work, options_.sandbox_uid); !st.ok()) {
    return failed(environment_phase, st);
  }
  auto layers = ws.layers();
  const std::string hostname = StrCat("run-", x.run.id);
  if (ws.setup_pending) {
    // Setup writes a layer of its own, placed like a prebuild below the checkout: its products
    // are not the run's work, and the run's upper dir holds only what the run did.
    const auto setup_layer = x.work_dir / "setup";
    const auto setup_work = x.work_dir / "setup-work";
    if (Status st = MakeUpperDir(setup_layer, setup_work, options_.sandbox_uid); !st.ok()) {
      return failed(environment_phase, st);
    }
    auto setup =
        spaces.RunSetup(ws.environment, layers, setup_layer, setup_work, hostname, log, &x.cancel);
    if (!setup.ok()) return failed(environment_phase, setup.status());
    if (!setup->ok) return failed(environment_phase, FailedPreconditionError(setup->reason));
    RemoveTreeQuietly(setup_layer / ".git");  // the checkout's, which always sits above
    layers.push_back(setup_layer);
  }
  if (!x.run.context.empty()) {
    // The platform's files for the run (a CI failure's logs), in a layer of their own: read by
    // the run, never part of what it delivers.
    const auto context_layer = x.work_dir / "context";
    if (Status st = WriteContext(context_layer, x.run.context); !st.ok()) {
      return failed(environment_phase, st);
    }
    layers.push_back(context_layer);
  }
  environment_phase.End("ok");

  Phase agent_phase(x.events, "agent");
  sandbox::ProcessSpec spec{.env = env, .timeout_ms = int64_t{x.run.timeout_seconds} * 1000};
  spec.sandbox = options_.SandboxShape(upper);
  spec.sandbox->workspace_layers = layers;
  spec.sandbox->workspace_work = work;
  spec.sandbox->hostname = hostname;
  spec.sandbox->limits = options_.limits;
  spec.pool = options_.pool;
  // The agent's tools run in the same sandbox as the run.
  agent::ProcessSandbox run_sandbox(spec);
  if (ws.prebuild || ws.setup_pending || !x.run.context.empty()) {
    // Setup's products show as untracked files in the agent's own `git status`: excluded in the
    // run's view of the repository, for the agent's sake. (What the platform delivers never
    // depends on it: see workspace/result.h.)
    auto excluded = run_sandbox.Run(
        "git ls-files -z --others --exclude-standard | tr '\\0' '\\n' | "
        "sed -e 's/[][*?\\\\!#]/\\\\&/g' -e 's|^|/|' >> .git/info/exclude",
        {}, "", 60'000, &x.cancel);
    if (!excluded.ok() || excluded->exit_code != 0) {
      log::Get("runner")->warn("run {}: cannot exclude setup's files from git status: {}", x.run.id,
                               excluded.ok() ? excluded->output : excluded.status().message());
    }
  }

  Outcome outcome;
  std::string summary;
  if (x.run.kind == store::RunKind::kAgent) {
    outcome = RunBuiltinAgent(x, run_sandbox, secret_values, &summary);
  } else {
    spec.argv = {"/bin/sh", "-c", x.run.recipe};
    auto result = sandbox::RunProcess(spec, log, &x.cancel);
    if (!result.ok()) return failed(agent_phase, result.status());
    outcome = FromProcess(*result, "recipe", x.run.timeout_seconds);
  }
  agent_phase.End(outcome.state == RunState::kSucceeded   ? "ok"
                  : outcome.state == RunState::kCancelled ? "cancelled"
                                                          : "failed");
  if (outcome.state == RunState::kCancelled) return outcome;

  // What the run changed, read from its upper dir as data (no git runs in it), handed to the
  // control plane, which commits, checks, pushes and records it (forge/delivery.h).
  forge::RunHandover handover{
      .succeeded = outcome.state == RunState::kSucceeded || !outcome.stopped_at_budget.empty(),
      .summary = summary,
      .base_commit = ws.commit,
      .stopped_at_budget = outcome.stopped_at_budget};
  auto result = workspace::CollectRunResult(
      upper, layers,
      [&](const std::vector<std::string>& tops) {
        return workspace::ListTree(git, ws.mirror, ws.commit, tops);
      },
      ws.commit.size() == 64 ? "sha256" : "sha1");
  if (result.ok()) {
    handover.changes = std::move(result->changes);
  } else {
    handover.error = result.status().message();
    handover.too_large = result.status().code() == StatusCode::kResourceExhausted;
  }
  auto concluded = x.conclude(handover);
  if (!concluded.ok()) {
    if (outcome.state != RunState::kSucceeded) return outcome;
    return {RunState::kFailed, std::nullopt,
            StrCat("cannot hand the result over: ", concluded.status().message())};
  }
  if (concluded->state) {
    outcome.state = *concluded->state;
    outcome.reason = concluded->reason;
  }
  return outcome;
}

Outcome RecipeExecutor::RunBuiltinAgent(Execution& x, agent::Sandbox& sandbox,
                                        const std::vector<std::string>& secrets,
                                        std::string* summary) {
  if (options_.agent == nullptr) {
    return {RunState::kFailed, std::nullopt, "no model is configured (serve --config FILE)"};
  }
  const std::string name = x.run.model.empty() ? "default" : x.run.model;
  auto model = options_.agent->models.find(name);
  if (model == options_.agent->models.end()) {
    return {RunState::kFailed, std::nullopt, StrCat("unknown model '", name, "'")};
  }
  auto client = agent::MakeModelClient(model->second);
  if (!client.ok()) return {RunState::kFailed, std::nullopt, client.status().message()};
  agent::LoopInput input{
      .task = x.run.task,
      .model = model->second,
      .budgets = options_.agent->budgets,
      .tool_output_bytes = static_cast<size_t>(options_.agent->tool_output_bytes),
      .command_timeout_ms = options_.agent->command_timeout_ms,
      .authorize = x.authorize};
  const int64_t run_ms = int64_t{x.run.timeout_seconds} * 1000;
  if (input.budgets.max_wall_ms == 0 || input.budgets.max_wall_ms > run_ms) {
    input.budgets.max_wall_ms = run_ms;
  }
  for (const auto& [n, m] : options_.agent->models) {
    if (!m.api_key.empty()) input.secrets.push_back(m.api_key);
  }
  // The run's own secrets, in every form, never reach the model.
  for (const auto& value : secrets) input.secrets.push_back(value);
  EventsSink sink(x.events);
  agent::LoopResult result = agent::RunAgentLoop(**client, input, sandbox, sink, &x.cancel);
  *summary = result.summary;
  switch (result.end) {
    case agent::LoopResult::End::kFinished:
      return {RunState::kSucceeded, 0, ""};
    case agent::LoopResult::End::kCancelled:
      return {RunState::kCancelled, std::nullopt, "cancelled"};
    case agent::LoopResult::End::kBudget:
      return {RunState::kFailed, std::nullopt,
              StrCat("the agent stopped: ", result.reason, " (its work so far is in the result)"),
              result.reason};
    case agent::LoopResult::End::kModelError:
      return {RunState::kFailed, std::nullopt, result.reason};
  }
  return {RunState::kFailed, std::nullopt, "unknown end"};
}

}  // namespace nightshift::runner
