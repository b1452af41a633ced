// The verbs that need no server: serve, sandbox exec, config check, cron next.

#include <charconv>
#include <chrono>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>

#include "cli/config_check.h"
#include "cli/sandbox_exec.h"
#include "cli/verbs.h"
#include "triggers/cron.h"

namespace nightshift::cli {
namespace {

// HOST:PORT, with a port in 0–65535 (0: any free port); an IPv6 host in brackets.
const CLI::Validator& ListenValidator() {
  static const auto* const kValidator = new CLI::Validator(
      [](std::string& value) -> std::string {
        size_t colon = value.rfind(':');
        std::string_view port =
            colon == std::string::npos ? "" : std::string_view(value).substr(colon + 1);
        int number = -1;
        auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), number);
        if (colon == 0 || colon == std::string::npos || port.empty() || error != std::errc() ||
            end != port.data() + port.size() || number < 0 || number > 65535) {
          return StrCat("expected HOST:PORT, got '", value, "'");
        }
        return "";
      },
      "");
  return *kValidator;
}

}  // namespace

void AddServeVerb(CommandLine& cli, const ServeFn& serve) {
  auto& options = cli.Own<ServeOptions>();
  std::string& data_dir = cli.Own<std::string>();
  CLI::App* cmd = cli.app().add_subcommand("serve", "run the server (and an embedded runner)");
  cmd->add_option("--listen", options.listen, "address to listen on (port 0: any)")
      ->type_name("HOST:PORT")
      ->check(ListenValidator())
      ->capture_default_str();
  cmd->add_option("--data-dir", data_dir,
                  "directory for the database and admin-token [default: .nightshift, or "
                  "NIGHTSHIFT_DATA_DIR]")
      ->type_name("DIR");
  cmd->add_option("--runners", options.runners, "embedded runners; 0 disables them")
      ->type_name("N")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  cmd->add_option("--lease-ttl", options.lease_ttl_seconds,
                  "seconds a runner's lease lasts without a heartbeat")
      ->type_name("SECONDS")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  cmd->add_option("--log-level", options.log_level, "how much the server logs")
      ->type_name("LEVEL")
      ->check(CLI::IsMember({"debug", "info", "warn", "error", "off"}))
      ->capture_default_str();
  cmd->add_option("--sandbox", options.sandbox,
                  "run recipes in a sandbox: on (needs root), off, auto (on when root)")
      ->check(CLI::IsMember({"on", "off", "auto"}))
      ->capture_default_str();
  cmd->add_option("--run-memory", options.run_memory,
                  "memory limit of each sandboxed run: BYTES, or 512m, 2g");
  cmd->add_option("--run-pids", options.run_pids, "process limit of each sandboxed run")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--run-cpus", options.run_cpus, "CPU limit (cores) of each sandboxed run")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--warm-sandboxes", options.warm_sandboxes,
                  "sandboxes kept pre-forked for the next runs (0: start each cold)")
      ->check(CLI::Range(0, 64))
      ->capture_default_str();
  cmd->add_option("--sandbox-host-path", options.sandbox_host_paths,
                  "host directory or file added read-only to every sandboxed run's root, at "
                  "the same path (repeatable; the root has only /usr, /bin, /sbin, /lib*, /etc "
                  "of the host otherwise)")
      ->type_name("PATH");
  cmd->add_option("--config", options.config,
                  "YAML file: models, agent budgets, review policies, identity, forges "
                  "(docs/operations.md; check it with 'nightshift config check FILE')")
      ->type_name("FILE");
  cmd->add_option("--cache-size", options.cache_size,
                  "keep cached checkouts and prebuilds under this size (BYTES, or 512m, 20g)")
      ->capture_default_str();
  cmd->add_option("--mirror-max-age", options.mirror_max_age_seconds,
                  "reuse a repository mirror fetched less than this many seconds ago (0: fetch "
                  "on every run)")
      ->check(CLI::Range(0, 86400))
      ->capture_default_str();
  cmd->add_option("--durability", options.durability,
                  "process: a commit survives any crash of the server; power: also power loss "
                  "(an fsync per commit)")
      ->type_name("LEVEL")
      ->check(CLI::IsMember({"process", "power"}))
      ->capture_default_str();
  cli.OnLocal(cmd, [&cli, &options, &data_dir, serve] {
    options.data_dir = !data_dir.empty() ? data_dir : cli.global().data_dir;
    return serve(options);
  });
}

void AddSandboxVerbs(CommandLine& cli) {
  CLI::App* sandbox =
      cli.app().add_subcommand("sandbox", "run commands in a sandbox on this machine");
  sandbox->require_subcommand(1);
  auto& args = cli.Own<SandboxExecArgs>();
  CLI::App* exec = AddSandboxExecCommand(*sandbox, args);
  cli.OnLocal(exec, [&cli, &args] {
    args.data_dir = cli.global().data_dir;
    args.command = cli.command();
    if (args.command.empty()) {
      std::cerr
          << "nightshift: no command given: nightshift sandbox exec [OPTIONS] -- CMD ARGS...\n";
      return 2;
    }
    return SandboxExec(args);
  });
}

void AddConfigVerb(CommandLine& cli) {
  CLI::App* config = cli.app().add_subcommand("config", "the server's config file");
  config->require_subcommand(1);
  auto& file = cli.Own<std::string>();
  CLI::App* check = config->add_subcommand(
      "check", "read FILE as 'serve --config FILE' does: print ok, or every error and exit 1");
  check->add_option("FILE", file, "the YAML config file")->required();
  cli.OnLocal(check, [&file] { return ConfigCheck(file); });
}

struct CronNextArgs {
  std::string expression;
  std::string timezone;
  std::string after;  // RFC 3339; empty: now
  int count = 5;
};

int CronNext(const CronNextArgs& args) {
  auto fail = [](const Status& status) {
    std::cerr << "nightshift: " << status.message() << '\n';
    return 1;
  };
  auto schedule = triggers::Schedule::Make(args.expression, args.timezone);
  if (!schedule.ok()) return fail(schedule.status());
  triggers::Seconds at = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  if (!args.after.empty()) {
    auto after = triggers::ParseRfc3339(args.after);
    if (!after.ok()) return fail(after.status());
    at = *after;
  }
  for (int i = 0; i < args.count; ++i) {
    std::optional<triggers::Seconds> next = schedule->Next(at);
    if (!next) break;  // past the year 9999
    std::cout << schedule->Format(*next) << '\n';
    at = *next;
  }
  return 0;
}

void AddCronVerb(CommandLine& cli) {
  CLI::App* cron = cli.app().add_subcommand("cron", "cron schedules");
  cron->require_subcommand(1);
  auto& args = cli.Own<CronNextArgs>();
  CLI::App* next = cron->add_subcommand(
      "next", "print EXPR's next fire times as RFC 3339, one a line (docs/triggers.md)");
  next->add_option("EXPR", args.expression,
                   "5 fields (minute hour day-of-month month day-of-week) or @hourly … @yearly")
      ->required();
  next->add_option("--tz", args.timezone, "IANA time zone, e.g. Europe/Berlin [default: UTC]")
      ->type_name("ZONE");
  next->add_option("--after", args.after, "start after this time [default: now]")
      ->type_name("RFC3339");
  next->add_option("-n", args.count, "how many")
      ->type_name("N")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cli.OnLocal(next, [&args] { return CronNext(args); });
}

}  // namespace nightshift::cli
