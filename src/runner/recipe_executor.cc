#include "runner/recipe_executor.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "agent/loop.h"
#include "agent/process_sandbox.h"
#include "core/clock.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/log.h"
#include "forge/builtin.h"
#include "forge/policy.h"

namespace nightshift::runner {
namespace {

using store::RunState;

std::map<std::string, std::string> BaseEnv(const std::filesystem::path& home) {
  const char* path = std::getenv("PATH");
  return {
      {"PATH", path ? path : "/usr/local/bin:/usr/bin:/bin"},
      {"HOME", home.string()},
      {"LANG", "C.UTF-8"},
      {"TERM", "dumb"},
      {"GIT_TERMINAL_PROMPT", "0"},
      {"GIT_CONFIG_NOSYSTEM", "1"},
  };
}

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

class Phase {
 public:
  Phase(EventWriter& events, std::string name)
      : events_(events), name_(std::move(name)), start_ms_(MonotonicMs()) {
    events_.Emit("phase", Json{{"name", name_}, {"status", "started"}}.dump());
  }
  void End(std::string_view status) {
    events_.Emit(
        "phase",
        Json{{"name", name_}, {"status", status}, {"duration_ms", MonotonicMs() - start_ms_}}
            .dump());
  }

 private:
  EventWriter& events_;
  std::string name_;
  int64_t start_ms_;
};

Status ChownTree(const std::filesystem::path& root, uid_t uid) {
  auto own = [uid](const std::filesystem::path& p) -> Status {
    if (::lchown(p.c_str(), uid, uid) != 0) return ErrnoError("chown", p.string());
    return OkStatus();
  };
  RETURN_IF_ERROR(own(root));
  std::error_code ec;
  for (std::filesystem::recursive_directory_iterator it(root, ec), end; !ec && it != end;
       it.increment(ec)) {
    RETURN_IF_ERROR(own(it->path()));
  }
  if (ec) return InternalError(StrCat("walk ", root.string(), ": ", ec.message()));
  return OkStatus();
}

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
  void Emit(std::string_view kind, const Json& data) override {
    events_.Emit(std::string(kind), data.dump(-1, ' ', false, Json::error_handler_t::replace));
  }

 private:
  EventWriter& events_;
};

constexpr size_t kMaxDiffBytes = 1 << 20;

// The "result" event: the summary, the changed files and the diff (up to 1 MiB), as the
// platform read and committed them.
void EmitResult(Execution& x, const std::string& summary, const workspace::RunResult* result,
                const std::map<std::string, forge::LineCount>& lines, std::string diff,
                int64_t read_ms) {
  Json event = {{"summary", summary}};
  if (result != nullptr) {
    Json files = Json::array();
    for (const auto& change : result->changes) {
      Json file = {{"path", change.path},
                   {"status", change.added()     ? "added"
                              : change.deleted() ? "deleted"
                                                 : "modified"}};
      if (auto it = lines.find(change.path); it != lines.end()) {
        file["added"] = std::to_string(it->second.added);
        file["removed"] = std::to_string(it->second.removed);
      }
      files.push_back(std::move(file));
    }
    event["files"] = std::move(files);
    event["diff_truncated"] = diff.size() > kMaxDiffBytes;
    if (diff.size() > kMaxDiffBytes) diff.resize(kMaxDiffBytes);
    event["diff"] = std::move(diff);
    event["read_ms"] = read_ms;
  }
  x.events.Emit("result", event.dump(-1, ' ', false, Json::error_handler_t::replace));
}

std::string FirstLine(const std::string& text, size_t max) {
  std::string line = text.substr(0, text.find('\n'));
  if (line.size() > max) line = line.substr(0, max - 3) + "...";
  return line;
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

Outcome RecipeExecutor::ExecuteLayered(Execution& x) {
  workspace::Workspaces& spaces = *options_.workspaces;
  const auto home = x.work_dir / "home";
  std::error_code ec;
  std::filesystem::create_directories(home, ec);
  workspace::GitContext git{
      .git = options_.git,
      .home = home,
      .cancel = &x.cancel,
      .log = [&](std::string_view stream, std::string_view line) { x.events.Log(stream, line); }};
  const std::string repo_key = StrCat(x.repo.id);
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

  Phase checkout_phase(x.events, "checkout");
  auto prepared = spaces.Checkout(repo_key, x.repo.url, *mirror, x.run.ref, git);
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
      "checkout",
      Json{{"commit", ws.commit}, {"ref", x.run.ref}, {"layers", ws.checkout.ids()}}.dump());
  if (Status st = x.mark_running(ws.commit); !st.ok()) {
    return {RunState::kCancelled, std::nullopt, st.message()};
  }

  const bool prebuild_run = x.run.kind == "prebuild";
  Phase environment_phase(x.events, "environment");
  if (Status st = spaces.Environment(
          ws, repo_key, /*build=*/true, /*force=*/prebuild_run,
          [&](std::string_view stream, std::string_view line) { x.events.Log(stream, line); },
          &x.cancel);
      !st.ok()) {
    return failed(environment_phase,
                  st.code() == StatusCode::kInvalidArgument
                      ? InvalidArgumentError(StrCat("environment: ", st.message()))
                      : st);
  }
  x.events.Emit("environment", Json{{"prebuild", ws.prebuild_status},
                                    {"prebuild_id", ws.prebuild_id},
                                    {"setup_commands", ws.environment.setup.size()},
                                    {"sources", ws.environment.sources}}
                                   .dump());
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
    auto setup = spaces.RunSetup(
        ws.environment, layers, setup_layer, setup_work, hostname,
        [&](std::string_view stream, std::string_view line) { x.events.Log(stream, line); },
        &x.cancel);
    if (!setup.ok()) return failed(environment_phase, setup.status());
    if (!setup->ok) return failed(environment_phase, FailedPreconditionError(setup->reason));
    RemoveTreeQuietly(setup_layer / ".git");  // the checkout's, which always sits above
    layers.push_back(setup_layer);
  }
  environment_phase.End("ok");

  Phase agent_phase(x.events, "agent");
  std::map<std::string, std::string> env = {
      {"PATH", "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"},
      {"HOME", "/tmp"},
      {"LANG", "C.UTF-8"},
      {"TERM", "dumb"},
  };
  for (const auto& [name, value] : ws.environment.env) env[name] = value;
  env["NIGHTSHIFT_RUN_ID"] = std::to_string(x.run.id);
  env["NIGHTSHIFT_REPO"] = x.repo.name;
  env["NIGHTSHIFT_COMMIT"] = ws.commit;
  sandbox::ProcessSpec spec{.env = env, .timeout_ms = int64_t{x.run.timeout_seconds} * 1000};
  spec.sandbox = options_.SandboxShape(upper);
  spec.sandbox->workspace_layers = layers;
  spec.sandbox->workspace_work = work;
  spec.sandbox->hostname = hostname;
  spec.sandbox->limits = options_.limits;
  spec.pool = options_.pool;
  // The agent's tools run in the same sandbox as the run.
  agent::ProcessSandbox run_sandbox(spec);
  if (ws.prebuild || ws.setup_pending) {
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
  if (x.run.kind == "agent") {
    outcome = RunBuiltinAgent(x, run_sandbox, &summary);
  } else {
    spec.argv = {"/bin/sh", "-c", x.run.recipe};
    auto result = sandbox::RunProcess(
        spec, [&](std::string_view stream, std::string_view line) { x.events.Log(stream, line); },
        &x.cancel);
    if (!result.ok()) return failed(agent_phase, result.status());
    outcome = FromProcess(*result, "recipe", x.run.timeout_seconds);
  }
  agent_phase.End(outcome.state == RunState::kSucceeded   ? "ok"
                  : outcome.state == RunState::kCancelled ? "cancelled"
                                                          : "failed");
  if (outcome.state == RunState::kCancelled) return outcome;
  return Conclude(x, ws, std::move(outcome), summary, upper, layers);
}

Outcome RecipeExecutor::Conclude(Execution& x, const workspace::RunWorkspace& ws, Outcome outcome,
                                 const std::string& summary, const std::filesystem::path& upper,
                                 const std::vector<std::filesystem::path>& layers) {
  const bool succeeded = outcome.state == RunState::kSucceeded;
  auto fail = [&](const Status& st) -> Outcome {
    if (!succeeded) return outcome;
    return {RunState::kFailed, std::nullopt, st.message()};
  };
  // What the run changed, read from its upper dir as data: no git runs in it.
  const int64_t start_ms = MonotonicMs();
  workspace::GitContext git{.git = options_.git, .home = x.work_dir / "home", .cancel = &x.cancel};
  const std::string_view format = ws.commit.size() == 64 ? "sha256" : "sha1";
  auto result = workspace::CollectRunResult(
      upper, layers,
      [&](const std::vector<std::string>& tops) {
        return workspace::ListTree(git, ws.mirror, ws.commit, tops);
      },
      format);
  if (!result.ok()) {
    x.events.Emit("result", Json{{"summary", summary}, {"error", result.status().message()}}.dump(
                                -1, ' ', false, Json::error_handler_t::replace));
    if (result.status().code() == StatusCode::kResourceExhausted && succeeded) {
      return {RunState::kBlockedByPolicy, std::nullopt,
              StrCat("blocked by policy: ", result.status().message())};
    }
    return fail(result.status().WithContext("cannot read the run's result"));
  }
  if (result->changes.empty()) {
    EmitResult(x, summary, &*result, {}, "", MonotonicMs() - start_ms);
    if (!succeeded) return outcome;
    return {RunState::kSucceeded, 0, "nothing to change"};
  }
  // The platform's commit of it, in a repository of the platform's own.
  const std::string what = x.run.kind == "agent" ? x.run.task : StrCat("Run `", x.run.recipe, "`");
  const std::string title = FirstLine(what, 72);
  const forge::Identity who =
      options_.forge != nullptr ? options_.forge->identity() : forge::Identity{};
  auto repo = forge::DeliveryRepo::Create(x.work_dir / "delivery.git", ws.mirror, format, git);
  if (!repo.ok()) return fail(repo.status());
  auto commit = repo->Commit(ws.commit, result->changes, who,
                             StrCat(title, "\n\n", summary.empty() ? what : summary,
                                    "\n\nNightshift-Run: ", x.run.id, "\n"),
                             SystemClock::Get().NowMs() / 1000);
  if (!commit.ok()) return fail(commit.status());
  auto lines = repo->LineCounts(ws.commit, *commit);
  if (!lines.ok()) return fail(lines.status());
  auto diff = repo->Diff(ws.commit, *commit);
  if (!diff.ok()) return fail(diff.status());
  EmitResult(x, summary, &*result, *lines, *diff, MonotonicMs() - start_ms);
  if (!succeeded || options_.forge == nullptr) return outcome;
  return Deliver(x, ws, *repo, *result, *lines, *commit, *diff, title, summary);
}

Outcome RecipeExecutor::Deliver(Execution& x, const workspace::RunWorkspace& ws,
                                forge::DeliveryRepo& repo, const workspace::RunResult& result,
                                const std::map<std::string, forge::LineCount>& lines,
                                const std::string& commit, const std::string& run_diff,
                                const std::string& title, const std::string& summary) {
  Phase phase(x.events, "deliver");
  // The review gate: nothing that breaks the policy leaves the platform.
  forge::ReviewPolicy policy;
  if (options_.review != nullptr) {
    auto it = options_.review->find(x.repo.name);
    if (it == options_.review->end()) it = options_.review->find("");
    if (it != options_.review->end()) policy = it->second;
  }
  const std::vector<std::string> violations =
      forge::CheckChanges(policy, result.changes, lines,
                          [&](const workspace::FileChange& change) -> StatusOr<std::string> {
                            return repo.ReadBlob(change.old_oid, size_t{256} << 20);
                          });
  if (!violations.empty()) {
    x.events.Emit("policy", Json{{"violations", violations}}.dump(-1, ' ', false,
                                                                  Json::error_handler_t::replace));
    phase.End("blocked");
    std::string reasons;
    for (const auto& v : violations) reasons += (reasons.empty() ? "" : "; ") + v;
    return {RunState::kBlockedByPolicy, std::nullopt, StrCat("blocked by policy: ", reasons)};
  }
  // The follow-up of a change request continues its branch (checked out: the run's commit is a
  // child of its head) and its base.
  std::optional<store::ChangeRequest> existing;
  if (x.run.change_request_id != 0) {
    auto cr = options_.forge->Get(x.run.change_request_id);
    if (!cr.ok()) {
      phase.End("failed");
      return {RunState::kFailed, std::nullopt, cr.status().message()};
    }
    existing = *cr;
  }
  const std::string branch = existing ? existing->branch : forge::BranchFor(x.run);
  const std::string base_commit = existing ? existing->base_commit : ws.commit;
  const std::string what = x.run.kind == "agent" ? x.run.task : StrCat("Run `", x.run.recipe, "`");
  std::string files;
  for (const auto& change : result.changes) {
    files += StrCat("- `", forge::DisplayPath(change.path), "`\n");
  }
  const std::string body =
      StrCat(x.run.kind == "agent" ? "**Task**\n\n" : "**Recipe**\n\n", what, "\n\n",
             summary.empty() ? "" : StrCat("**What was done**\n\n", summary, "\n\n"),
             "**Files changed**\n\n", files, "\nNightshift run ", x.run.id, ".");
  // The change request's diff: the run's own, unless a follow-up adds to an earlier base.
  auto diff =
      base_commit == ws.commit ? StatusOr<std::string>(run_diff) : repo.Diff(base_commit, commit);
  if (!diff.ok()) {
    phase.End("failed");
    return {RunState::kFailed, std::nullopt, diff.status().message()};
  }
  // The push, by the platform, of its own commit, from its own repository, to the run's branch.
  if (Status pushed = repo.Push(x.repo.url, commit, branch); !pushed.ok()) {
    phase.End("failed");
    return {RunState::kFailed, std::nullopt,
            StrCat("push of ", branch, " rejected: ", pushed.message())};
  }
  // The base branch: the run's ref when it is a branch, else the repository's default.
  std::string base_branch = existing ? existing->base_branch : x.run.ref;
  if (!existing && (x.run.ref.empty() ||
                    !workspace::ReadGitRefs(ws.mirror).contains("refs/heads/" + x.run.ref))) {
    auto head_file = ReadFile(ws.mirror / "HEAD");  // "ref: refs/heads/<default>"
    constexpr std::string_view kHeadRef = "ref: refs/heads/";
    base_branch = head_file.ok() && head_file->starts_with(kHeadRef)
                      ? head_file->substr(kHeadRef.size(), head_file->find('\n') - kHeadRef.size())
                      : "main";
  }
  auto cr = options_.forge->Record(x.run, x.repo, branch, base_branch, base_commit, commit, title,
                                   body, *diff);
  if (!cr.ok()) {
    phase.End("failed");
    return {RunState::kFailed, std::nullopt, cr.status().message()};
  }
  // Its counterpart on GitHub/GitLab, if the repository has one: an error there leaves the
  // change request (and the pushed branch) as they are, and says so.
  std::string remote_note;
  if (Status published = options_.forge->Publish(*cr, existing.has_value(), x.run.id);
      !published.ok()) {
    remote_note = StrCat("change request ", cr->id, " recorded, but ", published.message());
    x.events.Emit("remote_change_request", Json{{"error", published.message()}}.dump());
  } else if (!cr->remote_url.empty()) {
    x.events.Emit("remote_change_request",
                  Json{{"id", cr->remote_id}, {"url", cr->remote_url}}.dump());
  }
  x.events.Emit("change_request", Json{{"id", cr->id},
                                       {"branch", branch},
                                       {"base_branch", base_branch},
                                       {"head_commit", commit},
                                       {"updated", existing.has_value()}}
                                      .dump());
  phase.End(remote_note.empty() ? "ok" : "partial");
  return {RunState::kSucceeded, 0, remote_note};
}

Outcome RecipeExecutor::RunBuiltinAgent(Execution& x, agent::Sandbox& sandbox,
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
      .command_timeout_ms = options_.agent->command_timeout_ms};
  const int64_t run_ms = int64_t{x.run.timeout_seconds} * 1000;
  if (input.budgets.max_wall_ms == 0 || input.budgets.max_wall_ms > run_ms) {
    input.budgets.max_wall_ms = run_ms;
  }
  for (const auto& [n, m] : options_.agent->models) {
    if (!m.api_key.empty()) input.secrets.push_back(m.api_key);
  }
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
              StrCat("the agent stopped: ", result.reason, " (its work so far is in the result)")};
    case agent::LoopResult::End::kModelError:
      return {RunState::kFailed, std::nullopt, result.reason};
  }
  return {RunState::kFailed, std::nullopt, "unknown end"};
}

Outcome RecipeExecutor::Execute(Execution& x) {
  if (options_.sandbox && options_.workspaces != nullptr) return ExecuteLayered(x);
  if (x.run.kind == "prebuild") {
    return {RunState::kFailed, std::nullopt, "prebuilds need the sandbox (serve --sandbox on)"};
  }
  const std::filesystem::path home = x.work_dir / "home";
  const std::filesystem::path checkout = x.work_dir / "repo";
  std::error_code ec;
  std::filesystem::create_directories(home, ec);
  if (ec)
    return {RunState::kFailed, std::nullopt, StrCat("create ", home.string(), ": ", ec.message())};
  const auto env = BaseEnv(home);

  // Runs git, logging its output; stdout lines are also collected for the caller.
  auto git = [&](std::vector<std::string> args, const std::filesystem::path& cwd,
                 std::vector<std::string>* out) -> StatusOr<sandbox::ProcessResult> {
    args.insert(args.begin(), options_.git);
    sandbox::ProcessSpec spec{
        .argv = std::move(args), .working_dir = cwd, .env = env, .timeout_ms = 10 * 60 * 1000};
    return sandbox::RunProcess(
        spec,
        [&](std::string_view stream, std::string_view line) {
          if (out != nullptr && stream == "stdout") {
            out->emplace_back(line);
          } else {
            x.events.Log(stream, line);
          }
        },
        &x.cancel);
  };

  Phase checkout_phase(x.events, "checkout");
  auto cloned = git({"clone", "--quiet", "--no-checkout", "--", x.repo.url, checkout.string()},
                    x.work_dir, nullptr);
  if (!cloned.ok()) return {RunState::kFailed, std::nullopt, cloned.status().ToString()};
  if (cloned->reason != sandbox::EndReason::kExited || cloned->exit_code != 0) {
    checkout_phase.End("failed");
    Outcome o = FromProcess(*cloned, "git clone", 600);
    if (o.state == RunState::kFailed) o.reason = StrCat("cannot clone ", x.repo.url);
    return o;
  }

  std::string commit;
  std::vector<std::string> candidates;
  if (x.run.ref.empty()) {
    candidates = {"HEAD"};
  } else {
    candidates = {"refs/remotes/origin/" + x.run.ref, "refs/tags/" + x.run.ref, x.run.ref};
  }
  for (const std::string& candidate : candidates) {
    std::vector<std::string> out;
    auto r = git({"rev-parse", "--verify", "--quiet", "--end-of-options", candidate + "^{commit}"},
                 checkout, &out);
    if (!r.ok()) return {RunState::kFailed, std::nullopt, r.status().ToString()};
    if (r->reason == sandbox::EndReason::kCancelled)
      return {RunState::kCancelled, std::nullopt, "cancelled"};
    if (r->exit_code == 0 && !out.empty()) {
      commit = out.front();
      break;
    }
    if (r->exit_code != 1) {  // 1: no such ref; anything else: git itself could not run
      checkout_phase.End("failed");
      return {RunState::kFailed, std::nullopt,
              StrCat("cannot resolve ref: git rev-parse exited with status ", r->exit_code)};
    }
  }
  if (commit.empty()) {
    checkout_phase.End("failed");
    return {RunState::kFailed, std::nullopt,
            StrCat("unknown ref '", x.run.ref.empty() ? "HEAD" : x.run.ref, "' in repository ",
                   x.repo.name)};
  }
  auto checked = git({"checkout", "--quiet", "--detach", commit}, checkout, nullptr);
  if (!checked.ok()) return {RunState::kFailed, std::nullopt, checked.status().ToString()};
  if (checked->reason != sandbox::EndReason::kExited || checked->exit_code != 0) {
    checkout_phase.End("failed");
    Outcome o = FromProcess(*checked, "git checkout", 600);
    if (o.state == RunState::kFailed) o.reason = StrCat("cannot check out ", commit);
    return o;
  }
  checkout_phase.End("ok");
  x.events.Emit("checkout", Json{{"commit", commit}, {"ref", x.run.ref}}.dump());

  if (Status st = x.mark_running(commit); !st.ok()) {
    return {RunState::kCancelled, std::nullopt, st.message()};
  }

  // The environment, without the sandbox: setup runs in the checkout before every run (there
  // are no prebuild layers to keep its result in).
  Phase environment_phase(x.events, "environment");
  auto environment = workspace::LoadEnvironment(checkout);
  if (!environment.ok()) {
    environment_phase.End("failed");
    return {RunState::kFailed, std::nullopt,
            StrCat("environment: ", environment.status().message())};
  }
  auto recipe_env = env;
  for (const auto& [name, value] : environment->env) recipe_env[name] = value;
  for (size_t i = 0; i < environment->setup.size(); ++i) {
    x.events.Log("stderr", StrCat("[setup ", i + 1, "/", environment->setup.size(), "] ",
                                  environment->setup[i]));
    sandbox::ProcessSpec setup{.argv = {"/bin/sh", "-c", environment->setup[i]},
                               .working_dir = checkout,
                               .env = recipe_env,
                               .timeout_ms = environment->setup_timeout_seconds * 1000};
    auto r = sandbox::RunProcess(
        setup, [&](std::string_view stream, std::string_view line) { x.events.Log(stream, line); },
        &x.cancel);
    if (!r.ok()) {
      environment_phase.End("failed");
      return {RunState::kFailed, std::nullopt, r.status().ToString()};
    }
    Outcome o =
        FromProcess(*r, StrCat("setup command ", i + 1), environment->setup_timeout_seconds);
    if (o.state != RunState::kSucceeded) {
      environment_phase.End("failed");
      return o;
    }
  }
  environment_phase.End("ok");

  Phase agent_phase(x.events, "agent");
  recipe_env["NIGHTSHIFT_RUN_ID"] = std::to_string(x.run.id);
  recipe_env["NIGHTSHIFT_REPO"] = x.repo.name;
  recipe_env["NIGHTSHIFT_COMMIT"] = commit;
  sandbox::ProcessSpec spec{.argv = {"/bin/sh", "-c", x.run.recipe},
                            .working_dir = checkout,
                            .env = recipe_env,
                            .timeout_ms = int64_t{x.run.timeout_seconds} * 1000};
  if (options_.sandbox) {
    // Root inside is the unprivileged sandbox uid outside: the checkout must be its own.
    if (Status st = ChownTree(checkout, options_.sandbox_uid); !st.ok()) {
      agent_phase.End("failed");
      return {RunState::kFailed, std::nullopt, st.message()};
    }
    spec.working_dir.clear();  // /workspace
    spec.env["HOME"] = "/tmp";
    spec.sandbox = options_.SandboxShape(checkout);
    spec.sandbox->hostname = StrCat("run-", x.run.id);
    spec.sandbox->limits = options_.limits;
    spec.pool = options_.pool;
  }
  auto result = sandbox::RunProcess(
      spec, [&](std::string_view stream, std::string_view line) { x.events.Log(stream, line); },
      &x.cancel);
  if (!result.ok()) {
    agent_phase.End("failed");
    return {RunState::kFailed, std::nullopt, result.status().ToString()};
  }
  Outcome outcome = FromProcess(*result, "recipe", x.run.timeout_seconds);
  agent_phase.End(outcome.state == RunState::kSucceeded ? "ok" : "failed");
  return outcome;
}

}  // namespace nightshift::runner
