#include "tests/support/host_dir_sandbox.h"

#include "agent/process_sandbox.h"
#include "sandbox/process.h"

namespace nightshift::testing {
namespace {

constexpr std::string_view kWorkspace = "/workspace";

std::string ReplaceAll(std::string text, std::string_view from, std::string_view to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

}  // namespace

HostDirSandbox::HostDirSandbox(const std::filesystem::path& dir)
    : dir_(std::filesystem::canonical(dir).string()) {}

StatusOr<agent::Sandbox::Result> HostDirSandbox::Run(const std::string& script,
                                                     const std::map<std::string, std::string>& env,
                                                     const std::string& stdin_data,
                                                     int64_t timeout_ms,
                                                     const CancelToken* cancel) {
  sandbox::ProcessSpec spec{.working_dir = dir_,
                            .env = {{"PATH", "/usr/bin:/bin"}, {"HOME", dir_}},
                            .timeout_ms = timeout_ms,
                            .max_line_bytes = 1 << 20,
                            .stdin_data = stdin_data};
  spec.argv = {"/bin/sh", "-c", ReplaceAll(script, kWorkspace, dir_)};
  for (const auto& [name, value] : env) spec.env[name] = ReplaceAll(value, kWorkspace, dir_);
  ASSIGN_OR_RETURN(Result out, agent::RunCollected(spec, cancel));
  out.output = ReplaceAll(std::move(out.output), dir_, kWorkspace);
  return out;
}

}  // namespace nightshift::testing
