#include "server/repository_agents.h"

#include <charconv>
#include <chrono>
#include <climits>
#include <sstream>

#include "core/log.h"
#include "workspace/git.h"

namespace nightshift::server {
namespace {

using triggers::RepositoryAgentsFile;

int64_t SteadyNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

RepositoryAgents::RepositoryAgents(store::Store& store, RepositoryAgentsOptions options)
    : store_(store),
      options_(std::move(options)),
      mirrors_(options_.data_dir / "mirrors"),
      current_(std::make_shared<triggers::RepositoryAgentsMap>()) {}

RepositoryAgents::~RepositoryAgents() { Stop(); }

workspace::GitContext RepositoryAgents::Git() const {
  return workspace::GitContext{.git = options_.git,
                               .home = options_.data_dir / "agents-home",
                               .cancel = &cancel_,
                               .timeout_ms = options_.fetch_timeout_ms};
}

std::shared_ptr<const triggers::RepositoryAgentsMap> RepositoryAgents::Current() const {
  std::lock_guard lock(mu_);
  return current_;
}

void RepositoryAgents::Publish(const std::string& repository,
                               std::optional<RepositoryAgentsFile> file) {
  std::lock_guard lock(mu_);
  auto next = std::make_shared<triggers::RepositoryAgentsMap>(*current_);
  if (file) {
    (*next)[repository] = *std::move(file);
  } else {
    next->erase(repository);
  }
  current_ = std::move(next);
}

void RepositoryAgents::Read(const store::Repository& repo, const std::filesystem::path& mirror,
                            RepositoryAgentsFile& file) {
  const workspace::GitContext git = Git();
  auto fail = [&](const std::string& commit, std::vector<std::string> errors) {
    if (file.failed_commit != commit || file.errors != errors) {
      log::Get("triggers")
          ->warn("{}: its agents stay {}: {}", repo.name,
                 file.commit.empty() ? "none" : "those of " + file.commit,
                 errors.empty() ? "" : errors.front());
    }
    file.failed_commit = commit;
    file.errors = std::move(errors);
  };
  const std::string where = StrCat(repo.name, ":", triggers::kRepositoryAgentsPath);
  auto commit = workspace::Mirrors::Resolve(mirror, "", git);
  if (!commit.ok()) {
    if (commit.status().code() == StatusCode::kNotFound) {  // an empty repository
      file = RepositoryAgentsFile{.repository = repo.name};
      return;
    }
    return fail("", {StrCat(where, ": ", commit.status().message())});
  }
  if (*commit == file.commit || *commit == file.failed_commit) return;  // read before
  // Exactly the two entries that matter, with the file's size, in one call: never a listing of
  // what else a hostile repository put under .nightshift/.
  auto listed = workspace::RunGitOk(
      git, mirror,
      workspace::GitCall{.args = {"ls-tree", "-z", "-l", *commit, "--", ".nightshift",
                                  std::string(triggers::kRepositoryAgentsPath)},
                         .capture_stdout = true,
                         .extra_env = {{"GIT_LITERAL_PATHSPECS", "1"}}},
      "list the agents file");
  if (!listed.ok()) return fail(*commit, {StrCat(where, ": ", listed.status().message())});
  struct Entry {
    uint32_t mode = 0;
    std::string oid;
    std::string size;
  };
  std::map<std::string, Entry> entries;
  for (std::string_view record : workspace::NulRecords(listed->data)) {
    const size_t tab = record.find('\t');
    if (tab == std::string_view::npos) continue;
    std::istringstream fields{std::string(record.substr(0, tab))};
    Entry e;
    std::string mode, type;
    fields >> mode >> type >> e.oid >> e.size;
    std::from_chars(mode.data(), mode.data() + mode.size(), e.mode, 8);
    entries[std::string(record.substr(tab + 1))] = e;
  }
  auto dir = entries.find(".nightshift");
  auto entry = entries.find(std::string(triggers::kRepositoryAgentsPath));
  // git descends into .nightshift only when it is a directory, and then lists the file alone.
  if (entry == entries.end()) {
    if (dir != entries.end() && dir->second.mode != workspace::kModeTree) {
      return fail(*commit, {StrCat(where,
                                   ": .nightshift is not a directory (a symlink or a "
                                   "file is not followed)")});
    }
    file = RepositoryAgentsFile{.repository = repo.name, .commit = *commit};
    return;
  }
  if (entry->second.mode != workspace::kModeFile &&
      entry->second.mode != workspace::kModeExecutable) {
    return fail(*commit,
                {StrCat(where, ": not a regular file (",
                        entry->second.mode == workspace::kModeSymlink ? "a symlink" : "a directory",
                        ", not followed)")});
  }
  const std::string& size_text = entry->second.size;
  uint64_t bytes = 0;
  auto [end, ec] = std::from_chars(size_text.data(), size_text.data() + size_text.size(), bytes);
  if (ec != std::errc() || end != size_text.data() + size_text.size() ||
      bytes > triggers::kMaxRepositoryAgentsBytes) {
    return fail(*commit, {StrCat(where, ": ", size_text, " bytes; at most ",
                                 triggers::kMaxRepositoryAgentsBytes, " are read")});
  }
  auto blob = workspace::RunGitOk(
      git, mirror,
      workspace::GitCall{.args = {"cat-file", "blob", entry->second.oid}, .capture_stdout = true},
      "read the agents file");
  if (!blob.ok()) return fail(*commit, {StrCat(where, ": ", blob.status().message())});
  ConfigErrors errors(where);
  std::vector<triggers::AgentSpec> agents = triggers::ParseRepositoryAgents(
      repo.name, blob->data, options_.generic_hooks, options_.policy, errors);
  if (!errors.empty()) return fail(*commit, errors.Lines());
  file = RepositoryAgentsFile{.repository = repo.name, .commit = *commit, .agents = agents};
  log::Get("triggers")->info("{}: {} agents from {}", repo.name, agents.size(), *commit);
}

Status RepositoryAgents::Load(const store::Repository& repo, bool fetch) {
  std::lock_guard load(load_mu_);
  RepositoryAgentsFile file{.repository = repo.name};
  {
    auto current = Current();
    if (auto it = current->find(repo.name); it != current->end()) file = it->second;
  }
  std::filesystem::path mirror = mirrors_.PathOf(StrCat(repo.id));
  Status fetched = OkStatus();
  if (fetch) {
    auto synced = mirrors_.Sync(StrCat(repo.id), repo.url, Git());
    {
      std::lock_guard lock(mu_);
      fetched_ms_[repo.name] = SteadyNowMs();
    }
    if (!synced.ok()) {
      fetched = synced.status();
      log::Get("triggers")
          ->warn("{}: cannot fetch to read its agents: {}", repo.name, fetched.message());
    }
  }
  std::error_code ec;
  if (std::filesystem::is_regular_file(mirror / "HEAD", ec)) Read(repo, mirror, file);
  Publish(repo.name, std::move(file));
  return fetched;
}

void RepositoryAgents::LoadLocal() {
  if (!options_.policy.enabled) return;
  auto repos = store_.ListRepositories();
  if (!repos.ok()) return;
  for (const store::Repository& repo : *repos) (void)Load(repo, /*fetch=*/false);
}

StatusOr<RepositoryAgentsFile> RepositoryAgents::RefreshNow(const std::string& repository) {
  if (!options_.policy.enabled) {
    return FailedPreconditionError("repositories' own agents are off (repository_agents.enabled)");
  }
  ASSIGN_OR_RETURN(store::Repository repo, store_.GetRepository(repository));
  RETURN_IF_ERROR(Load(repo, /*fetch=*/true));
  auto current = Current();
  auto it = current->find(repository);
  if (it == current->end()) return RepositoryAgentsFile{.repository = repository};
  return it->second;
}

void RepositoryAgents::Refresh(const std::string& repository) {
  if (!options_.policy.enabled) return;
  {
    std::lock_guard lock(mu_);
    // Already waiting: a burst of pushes wakes the thread once, not once each.
    if (!pushed_.insert(repository).second) return;
    poked_ = true;
  }
  wake_.notify_one();
}

void RepositoryAgents::Start() {
  if (!options_.policy.enabled) return;
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void RepositoryAgents::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) cancel_.Cancel();
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void RepositoryAgents::Loop() {
  for (;;) {
    std::set<std::string> pushed;
    std::map<std::string, int64_t> fetched;
    {
      std::unique_lock lock(mu_);
      wake_.wait_for(lock, std::chrono::milliseconds(options_.tick_ms),
                     [&] { return stopping_ || poked_; });
      if (stopping_) return;
      poked_ = false;
      pushed = pushed_;
      fetched = fetched_ms_;
    }
    auto repos = store_.ListRepositories();
    if (!repos.ok()) continue;
    const int64_t refresh_ms = options_.policy.refresh_seconds * 1000;
    std::set<std::string> registered;
    for (const store::Repository& repo : *repos) {
      registered.insert(repo.name);
      auto last = fetched.find(repo.name);
      const int64_t since = last == fetched.end() ? INT64_MAX : SteadyNowMs() - last->second;
      // A push waits out the interval since the last fetch; it stays in pushed_ until then.
      const bool push_due = pushed.contains(repo.name) && since >= options_.min_fetch_interval_ms;
      if (push_due || last == fetched.end() || (refresh_ms > 0 && since >= refresh_ms)) {
        {
          std::lock_guard lock(mu_);
          pushed_.erase(repo.name);
        }
        (void)Load(repo, /*fetch=*/true);
      }
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    {
      std::lock_guard lock(mu_);
      for (auto it = pushed_.begin(); it != pushed_.end();) {
        it = registered.contains(*it) ? std::next(it) : pushed_.erase(it);
      }
    }
    // A repository removed: its agents go with it.
    for (const auto& [name, file] : *Current()) {
      if (!registered.contains(name)) Publish(name, std::nullopt);
    }
  }
}

}  // namespace nightshift::server
