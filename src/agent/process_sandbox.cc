#include "agent/process_sandbox.h"

namespace nightshift::agent {

StatusOr<Sandbox::Result> RunCollected(const sandbox::ProcessSpec& spec,
                                       const CancelToken* cancel) {
  Sandbox::Result out;
  auto r = sandbox::RunProcess(
      spec,
      [&](std::string_view, std::string_view line) {
        out.output.append(line);
        out.output.push_back('\n');
      },
      cancel);
  if (!r.ok()) return r.status();
  out.exit_code = r->exit_code;
  out.timed_out = r->reason == sandbox::EndReason::kTimedOut;
  return out;
}

StatusOr<Sandbox::Result> ProcessSandbox::Run(const std::string& script,
                                              const std::map<std::string, std::string>& env,
                                              const std::string& stdin_data, int64_t timeout_ms,
                                              const CancelToken* cancel) {
  sandbox::ProcessSpec spec = base_;
  spec.argv = {"/bin/sh", "-c", script};
  for (const auto& [name, value] : env) spec.env[name] = value;
  spec.stdin_data = stdin_data;
  spec.timeout_ms = timeout_ms;
  spec.max_line_bytes = 1 << 20;
  return RunCollected(spec, cancel);
}

}  // namespace nightshift::agent
