#include "workspace/git.h"

#include <cstdlib>

namespace nightshift::workspace {

std::map<std::string, std::string> GitEnvironment(const GitContext& context) {
  const char* path = std::getenv("PATH");
  return {
      {"PATH", path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin"},
      {"HOME", context.home.empty() ? std::string("/nonexistent") : context.home.string()},
      {"LANG", "C.UTF-8"},
      {"GIT_TERMINAL_PROMPT", "0"},
      {"GIT_CONFIG_NOSYSTEM", "1"},
      {"GIT_CONFIG_GLOBAL", "/dev/null"},
      {"GIT_ASKPASS", "/bin/false"},
      {"SSH_ASKPASS", "/bin/false"},
      {"GIT_SSH_COMMAND", "ssh -o BatchMode=yes"},
      // Checkouts belong to the sandbox's uid; git running as root must still work in them.
      {"GIT_CONFIG_COUNT", "1"},
      {"GIT_CONFIG_KEY_0", "safe.directory"},
      {"GIT_CONFIG_VALUE_0", "*"},
  };
}

StatusOr<GitOutput> RunGit(const GitContext& context, const std::filesystem::path& cwd,
                           const std::vector<std::string>& args,
                           const std::map<std::string, std::string>& extra_env,
                           std::optional<sandbox::ProcessSpec::PrivateOverlay> overlay) {
  sandbox::ProcessSpec spec{
      .working_dir = cwd, .env = GitEnvironment(context), .timeout_ms = context.timeout_ms};
  spec.argv.push_back(context.git);
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  for (const auto& [name, value] : extra_env) spec.env[name] = value;
  spec.private_overlay = std::move(overlay);
  GitOutput output;
  auto result = sandbox::RunProcess(
      spec,
      [&](std::string_view stream, std::string_view line) {
        if (stream == "stdout") {
          output.out.emplace_back(line);
          return;
        }
        if (!line.empty()) output.last_error = std::string(line);
        if (context.log) context.log(stream, line);
      },
      context.cancel);
  if (!result.ok()) return result.status();
  switch (result->reason) {
    case sandbox::EndReason::kCancelled:
      return CancelledError("cancelled");
    case sandbox::EndReason::kTimedOut:
      return DeadlineExceededError(StrCat("git ", args.empty() ? "" : args.front(),
                                          " timed out after ", context.timeout_ms / 1000, " s"));
    default:
      break;
  }
  output.exit_code = result->exit_code;
  return output;
}

StatusOr<GitOutput> RunGitOk(const GitContext& context, const std::filesystem::path& cwd,
                             const std::vector<std::string>& args, std::string_view what) {
  ASSIGN_OR_RETURN(GitOutput output, RunGit(context, cwd, args));
  if (output.exit_code != 0) {
    return InternalError(StrCat(what, ": ",
                                output.last_error.empty()
                                    ? StrCat("git exited with status ", output.exit_code)
                                    : output.last_error));
  }
  return output;
}

}  // namespace nightshift::workspace
