#pragma once

// Budgets (docs/governance.md#budgets): caps on the runs of everything, of one repository and
// of one agent — how many run at once, how many start in an hour, and how much their models may
// spend in a day. An agent run reserves its whole cost budget (agent.max_cost_usd) when it is
// queued, and the reservation becomes what it really spent when it ends, so runs started side by
// side cannot overshoot a spend cap. The run service applies them when a run is submitted.

#include <map>
#include <optional>
#include <string>

#include "core/config_node.h"
#include "core/status.h"
#include "store/store.h"

namespace nightshift::policy {

struct Caps {
  std::optional<int64_t> max_concurrent;        // queued, preparing or running
  std::optional<int64_t> max_runs_per_hour;     // started in the last 60 minutes
  std::optional<double> max_spend_per_day_usd;  // spent in the last 24 hours, and reserved
  bool empty() const { return !max_concurrent && !max_runs_per_hour && !max_spend_per_day_usd; }
};

struct BudgetsConfig {
  Caps global;
  std::map<std::string, Caps> repositories;  // by repository name
  std::map<std::string, Caps> agents;        // by agent (a trigger's, a schedule's, "adhoc")
  bool empty() const;
};

// The `budgets:` section: `global:`, `repositories: {NAME: …}`, `agents: {NAME: …}`, each with
// max_concurrent, max_runs_per_hour (integers ≥ 1) and max_spend_per_day_usd (a number > 0).
void ReadBudgetsConfig(const ConfigNode& node, BudgetsConfig& config, ConfigErrors& errors);

// Whether one more run — reserving `reserve_usd` — fits under `caps`, given the `usage` of its
// scope (`what`: "everything", "repository acme/api", "agent nightly"). ResourceExhausted naming
// the cap and the figures otherwise: "the spend cap of $5.00 a day for repository acme/api is
// reached: $4.20 spent and $1.00 reserved in the last 24 hours; this run reserves $1.00".
Status CheckCaps(const Caps& caps, const store::Usage& usage, double reserve_usd,
                 const std::string& what);

}  // namespace nightshift::policy
