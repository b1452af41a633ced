#include "workspace/workspace.h"

#include <sodium.h>
#include <sys/utsname.h>

#include "core/clock.h"
#include "core/digest.h"
#include "core/fs.h"
#include "core/json.h"

namespace nightshift::workspace {
namespace {

// Bumped when what a prebuild contains changes meaning.
constexpr const char* kPrebuildFormat = "nightshift-prebuild-1";

const std::vector<std::string>& EnvironmentFiles() {
  static const auto* files =
      new std::vector<std::string>{".devcontainer/devcontainer.json", ".devcontainer.json",
                                   ".nightshift/environment.yml", ".nightshift/environment.yaml"};
  return *files;
}

}  // namespace

std::vector<std::filesystem::path> RunWorkspace::layers() const {
  std::vector<std::filesystem::path> all = checkout.dirs();
  if (prebuild) all.insert(all.end(), prebuild->dirs().begin(), prebuild->dirs().end());
  return all;
}

Workspaces::Workspaces(WorkspaceOptions options)
    : options_(std::move(options)),
      mirrors_(options_.data_dir / "mirrors", options_.mirror_max_age_ms),
      cache_(CacheOptions{.root = options_.data_dir / "cache",
                          .max_bytes = options_.cache_max_bytes,
                          .sandbox_uid = options_.sandbox.host_uid}) {
  if (sodium_init() < 0) std::abort();
  // What a setup command saw of the host: a prebuild made with another root is not reused.
  if (options_.sandbox.rootfs.empty()) {
    struct utsname name {};
    ::uname(&name);
    auto os_release = ReadFile("/etc/os-release");
    base_root_id_ = StrCat("host\n", os_release.ok() ? *os_release : std::string(), "\n",
                           static_cast<const char*>(name.machine));
    for (const auto& path : sandbox::DefaultHostPaths()) base_root_id_ += "\nallowed " + path;
  } else {
    base_root_id_ = StrCat("rootfs\n", options_.sandbox.rootfs.string());
  }
  for (const auto& layer : options_.sandbox.layers) base_root_id_ += "\nlayer " + layer.string();
  for (const auto& path : options_.sandbox.host_paths) {
    base_root_id_ += "\nhost path " + path.string();
  }
}

StatusOr<std::filesystem::path> Workspaces::Fetch(const std::string& repo_key,
                                                  const std::string& url, const GitContext& git) {
  return mirrors_.Sync(repo_key, url, git);
}

StatusOr<std::string> Workspaces::Resolve(const std::string& repo_key, const std::string& url,
                                          const std::filesystem::path& mirror,
                                          const std::string& ref, const GitContext& git) {
  auto commit = Mirrors::Resolve(mirror, ref, git);
  if (!commit.ok() && commit.status().code() == StatusCode::kInternal) {
    // Corrupt (the fetch was a no-op over lost objects): clone it again, once.
    RETURN_IF_ERROR(mirrors_.Sync(repo_key, url, git, /*recreate=*/true).status());
    commit = Mirrors::Resolve(mirror, ref, git);
  }
  return commit;
}

StatusOr<RunWorkspace> Workspaces::Checkout(const std::string& repo_key, const std::string& url,
                                            const std::filesystem::path& mirror,
                                            const std::string& ref, const GitContext& git) {
  RunWorkspace workspace{.mirror = mirror};
  ASSIGN_OR_RETURN(workspace.commit, Resolve(repo_key, url, mirror, ref, git));
  ASSIGN_OR_RETURN(workspace.checkout,
                   cache_.Checkout(repo_key, mirror, url, workspace.commit, git));
  return workspace;
}

StatusOr<RunWorkspace> Workspaces::CheckoutCopy(const std::string& repo_key, const std::string& url,
                                                const std::filesystem::path& mirror,
                                                const std::string& ref,
                                                const std::filesystem::path& dir,
                                                const GitContext& git) {
  RunWorkspace workspace{.mirror = mirror, .copy = dir};
  ASSIGN_OR_RETURN(workspace.commit, Resolve(repo_key, url, mirror, ref, git));
  RETURN_IF_ERROR(WriteCheckout(git, mirror, url, workspace.commit, dir));
  return workspace;
}

std::string Workspaces::PrebuildKey(const EnvironmentSpec& environment,
                                    const std::vector<std::filesystem::path>& layers) const {
  std::string material =
      StrCat(kPrebuildFormat, "\n", base_root_id_, "\n", environment.Canonical());
  std::vector<std::string> locks = DefaultLockFiles();
  locks.insert(locks.end(), environment.lock_files.begin(), environment.lock_files.end());
  auto stack = LayerStack::Open(layers);
  for (const std::string& lock : locks) {
    if (!stack.ok()) break;
    auto content = stack->ReadFile(lock, size_t{64} << 20);
    if (!content.ok()) continue;
    material += StrCat("\nlock ", lock, " ", Sha256Hex(*content));
  }
  return Sha256Hex(material);
}

Status Workspaces::Environment(RunWorkspace& workspace, const std::string& repo_key, bool build,
                               bool force, const sandbox::LineSink& log,
                               const CancelToken* cancel) {
  // The environment files, as the checkout shows them, copied out for the parser.
  ASSIGN_OR_RETURN(auto view, MakeTempDir("nightshift-env"));
  struct Remove {
    std::filesystem::path p;
    ~Remove() { RemoveTreeQuietly(p); }
  } remove{view};
  // Read as data: a symlink anywhere on the way (`.devcontainer -> /somewhere`) is refused,
  // never followed out of the checkout.
  ASSIGN_OR_RETURN(LayerStack stack,
                   LayerStack::Open(workspace.copy.empty()
                                        ? workspace.checkout.dirs()
                                        : std::vector<std::filesystem::path>{workspace.copy}));
  for (const std::string& file : EnvironmentFiles()) {
    auto content = stack.ReadFile(file, size_t{1} << 20);
    if (content.status().code() == StatusCode::kNotFound) continue;
    if (!content.ok()) return InvalidArgumentError(content.status().message());
    std::error_code ec;
    std::filesystem::create_directories((view / file).parent_path(), ec);
    RETURN_IF_ERROR(WriteFileAtomic(view / file, *content));
  }
  ASSIGN_OR_RETURN(workspace.environment, LoadEnvironment(view));
  workspace.prebuild_status = "none";
  if (workspace.environment.setup.empty()) return OkStatus();
  if (!workspace.copy.empty()) {
    // No sandbox, so no layers to keep a prebuild in: the run runs setup in its checkout.
    workspace.setup_pending = true;
    workspace.prebuild_status = "not built (no sandbox: running setup)";
    return OkStatus();
  }

  workspace.prebuild_id =
      StrCat("pb-", repo_key, "-",
             PrebuildKey(workspace.environment, workspace.checkout.dirs()).substr(0, 24));
  if (auto found = cache_.FindPrebuild(workspace.prebuild_id)) {
    workspace.prebuild = std::move(*found);
    workspace.prebuild_status = "reused";
    return OkStatus();
  }
  if (force) cache_.ForgetPrebuildFailure(workspace.prebuild_id);
  if (auto failed = cache_.PrebuildFailure(workspace.prebuild_id); failed || !build) {
    workspace.setup_pending = true;
    workspace.prebuild_status =
        failed ? StrCat("failed: ", *failed) : std::string("not built (running setup)");
    return OkStatus();
  }
  const auto checkout_layers = workspace.checkout.dirs();
  auto built = cache_.Prebuild(
      workspace.prebuild_id,
      [&](const std::filesystem::path& upper, const std::filesystem::path& work) -> Status {
        ASSIGN_OR_RETURN(SetupOutcome outcome, RunSetup(workspace.environment, checkout_layers,
                                                        upper, work, "prebuild", log, cancel));
        if (!outcome.ok) return FailedPreconditionError(outcome.reason);
        return OkStatus();
      });
  if (built.ok()) {
    workspace.prebuild = std::move(*built);
    workspace.prebuild_status = "built";
    return OkStatus();
  }
  if (built.status().code() == StatusCode::kCancelled) return built.status();
  workspace.setup_pending = true;
  workspace.prebuild_status = StrCat("failed: ", built.status().message());
  return OkStatus();
}

namespace {

std::map<std::string, std::string> SetupEnvironment(const EnvironmentSpec& environment,
                                                    const std::string& home) {
  std::map<std::string, std::string> env = {
      {"PATH", "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"},
      {"HOME", home},
      {"LANG", "C.UTF-8"},
      {"TERM", "dumb"},
      {"CI", "true"},
      {"NIGHTSHIFT_SETUP", "1"}};
  for (const auto& [name, value] : environment.env) env[name] = value;
  return env;
}

}  // namespace

StatusOr<SetupOutcome> Workspaces::RunSetupWith(
    const EnvironmentSpec& environment, const sandbox::LineSink& log, const CancelToken* cancel,
    const std::function<sandbox::ProcessSpec(const std::string& command, int64_t left_ms)>&
        make_spec) {
  const int64_t deadline_ms = MonotonicMs() + environment.setup_timeout_seconds * 1000;
  for (size_t i = 0; i < environment.setup.size(); ++i) {
    const std::string& command = environment.setup[i];
    if (log) log("stderr", StrCat("[setup ", i + 1, "/", environment.setup.size(), "] ", command));
    const int64_t left_ms = deadline_ms - MonotonicMs();
    if (left_ms <= 0) {
      return SetupOutcome{
          false, StrCat("setup timed out after ", environment.setup_timeout_seconds, " s")};
    }
    ASSIGN_OR_RETURN(sandbox::ProcessResult result,
                     sandbox::RunProcess(make_spec(command, left_ms), log, cancel));
    if (result.reason == sandbox::EndReason::kCancelled) return CancelledError("cancelled");
    if (result.reason == sandbox::EndReason::kExited && result.exit_code == 0) continue;
    std::string how = result.reason == sandbox::EndReason::kExited
                          ? StrCat("exited with status ", result.exit_code)
                          : std::string(sandbox::EndReasonName(result.reason));
    if (result.reason == sandbox::EndReason::kTimedOut) {
      how = StrCat("timed out (setup_timeout ", environment.setup_timeout_seconds, " s)");
    }
    return SetupOutcome{false, StrCat("setup command ", i + 1, " (", command, ") ", how)};
  }
  return SetupOutcome{true, ""};
}

StatusOr<SetupOutcome> Workspaces::RunSetup(
    const EnvironmentSpec& environment, const std::vector<std::filesystem::path>& layers,
    const std::filesystem::path& upper, const std::filesystem::path& work,
    const std::string& hostname, const sandbox::LineSink& log, const CancelToken* cancel) {
  const auto env = SetupEnvironment(environment, "/tmp");
  return RunSetupWith(environment, log, cancel, [&](const std::string& command, int64_t left_ms) {
    sandbox::ProcessSpec spec{
        .argv = {"/bin/sh", "-c", command}, .env = env, .timeout_ms = left_ms};
    spec.sandbox = options_.sandbox;
    spec.sandbox->workspace = upper;
    spec.sandbox->workspace_layers = layers;
    spec.sandbox->workspace_work = work;
    spec.sandbox->hostname = hostname;
    spec.pool = options_.pool;
    return spec;
  });
}

StatusOr<SetupOutcome> Workspaces::RunSetupPlain(const EnvironmentSpec& environment,
                                                 const std::filesystem::path& dir,
                                                 const sandbox::LineSink& log,
                                                 const CancelToken* cancel) {
  const auto env = SetupEnvironment(environment, (dir.parent_path() / "home").string());
  return RunSetupWith(environment, log, cancel, [&](const std::string& command, int64_t left_ms) {
    return sandbox::ProcessSpec{
        .argv = {"/bin/sh", "-c", command}, .working_dir = dir, .env = env, .timeout_ms = left_ms};
  });
}

}  // namespace nightshift::workspace
