#include "policy/budgets.h"

#include <cstdio>

namespace nightshift::policy {
namespace {

std::string Dollars(double usd) {
  char text[32];
  std::snprintf(text, sizeof text, "$%.2f", usd);
  return text;
}

void ReadCaps(const ConfigNode& node, Caps& caps, ConfigErrors& errors) {
  int64_t concurrent = 0, per_hour = 0;
  double spend = 0;
  bool has_concurrent = false, has_hour = false, has_spend = false;
  if (!ReadConfigFields(
          node,
          {{"max_concurrent",
            [&](const ConfigNode& n) { has_concurrent = ReadConfigValue(n, &concurrent, errors); }},
           {"max_runs_per_hour",
            [&](const ConfigNode& n) { has_hour = ReadConfigValue(n, &per_hour, errors); }},
           {"max_spend_per_day_usd",
            [&](const ConfigNode& n) { has_spend = ReadConfigValue(n, &spend, errors); }}},
          errors)) {
    return;
  }
  if (has_concurrent) {
    RequireConfig(concurrent >= 1, node, "max_concurrent", "must be at least 1", errors);
    caps.max_concurrent = concurrent;
  }
  if (has_hour) {
    RequireConfig(per_hour >= 1, node, "max_runs_per_hour", "must be at least 1", errors);
    caps.max_runs_per_hour = per_hour;
  }
  if (has_spend) {
    RequireConfig(spend > 0, node, "max_spend_per_day_usd", "must be more than 0", errors);
    caps.max_spend_per_day_usd = spend;
  }
}

void ReadCapsByName(const ConfigNode& node, std::map<std::string, Caps>& out,
                    ConfigErrors& errors) {
  if (!CheckConfigMapping(node, errors)) return;
  for (const auto& child : node.children()) ReadCaps(child, out[child.key()], errors);
}

}  // namespace

bool BudgetsConfig::empty() const {
  if (!global.empty()) return false;
  for (const auto& [name, caps] : repositories) {
    if (!caps.empty()) return false;
  }
  for (const auto& [name, caps] : agents) {
    if (!caps.empty()) return false;
  }
  return true;
}

void ReadBudgetsConfig(const ConfigNode& node, BudgetsConfig& config, ConfigErrors& errors) {
  ReadConfigFields(
      node,
      {{"global", [&](const ConfigNode& n) { ReadCaps(n, config.global, errors); }},
       {"repositories",
        [&](const ConfigNode& n) { ReadCapsByName(n, config.repositories, errors); }},
       {"agents", [&](const ConfigNode& n) { ReadCapsByName(n, config.agents, errors); }}},
      errors);
}

Status CheckCaps(const Caps& caps, const store::Usage& usage, double reserve_usd,
                 const std::string& what) {
  if (caps.max_concurrent && usage.unfinished + 1 > *caps.max_concurrent) {
    return ResourceExhaustedError(StrCat("the cap of ", *caps.max_concurrent,
                                         " concurrent runs for ", what,
                                         " is reached: ", usage.unfinished, " queued or running"));
  }
  if (caps.max_runs_per_hour && usage.started + 1 > *caps.max_runs_per_hour) {
    return ResourceExhaustedError(StrCat("the cap of ", *caps.max_runs_per_hour,
                                         " runs an hour for ", what, " is reached: ", usage.started,
                                         " started in the last 60 minutes"));
  }
  if (caps.max_spend_per_day_usd && reserve_usd > 0) {
    // The agent runs not yet finished hold their whole reservation.
    const double reserved = static_cast<double>(usage.unfinished_agents) * reserve_usd;
    if (usage.spent_usd + reserved + reserve_usd > *caps.max_spend_per_day_usd + 1e-9) {
      return ResourceExhaustedError(
          StrCat("the spend cap of ", Dollars(*caps.max_spend_per_day_usd), " a day for ", what,
                 " is reached: ", Dollars(usage.spent_usd), " spent and ", Dollars(reserved),
                 " reserved in the last 24 hours; this run reserves ", Dollars(reserve_usd)));
    }
  }
  return OkStatus();
}

}  // namespace nightshift::policy
