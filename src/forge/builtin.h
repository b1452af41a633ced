#pragma once

// The built-in forge: change requests kept in the store, for repositories the platform reaches
// by path or URL. A person approves, merges (fast-forward when possible, else a merge commit
// onto the target branch; a conflict is reported, never forced) or closes; a comment
// "/nightshift <instruction>" asks for a follow-up run on the change request's branch (which the
// run service starts: server/run_service.h).
// The agent never gets here: only the platform's code pushes, and only to nightshift/….

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "core/status.h"
#include "forge/policy.h"
#include "forge/remote.h"
#include "policy/gate.h"
#include "store/store.h"

namespace nightshift::forge {

struct Identity {
  std::string name = "Nightshift";
  std::string email = "nightshift@localhost";
};

class BuiltinForge {
 public:
  BuiltinForge(store::Store& store, Identity identity, std::string git = "git")
      : store_(store), identity_(std::move(identity)), git_(std::move(git)) {}

  // Opens the change request of `run` (or, for a follow-up, moves its head and diff).
  StatusOr<store::ChangeRequest> Record(const store::Run& run, const store::Repository& repo,
                                        const std::string& branch, const std::string& base_branch,
                                        const std::string& base_commit,
                                        const std::string& head_commit, const std::string& title,
                                        const std::string& body, const std::string& diff);

  StatusOr<store::ChangeRequest> Get(int64_t id) { return store_.GetChangeRequest(id); }
  // Approves for `by` ("user:alice", as runs' requested_by writes it). PermissionDenied when
  // the policy forbids it (cr.approve, with the change request as the resource).
  StatusOr<store::ChangeRequest> Approve(int64_t id, std::string_view by);
  // FailedPrecondition unless open and approved, or on a merge conflict (naming the files);
  // PermissionDenied when the policy forbids `by` to merge it (cr.merge).
  StatusOr<store::ChangeRequest> Merge(int64_t id, std::string_view by);
  StatusOr<store::ChangeRequest> Close(int64_t id);
  // Records a comment. (Whether it starts a follow-up run is the run service's to decide:
  // FollowUpInstruction, FollowUpTask.)
  StatusOr<store::CrComment> AddComment(int64_t id, const std::string& author,
                                        const std::string& body);

  // The policy approvals and merges are decided by (policy/gate.h); not owned. Unset: none.
  void SetGate(const policy::Gate* gate) { gate_ = gate; }

  // Also opens change requests on GitHub/GitLab for these repositories (by name).
  void SetRemotes(
      std::map<std::string, std::pair<ForgeLink, std::unique_ptr<RemoteForge>>> remotes) {
    remotes_ = std::move(remotes);
  }
  // Opens (or, after a follow-up, updates and comments on) the change request's counterpart on
  // its repository's hosted forge, if it has one, and records its URL. OkStatus when there is
  // none; the forge's error otherwise (the change request itself stands).
  Status Publish(store::ChangeRequest& cr, bool follow_up, int64_t run_id);

  const Identity& identity() const { return identity_; }

 private:
  // FailedPrecondition unless it is open.
  StatusOr<store::ChangeRequest> GetOpen(int64_t id);
  // PermissionDenied when the policy forbids `by` the action on `cr`.
  Status Permitted(const store::ChangeRequest& cr, std::string_view action,
                   std::string_view by) const;

  std::map<std::string, std::pair<ForgeLink, std::unique_ptr<RemoteForge>>> remotes_;
  store::Store& store_;
  const Identity identity_;
  const std::string git_;
  const policy::Gate* gate_ = nullptr;
};

// "nightshift/<agent>/<run-id>"; agent is the run's kind.
std::string BranchFor(const store::Run& run);

// The instruction of a comment "/nightshift <instruction>", trimmed; nullopt for any other
// comment (or an empty instruction).
std::optional<std::string> FollowUpInstruction(std::string_view comment);

// The task of the agent's follow-up run on `cr` for a reviewer's instruction.
std::string FollowUpTask(const store::ChangeRequest& cr, std::string_view instruction);

}  // namespace nightshift::forge
