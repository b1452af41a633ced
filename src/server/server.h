#pragma once

// The control plane process: owns the data directory (locked against a second server), the
// store, the admin token, the lease reaper, the embedded runner and the HTTP API.

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "config/config.h"
#include "core/clock.h"
#include "core/status.h"
#include "forge/builtin.h"
#include "forge/delivery.h"
#include "policy/identity.h"
#include "policy/secrets.h"
#include "sandbox/pool.h"
#include "server/api.h"
#include "server/repository_agents.h"
#include "server/run_service.h"
#include "server/trigger_service.h"
#include "store/store.h"
#include "workspace/workspace.h"

namespace httplib {
class Server;
}

namespace nightshift::runner {
class Runner;
class RecipeExecutor;
class StoreLeaseSource;
}  // namespace nightshift::runner

namespace nightshift::server {

class EventHub;

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0 picks a free port
  std::filesystem::path data_dir = ".nightshift";
  int runner_slots = 2;  // 0: no embedded runner
  int64_t lease_ttl_ms = 15'000;
  bool sync_full = false;  // fsync every commit (survives power loss), see SqliteOptions
  // "on": every run executes in a sandbox (needs root); "off": plain processes; "auto": on when
  // running as root.
  std::string sandbox = "auto";
  int64_t run_memory_bytes = 0;  // per-run sandbox limits (0 = none)
  int64_t run_pids = 0;
  double run_cpus = 0;
  // Sandboxes kept pre-forked for the next runs (0: every run starts its sandbox cold).
  int warm_sandboxes = 2;
  // Host paths added read-only to every sandboxed run's root, besides the system directories
  // (sandbox::DefaultHostPaths): absolute, existing.
  std::vector<std::filesystem::path> sandbox_host_paths;
  // The workspace cache (checkouts and prebuilds) is kept under this size, LRU first.
  int64_t cache_max_bytes = int64_t{20} << 30;
  int64_t mirror_max_age_ms = 0;  // 0: fetch the repository on every run
  size_t max_body_bytes = 1 << 20;
  int max_connections = 1024;  // concurrent HTTP connections (SSE streams hold one each)
};

class Server {
 public:
  // Creates the data directory (0700) if needed, takes its lock, opens the store and creates
  // the admin token at first start, and wires the parts from `config` (the default one has no
  // models, so runs of kind "agent" are refused). FailedPrecondition if another server holds
  // the lock.
  static StatusOr<std::unique_ptr<Server>> Open(const ServerOptions& options,
                                                config::ServerConfig config = {});
  ~Server();

  // Binds the listening socket, starts the reaper, the runner and the HTTP threads.
  // After it returns OK, port() is the bound port and requests are accepted.
  Status Start();
  // Stops accepting, ends streams, stops the runner. Idempotent.
  void Stop();

  int port() const { return port_; }
  const std::string& admin_token() const { return admin_token_; }
  store::Store& store() { return *store_; }
  // The API's routes behind a token, each with its scope (once started).
  const std::vector<RouteInfo>& routes() const { return api_context_->routes; }

 private:
  Server(ServerOptions options, config::ServerConfig config);
  void ReaperLoop();

  ServerOptions options_;
  // Read by the runner's executor (models, budgets, review policies) for as long as it runs.
  const config::ServerConfig config_;
  int lock_fd_ = -1;
  std::string admin_token_;
  std::unique_ptr<store::Store> store_;
  // After the store, which they use (and so are destroyed before it).
  std::unique_ptr<policy::Identities> identities_;
  std::unique_ptr<policy::AuditLog> audit_;
  std::unique_ptr<policy::Gate> gate_;  // the policy rules, recording into audit_
  std::unique_ptr<policy::SecretVault> vault_;
  std::unique_ptr<EventHub> hub_;
  std::unique_ptr<runner::StoreLeaseSource> lease_source_;
  // Before the runner: the pool's thread is the parent of every sandbox, so it must outlive
  // the runs.
  std::unique_ptr<sandbox::SandboxPool> sandbox_pool_;
  std::unique_ptr<workspace::Workspaces> workspaces_;
  std::unique_ptr<forge::BuiltinForge> forge_;
  std::unique_ptr<RunService> run_service_;
  std::unique_ptr<RepositoryAgents> repository_agents_;
  std::unique_ptr<TriggerService> triggers_;
  std::unique_ptr<forge::Delivery> delivery_;
  std::unique_ptr<runner::RecipeExecutor> executor_;
  std::unique_ptr<runner::Runner> runner_;
  std::unique_ptr<ApiContext> api_context_;
  std::unique_ptr<httplib::Server> http_;
  std::thread http_thread_;
  std::thread reaper_thread_;
  std::atomic<bool> stopping_{false};
  std::mutex reaper_mu_;
  std::condition_variable reaper_cv_;
  int port_ = 0;
};

// `nightshift serve`: reads the config file (config/config.h; none when `config_file` is empty),
// opens and starts a Server, prints "listening on http://HOST:PORT" to stdout, and serves until
// SIGINT or SIGTERM. Returns the process exit code: 1 with one line "nightshift: <reason>" on
// stderr when it cannot start — a config file with errors among them, refused before the data
// directory is touched.
int Serve(const ServerOptions& options, const std::filesystem::path& config_file);

}  // namespace nightshift::server
