#pragma once

// The agent's tools, run inside the run's sandbox: read_file, write_file, edit_file,
// list_files, search, run_command, finish. Arguments come from the model and are untrusted:
// invalid JSON, an unknown tool, a missing or mistyped field, a path outside /workspace — each
// is a tool error the model reads, never a failure of the run. Outputs are bounded (head and
// tail kept, the cut marked) and secrets are redacted before they reach the model.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "agent/model.h"
#include "core/cancel.h"
#include "core/status.h"
#include "policy/engine.h"

namespace nightshift::agent {

// What the tools run in: `sh -c script` in the run's sandbox, working directory /workspace.
class Sandbox {
 public:
  struct Result {
    int exit_code = 0;
    std::string output;  // stdout and stderr as they arrived, bounded by the caller's cap
    bool timed_out = false;
  };
  virtual ~Sandbox() = default;
  virtual StatusOr<Result> Run(const std::string& script,
                               const std::map<std::string, std::string>& env,
                               const std::string& stdin_data, int64_t timeout_ms,
                               const CancelToken* cancel) = 0;
};

// Replaces secrets with [REDACTED]: given values (API keys, tokens, the run's secrets) in every
// form core/digest.h's SecretForms lists (those shorter than 8 bytes are ignored, they would
// shred the text) and every span FindSecrets (core/secrets.h) reports —
// cloud keys, forge and API tokens, whole private key blocks, the token of a bearer header.
// Any bytes in, linear time.
class Redactor {
 public:
  explicit Redactor(std::vector<std::string> secrets = {});
  std::string operator()(std::string text) const;

 private:
  std::vector<std::string> secrets_;
};

// Keeps the first and last `max_bytes / 2` bytes of `text`, marking what was cut.
std::string Bound(const std::string& text, size_t max_bytes);

// "/workspace/<p>" for a path relative to /workspace or inside it, normalized; InvalidArgument
// for anything that leaves it (absolute elsewhere, "..").
StatusOr<std::string> WorkspacePath(const std::string& path);

// Asks the platform whether the agent may act (policy/engine.h), before the tool does: "exec"
// with the command line as the context's `command` (run_command), "file.write" with the path
// relative to /workspace as the resource's `path` (write_file, edit_file). A denial is the
// tool's error, naming the rule, for the model to read and adapt to. Unset: all is allowed.
using Authorize = std::function<policy::Decision(
    const std::string& action, policy::Attributes resource, policy::Attributes context)>;

class Tools {
 public:
  Tools(Sandbox& sandbox, Redactor redactor, size_t output_bytes, int64_t command_timeout_ms,
        Authorize authorize = nullptr)
      : sandbox_(sandbox),
        redactor_(std::move(redactor)),
        output_bytes_(output_bytes),
        command_timeout_ms_(command_timeout_ms),
        authorize_(std::move(authorize)) {}

  static const std::vector<ToolSpec>& Specs();

  struct Result {
    std::string output;  // what the model reads: bounded and redacted
    bool is_error = false;
    bool finish = false;  // `finish` was called; output is its summary
  };
  // Never fails the run: what goes wrong becomes an error result. Only a cancel is reported
  // as Cancelled.
  StatusOr<Result> Call(const ToolCall& call, const CancelToken* cancel);

 private:
  StatusOr<Result> Dispatch(const std::string& name, const Json& args, const CancelToken* cancel);
  StatusOr<Result> InSandbox(const std::string& script, std::map<std::string, std::string> env,
                             const std::string& stdin_data, int64_t timeout_ms,
                             const CancelToken* cancel, bool prefix_exit_code = false);

  Sandbox& sandbox_;
  const Redactor redactor_;
  const size_t output_bytes_;
  const int64_t command_timeout_ms_;
  const Authorize authorize_;
};

}  // namespace nightshift::agent
