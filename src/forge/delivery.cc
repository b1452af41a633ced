#include "forge/delivery.h"

#include <sodium.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "api/events.h"
#include "core/clock.h"
#include "core/digest.h"
#include "core/fs.h"
#include "core/json.h"
#include "forge/builtin.h"

namespace nightshift::forge {
namespace {

// A name or email as a commit header takes it: no angle brackets, no line breaks.
std::string HeaderSafe(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '<' || c == '>' || c == '\n' || c == '\r' || c == '\0') continue;
    out += c;
  }
  return out;
}

void AppendData(std::string& stream, std::string_view data) {
  stream += StrCat("data ", data.size(), "\n");
  stream.append(data);
  stream += "\n";
}

}  // namespace

std::string FastImportPath(std::string_view path) {
  bool quote = !path.empty() && path.front() == '"';
  for (char c : path) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\' || u < 0x20 || u == 0x7f) quote = true;
  }
  if (!quote) return std::string(path);
  std::string out = "\"";
  for (char c : path) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      char octal[5];
      std::snprintf(octal, sizeof octal, "\\%03o", u);
      out += octal;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

StatusOr<DeliveryRepo> DeliveryRepo::Create(const std::filesystem::path& dir,
                                            const std::filesystem::path& mirror,
                                            std::string_view object_format,
                                            workspace::GitContext git) {
  std::error_code ec;
  for (const char* sub : {"objects/info", "objects/pack", "refs/heads", "refs/tags"}) {
    std::filesystem::create_directories(dir / sub, ec);
    if (ec)
      return InternalError(StrCat("cannot create ", (dir / sub).string(), ": ", ec.message()));
  }
  // HEAD names a branch that never exists: nothing is read from a HEAD tree.
  RETURN_IF_ERROR(WriteFileAtomic(dir / "HEAD", "ref: refs/heads/nightshift-delivery\n"));
  const std::string config = object_format == "sha256"
                                 ? "[core]\n\trepositoryformatversion = 1\n\tbare = true\n"
                                   "[extensions]\n\tobjectformat = sha256\n"
                                 : "[core]\n\trepositoryformatversion = 0\n\tbare = true\n";
  RETURN_IF_ERROR(WriteFileAtomic(dir / "config", config));
  RETURN_IF_ERROR(WriteFileAtomic(dir / "objects" / "info" / "alternates",
                                  StrCat((mirror / "objects").string(), "\n")));
  return DeliveryRepo(dir, std::move(git));
}

StatusOr<workspace::GitOutput> DeliveryRepo::Git(workspace::GitCall call, std::string_view what) {
  call.args.insert(call.args.begin(), {"--git-dir", dir_.string()});
  return workspace::RunGitOk(git_, dir_, call, what);
}

StatusOr<std::string> DeliveryRepo::Commit(const std::string& parent,
                                           const std::vector<workspace::FileChange>& changes,
                                           const Identity& author, const Identity& committer,
                                           const std::string& message, int64_t time_s) {
  auto person = [&](const Identity& who) {
    return StrCat(HeaderSafe(who.name), " <", HeaderSafe(who.email), "> ", time_s, " +0000");
  };
  std::string stream = StrCat("commit refs/heads/nightshift-result\nmark :1\nauthor ",
                              person(author), "\ncommitter ", person(committer), "\n");
  AppendData(stream, message);
  stream += StrCat("from ", parent, "\n");
  for (const workspace::FileChange& change : changes) {
    if (change.new_mode == workspace::kModeGitlink || change.old_mode == workspace::kModeGitlink) {
      continue;
    }
    if (change.deleted()) {
      stream += StrCat("D ", FastImportPath(change.path), "\n");
      continue;
    }
    char mode[16];
    std::snprintf(mode, sizeof mode, "%06o", change.new_mode);
    stream += StrCat("M ", mode, " inline ", FastImportPath(change.path), "\n");
    AppendData(stream, change.content);
  }
  stream += "done\n";
  const auto marks = dir_ / "marks";
  RETURN_IF_ERROR(Git(workspace::GitCall{.args = {"fast-import", "--quiet", "--done",
                                                  "--export-marks=" + marks.string()},
                                         .stdin_data = std::move(stream)},
                      "record the run's changes")
                      .status());
  ASSIGN_OR_RETURN(std::string text, ReadFile(marks));
  // ":1 <oid>"
  const size_t space = text.find(' ');
  if (!text.starts_with(":1 ") || space == std::string::npos) {
    return InternalError("record the run's changes: fast-import gave no commit");
  }
  std::string oid = text.substr(space + 1);
  while (!oid.empty() && (oid.back() == '\n' || oid.back() == ' ')) oid.pop_back();
  return oid;
}

StatusOr<std::map<std::string, LineCount>> DeliveryRepo::LineCounts(const std::string& from,
                                                                    const std::string& to) {
  ASSIGN_OR_RETURN(workspace::GitOutput out,
                   Git(workspace::GitCall{.args = {"diff-tree", "-r", "-z", "--no-renames",
                                                   "--numstat", "--text", "--no-ext-diff",
                                                   "--no-textconv", "--end-of-options", from, to},
                                          .capture_stdout = true},
                       "count the changed lines"));
  // "<added>\t<removed>\t<path>\0"
  std::map<std::string, LineCount> counts;
  for (std::string_view record : workspace::NulRecords(out.data)) {
    const size_t tab1 = record.find('\t');
    const size_t tab2 = tab1 == std::string_view::npos ? tab1 : record.find('\t', tab1 + 1);
    if (tab2 == std::string_view::npos) continue;
    LineCount count;  // "-\t-" for a file git takes for binary
    const std::string added(record.substr(0, tab1));
    const std::string removed(record.substr(tab1 + 1, tab2 - tab1 - 1));
    count.added = added == "-" ? -1 : std::atoll(added.c_str());
    count.removed = removed == "-" ? -1 : std::atoll(removed.c_str());
    counts[std::string(record.substr(tab2 + 1))] = count;
  }
  return counts;
}

StatusOr<std::string> DeliveryRepo::Diff(const std::string& from, const std::string& to) {
  ASSIGN_OR_RETURN(
      workspace::GitOutput out,
      Git(workspace::GitCall{.args = {"-c", "core.quotepath=off", "diff-tree", "-r", "-p",
                                      "--no-renames", "--no-ext-diff", "--no-textconv",
                                      "--no-color", "--end-of-options", from, to},
                             .capture_stdout = true},
          "make the diff"));
  return std::move(out.data);
}

StatusOr<std::vector<DeliveryRepo::RawChange>> DeliveryRepo::RawChanges(const std::string& from,
                                                                        const std::string& to) {
  ASSIGN_OR_RETURN(workspace::GitOutput out,
                   Git(workspace::GitCall{.args = {"diff-tree", "-r", "-z", "--no-renames", "--raw",
                                                   "--no-abbrev", "--end-of-options", from, to},
                                          .capture_stdout = true},
                       "list the changes"));
  // ":<old mode> <new mode> <old oid> <new oid> <status>\0<path>\0"
  std::vector<RawChange> changes;
  const std::vector<std::string_view> records = workspace::NulRecords(out.data);
  for (size_t i = 0; i + 1 < records.size(); i += 2) {
    std::string_view meta = records[i];
    if (meta.empty() || meta.front() != ':')
      return InternalError("git diff-tree: unexpected output");
    std::vector<std::string> fields;
    size_t at = 1;
    while (at <= meta.size()) {
      size_t space = meta.find(' ', at);
      if (space == std::string_view::npos) space = meta.size();
      fields.emplace_back(meta.substr(at, space - at));
      at = space + 1;
    }
    if (fields.size() < 5) return InternalError("git diff-tree: unexpected output");
    RawChange change{
        .path = std::string(records[i + 1]),
        .old_mode = static_cast<uint32_t>(std::strtoul(fields[0].c_str(), nullptr, 8)),
        .new_mode = static_cast<uint32_t>(std::strtoul(fields[1].c_str(), nullptr, 8))};
    if (change.old_mode != 0) change.old_oid = fields[2];
    if (change.new_mode != 0) change.new_oid = fields[3];
    changes.push_back(std::move(change));
  }
  return changes;
}

StatusOr<std::string> DeliveryRepo::ReadBlob(const std::string& oid, size_t max_bytes) {
  ASSIGN_OR_RETURN(
      workspace::GitOutput out,
      Git(workspace::GitCall{.args = {"cat-file", "blob", oid}, .capture_stdout = true},
          StrCat("read blob ", oid)));
  if (out.data.size() > max_bytes) {
    return FailedPreconditionError(StrCat("blob ", oid, " is larger than ", max_bytes, " bytes"));
  }
  return std::move(out.data);
}

Status DeliveryRepo::Push(const std::string& url, const std::string& commit,
                          const std::string& branch) {
  ASSIGN_OR_RETURN(workspace::GitOutput out,
                   workspace::RunGit(git_, dir_,
                                     {"--git-dir", dir_.string(), "push", "-q", "--no-verify", "--",
                                      url, StrCat(commit, ":refs/heads/", branch)}));
  if (out.exit_code != 0) return FailedPreconditionError(out.Reason());
  return OkStatus();
}

namespace {

constexpr size_t kMaxDiffBytes = 1 << 20;  // in the "result" event; the change request has all

std::string FirstLine(const std::string& text, size_t max) {
  std::string line = text.substr(0, text.find('\n'));
  if (line.size() > max) line = line.substr(0, max - 3) + "...";
  return line;
}

// What the run was asked: the agent's task, or the recipe.
std::string Asked(const store::Run& run) {
  return run.kind == store::RunKind::kAgent ? run.task : StrCat("Run `", run.recipe, "`");
}

// A run's events, appended as they happen (the control plane writes the store itself).
// The control plane's events of a run, redacted of every form of its secrets.
class Events {
 public:
  Events(store::Store& store, int64_t run_id, const std::vector<std::string>& forms)
      : store_(store), run_id_(run_id), forms_(forms) {}
  void Emit(const api::EventRecord& event) {
    (void)store_.AppendEvents(
        run_id_, {store::NewEvent{.kind = std::string(event.kind()),
                                  .data = policy::RedactEventData(event.Serialize(), forms_),
                                  .ts_ms = SystemClock::Get().NowMs()}});
  }

 private:
  store::Store& store_;
  const int64_t run_id_;
  const std::vector<std::string>& forms_;
};

using Phase = api::PhaseTimer<Events>;

}  // namespace

Identity AuthorOf(const store::Run& run, const Identity& platform) {
  const policy::Principal asked = policy::PrincipalOf(run.requested_by);
  // People: users, and those who asked by a comment; a trigger, a schedule, the admin token or
  // a service token acts for nobody but the platform.
  if ((asked.kind != "user" && asked.kind != "comment") || asked.name.empty()) return platform;
  std::string name;
  for (char c : asked.name) {
    if (static_cast<unsigned char>(c) >= 0x20 && c != '<' && c != '>' && c != 0x7f) name += c;
  }
  if (name.empty()) return platform;
  std::string domain = "users.nightshift.invalid";
  if (const size_t at = platform.email.rfind('@'); at != std::string::npos) {
    domain = StrCat("users.", platform.email.substr(at + 1));
  }
  std::string local;
  for (char c : name)
    local += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ? c : '_';
  return Identity{.name = name, .email = StrCat(local, "@", domain)};
}

namespace {

void EmitResult(Events& events, const std::string& summary,
                const std::vector<workspace::FileChange>* changes,
                const std::map<std::string, LineCount>& lines, std::string diff, int64_t read_ms) {
  api::ResultEvent event{.summary = summary};
  if (changes != nullptr) {
    std::vector<api::ChangedFile> files;
    for (const auto& change : *changes) {
      api::ChangedFile file{.path = change.path,
                            .status = change.added()     ? "added"
                                      : change.deleted() ? "deleted"
                                                         : "modified"};
      if (auto it = lines.find(change.path); it != lines.end()) {
        file.added = it->second.added < 0 ? "-" : std::to_string(it->second.added);
        file.removed = it->second.removed < 0 ? "-" : std::to_string(it->second.removed);
      }
      files.push_back(std::move(file));
    }
    event.files = std::move(files);
    event.diff_truncated = diff.size() > kMaxDiffBytes;
    if (diff.size() > kMaxDiffBytes) diff.resize(kMaxDiffBytes);
    event.diff = std::move(diff);
    event.read_ms = read_ms;
  }
  events.Emit(event);
}

}  // namespace

namespace {

StatusOr<std::string> FromBase64(std::string_view text, std::string_view what) {
  std::string out(text.size() / 4 * 3 + 3, '\0');
  size_t length = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), nullptr, &length, nullptr,
                        sodium_base64_VARIANT_ORIGINAL) != 0) {
    return InvalidArgumentError(StrCat(what, " is not base64"));
  }
  out.resize(length);
  return out;
}

}  // namespace

Json HandoverToJson(const RunHandover& handover) {
  Json changes = Json::array();
  for (const auto& c : handover.changes) {
    changes.push_back({{"path", Base64Of(c.path)},
                       {"old_mode", c.old_mode},
                       {"old_oid", c.old_oid},
                       {"new_mode", c.new_mode},
                       {"content", Base64Of(c.content)},
                       {"new_oid", c.new_oid}});
  }
  return {{"succeeded", handover.succeeded},
          {"summary", handover.summary},
          {"base_commit", handover.base_commit},
          {"changes", std::move(changes)},
          {"error", handover.error},
          {"too_large", handover.too_large},
          {"stopped_at_budget", handover.stopped_at_budget}};
}

StatusOr<RunHandover> HandoverFromJson(const Json& json) {
  if (!json.is_object()) return InvalidArgumentError("a handover must be an object");
  RunHandover out;
  try {
    out.succeeded = json.at("succeeded").get<bool>();
    out.summary = json.value("summary", "");
    out.base_commit = json.at("base_commit").get<std::string>();
    out.error = json.value("error", "");
    out.too_large = json.value("too_large", false);
    out.stopped_at_budget = json.value("stopped_at_budget", "");
    for (const Json& c : json.at("changes")) {
      ASSIGN_OR_RETURN(std::string path,
                       FromBase64(c.at("path").get<std::string>(), "changes[].path"));
      ASSIGN_OR_RETURN(std::string content,
                       FromBase64(c.value("content", ""), "changes[].content"));
      out.changes.push_back(workspace::FileChange{.path = std::move(path),
                                                  .old_mode = c.value("old_mode", 0u),
                                                  .old_oid = c.value("old_oid", ""),
                                                  .new_mode = c.value("new_mode", 0u),
                                                  .content = std::move(content),
                                                  .new_oid = c.value("new_oid", "")});
    }
  } catch (const Json::exception& e) {
    return InvalidArgumentError(StrCat("malformed handover: ", e.what()));
  }
  return out;
}

Delivery::Delivery(store::Store& store, BuiltinForge& forge, DeliveryOptions options)
    : store_(store),
      forge_(forge),
      options_(std::move(options)),
      mirrors_(options_.data_dir / "mirrors") {}

const ReviewPolicy& Delivery::PolicyFor(const std::string& repo) const {
  static const ReviewPolicy* fallback = new ReviewPolicy();
  auto it = options_.review.find(repo);
  if (it == options_.review.end()) it = options_.review.find("");
  return it == options_.review.end() ? *fallback : it->second;
}

StatusOr<Conclusion> Delivery::Conclude(const store::Run& run, const RunHandover& handover) {
  // Every form of the run's secrets: redacted from what is shown, and a file holding one is
  // never delivered.
  std::vector<std::string> forms;
  if (options_.vault != nullptr) {
    auto read = options_.vault->FormsForRun(run);
    if (!read.ok()) {
      return Conclusion{store::RunState::kFailed,
                        StrCat("cannot read the run's secrets: ", read.status().message())};
    }
    forms = *std::move(read);
  }
  Events events(store_, run.id, forms);
  const bool at_budget = !handover.stopped_at_budget.empty();
  // Nothing to deliver: done, unless the agent stopped at its budget before it finished.
  const Conclusion nothing =
      at_budget ? Conclusion{store::RunState::kFailed,
                             StrCat("the agent stopped: ", handover.stopped_at_budget,
                                    "; it changed nothing")}
                : Conclusion{store::RunState::kSucceeded, "nothing to change"};
  const int64_t start_ms = MonotonicMs();
  const bool succeeded = handover.succeeded;
  auto fail = [&](const Status& st) -> StatusOr<Conclusion> {
    if (!succeeded) return Conclusion{};
    return Conclusion{store::RunState::kFailed, st.message()};
  };
  if (!handover.error.empty()) {
    events.Emit(api::ResultEvent{.summary = handover.summary, .error = handover.error});
    if (!succeeded) return Conclusion{};
    if (handover.too_large) {
      return Conclusion{store::RunState::kBlockedByPolicy,
                        StrCat("blocked by policy: ", handover.error)};
    }
    return Conclusion{store::RunState::kFailed,
                      StrCat("cannot read the run's result: ", handover.error)};
  }
  if (handover.changes.empty()) {
    EmitResult(events, handover.summary, &handover.changes, {}, "", MonotonicMs() - start_ms);
    if (!succeeded) return Conclusion{};
    return nothing;
  }
  ASSIGN_OR_RETURN(store::Repository repo, store_.GetRepository(run.repo));
  // The platform's own repositories: the mirror (fetched if it lacks the run's base commit,
  // as when the run ran on another machine) and a delivery repository borrowing its objects.
  const auto work_dir = options_.data_dir / "deliveries" / StrCat(run.id, "-", run.attempt);
  RemoveTreeQuietly(work_dir);
  struct Remove {
    std::filesystem::path p;
    ~Remove() { RemoveTreeQuietly(p); }
  } remove{work_dir};
  std::error_code ec;
  std::filesystem::create_directories(work_dir / "home", ec);
  const workspace::GitContext git{.git = options_.git, .home = work_dir / "home"};
  const std::string repo_key = StrCat(repo.id);
  const std::string& base = handover.base_commit;
  if (base.size() != 40 && base.size() != 64) {
    return fail(InvalidArgumentError("the run's result names no base commit"));
  }
  const std::string_view format = base.size() == 64 ? "sha256" : "sha1";
  std::filesystem::path mirror = mirrors_.PathOf(repo_key);
  auto has_base = [&]() {
    auto r = workspace::RunGit(
        git, options_.data_dir,
        {"--git-dir", mirror.string(), "cat-file", "-e", StrCat(base, "^{commit}")});
    return r.ok() && r->exit_code == 0;
  };
  if (!has_base()) {
    auto synced = mirrors_.Sync(repo_key, repo.url, git);
    if (!synced.ok()) return fail(synced.status());
    mirror = *synced;
    if (!has_base()) return fail(NotFoundError(StrCat("commit ", base, " is not in ", repo.name)));
  }
  auto made = DeliveryRepo::Create(work_dir / "delivery.git", mirror, format, git);
  if (!made.ok()) return fail(made.status());
  DeliveryRepo& delivery = *made;
  const std::string title =
      StrCat(at_budget ? "[draft: stopped at budget] " : "", FirstLine(Asked(run), 72));
  // Attribution: the person who asked is the author, the platform the committer; the trailers
  // name the run, its agent and who asked.
  auto commit = delivery.Commit(
      base, handover.changes, AuthorOf(run, forge_.identity()), forge_.identity(),
      RedactForms(StrCat(title, "\n\n", handover.summary.empty() ? Asked(run) : handover.summary,
                         "\n\nNightshift-Run: ", run.id, "\nNightshift-Agent: ",
                         policy::RunPrincipal(run).name, "\nNightshift-Requested-By: ",
                         run.requested_by.empty() ? "unknown" : run.requested_by, "\n"),
                  forms),
      SystemClock::Get().NowMs() / 1000);
  if (!commit.ok()) return fail(commit.status());
  // The change as the platform's own trees say, not as the runner described it: both sides'
  // modes and ids from git, the contents from the commit (checked against the runner's bytes).
  auto raw = delivery.RawChanges(base, *commit);
  if (!raw.ok()) return fail(raw.status());
  std::map<std::string, const workspace::FileChange*> sent;
  for (const auto& change : handover.changes) sent[change.path] = &change;
  std::vector<workspace::FileChange> changes;
  for (auto& r : *raw) {
    workspace::FileChange change{.path = r.path,
                                 .old_mode = r.old_mode,
                                 .old_oid = r.old_oid,
                                 .new_mode = r.new_mode,
                                 .new_oid = r.new_oid};
    if (!change.deleted()) {
      auto it = sent.find(change.path);
      if (it != sent.end() && workspace::GitBlobId(it->second->content, format) == r.new_oid) {
        change.content = it->second->content;
      } else {
        auto blob = delivery.ReadBlob(r.new_oid, size_t{1} << 30);
        if (!blob.ok()) return fail(blob.status());
        change.content = *std::move(blob);
      }
    }
    changes.push_back(std::move(change));
  }
  // What git cannot hold as content (nested repositories, submodules) never reached the
  // commit; the policy still sees it, and refuses it.
  for (const auto& change : handover.changes) {
    if (change.new_mode == workspace::kModeGitlink || change.old_mode == workspace::kModeGitlink) {
      changes.push_back(workspace::FileChange{
          .path = change.path, .old_mode = change.old_mode, .new_mode = change.new_mode});
    }
  }
  auto lines = delivery.LineCounts(base, *commit);
  if (!lines.ok()) return fail(lines.status());
  auto diff = delivery.Diff(base, *commit);
  if (!diff.ok()) return fail(diff.status());
  EmitResult(events, handover.summary, &changes, *lines, *diff, MonotonicMs() - start_ms);
  if (!succeeded) return Conclusion{};
  if (changes.empty()) return nothing;

  Phase phase(events, "deliver");
  // The review gate: nothing that breaks the policy leaves the platform.
  std::vector<std::string> violations =
      CheckChanges(PolicyFor(repo.name), changes, *lines,
                   [&](const workspace::FileChange& change) -> StatusOr<std::string> {
                     return delivery.ReadBlob(change.old_oid, size_t{256} << 20);
                   });
  auto failed = [&](const Status& st) -> StatusOr<Conclusion> {
    phase.End("failed");
    return Conclusion{store::RunState::kFailed, st.message()};
  };
  // A follow-up continues its change request's branch (checked out: the commit is a child of
  // its head) and its base.
  std::optional<store::ChangeRequest> existing;
  if (run.change_request_id != 0) {
    auto cr = forge_.Get(run.change_request_id);
    if (!cr.ok()) return failed(cr.status());
    existing = *cr;
  }
  const std::string branch = existing ? existing->branch : BranchFor(run);
  const std::string base_commit = existing ? existing->base_commit : base;
  // The base branch: the run's ref when it is a branch, else the repository's default.
  std::string base_branch = existing ? existing->base_branch : run.ref;
  if (!existing &&
      (run.ref.empty() || !workspace::ReadGitRefs(mirror).contains("refs/heads/" + run.ref))) {
    auto head_file = ReadFile(mirror / "HEAD");  // "ref: refs/heads/<default>"
    constexpr std::string_view kHeadRef = "ref: refs/heads/";
    base_branch = head_file.ok() && head_file->starts_with(kHeadRef)
                      ? head_file->substr(kHeadRef.size(), head_file->find('\n') - kHeadRef.size())
                      : "main";
  }
  // A file that holds one of the run's secrets, in any form, never leaves the platform. The
  // reason names the file, never the value.
  if (!forms.empty()) {
    for (const auto& change : changes) {
      const bool holds = std::any_of(forms.begin(), forms.end(), [&](const std::string& form) {
        return change.content.find(form) != std::string::npos ||
               change.path.find(form) != std::string::npos;
      });
      if (holds) {
        violations.push_back(StrCat(RedactForms(DisplayPath(change.path), forms),
                                    ": holds the value of one of the run's secrets"));
      }
    }
  }
  // The policy's rules (policy/engine.h) on every path the run wrote, whatever wrote it, and on
  // the push and the change request, with the change's facts.
  if (options_.gate != nullptr) {
    std::vector<std::string> paths;
    int64_t diff_lines = 0;
    for (const auto& change : changes) {
      paths.push_back(change.path);
      const policy::Decision d =
          options_.gate->DecideForRun(run, "file.write", {{"path", change.path}}, {});
      if (!d.allowed) violations.push_back(StrCat(DisplayPath(change.path), ": ", d.reason));
    }
    for (const auto& [path, count] : *lines) {
      diff_lines += std::max<int64_t>(count.added, 0) + count.removed;
    }
    for (const char* action : {"repo.push", "cr.open"}) {
      if (existing && std::string_view(action) == "cr.open") continue;
      const policy::Decision d = options_.gate->DecideForRun(
          run, action, {{"branch", branch}, {"base_branch", base_branch}},
          {{"diff_lines", diff_lines},
           {"files_changed", static_cast<int64_t>(changes.size())},
           {"paths", policy::Value(paths)}});
      if (!d.allowed) violations.push_back(StrCat(action, " ", branch, ": ", d.reason));
    }
  }
  if (!violations.empty()) {
    events.Emit(api::PolicyEvent{.violations = violations});
    phase.End("blocked");
    std::string reasons;
    for (const auto& v : violations) reasons += (reasons.empty() ? "" : "; ") + v;
    return Conclusion{store::RunState::kBlockedByPolicy, StrCat("blocked by policy: ", reasons)};
  }
  std::string files;
  for (const auto& change : changes) files += StrCat("- `", DisplayPath(change.path), "`\n");
  const std::string draft_note =
      at_budget ? StrCat("**Draft: stopped at budget.** The agent stopped before it finished (",
                         handover.stopped_at_budget,
                         "). This is its work so far, for a person to finish, hand back with a "
                         "`/nightshift` comment, or close.\n\n")
                : "";
  const std::string body = RedactForms(
      StrCat(
          draft_note, run.kind == store::RunKind::kAgent ? "**Task**\n\n" : "**Recipe**\n\n",
          Asked(run), "\n\n",
          handover.summary.empty() ? "" : StrCat("**What was done**\n\n", handover.summary, "\n\n"),
          "**Files changed**\n\n", files,
          run.trigger.empty() ? "" : StrCat("\n**Started by**\n\n", run.trigger, "\n"),
          "\n**Requested by**\n\n", run.requested_by.empty() ? "unknown" : run.requested_by,
          " (agent ", policy::RunPrincipal(run).name, ")\n", "\nNightshift run ", run.id, "."),
      forms);
  // The change request's diff: the run's own, unless a follow-up adds to an earlier base.
  auto cr_diff =
      base_commit == base ? StatusOr<std::string>(*diff) : delivery.Diff(base_commit, *commit);
  if (!cr_diff.ok()) return failed(cr_diff.status());
  // The push, by the platform, of its own commit, from its own repository.
  if (Status pushed = delivery.Push(repo.url, *commit, branch); !pushed.ok()) {
    return failed(
        FailedPreconditionError(StrCat("push of ", branch, " rejected: ", pushed.message())));
  }
  // What the platform did for the run, in the audit log: the push and the change request.
  auto record = [&](const std::string& action, const Json& detail) -> Status {
    if (options_.audit == nullptr) return OkStatus();
    return options_.audit
        ->Append(policy::AuditEntry{.actor = policy::RunPrincipal(run).Describe(),
                                    .action = action,
                                    .resource = StrCat(repo.name, "@", branch),
                                    .run_id = run.id,
                                    .detail = detail})
        .status();
  };
  if (Status st = record("repo.push", Json{{"commit", *commit}, {"base_branch", base_branch}});
      !st.ok()) {
    return failed(st);
  }
  auto cr =
      forge_.Record(run, repo, branch, base_branch, base_commit, *commit, title, body, *cr_diff);
  if (!cr.ok()) return failed(cr.status());
  if (Status st = record(existing ? "cr.update" : "cr.open",
                         Json{{"change_request", cr->id}, {"commit", *commit}});
      !st.ok()) {
    return failed(st);
  }
  // Its counterpart on GitHub/GitLab, if the repository has one: an error there leaves the
  // change request (and the pushed branch) as they are, and says so.
  std::string note;
  if (Status published = forge_.Publish(*cr, existing.has_value(), run.id); !published.ok()) {
    note = StrCat("change request ", cr->id, " recorded, but ", published.message());
    events.Emit(api::RemoteChangeRequestEvent{.error = published.message()});
  } else if (!cr->remote_url.empty()) {
    events.Emit(api::RemoteChangeRequestEvent{.id = cr->remote_id, .url = cr->remote_url});
  }
  events.Emit(api::ChangeRequestEvent{.id = cr->id,
                                      .branch = branch,
                                      .base_branch = base_branch,
                                      .head_commit = *commit,
                                      .updated = existing.has_value()});
  phase.End(note.empty() ? "ok" : "partial");
  if (at_budget) {
    return Conclusion{store::RunState::kFailed,
                      StrCat("the agent stopped: ", handover.stopped_at_budget,
                             "; its work so far is in draft change request ", cr->id,
                             note.empty() ? "" : StrCat(" (", note, ")"))};
  }
  return Conclusion{store::RunState::kSucceeded, note};
}

}  // namespace nightshift::forge
