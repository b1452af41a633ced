#include "cli/sandbox_exec.h"

#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <string_view>

#include "cli/global_options.h"
#include "core/status.h"
#include "sandbox/process.h"

namespace nightshift::cli {
namespace {

constexpr int kSetupFailed = 125;
constexpr uid_t kDefaultSandboxUid = 100000;

}  // namespace

StatusOr<int64_t> ParseByteSize(const std::string& text) {
  if (text.empty()) return int64_t{0};
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    return InvalidArgumentError(StrCat("invalid size '", text, "'"));
  }
  std::string suffix = text.substr(used);
  double scale = 1;
  if (suffix == "k" || suffix == "K") scale = 1024;
  if (suffix == "m" || suffix == "M") scale = 1024.0 * 1024;
  if (suffix == "g" || suffix == "G") scale = 1024.0 * 1024 * 1024;
  if (!(suffix.empty() || scale > 1) || value <= 0) {
    return InvalidArgumentError(StrCat("invalid size '", text, "': use BYTES, or a k/m/g suffix"));
  }
  return static_cast<int64_t>(value * scale);
}

std::filesystem::path HostPathArgument(const std::string& text) {
  std::error_code ec;
  std::filesystem::path path = std::filesystem::absolute(text, ec).lexically_normal();
  if (path.has_relative_path() && path.filename().empty()) path = path.parent_path();
  return path;
}

namespace {

// Whether host `uid` and `gid` may `want` (a mask of S_IROTH, S_IWOTH, S_IXOTH) in a file of
// `st`, by its owner, group and mode bits, as the kernel decides for a process without
// capabilities or supplementary groups (the sandbox's user has neither). ACLs are not read.
bool Permits(const struct stat& st, uid_t uid, gid_t gid, mode_t want) {
  mode_t bits = st.st_mode & 07;
  if (st.st_uid == uid) {
    bits = (st.st_mode >> 6) & 07;
  } else if (st.st_gid == gid) {
    bits = (st.st_mode >> 3) & 07;
  }
  return (bits & want) == want;
}

// The workspace as the sandbox's user needs it: to write in it (or with `read_only`, to list
// it), and to enter it. Else one line saying why, rather than a later "Permission denied".
Status CheckWorkspaceAccess(const sandbox::SandboxSpec& box, bool read_only) {
  struct stat st {};
  if (::stat(box.workspace.c_str(), &st) != 0) {
    return ErrnoError("stat", StrCat("the workspace ", box.workspace.string()));
  }
  const mode_t want = (read_only ? S_IROTH : S_IROTH | S_IWOTH) | S_IXOTH;
  if (Permits(st, box.host_uid, box.host_gid, want)) return OkStatus();
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  return FailedPreconditionError(StrCat(
      "the sandbox's user (host uid ", box.host_uid, ") cannot ", read_only ? "read" : "write",
      " the workspace ", box.workspace.string(), " (owner ", st.st_uid, ", mode ", mode,
      "): chown it to that uid or pass --uid", read_only ? "" : ", or --read-only-workspace"));
}

StatusOr<sandbox::ProcessSpec> BuildSpec(const SandboxExecArgs& args) {
  sandbox::ProcessSpec spec;
  spec.argv = args.command;
  if (spec.argv.empty())
    return InvalidArgumentError("no command given: sandbox exec -- CMD ARGS...");
  spec.env = {{"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
              {"HOME", "/tmp"},
              {"LANG", "C.UTF-8"},
              {"TERM", "dumb"}};
  for (const std::string& kv : args.env) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return InvalidArgumentError(StrCat("invalid --env '", kv, "': use NAME=VALUE"));
    }
    spec.env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  if (args.timeout_seconds < 0) return InvalidArgumentError("--timeout must not be negative");
  spec.timeout_ms = static_cast<int64_t>(args.timeout_seconds * 1000);
  sandbox::SandboxSpec box;
  std::error_code ec;
  box.workspace = std::filesystem::absolute(args.workspace.empty() ? "." : args.workspace, ec);
  if (!args.rootfs.empty()) box.rootfs = std::filesystem::absolute(args.rootfs, ec);
  for (const auto& l : args.layers) box.layers.push_back(std::filesystem::absolute(l, ec));
  for (const auto& p : args.host_paths) box.host_paths.push_back(HostPathArgument(p));
  box.workspace_read_only = args.read_only_workspace;
  auto memory = ParseByteSize(args.memory);
  if (!memory.ok()) return memory.status().WithContext("--memory");
  box.limits.memory_bytes = *memory;
  box.limits.pids = args.pids;
  box.limits.cpus = args.cpus;
  if (box.limits.pids < 0) return InvalidArgumentError("--pids must not be negative");
  box.hostname = args.hostname;
  if (!args.data_dir.empty()) box.masked.push_back(std::filesystem::absolute(args.data_dir, ec));
  struct stat st {};
  if (args.uid >= 0) {
    box.host_uid = static_cast<uid_t>(args.uid);
    box.host_gid = static_cast<gid_t>(args.uid);
  } else if (::stat(box.workspace.c_str(), &st) == 0 && st.st_uid != 0) {
    box.host_uid = st.st_uid;
    box.host_gid = st.st_gid != 0 ? st.st_gid : st.st_uid;
  } else {
    box.host_uid = kDefaultSandboxUid;
    box.host_gid = kDefaultSandboxUid;
  }
  RETURN_IF_ERROR(sandbox::ValidateSandboxSpec(box));
  RETURN_IF_ERROR(CheckWorkspaceAccess(box, args.read_only_workspace));
  spec.sandbox = std::move(box);
  return spec;
}

}  // namespace

int SandboxExec(const SandboxExecArgs& args) {
  auto spec = BuildSpec(args);
  if (!spec.ok()) {
    std::cerr << "nightshift: " << spec.status().message() << '\n';
    return kSetupFailed;
  }
  auto result = sandbox::RunProcess(*spec, [](std::string_view stream, std::string_view line) {
    FILE* out = stream == "stderr" ? stderr : stdout;
    std::fwrite(line.data(), 1, line.size(), out);
    std::fputc('\n', out);
  });
  std::fflush(stdout);
  if (!result.ok()) {
    std::cerr << "nightshift: " << result.status().message() << '\n';
    return kSetupFailed;
  }
  switch (result->reason) {
    case sandbox::EndReason::kTimedOut:
    case sandbox::EndReason::kOom:
    case sandbox::EndReason::kPidsLimit:
      std::cerr << "nightshift: the command " << sandbox::EndReasonName(result->reason) << '\n';
      break;
    default:
      break;
  }
  return result->exit_code;
}

CLI::App* AddSandboxExecCommand(CLI::App& sandbox, SandboxExecArgs& args) {
  CLI::App* exec = sandbox.add_subcommand(
      "exec", "run CMD in a fresh sandbox; exits with its status (125: the sandbox failed)");
  exec->add_option("--workspace", args.workspace,
                   "directory mounted read-write at /workspace [default: .]");
  exec->add_flag("--read-only-workspace", args.read_only_workspace,
                 "mount the workspace read-only (the sandbox's user need only read it)");
  exec->add_option("--rootfs", args.rootfs,
                   "root filesystem directory [default: the host's /usr, /bin, /sbin, "
                   "/lib*, /etc, read-only, and nothing else of the host]");
  exec->add_option("--layer", args.layers, "overlay layer above the root (repeatable, top first)");
  exec->add_option("--host-path", args.host_paths,
                   "host directory or file added read-only at the same path (repeatable)")
      ->type_name("PATH");
  exec->add_option("--memory", args.memory, "memory limit: BYTES or 512m, 2g");
  exec->add_option("--pids", args.pids, "maximum number of processes");
  exec->add_option("--cpus", args.cpus, "CPU limit in cores (0.5, 2)");
  exec->add_option("--timeout", args.timeout_seconds, "seconds before the whole tree is killed");
  exec->add_option("--env", args.env, "NAME=VALUE (repeatable)");
  exec->add_option("--uid", args.uid,
                   "host uid that root inside maps to [default: the workspace's "
                   "owner, or 100000 if root owns it]");
  exec->add_option("--hostname", args.hostname, "hostname inside");
  return exec;
}

std::optional<int> RunSandboxExecAlone(int argc, char** argv) {
  // RunCli's command line, as far as `sandbox exec` goes: the global options (--server is not
  // used here), `sandbox`, and `exec` with its own.
  CLI::App app("", "nightshift");
  app.fallthrough();
  app.require_subcommand(1);
  GlobalOptions global;
  AddGlobalOptions(app, global);
  CLI::App* sandbox = app.add_subcommand("sandbox");
  sandbox->require_subcommand(1);
  SandboxExecArgs args;
  CLI::App* exec = AddSandboxExecCommand(*sandbox, args);
  // Everything after "--" is the command, options of its own included; CLI11 never sees it.
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--") {
      args.command.assign(argv + i + 1, argv + argc);
      argc = i;
      break;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::Error&) {
    return std::nullopt;
  }
  if (!exec->parsed() || args.command.empty()) return std::nullopt;
  args.data_dir = global.data_dir;
  return SandboxExec(args);
}

}  // namespace nightshift::cli
