#include "workspace/git.h"

#include <cstdlib>

namespace nightshift::workspace {
namespace {

// Set on every git the host runs. Command-line configuration (GIT_CONFIG_*) wins over any
// repository's config file, so these hold even in a repository that says otherwise.
const std::vector<std::pair<std::string, std::string>>& FixedConfig() {
  static const auto* config = new std::vector<std::pair<std::string, std::string>>{
      // Checkout layers belong to the sandbox's uid; the host's git must still work in them.
      // They are built by the platform and only ever a lower layer of a run.
      {"safe.directory", "*"},
      {"core.hooksPath", "/dev/null"},
      {"core.fsmonitor", "false"},
      {"core.attributesFile", "/dev/null"},
      // Git 2.42+ reads a bare repository's attributes from HEAD's tree: from none, here (the
      // empty tree, which every repository has).
      {"attr.tree", "4b825dc642cb6eb9a060e54bf8d69288fbee4904"},
      {"submodule.recurse", "false"},
      {"fetch.recurseSubmodules", "false"},
      {"push.recurseSubmodules", "no"},
      {"credential.helper", ""},
  };
  return *config;
}

}  // namespace

std::map<std::string, std::string> GitEnvironment(const GitContext& context) {
  const char* path = std::getenv("PATH");
  std::map<std::string, std::string> env = {
      {"PATH", path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin"},
      {"HOME", context.home.empty() ? std::string("/nonexistent") : context.home.string()},
      {"LANG", "C.UTF-8"},
      {"GIT_TERMINAL_PROMPT", "0"},
      {"GIT_CONFIG_NOSYSTEM", "1"},
      {"GIT_CONFIG_GLOBAL", "/dev/null"},
      {"GIT_ATTR_NOSYSTEM", "1"},
      {"GIT_NO_REPLACE_OBJECTS", "1"},
      {"GIT_ALLOW_PROTOCOL", "file:git:http:https:ssh"},
      {"GIT_PROTOCOL_FROM_USER", "0"},
      {"GIT_ASKPASS", "/bin/false"},
      {"SSH_ASKPASS", "/bin/false"},
      {"GIT_SSH_COMMAND", "ssh -o BatchMode=yes"},
  };
  const auto& config = FixedConfig();
  env["GIT_CONFIG_COUNT"] = std::to_string(config.size());
  for (size_t i = 0; i < config.size(); ++i) {
    env[StrCat("GIT_CONFIG_KEY_", i)] = config[i].first;
    env[StrCat("GIT_CONFIG_VALUE_", i)] = config[i].second;
  }
  return env;
}

StatusOr<GitOutput> RunGit(const GitContext& context, const std::filesystem::path& cwd,
                           const GitCall& call) {
  sandbox::ProcessSpec spec{.working_dir = cwd,
                            .env = GitEnvironment(context),
                            .timeout_ms = context.timeout_ms,
                            .max_output_bytes = size_t{1} << 30,
                            .stdin_data = call.stdin_data,
                            .capture_stdout = call.capture_stdout};
  spec.argv.push_back(context.git);
  spec.argv.insert(spec.argv.end(), call.args.begin(), call.args.end());
  for (const auto& [name, value] : call.extra_env) spec.env[name] = value;
  GitOutput output;
  auto result = sandbox::RunProcess(
      spec,
      [&](std::string_view stream, std::string_view line) {
        if (stream == "stdout") {
          output.out.emplace_back(line);
          return;
        }
        if (!line.empty()) {
          output.last_error = std::string(line);
          if (output.errors.size() < 64) output.errors.emplace_back(line);
        }
        if (context.log) context.log(stream, line);
      },
      context.cancel);
  if (!result.ok()) return result.status();
  switch (result->reason) {
    case sandbox::EndReason::kCancelled:
      return CancelledError("cancelled");
    case sandbox::EndReason::kTimedOut:
      return DeadlineExceededError(StrCat("git ", call.args.empty() ? "" : call.args.front(),
                                          " timed out after ", context.timeout_ms / 1000, " s"));
    default:
      break;
  }
  if (result->output_truncated) {
    return ResourceExhaustedError(
        StrCat("git ", call.args.empty() ? "" : call.args.front(), ": output too large"));
  }
  output.exit_code = result->exit_code;
  output.data = std::move(result->stdout_data);
  return output;
}

std::string GitOutput::Reason() const {
  std::string reason;
  for (const std::string& line : errors) {
    if (line.starts_with("hint:")) continue;
    reason += (reason.empty() ? "" : "; ") + line;
  }
  if (reason.empty()) return StrCat("git exited with status ", exit_code);
  return reason;
}

std::vector<std::string> PushOptionsFor(const std::string& url) {
  std::filesystem::path path = url.starts_with("file://") ? url.substr(7) : url;
  std::error_code ec;
  if (!path.is_absolute() || !std::filesystem::is_directory(path / ".git", ec)) return {};
  return {"--receive-pack=git -c receive.denyCurrentBranch=updateInstead receive-pack"};
}

StatusOr<GitOutput> RunGit(const GitContext& context, const std::filesystem::path& cwd,
                           const std::vector<std::string>& args) {
  return RunGit(context, cwd, GitCall{.args = args});
}

StatusOr<GitOutput> RunGitOk(const GitContext& context, const std::filesystem::path& cwd,
                             const GitCall& call, std::string_view what) {
  ASSIGN_OR_RETURN(GitOutput output, RunGit(context, cwd, call));
  if (output.exit_code != 0) return InternalError(StrCat(what, ": ", output.Reason()));
  return output;
}

StatusOr<GitOutput> RunGitOk(const GitContext& context, const std::filesystem::path& cwd,
                             const std::vector<std::string>& args, std::string_view what) {
  return RunGitOk(context, cwd, GitCall{.args = args}, what);
}

std::vector<std::string_view> NulRecords(std::string_view data) {
  std::vector<std::string_view> records;
  size_t at = 0;
  while (at < data.size()) {
    size_t end = data.find('\0', at);
    if (end == std::string_view::npos) end = data.size();
    records.push_back(data.substr(at, end - at));
    at = end + 1;
  }
  return records;
}

StatusOr<std::map<std::string, TreeEntry>> ListTree(const GitContext& context,
                                                    const std::filesystem::path& git_dir,
                                                    const std::string& commit,
                                                    const std::vector<std::string>& tops) {
  // No -l: a blob's size costs a lookup of every object listed (10× slower).
  GitCall call{.args = {"--git-dir", git_dir.string(), "ls-tree", "-r", "-t", "-z", "--full-tree",
                        "--end-of-options", commit, "--"},
               .capture_stdout = true,
               .extra_env = {{"GIT_LITERAL_PATHSPECS", "1"}}};
  call.args.insert(call.args.end(), tops.begin(), tops.end());
  ASSIGN_OR_RETURN(GitOutput out, RunGitOk(context, git_dir, call, "read the checked-out tree"));

  // "<mode> SP <type> SP <oid>\t<path>\0"
  std::map<std::string, TreeEntry> entries;
  for (std::string_view record : NulRecords(out.data)) {
    const size_t tab = record.find('\t');
    if (tab == std::string_view::npos) return InternalError("git ls-tree: unexpected output");
    std::string_view meta = record.substr(0, tab);
    TreeEntry entry;
    const size_t sp1 = meta.find(' ');
    const size_t sp2 = meta.find(' ', sp1 + 1);
    if (sp1 == std::string_view::npos || sp2 == std::string_view::npos) {
      return InternalError("git ls-tree: unexpected output");
    }
    entry.mode =
        static_cast<uint32_t>(std::strtoul(std::string(meta.substr(0, sp1)).c_str(), nullptr, 8));
    entry.oid = std::string(meta.substr(sp2 + 1));
    entries.emplace(std::string(record.substr(tab + 1)), std::move(entry));
  }
  return entries;
}

}  // namespace nightshift::workspace
