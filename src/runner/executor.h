#pragma once

// An Executor carries out one leased run: it prepares what the run needs (the checkout, the
// environment, the sandbox), moves the run to `running`, executes the recipe or agent, hands
// the result to the control plane (Execution::conclude) and says how the run ended. The runner
// owns leasing, heartbeats and the final transition.

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "agent/tools.h"
#include "core/cancel.h"
#include "core/status.h"
#include "forge/delivery.h"
#include "policy/secrets.h"
#include "runner/event_writer.h"
#include "store/model.h"

namespace nightshift::runner {

struct Execution {
  const store::Run& run;
  const store::Repository& repo;
  std::filesystem::path work_dir;  // an empty scratch directory, removed after the run
  EventWriter& events;
  const CancelToken& cancel;  // fired on cancel or lost lease
  // Moves the run preparing → running (recording the resolved commit). An error means the run
  // was cancelled or its lease lost: stop at once.
  std::function<Status(const std::string& commit)> mark_running;
  // Hands the result over to the control plane once the run's own events are written
  // (LeaseSource::Conclude); says how the run ends when the control plane decides.
  std::function<StatusOr<forge::Conclusion>(const forge::RunHandover& handover)> conclude;
  // Asks the control plane's policy whether the run may act (LeaseSource::Authorize): a
  // recipe's command line before it runs, the agent's commands and writes. Unset: no policy.
  agent::Authorize authorize;
  // The secrets the run gets (LeaseSource::Secrets), asked once when its environment is made.
  // Unset: none.
  std::function<StatusOr<std::vector<policy::SecretValue>>()> secrets;
};

struct Outcome {
  store::RunState state = store::RunState::kFailed;
  std::optional<int32_t> exit_code;
  std::string reason;
  // The agent stopped at its budget: why. Its work is still handed over, to be delivered as a
  // draft (forge::RunHandover::stopped_at_budget).
  std::string stopped_at_budget;
};

class Executor {
 public:
  virtual ~Executor() = default;
  // Runs on a runner thread; several executions may run concurrently.
  virtual Outcome Execute(Execution& execution) = 0;
};

}  // namespace nightshift::runner
