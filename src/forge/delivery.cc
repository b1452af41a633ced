#include "forge/delivery.h"

#include <cstdio>

#include "core/fs.h"
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
                                           const Identity& who, const std::string& message,
                                           int64_t time_s) {
  const std::string person =
      StrCat(HeaderSafe(who.name), " <", HeaderSafe(who.email), "> ", time_s, " +0000");
  std::string stream = StrCat("commit refs/heads/nightshift-result\nmark :1\nauthor ", person,
                              "\ncommitter ", person, "\n");
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
  if (out.exit_code != 0) {
    return FailedPreconditionError(out.last_error.empty()
                                       ? StrCat("git push exited with status ", out.exit_code)
                                       : out.last_error);
  }
  return OkStatus();
}

}  // namespace nightshift::forge
