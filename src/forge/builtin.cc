#include "forge/builtin.h"

#include <cstdlib>

#include "core/fs.h"
#include "sandbox/process.h"

namespace nightshift::forge {
namespace {

struct GitRun {
  int exit_code = 0;
  std::string out;
  std::string last_error;
};

StatusOr<GitRun> Git(const std::string& git, const std::filesystem::path& cwd,
                     std::vector<std::string> args, const Identity& who) {
  const char* path = std::getenv("PATH");
  sandbox::ProcessSpec spec{.working_dir = cwd,
                            .env = {{"PATH", path != nullptr ? path : "/usr/bin:/bin"},
                                    {"HOME", cwd.string()},
                                    {"LANG", "C.UTF-8"},
                                    {"GIT_TERMINAL_PROMPT", "0"},
                                    {"GIT_CONFIG_NOSYSTEM", "1"},
                                    {"GIT_CONFIG_GLOBAL", "/dev/null"},
                                    {"GIT_AUTHOR_NAME", who.name},
                                    {"GIT_AUTHOR_EMAIL", who.email},
                                    {"GIT_COMMITTER_NAME", who.name},
                                    {"GIT_COMMITTER_EMAIL", who.email}},
                            .timeout_ms = 5 * 60 * 1000};
  spec.argv = {git};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  GitRun run;
  auto r = sandbox::RunProcess(spec, [&](std::string_view stream, std::string_view line) {
    if (stream == "stdout") {
      run.out += std::string(line) + "\n";
    } else if (!line.empty()) {
      run.last_error = std::string(line);
    }
  });
  if (!r.ok()) return r.status();
  run.exit_code = r->exit_code;
  return run;
}

}  // namespace

std::string BranchFor(const store::Run& run) {
  return StrCat("nightshift/", run.kind, "/", run.id);
}

StatusOr<store::ChangeRequest> BuiltinForge::Record(
    const store::Run& run, const store::Repository& repo, const std::string& branch,
    const std::string& base_branch, const std::string& base_commit, const std::string& head_commit,
    const std::string& title, const std::string& body, const std::string& diff) {
  if (run.change_request_id != 0) {
    ASSIGN_OR_RETURN(store::ChangeRequest cr, store_.GetChangeRequest(run.change_request_id));
    const std::string state = cr.state;
    cr.head_commit = head_commit;
    cr.diff = diff;
    cr.review = "pending";  // new commits need a new approval
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
    return remote->Comment(cr.remote_id,
                           StrCat("Updated by follow-up run ", run_id, ": ", cr.head_commit));
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
  if (cr.state != "open") {
    return FailedPreconditionError(StrCat("change request ", id, " is ", cr.state));
  }
  return cr;
}

StatusOr<store::ChangeRequest> BuiltinForge::Approve(int64_t id) {
  ASSIGN_OR_RETURN(store::ChangeRequest cr, GetOpen(id));
  cr.review = "approved";
  return store_.UpdateChangeRequest(cr, "open");
}

StatusOr<store::ChangeRequest> BuiltinForge::Close(int64_t id) {
  ASSIGN_OR_RETURN(store::ChangeRequest cr, GetOpen(id));
  cr.state = "closed";
  return store_.UpdateChangeRequest(cr, "open");
}

StatusOr<store::ChangeRequest> BuiltinForge::Merge(int64_t id) {
  ASSIGN_OR_RETURN(store::ChangeRequest cr, GetOpen(id));
  if (cr.review != "approved") {
    return FailedPreconditionError(
        StrCat("change request ", id, " is not approved: a person must approve it first"));
  }
  ASSIGN_OR_RETURN(store::Repository repo, store_.GetRepository(cr.repo));
  ASSIGN_OR_RETURN(auto tmp, MakeTempDir("nightshift-merge"));
  struct Remove {
    std::filesystem::path p;
    ~Remove() { RemoveTreeQuietly(p); }
  } remove{tmp};
  auto ok = [&](std::vector<std::string> args, std::string_view what) -> StatusOr<GitRun> {
    ASSIGN_OR_RETURN(GitRun r, Git(git_, tmp, std::move(args), identity_));
    if (r.exit_code != 0) {
      return FailedPreconditionError(
          StrCat(what, ": ", r.last_error.empty() ? "git failed" : r.last_error));
    }
    return r;
  };
  RETURN_IF_ERROR(ok({"init", "-q", "-b", "nightshift-merge", "."}, "merge").status());
  RETURN_IF_ERROR(ok({"fetch", "-q", "--no-tags", "--", repo.url,
                      StrCat("+refs/heads/", cr.base_branch, ":refs/heads/base"),
                      StrCat("+refs/heads/", cr.branch, ":refs/heads/cr")},
                     "fetch the branches")
                      .status());
  ASSIGN_OR_RETURN(GitRun base, ok({"rev-parse", "refs/heads/base"}, "read the target branch"));
  ASSIGN_OR_RETURN(GitRun head, ok({"rev-parse", "refs/heads/cr"}, "read the change request"));
  if (head.out.substr(0, 40) != cr.head_commit) {
    return FailedPreconditionError(
        StrCat("branch ", cr.branch, " moved since it was reviewed; review it again"));
  }
  ASSIGN_OR_RETURN(GitRun ancestor,
                   Git(git_, tmp, {"merge-base", "--is-ancestor", "base", "cr"}, identity_));
  std::string merged = "cr";
  if (ancestor.exit_code != 0) {
    RETURN_IF_ERROR(ok({"checkout", "-q", "base"}, "check out the target branch").status());
    ASSIGN_OR_RETURN(GitRun m, Git(git_, tmp,
                                   {"merge", "-q", "--no-ff", "-m",
                                    StrCat("Merge change request ", cr.id, ": ", cr.title), "cr"},
                                   identity_));
    if (m.exit_code != 0) {
      ASSIGN_OR_RETURN(GitRun conflicts,
                       Git(git_, tmp, {"diff", "--name-only", "--diff-filter=U"}, identity_));
      std::string files = conflicts.out;
      for (char& c : files) c = c == '\n' ? ' ' : c;
      while (!files.empty() && files.back() == ' ') files.pop_back();
      return FailedPreconditionError(
          StrCat("merge conflict with ", cr.base_branch, " in: ", files.empty() ? "?" : files));
    }
    merged = "HEAD";
  }
  // A plain push: refused unless it fast-forwards what we fetched, so nothing is forced.
  RETURN_IF_ERROR(ok({"push", "-q", "--", repo.url, StrCat(merged, ":refs/heads/", cr.base_branch)},
                     StrCat("push to ", cr.base_branch))
                      .status());
  cr.state = "merged";
  return store_.UpdateChangeRequest(cr, "open");
}

StatusOr<std::pair<store::CrComment, int64_t>> BuiltinForge::Comment(int64_t id,
                                                                     const std::string& author,
                                                                     const std::string& body) {
  ASSIGN_OR_RETURN(store::ChangeRequest cr, store_.GetChangeRequest(id));
  ASSIGN_OR_RETURN(store::CrComment comment, store_.AddCrComment(id, author, body));
  constexpr std::string_view kCommand = "/nightshift ";
  if (body.rfind(kCommand, 0) != 0 || cr.state != "open")
    return std::make_pair(comment, int64_t{0});
  std::string instruction = body.substr(kCommand.size());
  while (!instruction.empty() && (instruction.back() == '\n' || instruction.back() == ' ')) {
    instruction.pop_back();
  }
  if (instruction.empty()) return std::make_pair(comment, int64_t{0});
  ASSIGN_OR_RETURN(store::Run original, store_.GetRun(cr.run_id));
  store::RunSpec spec{.repo = cr.repo,
                      .ref = cr.branch,
                      .kind = original.kind,
                      .change_request_id = cr.id,
                      .timeout_seconds = original.timeout_seconds};
  if (original.kind == "agent") {
    spec.task = StrCat("Follow-up on change request ", cr.id, " (\"", cr.title,
                       "\"), whose branch is checked out. A reviewer asks:\n\n", instruction);
    spec.model = original.model;
  } else {
    spec.recipe = instruction;  // a recipe change request is followed up by another command
  }
  ASSIGN_OR_RETURN(store::Run run, store_.CreateRun(spec));
  return std::make_pair(comment, run.id);
}

}  // namespace nightshift::forge
