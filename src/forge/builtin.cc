#include "forge/builtin.h"

#include "core/clock.h"
#include "core/fs.h"
#include "workspace/git.h"

namespace nightshift::forge {

std::string BranchFor(const store::Run& run) {
  return StrCat("nightshift/", store::RunKindName(run.kind), "/", run.id);
}

StatusOr<store::ChangeRequest> BuiltinForge::Record(
    const store::Run& run, const store::Repository& repo, const std::string& branch,
    const std::string& base_branch, const std::string& base_commit, const std::string& head_commit,
    const std::string& title, const std::string& body, const std::string& diff) {
  if (run.change_request_id != 0) {
    ASSIGN_OR_RETURN(store::ChangeRequest cr, store_.GetChangeRequest(run.change_request_id));
    const store::CrState state = cr.state;
    cr.head_commit = head_commit;
    cr.diff = diff;
    cr.review = store::CrReview::kPending;  // new commits need a new approval
    cr.body = StrCat(cr.body, "\n\n---\nFollow-up run ", run.id, ":\n\n", body);
    return store_.UpdateChangeRequest(cr, state);
  }
  return store_.CreateChangeRequest(store::ChangeRequest{.run_id = run.id,
                                                         .repo_id = repo.id,
                                                         .branch = branch,
                                                         .base_branch = base_branch,
                                                         .base_commit = base_commit,
                                                         .head_commit = head_commit,
                                                         .title = title,
                                                         .body = body,
                                                         .diff = diff});
}

Status BuiltinForge::Publish(store::ChangeRequest& cr, bool follow_up, int64_t run_id) {
  auto it = remotes_.find(cr.repo);
  if (it == remotes_.end()) return OkStatus();
  auto& [link, remote] = it->second;
  if (follow_up && !cr.remote_id.empty()) {
    RETURN_IF_ERROR(remote->Update(cr.remote_id, cr.title, cr.body));
    return remote->Comment(cr.remote_id, StrCat("Updated by follow-up run ", run_id, ": ",
                                                cr.head_commit, "\n\n", kCommentMarker));
  }
  ASSIGN_OR_RETURN(RemoteChangeRequest opened,
                   remote->Open(ChangeRequestDraft{.title = cr.title,
                                                   .body = cr.body,
                                                   .head_branch = cr.branch,
                                                   .base_branch = cr.base_branch,
                                                   .labels = link.labels,
                                                   .draft = link.draft}));
  cr.remote_id = opened.id;
  cr.remote_url = opened.url;
  ASSIGN_OR_RETURN(cr, store_.UpdateChangeRequest(cr, cr.state));
  return OkStatus();
}

StatusOr<store::ChangeRequest> BuiltinForge::GetOpen(int64_t id) {
  ASSIGN_OR_RETURN(store::ChangeRequest cr, store_.GetChangeRequest(id));
  if (cr.state != store::CrState::kOpen) {
    return FailedPreconditionError(
        StrCat("change request ", id, " is ", store::CrStateName(cr.state)));
  }
  return cr;
}

Status BuiltinForge::Permitted(const store::ChangeRequest& cr, std::string_view action,
                               std::string_view by) const {
  if (gate_ == nullptr) return OkStatus();
  policy::Request request{
      .principal = policy::PrincipalOf(by),
      .action = std::string(action),
      .resource = {
          {"repository", cr.repo}, {"branch", cr.branch}, {"base_branch", cr.base_branch}}};
  request.resource["change_request"] = cr.id;
  request.resource["run"] = cr.run_id;
  policy::AddTimeFacts(request.context, SystemClock::Get().NowMs());
  const policy::Decision decision = gate_->Decide(request);
  if (decision.allowed) return OkStatus();
  return PermissionDeniedError(StrCat(action, " of change request ", cr.id, ": ", decision.reason));
}

StatusOr<store::ChangeRequest> BuiltinForge::Approve(int64_t id, std::string_view by) {
  ASSIGN_OR_RETURN(store::ChangeRequest cr, GetOpen(id));
  RETURN_IF_ERROR(Permitted(cr, "cr.approve", by));
  cr.review = store::CrReview::kApproved;
  return store_.UpdateChangeRequest(cr, store::CrState::kOpen);
}

StatusOr<store::ChangeRequest> BuiltinForge::Close(int64_t id) {
  ASSIGN_OR_RETURN(store::ChangeRequest cr, GetOpen(id));
  cr.state = store::CrState::kClosed;
  return store_.UpdateChangeRequest(cr, store::CrState::kOpen);
}

StatusOr<store::ChangeRequest> BuiltinForge::Merge(int64_t id, std::string_view by) {
  ASSIGN_OR_RETURN(store::ChangeRequest cr, GetOpen(id));
  if (cr.review != store::CrReview::kApproved) {
    return FailedPreconditionError(
        StrCat("change request ", id, " is not approved: a person must approve it first"));
  }
  RETURN_IF_ERROR(Permitted(cr, "cr.merge", by));
  ASSIGN_OR_RETURN(store::Repository repo, store_.GetRepository(cr.repo));
  // A bare repository of the platform's own; the merge is computed on trees (merge-tree), so
  // nothing is checked out and no attribute, filter or hook of the repository's has a say.
  ASSIGN_OR_RETURN(auto tmp, MakeTempDir("nightshift-merge"));
  struct Remove {
    std::filesystem::path p;
    ~Remove() { RemoveTreeQuietly(p); }
  } remove{tmp};
  const workspace::GitContext git{.git = git_, .home = tmp};
  auto ok = [&](std::vector<std::string> args, std::string_view what,
                std::map<std::string, std::string> env = {}) -> StatusOr<workspace::GitOutput> {
    args.insert(args.begin(), {"--git-dir", tmp.string()});
    ASSIGN_OR_RETURN(
        workspace::GitOutput r,
        workspace::RunGit(
            git, tmp, workspace::GitCall{.args = std::move(args), .extra_env = std::move(env)}));
    if (r.exit_code != 0) return FailedPreconditionError(StrCat(what, ": ", r.Reason()));
    return r;
  };
  RETURN_IF_ERROR(
      workspace::RunGitOk(git, tmp, {"init", "-q", "--bare", "--template=", "."}, "merge")
          .status());
  RETURN_IF_ERROR(ok({"fetch", "-q", "--no-tags", "--", repo.url,
                      StrCat("+refs/heads/", cr.base_branch, ":refs/heads/base"),
                      StrCat("+refs/heads/", cr.branch, ":refs/heads/cr")},
                     "fetch the branches")
                      .status());
  ASSIGN_OR_RETURN(workspace::GitOutput base,
                   ok({"rev-parse", "--verify", "refs/heads/base"}, "read the target branch"));
  ASSIGN_OR_RETURN(workspace::GitOutput head,
                   ok({"rev-parse", "--verify", "refs/heads/cr"}, "read the change request"));
  if (head.out.empty() || head.out.front() != cr.head_commit) {
    return FailedPreconditionError(
        StrCat("branch ", cr.branch, " moved since it was reviewed; review it again"));
  }
  ASSIGN_OR_RETURN(workspace::GitOutput ancestor,
                   workspace::RunGit(git, tmp,
                                     {"--git-dir", tmp.string(), "merge-base", "--is-ancestor",
                                      "refs/heads/base", "refs/heads/cr"}));
  std::string merged = cr.head_commit;
  if (ancestor.exit_code != 0) {
    ASSIGN_OR_RETURN(
        workspace::GitOutput m,
        workspace::RunGit(git, tmp,
                          {"--git-dir", tmp.string(), "merge-tree", "--write-tree", "--name-only",
                           "--no-messages", "refs/heads/base", "refs/heads/cr"}));
    if (m.exit_code == 1) {
      // The tree, then the conflicted paths.
      std::string files;
      for (size_t i = 1; i < m.out.size() && !m.out[i].empty(); ++i) {
        files += (files.empty() ? "" : " ") + DisplayPath(m.out[i]);
      }
      return FailedPreconditionError(
          StrCat("merge conflict with ", cr.base_branch, " in: ", files.empty() ? "?" : files));
    }
    if (m.exit_code != 0 || m.out.empty()) {
      return FailedPreconditionError(
          StrCat("merge: ", m.last_error.empty() ? "git merge-tree failed" : m.last_error));
    }
    ASSIGN_OR_RETURN(
        workspace::GitOutput commit,
        ok({"commit-tree", m.out.front(), "-p", "refs/heads/base", "-p", "refs/heads/cr", "-m",
            StrCat("Merge change request ", cr.id, ": ", cr.title)},
           "merge",
           {{"GIT_AUTHOR_NAME", identity_.name},
            {"GIT_AUTHOR_EMAIL", identity_.email},
            {"GIT_COMMITTER_NAME", identity_.name},
            {"GIT_COMMITTER_EMAIL", identity_.email}}));
    if (commit.out.empty()) return InternalError("merge: git commit-tree gave no commit");
    merged = commit.out.front();
  }
  // A plain push: refused unless it fast-forwards what we fetched, so nothing is forced.
  std::vector<std::string> push = {"push", "-q", "--no-verify"};
  for (std::string& option : workspace::PushOptionsFor(repo.url)) push.push_back(std::move(option));
  push.insert(push.end(), {"--", repo.url, StrCat(merged, ":refs/heads/", cr.base_branch)});
  RETURN_IF_ERROR(ok(std::move(push), StrCat("push to ", cr.base_branch)).status());
  cr.state = store::CrState::kMerged;
  return store_.UpdateChangeRequest(cr, store::CrState::kOpen);
}

StatusOr<store::CrComment> BuiltinForge::AddComment(int64_t id, const std::string& author,
                                                    const std::string& body) {
  RETURN_IF_ERROR(store_.GetChangeRequest(id).status());
  return store_.AddCrComment(id, author, body);
}

std::optional<std::string> FollowUpInstruction(std::string_view comment) {
  constexpr std::string_view kCommand = "/nightshift ";
  if (!comment.starts_with(kCommand)) return std::nullopt;
  std::string instruction(comment.substr(kCommand.size()));
  while (!instruction.empty() && (instruction.back() == '\n' || instruction.back() == ' ' ||
                                  instruction.back() == '\r' || instruction.back() == '\t')) {
    instruction.pop_back();
  }
  if (instruction.empty()) return std::nullopt;
  return instruction;
}

std::string FollowUpTask(const store::ChangeRequest& cr, std::string_view instruction) {
  return StrCat("Follow-up on change request ", cr.id, " (\"", cr.title,
                "\"), whose branch is checked out. A reviewer asks:\n\n", instruction);
}

}  // namespace nightshift::forge
