#include "server/server.h"

#include <fcntl.h>
#include <httplib.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>

#include "core/config_node.h"
#include "core/fs.h"
#include "core/log.h"
#include "forge/config.h"
#include "runner/lease_source.h"
#include "runner/recipe_executor.h"
#include "runner/runner.h"
#include "sandbox/cgroups.h"
#include "server/api.h"
#include "server/event_hub.h"
#include "server/hooks.h"
#include "server/task_queue.h"
#include "store/sqlite_store.h"

namespace nightshift::server {
namespace {

std::string Hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

}  // namespace

Server::Server(ServerOptions options, config::ServerConfig config)
    : options_(std::move(options)), config_(std::move(config)) {}

StatusOr<std::unique_ptr<Server>> Server::Open(const ServerOptions& options,
                                               config::ServerConfig config) {
  std::error_code ec;
  ServerOptions resolved = options;
  // Runs execute in other working directories: every path derived from the data dir must be
  // absolute.
  resolved.data_dir = std::filesystem::absolute(options.data_dir, ec);
  if (ec)
    return InternalError(
        StrCat("resolve data dir ", options.data_dir.string(), ": ", ec.message()));
  std::unique_ptr<Server> s(new Server(resolved, std::move(config)));
  const auto& dir = s->options_.data_dir;
  std::filesystem::create_directories(dir, ec);
  if (ec) return InternalError(StrCat("create data dir ", dir.string(), ": ", ec.message()));
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::replace, ec);

  const auto lock_path = dir / "lock";
  s->lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (s->lock_fd_ < 0) return ErrnoError("open", lock_path.string());
  if (::flock(s->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return FailedPreconditionError(
        StrCat("data dir ", dir.string(), " is in use by another nightshift server"));
  }

  const auto token_path = dir / "admin-token";
  std::string token = RandomHex(32);
  Status created = CreateFileExclusive(token_path, token + "\n", 0600);
  if (IsAlreadyExists(created)) {
    ASSIGN_OR_RETURN(std::string existing, ReadFile(token_path));
    while (!existing.empty() && std::isspace(static_cast<unsigned char>(existing.back()))) {
      existing.pop_back();
    }
    if (existing.size() < 16) {
      return FailedPreconditionError(StrCat(token_path.string(), " holds no usable token"));
    }
    token = existing;
  } else if (!created.ok()) {
    return created;
  }
  s->admin_token_ = token;

  std::map<std::string, std::pair<forge::ForgeLink, std::unique_ptr<forge::RemoteForge>>> remotes;
  for (const auto& [repo, link] : s->config_.forges) {
    // Reading the config made the same client to check the link: this fails only for a config
    // that was not read from a file.
    auto remote = forge::MakeRemoteForge(link);
    if (!remote.ok()) return remote.status().WithContext(StrCat("forges.", repo));
    remotes[repo] = std::make_pair(link, std::move(*remote));
  }
  ASSIGN_OR_RETURN(s->store_, store::OpenSqliteStore(dir / "nightshift.db", SystemClock::Get(),
                                                     {.synchronous_full = options.sync_full}));
  s->identities_ =
      std::make_unique<policy::Identities>(*s->store_, s->admin_token_, SystemClock::Get());
  ASSIGN_OR_RETURN(s->audit_,
                   policy::AuditLog::Open(*s->store_, dir / "audit-key", SystemClock::Get()));
  s->gate_ = std::make_unique<policy::Gate>(s->config_.policy.set, s->audit_.get());
  ASSIGN_OR_RETURN(s->vault_,
                   policy::SecretVault::Open(*s->store_, dir / "secrets-key", ProcessEnvironment(),
                                             s->gate_.get(), s->audit_.get()));
  s->hub_ = std::make_unique<EventHub>();
  s->forge_ = std::make_unique<forge::BuiltinForge>(*s->store_, s->config_.identity);
  s->forge_->SetRemotes(std::move(remotes));
  s->forge_->SetGate(s->gate_.get());
  s->store_->SetObserver(s->hub_.get());
  const bool sandboxed = options.sandbox == "on" || (options.sandbox == "auto" && ::geteuid() == 0);
  if (sandboxed && ::geteuid() != 0) {
    return FailedPreconditionError(
        "--sandbox on needs root (namespaces, overlay mounts); use --sandbox off to run recipes "
        "as plain processes");
  }
  // The one submission path, and the control plane's half of a run's end.
  RunCapabilities capabilities{.sandbox = sandboxed,
                               .agent_cost_budget_usd = s->config_.agent.budgets.max_cost_usd};
  for (const auto& [name, model] : s->config_.agent.models) capabilities.models.push_back(name);
  s->run_service_ = std::make_unique<RunService>(*s->store_, *s->forge_, capabilities,
                                                 s->gate_.get(), s->config_.budgets);
  {
    // Triggers: agents as configuration, webhooks and schedules, submitting through the
    // run service.
    // Repositories' own agents, read from their mirrors by a thread of their own.
    s->repository_agents_ = std::make_unique<RepositoryAgents>(
        *s->store_, RepositoryAgentsOptions{.data_dir = dir,
                                            .policy = s->config_.triggers.repository_agents,
                                            .generic_hooks = s->config_.triggers.webhooks.generic});
    TriggerOptions triggers{.config = s->config_.triggers};
    triggers.repository_agents = [agents = s->repository_agents_.get()] {
      return agents->Current();
    };
    triggers.repository_pushed = [agents =
                                      s->repository_agents_.get()](const std::string& repository) {
      agents->Refresh(repository);
    };
    triggers.own.logins = s->config_.triggers.webhooks.bot_logins;
    triggers.own.logins.push_back(s->config_.identity.name);
    triggers.own.comment_marker = std::string(forge::kCommentMarker);
    for (const auto& [repo, link] : s->config_.forges) {
      triggers.forge_names[repo] = link.options.project;
    }
    // A CI failure's context: its failed jobs' log tails, read through the forge adapter, by
    // clients of their own with short timeouts and one retry: the trigger worker waits for them,
    // and a slow forge must not hold every other trigger for minutes.
    auto context_clients =
        std::make_shared<std::map<std::string, std::unique_ptr<forge::RemoteForge>>>();
    for (const auto& [repo, link] : s->config_.forges) {
      forge::ForgeLink quick = link;
      quick.options.timeout_ms = 10'000;
      quick.options.max_retries = 1;
      if (auto client = forge::MakeRemoteForge(quick); client.ok()) {
        (*context_clients)[repo] = std::move(*client);
      }
    }
    triggers.context =
        [context_clients](
            const store::Repository& repo,
            const triggers::TriggerEvent& event) -> StatusOr<std::map<std::string, std::string>> {
      std::map<std::string, std::string> files;
      const std::optional<std::string> ci_run = triggers::FailedCiRun(event);
      auto client = context_clients->find(repo.name);
      if (!ci_run || client == context_clients->end()) return files;
      ASSIGN_OR_RETURN(std::vector<forge::FailedJob> jobs,
                       client->second->FailedJobs(*ci_run, /*tail_bytes=*/48 * 1024,
                                                  /*max_jobs=*/5));
      auto branch = event.fields.find("branch");
      std::string log =
          forge::FailedJobsLog(*ci_run, branch == event.fields.end() ? "" : branch->second, jobs);
      files[StrCat(runner::kContextDir, "ci.log")] = std::move(log);
      return files;
    };
    s->triggers_ = std::make_unique<TriggerService>(*s->store_, *s->run_service_,
                                                    std::move(triggers), SystemClock::Get());
  }
  s->delivery_ =
      std::make_unique<forge::Delivery>(*s->store_, *s->forge_,
                                        forge::DeliveryOptions{.data_dir = dir,
                                                               .review = s->config_.review,
                                                               .gate = s->gate_.get(),
                                                               .vault = s->vault_.get(),
                                                               .audit = s->audit_.get()});
  if (options.runner_slots > 0) {
    s->lease_source_ = std::make_unique<runner::StoreLeaseSource>(*s->store_, s->delivery_.get(),
                                                                  s->gate_.get(), s->vault_.get());
    if (!sandboxed) {
      log::Get("server")->warn("runs execute WITHOUT a sandbox (--sandbox {}{}): recipes only",
                               options.sandbox, options.sandbox == "auto" ? ", not root" : "");
    }
    runner::RecipeOptions recipe{.sandbox = sandboxed,
                                 .limits = {.memory_bytes = options.run_memory_bytes,
                                            .pids = options.run_pids,
                                            .cpus = options.run_cpus},
                                 .masked = {dir},
                                 .host_paths = options.sandbox_host_paths,
                                 .sandbox_uid = sandboxed ? 100000 : ::geteuid(),
                                 .agent = &s->config_.agent};
    if (sandboxed) {
      // Impossible limits or missing host paths would fail every run: refuse them now.
      sandbox::SandboxSpec probe = recipe.SandboxShape(dir);
      probe.limits = recipe.limits;
      if (Status st = sandbox::ValidateSandboxSpec(probe); !st.ok()) {
        return InvalidArgumentError(StrCat("sandbox of the runs: ", st.message()));
      }
      // What a server killed before it could clean up left (its waiting sandboxes' groups).
      if (int stale = sandbox::Cgroup::RemoveStale(/*min_age_seconds=*/60); stale > 0) {
        log::Get("server")->info("removed {} stale sandbox cgroups", stale);
      }
    }
    if (sandboxed && options.warm_sandboxes > 0) {
      auto pool = sandbox::SandboxPool::Start(recipe.SandboxShape(dir), options.warm_sandboxes);
      if (pool.ok()) {
        s->sandbox_pool_ = std::move(*pool);
        recipe.pool = s->sandbox_pool_.get();
      } else {
        log::Get("server")->warn("no warm sandboxes, runs start theirs cold: {}",
                                 pool.status().message());
      }
    }
    s->workspaces_ = std::make_unique<workspace::Workspaces>(
        workspace::WorkspaceOptions{.data_dir = dir,
                                    .cache_max_bytes = options.cache_max_bytes,
                                    .mirror_max_age_ms = options.mirror_max_age_ms,
                                    .sandbox = recipe.SandboxShape(dir),
                                    .pool = recipe.pool,
                                    .git = recipe.git});
    recipe.workspaces = s->workspaces_.get();
    s->executor_ = std::make_unique<runner::RecipeExecutor>(std::move(recipe));
    s->runner_ = std::make_unique<runner::Runner>(
        *s->lease_source_, *s->executor_,
        runner::RunnerOptions{.name = "embedded@" + Hostname(),
                              .slots = options.runner_slots,
                              .lease_ttl_ms = options.lease_ttl_ms,
                              .heartbeat_ms = std::max<int64_t>(options.lease_ttl_ms / 5, 100),
                              .work_root = dir / "work"});
    s->hub_->AddListener(s->runner_.get());
  }
  return s;
}

Server::~Server() {
  Stop();
  if (store_) store_->SetObserver(nullptr);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Status Server::Start() {
  http_ = std::make_unique<httplib::Server>();
  size_t max_threads = static_cast<size_t>(options_.max_connections);
  // httplib owns and deletes the queue it gets from this factory.
  http_->new_task_queue = [max_threads] { return new ElasticTaskQueue(max_threads); };
  http_->set_payload_max_length(options_.max_body_bytes);
  http_->set_keep_alive_max_count(10'000);
  http_->set_read_timeout(30, 0);
  http_->set_tcp_nodelay(true);
  // Debian's compiled httplib listens with a backlog of 5: a burst of new connections (64 API
  // clients, 100 event streams) overflows it and clients wait out SYN retransmits (1-3 s).
  // The options hook sees the listening socket before bind; listen() again after bind raises
  // the backlog (Linux updates it in place).
  int listen_fd = -1;
  http_->set_socket_options([&listen_fd](int fd) {
    httplib::default_socket_options(fd);
    listen_fd = fd;
  });
  api_context_ =
      std::make_unique<ApiContext>(ApiContext{*store_, *hub_, *run_service_, *identities_});
  api_context_->audit = audit_.get();
  api_context_->forge = forge_.get();
  api_context_->vault = vault_.get();
  RegisterApi(*http_, *api_context_);
  RegisterTriggerRoutes(*http_, *api_context_, *triggers_, *repository_agents_, SystemClock::Get());

  port_ = options_.port == 0
              ? http_->bind_to_any_port(options_.host)
              : (http_->bind_to_port(options_.host, options_.port) ? options_.port : -1);
  if (port_ <= 0) {
    return UnavailableError(
        StrCat("cannot listen on ", options_.host, ":", options_.port, ": ", std::strerror(errno)));
  }
  if (listen_fd >= 0 && ::listen(listen_fd, 1024) != 0) return ErrnoError("listen", options_.host);
  reaper_thread_ = std::thread([this] { ReaperLoop(); });
  if (runner_) RETURN_IF_ERROR(runner_->Start());
  // The repositories' agents as their mirrors hold them, before the first event is processed.
  repository_agents_->LoadLocal();
  repository_agents_->Start();
  triggers_->Start();
  http_thread_ = std::thread([this] { http_->listen_after_bind(); });
  // httplib's stop() is a no-op until the accept loop runs, so a stop right after Start()
  // would be lost; and "started" should mean "accepting". Wait for the loop.
  for (int i = 0; i < 25'000 && !http_->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  if (!http_->is_running()) return UnavailableError("the HTTP accept loop did not start");
  return OkStatus();
}

void Server::Stop() {
  if (stopping_.exchange(true)) return;
  if (hub_) hub_->Shutdown();
  if (http_) http_->stop();
  if (http_thread_.joinable()) http_thread_.join();
  if (triggers_) triggers_->Stop();
  if (repository_agents_) repository_agents_->Stop();
  if (runner_) runner_->Stop();
  reaper_cv_.notify_all();
  if (reaper_thread_.joinable()) reaper_thread_.join();
  // The head as this server leaves it, signed: records since the last checkpoint are covered.
  if (audit_) {
    if (Status st = audit_->Checkpoint(); !st.ok()) {
      log::Get("server")->error("cannot sign the audit log's head: {}", st.message());
    }
  }
}

void Server::ReaperLoop() {
  auto log = log::Get("server");
  int64_t interval = std::clamp<int64_t>(options_.lease_ttl_ms / 4, 50, 1000);
  std::unique_lock lock(reaper_mu_);
  while (!stopping_) {
    reaper_cv_.wait_for(lock, std::chrono::milliseconds(interval),
                        [this] { return stopping_.load(); });
    if (stopping_) break;
    auto expired = store_->ExpireLeases();
    if (!expired.ok()) {
      log->warn("expiring leases: {}", expired.status().ToString());
      continue;
    }
    for (const auto& run : *expired) {
      log->info("run {}: {} ({})", run.id, store::RunStateName(run.state), run.reason);
    }
  }
}

namespace {

std::string HostForUrl(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

}  // namespace

int Serve(const ServerOptions& options, const std::filesystem::path& config_file) {
  // Signals are taken synchronously by this thread; every thread started later inherits the
  // mask, so SIGINT/SIGTERM never interrupt a worker.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  config::ServerConfig config;
  if (!config_file.empty()) {
    ConfigErrors errors(config_file.string());
    auto loaded = config::LoadServerConfig(config_file, ProcessEnvironment(), errors);
    if (!loaded.ok()) {
      std::fprintf(stderr, "nightshift: %s\n", loaded.status().message().c_str());
      return 1;
    }
    config = std::move(*loaded);
  }
  auto server = Server::Open(options, std::move(config));
  if (!server.ok()) {
    std::fprintf(stderr, "nightshift: %s\n", server.status().message().c_str());
    return 1;
  }
  if (Status st = (*server)->Start(); !st.ok()) {
    std::fprintf(stderr, "nightshift: %s\n", st.message().c_str());
    return 1;
  }
  std::printf("listening on http://%s:%d\n", HostForUrl(options.host).c_str(), (*server)->port());
  std::printf("admin token in %s\n", (options.data_dir / "admin-token").c_str());
  std::fflush(stdout);

  int sig = 0;
  sigwait(&set, &sig);
  log::Get("server")->info("received signal {}, shutting down", sig);
  (*server)->Stop();
  return 0;
}

}  // namespace nightshift::server
