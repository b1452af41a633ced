#include "cli/command_line.h"

#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "cli/output.h"
#include "core/fs.h"

namespace nightshift::cli {
namespace {

std::string Trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n\v\f";
  size_t begin = s.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return "";
  size_t end = s.find_last_not_of(kSpace);
  return std::string(s.substr(begin, end - begin + 1));
}

// A client for the server, and why it has no token if it has none: a missing token is only
// reported when the server asks for one, so that an unreachable server is reported as that.
struct Connection {
  std::unique_ptr<api::ApiClient> api;
  std::string token_problem;

  // `status`, with the missing token explained if that is what the server complained about.
  Status Explain(const Status& status) const {
    if (status.code() != StatusCode::kUnauthenticated || token_problem.empty()) return status;
    return Status(status.code(), StrCat(status.message(), " (", token_problem, ")"));
  }
};

StatusOr<Connection> Connect(const GlobalOptions& global) {
  api::ApiClient::Options options;
  options.base_url = global.server;
  Connection connection;
  const char* env_token = std::getenv("NIGHTSHIFT_TOKEN");
  if (env_token != nullptr && !Trim(env_token).empty()) {
    options.token = Trim(env_token);
  } else {
    auto path = std::filesystem::path(global.data_dir) / "admin-token";
    auto content = ReadFile(path);
    if (content.ok()) options.token = Trim(*content);
    if (options.token.empty()) {
      connection.token_problem = StrCat(
          "no API token: set NIGHTSHIFT_TOKEN, or point --data-dir or NIGHTSHIFT_DATA_DIR "
          "at the server's data directory; ",
          content.ok() ? StrCat(path.string(), " is empty") : content.status().message());
    }
  }
  ASSIGN_OR_RETURN(connection.api, api::ApiClient::Create(std::move(options)));
  return connection;
}

}  // namespace

void CommandLine::OnLocal(CLI::App* command, LocalVerb verb) {
  verbs_.push_back({command, std::move(verb)});
}

void CommandLine::OnServer(CLI::App* command, ServerVerb verb, UsageCheck check) {
  verbs_.push_back({command, [this, verb = std::move(verb), check = std::move(check)] {
                      return OnServerRun(verb, check);
                    }});
}

int CommandLine::RunParsed() {
  for (const Verb& verb : verbs_) {
    if (verb.command->parsed()) return verb.run();
  }
  PrintError(InternalError("no command"));
  return 1;
}

int CommandLine::OnServerRun(const ServerVerb& verb, const UsageCheck& check) {
  if (check) {
    if (Status usage = check(); !usage.ok()) {
      PrintError(usage);
      return 2;
    }
  }
  auto connection = Connect(global_);
  if (!connection.ok()) {
    PrintError(connection.status());
    return 1;
  }
  StatusOr<int> result = InternalError("no command");
  try {
    result = verb(*connection->api);
  } catch (const std::exception& e) {
    // Nothing above should throw; if a library does, report it like any other failure.
    result = InternalError(StrCat("internal error: ", e.what()));
  }
  if (!result.ok()) {
    PrintError(connection->Explain(result.status()));
    return 1;
  }
  std::cout.flush();
  return *result;
}

void PrintError(const Status& status) {
  std::cout.flush();
  std::cerr << "nightshift: " << OneLine(status.message()) << '\n';
}

std::optional<int64_t> ParseId(std::string_view text) {
  int64_t id = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (error != std::errc() || end != text.data() + text.size() || id <= 0) return std::nullopt;
  return id;
}

const CLI::Validator& RunIdValidator() {
  static const auto* const kValidator = new CLI::Validator(
      [](std::string& value) -> std::string {
        if (ParseId(value)) return "";
        return StrCat("run id must be a positive integer, got '", value, "'");
      },
      "");
  return *kValidator;
}

}  // namespace nightshift::cli
