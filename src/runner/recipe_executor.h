#pragma once

#include <string>

#include "runner/executor.h"

namespace nightshift::runner {

// The deterministic agent: checks the repository out at the run's ref in a fresh directory
// and runs the recipe there with `sh -c`. Phases (checkout, agent) are recorded as "phase"
// events with their durations; git's and the recipe's output as "log" events.
class RecipeExecutor final : public Executor {
 public:
  // `git` is the git binary to use (looked up in PATH).
  explicit RecipeExecutor(std::string git = "git") : git_(std::move(git)) {}
  Outcome Execute(Execution& execution) override;

 private:
  const std::string git_;
};

// Validates a ref the way `git check-ref-format` does for a branch/tag name, or accepts a hex
// object id. Empty means the repository's HEAD and is valid. InvalidArgument with the reason.
Status ValidateRef(std::string_view ref);

}  // namespace nightshift::runner
