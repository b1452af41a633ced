#pragma once

// The agent's tools in a real sandbox: the one place the agent part runs commands itself. The
// loop and the tools see only the Sandbox interface (tools.h).

#include <cstdint>
#include <map>
#include <string>

#include "agent/tools.h"
#include "core/cancel.h"
#include "core/status.h"
#include "sandbox/process.h"

namespace nightshift::agent {

// Runs `spec` to its end and returns what a tool call sees: stdout and stderr interleaved as
// lines, each ending in '\n', the exit code, and whether it timed out. For every Sandbox that
// runs processes (ProcessSandbox; in tests, a host directory's).
StatusOr<Sandbox::Result> RunCollected(const sandbox::ProcessSpec& spec, const CancelToken* cancel);

// A Sandbox over RunProcess: each call runs `sh -c script` with `base`'s sandbox, environment
// and pool, the call's environment on top, stdin, timeout, and long lines kept whole.
class ProcessSandbox : public Sandbox {
 public:
  explicit ProcessSandbox(sandbox::ProcessSpec base) : base_(std::move(base)) {}
  StatusOr<Result> Run(const std::string& script, const std::map<std::string, std::string>& env,
                       const std::string& stdin_data, int64_t timeout_ms,
                       const CancelToken* cancel) override;

 private:
  const sandbox::ProcessSpec base_;
};

}  // namespace nightshift::agent
