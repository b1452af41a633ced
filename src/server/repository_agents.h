#pragma once

// Repositories' own agents (docs/triggers.md): each registered repository's
// `.nightshift/agents.yml` on its default branch, read from the platform's mirror of it — git's
// objects, as bytes, never a checkout — and parsed by triggers::ParseRepositoryAgents. The
// trigger worker only ever reads the snapshot this keeps (Current), so a slow forge never holds
// an event; one thread of its own fetches the mirrors: a repository it has not read yet at once,
// one a push webhook named soon after (Refresh; at most once per min_fetch_interval_ms), every
// one each `refresh_seconds`.
//
// A file that cannot be used (a syntax error, a symlink, too large, a rule broken) leaves the
// repository's agents as they were at the last commit whose file could, and its errors are shown
// with the repository (`nightshift agents`) and logged.

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "core/cancel.h"
#include "core/status.h"
#include "store/store.h"
#include "triggers/agents.h"
#include "workspace/mirror.h"

namespace nightshift::server {

struct RepositoryAgentsOptions {
  std::filesystem::path data_dir;  // the mirrors are <data_dir>/mirrors, shared with the runs
  std::string git = "git";
  triggers::RepositoryAgentsPolicy policy;
  std::map<std::string, triggers::GenericHook> generic_hooks;
  int64_t tick_ms = 1000;  // how often new repositories and pushes are looked at
  // A repository is fetched for a push at most this often: a burst of pushes (or a forge that
  // cannot be reached) costs one fetch per interval, not one per push.
  int64_t min_fetch_interval_ms = 10'000;
  int64_t fetch_timeout_ms = 120'000;  // one repository's fetch at most
};

class RepositoryAgents {
 public:
  RepositoryAgents(store::Store& store, RepositoryAgentsOptions options);
  ~RepositoryAgents();

  // Reads every registered repository's file from its mirror as it is, fetching nothing: the
  // agents known before the first event is processed.
  void LoadLocal();
  // The fetching thread. Not started when the policy disables repository agents.
  void Start();
  void Stop();

  // A push to `repository` arrived: fetch and read it again soon. Never blocks.
  void Refresh(const std::string& repository);
  // Fetches and reads `repository` now (NotFound for an unregistered one; Unavailable when its
  // URL cannot be fetched).
  StatusOr<triggers::RepositoryAgentsFile> RefreshNow(const std::string& repository);

  // The agents in force, by repository. Never null.
  std::shared_ptr<const triggers::RepositoryAgentsMap> Current() const;

 private:
  // Fetches (unless `fetch` is false) and reads one repository, publishing what changed.
  Status Load(const store::Repository& repo, bool fetch);
  // Reads the file at the mirror's default branch into `file` (unchanged when that commit was
  // read before).
  void Read(const store::Repository& repo, const std::filesystem::path& mirror,
            triggers::RepositoryAgentsFile& file);
  void Publish(const std::string& repository, std::optional<triggers::RepositoryAgentsFile> file);
  void Loop();
  workspace::GitContext Git() const;

  store::Store& store_;
  const RepositoryAgentsOptions options_;
  workspace::Mirrors mirrors_;

  mutable std::mutex mu_;
  std::shared_ptr<const triggers::RepositoryAgentsMap> current_;
  std::map<std::string, int64_t> fetched_ms_;  // by repository: when its mirror was last fetched
  std::set<std::string> pushed_;               // waiting for Refresh
  bool poked_ = false;                         // Refresh was called since the last look
  bool stopping_ = false;
  std::condition_variable wake_;
  std::thread thread_;
  std::mutex load_mu_;  // one load at a time (the thread, an API call)
  CancelToken cancel_;  // Stop: a fetch in progress ends now, not at its timeout
};

}  // namespace nightshift::server
