#pragma once

// The repository a run's result is delivered from: the platform's own, made for one delivery.
//
// Trust rule: nothing of the run's workspace is ever a repository here. The run's result enters
// only as data — the changed files' bytes, written into `git fast-import` on its stdin — and
// the one commit is made by the platform, with its identity, on top of the checked-out commit:
// commits the run made, its HEAD, index, hooks, config and attributes never reach it. The
// repository is bare, laid out by the platform (no hooks, no config but the format) in a
// directory the platform owns, and borrows the mirror's objects (alternates); every git
// command runs with the fixed configuration of workspace/git.h. So the diff a reviewer sees is
// git's own over two trees the platform built, and what is pushed is exactly that.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "forge/builtin.h"
#include "forge/policy.h"
#include "policy/gate.h"
#include "policy/secrets.h"
#include "store/store.h"
#include "workspace/git.h"
#include "workspace/mirror.h"
#include "workspace/result.h"

namespace nightshift::forge {

class DeliveryRepo {
 public:
  // Lays out a bare repository in the empty or absent directory `dir`, borrowing the objects of
  // the bare repository `mirror`. `object_format` is "sha1" or "sha256", the mirror's.
  static StatusOr<DeliveryRepo> Create(const std::filesystem::path& dir,
                                       const std::filesystem::path& mirror,
                                       std::string_view object_format, workspace::GitContext git);

  // The commit of `changes` over `parent` (by `author` and `committer`, at `time_s`). Gitlink
  // changes are left out: git cannot hold them as content, and the review policy refuses them.
  StatusOr<std::string> Commit(const std::string& parent,
                               const std::vector<workspace::FileChange>& changes,
                               const Identity& author, const Identity& committer,
                               const std::string& message, int64_t time_s);

  // Lines added and removed per path from `from` to `to` (-1 for a file git takes for binary),
  // renames as a deletion and an addition.
  StatusOr<std::map<std::string, LineCount>> LineCounts(const std::string& from,
                                                        const std::string& to);

  // The unified diff from `from` to `to` that reviewers read (git's own, no external diff or
  // text conversion; binary files as "Binary files … differ").
  StatusOr<std::string> Diff(const std::string& from, const std::string& to);

  // Every path that differs between two commits, with both sides' modes and ids (renames as a
  // deletion and an addition).
  struct RawChange {
    std::string path;
    uint32_t old_mode = 0, new_mode = 0;
    std::string old_oid, new_oid;
  };
  StatusOr<std::vector<RawChange>> RawChanges(const std::string& from, const std::string& to);

  // A blob's bytes, up to `max_bytes`.
  StatusOr<std::string> ReadBlob(const std::string& oid, size_t max_bytes);

  // Pushes `commit` to `url` as refs/heads/`branch`, without force: a branch that moved is
  // refused. Errors carry git's reason.
  Status Push(const std::string& url, const std::string& commit, const std::string& branch);

  const std::filesystem::path& dir() const { return dir_; }

 private:
  DeliveryRepo(std::filesystem::path dir, workspace::GitContext git)
      : dir_(std::move(dir)), git_(std::move(git)) {}
  StatusOr<workspace::GitOutput> Git(workspace::GitCall call, std::string_view what);

  std::filesystem::path dir_;
  workspace::GitContext git_;
};

// Who a run's commit is authored by: the person who asked (a user, or who asked by a comment),
// as "NAME <NAME@users.DOMAIN>" with the platform's email domain; the platform itself for a
// trigger, a schedule or a token that acts for nobody.
Identity AuthorOf(const store::Run& run, const Identity& platform);

// A path as fast-import reads it: as is, or C-quoted when it has a quote, a backslash or a
// control character.
std::string FastImportPath(std::string_view path);

// What a runner hands to the control plane when a run's recipe or agent is done
// (runner::LeaseSource::Conclude). Plain data: the control plane trusts none of it but the
// files' contents, recomputes everything else from its own repositories, and checks the policy
// itself.
struct RunHandover {
  bool succeeded = false;   // the recipe or agent ended well: only then is anything delivered
  std::string summary;      // the agent's account of its work; empty for a recipe
  std::string base_commit;  // the commit the run checked out
  std::vector<workspace::FileChange> changes;  // workspace::CollectRunResult's
  std::string error;       // the result could not be read: why (`changes` is then empty)
  bool too_large = false;  // … because it was too large to review
  // The agent stopped at its budget (steps, tokens, cost, time) before it finished: its work so
  // far is delivered as a draft change request marked so, and the run fails with the reason.
  // `succeeded` is then true, so that it is delivered at all.
  std::string stopped_at_budget;  // the budget's reason; empty: it did not stop so
};

// A handover as JSON, for a runner on another machine (file contents base64-encoded), and
// back: InvalidArgument naming the field for anything malformed.
Json HandoverToJson(const RunHandover& handover);
StatusOr<RunHandover> HandoverFromJson(const Json& json);

// How the control plane ended a run, when it decides: blocked by policy, failed (a push
// refused), or succeeded with "nothing to change" or a partial delivery. Unset `state`: the
// runner's own outcome stands (a run that failed is only shown, never delivered).
struct Conclusion {
  std::optional<store::RunState> state;
  std::string reason;
};

struct DeliveryOptions {
  std::filesystem::path data_dir;  // mirrors/ (shared with the workspaces) and deliveries/
  std::string git = "git";
  std::map<std::string, ReviewPolicy> review;  // by repository name, "" for the rest
  // The policy rules on the run's writes, its push and its change request (policy/gate.h);
  // null: only the review policy. Not owned.
  const policy::Gate* gate = nullptr;
  // The secrets' vault (policy/secrets.h): what is shown of the run is redacted of every form
  // of its secrets, and a file holding one blocks the delivery. Null: no secrets. Not owned.
  const policy::SecretVault* vault = nullptr;
  // Where the platform's pushes and change requests are recorded; null: nowhere. Not owned.
  policy::AuditLog* audit = nullptr;
};

// The deliver phase, in the control plane: the run's result as the platform's commit in a
// delivery repository, its diff in the "result" event, the review policy on it, the push to
// nightshift/<kind>/<run>, the change request and its counterpart on GitHub or GitLab. Events
// go straight to the store. Thread-safe: deliveries of different runs run concurrently.
class Delivery {
 public:
  Delivery(store::Store& store, BuiltinForge& forge, DeliveryOptions options);

  StatusOr<Conclusion> Conclude(const store::Run& run, const RunHandover& handover);

 private:
  const ReviewPolicy& PolicyFor(const std::string& repo) const;

  store::Store& store_;
  BuiltinForge& forge_;
  const DeliveryOptions options_;
  workspace::Mirrors mirrors_;
};

}  // namespace nightshift::forge
