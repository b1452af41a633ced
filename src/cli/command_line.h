#pragma once

// How a verb joins the `nightshift` command line. Each verb has an Add…Verb function (verbs.h)
// that declares its subcommand and options, parsed into arguments the CommandLine keeps, and says
// what runs when it is the one given: a local verb (serve, sandbox exec) returns the exit code
// itself; a server verb gets an API client for --server, and its error is printed as one line
// "nightshift: …" with exit code 1.

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/client.h"
#include "cli/global_options.h"
#include "core/status.h"

namespace nightshift::cli {

class CommandLine {
 public:
  using LocalVerb = std::function<int()>;
  using ServerVerb = std::function<StatusOr<int>(api::ApiClient& api)>;
  // A check of the arguments alone, before anything connects: an error is a usage error (its
  // message on one line, exit code 2).
  using UsageCheck = std::function<Status()>;

  explicit CommandLine(CLI::App& app) : app_(app) {}
  CommandLine(const CommandLine&) = delete;
  CommandLine& operator=(const CommandLine&) = delete;

  CLI::App& app() { return app_; }
  GlobalOptions& global() { return global_; }
  // The words after "--", for a verb that runs a command (sandbox exec).
  std::vector<std::string>& command() { return command_; }

  // A value that lives as long as the command line: what a verb's options are parsed into.
  template <typename T>
  T& Own(T value = T{}) {
    auto owned = std::make_shared<T>(std::move(value));
    T& ref = *owned;
    owned_.push_back(std::move(owned));
    return ref;
  }

  // `command`, a subcommand without subcommands of its own, runs `verb` when it is given.
  void OnLocal(CLI::App* command, LocalVerb verb);
  void OnServer(CLI::App* command, ServerVerb verb, UsageCheck check = nullptr);

  // Runs the verb of the subcommand that was parsed; the process exit code.
  int RunParsed();

 private:
  struct Verb {
    CLI::App* command;
    LocalVerb run;
  };
  int OnServerRun(const ServerVerb& verb, const UsageCheck& check);

  CLI::App& app_;
  GlobalOptions global_;
  std::vector<std::string> command_;
  std::vector<Verb> verbs_;
  // Arguments of every type; shared_ptr<void> only to own them without knowing their types.
  std::vector<std::shared_ptr<void>> owned_;
};

// "nightshift: <message>" on stderr, on one line.
void PrintError(const Status& status);

// A run or change request id as given on the command line: a positive integer.
std::optional<int64_t> ParseId(std::string_view text);
// Checks an option against ParseId: "run id must be a positive integer, got 'x'".
const CLI::Validator& RunIdValidator();

}  // namespace nightshift::cli
