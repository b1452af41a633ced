#include "cli/commands.h"

#include <CLI/CLI.hpp>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "cli/command_line.h"
#include "cli/output.h"
#include "cli/verbs.h"

namespace nightshift::cli {
namespace {

// CLI11's parse error as one line: "A subcommand is required" is its answer to a misspelt one too,
// so that case names the word it did not know.
std::string ParseErrorMessage(const CLI::App& app, const CLI::ParseError& error) {
  const CLI::App* command = &app;
  std::string path = "nightshift";
  while (!command->get_subcommands().empty()) {
    command = command->get_subcommands().front();
    path += " " + command->get_name();
  }
  if (std::vector<std::string> extra = app.remaining(true);
      !extra.empty() && command->get_require_subcommand_min() > 0) {
    return StrCat("unknown command '", extra.front(), "'; see '", path, " --help'");
  }
  return error.what();
}

}  // namespace

int RunCli(int argc, char** argv, const ServeFn& serve) {
  CLI::App app("Nightshift: runs recipes against git repositories in the background.",
               "nightshift");
  app.fallthrough();  // global options may also follow the subcommand
  app.require_subcommand(1);
  app.footer(
      "Environment: NIGHTSHIFT_SERVER (--server), NIGHTSHIFT_DATA_DIR (--data-dir),\n"
      "NIGHTSHIFT_TOKEN (the API token; else it is read from DATA_DIR/admin-token).");

  CommandLine cli(app);
  AddGlobalOptions(app, cli.global());

  // The verbs, in the order --help lists them.
  AddServeVerb(cli, serve);
  AddRepoVerbs(cli);
  AddRunVerb(cli);
  AddPrebuildVerb(cli);
  AddRunsVerb(cli);
  AddShowVerb(cli);
  AddLogsVerb(cli);
  AddChangeRequestVerbs(cli);
  AddCancelVerb(cli);
  AddPauseVerbs(cli);
  AddTriggerVerbs(cli);
  AddIdentityVerbs(cli);
  AddSecretVerbs(cli);
  AddConfigVerb(cli);
  AddPolicyVerbs(cli);
  AddCronVerb(cli);
  AddSandboxVerbs(cli);

  // Everything after "--" is the command of `sandbox exec`, options of its own included; CLI11
  // never sees it.
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--") {
      cli.command().assign(argv + i + 1, argv + argc);
      argc = i;
      break;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    PrintError(InvalidArgumentError(ParseErrorMessage(app, e)));
    return 2;
  }
  return cli.RunParsed();
}

}  // namespace nightshift::cli
