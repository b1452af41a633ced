#include "cli/commands.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "cli/api_client.h"
#include "cli/sandbox_exec.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/status.h"

namespace nightshift::cli {
namespace {

constexpr char kDefaultServer[] = "http://127.0.0.1:8080";
constexpr char kDefaultDataDir[] = ".nightshift";
constexpr size_t kRecipeColumnWidth = 40;
constexpr int64_t kMaxRunsPageSize = 500;  // the API's limit on `limit`

// ---------------------------------------------------------------------------------------------
// Reading and showing untrusted JSON: nothing here throws or trusts a field's type.

const Json* Field(const Json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string Dump(const Json& json, int indent = -1) {
  return json.dump(indent, ' ', false, Json::error_handler_t::replace);
}

// A field as display text: strings as they are, other values as JSON, `fallback` when absent.
std::string Text(const Json& object, std::string_view key, std::string_view fallback = "-") {
  const Json* value = Field(object, key);
  if (value == nullptr) return std::string(fallback);
  if (value->is_string()) {
    const auto& s = value->get_ref<const std::string&>();
    return s.empty() ? std::string(fallback) : s;
  }
  return Dump(*value);
}

std::optional<int64_t> Int(const Json& object, std::string_view key) {
  const Json* value = Field(object, key);
  if (value == nullptr || !value->is_number_integer()) return std::nullopt;
  return value->get<int64_t>();
}

// One line of at most `max_bytes` (0: no limit): control characters become spaces, and a cut
// never splits a UTF-8 sequence.
std::string OneLine(std::string_view s, size_t max_bytes = 0) {
  std::string out;
  for (char c : s) out.push_back(static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? ' ' : c);
  if (max_bytes > 3 && out.size() > max_bytes) {
    size_t cut = max_bytes - 3;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out.resize(cut);
    out += "...";
  }
  return out;
}

// "2026-11-25T12:00:00.000Z" as local time "2026-11-25 13:00:00"; other text unchanged.
std::string LocalTime(const std::string& iso) {
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(iso.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6 ||
      iso.back() != 'Z') {
    return iso;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  std::time_t t = timegm(&tm);
  std::tm local{};
  if (t == -1 || localtime_r(&t, &local) == nullptr) return iso;
  char buf[64];
  if (std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &local) == 0) return iso;
  return buf;
}

std::string TimeField(const Json& object, std::string_view key) {
  std::string text = Text(object, key);
  return text == "-" ? text : LocalTime(text);
}

void PrintTable(const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths(header.size());
  for (size_t i = 0; i < header.size(); ++i) widths[i] = header[i].size();
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  auto print_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << '\n';
  };
  print_row(header);
  for (const auto& row : rows) print_row(row);
}

// ---------------------------------------------------------------------------------------------
// Run events as output

// Prints run events: log lines to the stream they came from, everything else as a short
// "[kind] ..." line on stderr; or, with `json`, each event as one line of JSON on stdout.
class EventPrinter {
 public:
  EventPrinter(bool json, bool live) : json_(json), live_(live) {}

  Status Print(const std::string& kind, const Json& event) {
    if (json_) {
      std::cout << Dump(event) << '\n';
      if (live_) std::cout.flush();
      return OkStatus();
    }
    static const Json kNoData = Json::object();
    const Json* found = Field(event, "data");
    const Json& data = found != nullptr ? *found : kNoData;
    if (kind == "log") {
      std::string line = Text(data, "line", "");
      if (Text(data, "stream") == "stderr") {
        ToStderr(line);
      } else {
        std::cout << line << '\n';
        if (live_) std::cout.flush();
      }
    } else if (kind == "state") {
      std::string line = data.contains("from") ? StrCat("[state] ", Text(data, "from", "?"), " -> ",
                                                        Text(data, "to", "?"))
                                               : StrCat("[state] ", Text(data, "to", "?"));
      std::vector<std::string> details;
      if (Text(data, "to") == "preparing" && Int(data, "attempt")) {
        details.push_back(StrCat("attempt ", *Int(data, "attempt")));
      }
      if (auto code = Int(data, "exit_code")) details.push_back(StrCat("exit code ", *code));
      if (!details.empty()) {
        line += " (";
        for (size_t i = 0; i < details.size(); ++i) line += (i ? ", " : "") + details[i];
        line += ")";
      }
      if (std::string reason = Text(data, "reason", ""); !reason.empty()) {
        line += ": " + OneLine(reason);
      }
      ToStderr(line);
    } else if (kind == "phase") {
      std::string line = StrCat("[phase] ", Text(data, "name", "?"), " ", Text(data, "status", ""));
      if (auto ms = Int(data, "duration_ms")) line += StrCat(" (", *ms, " ms)");
      ToStderr(line);
    } else if (kind == "checkout") {
      ToStderr(StrCat("[checkout] ", Text(data, "commit"), " (", Text(data, "ref", "HEAD"), ")"));
    } else if (kind == "environment") {
      std::string line = StrCat("[environment] prebuild ", Text(data, "prebuild", "none"));
      if (std::string id = Text(data, "prebuild_id", ""); !id.empty()) line += " (" + id + ")";
      ToStderr(line);
    } else if (kind == "change_request") {
      ToStderr(StrCat("[change request] ", Int(data, "id").value_or(0),
                      data.value("updated", false) ? " updated: " : " opened: ",
                      Text(data, "branch"), " -> ", Text(data, "base_branch")));
    } else if (kind == "policy") {
      ToStderr(StrCat("[policy] blocked: ", Dump(data)));
    } else if (kind == "model_request" || kind == "agent_start") {
      // The request is the conversation so far: its new parts show up as responses and
      // tool results. --json has everything.
    } else if (kind == "model_response") {
      if (std::string error = Text(data, "error", ""); !error.empty()) {
        ToStderr(StrCat("[model] step ", Int(data, "step").value_or(0), ": ", OneLine(error)));
      } else {
        if (std::string text = Text(data, "text", ""); !text.empty()) {
          ToStderr(StrCat("[model] ", OneLine(text)));
        }
        ToStderr(StrCat("[model] step ", Int(data, "step").value_or(0), ": ",
                        Int(data, "input_tokens").value_or(0), " in / ",
                        Int(data, "output_tokens").value_or(0), " out tokens, ",
                        Int(data, "latency_ms").value_or(0), " ms"));
      }
    } else if (kind == "tool_call") {
      ToStderr(StrCat("[tool] ", Text(data, "name", "?"), " ",
                      OneLine(Text(data, "arguments", ""), 160)));
    } else if (kind == "tool_result") {
      const std::string output = Text(data, "output", "");
      ToStderr(StrCat("[tool] ", Text(data, "name", "?"),
                      data.value("is_error", false) ? " error: " : " -> ", OneLine(output, 160)));
    } else if (kind == "agent_end") {
      const Json* cost = Field(data, "cost_usd");
      ToStderr(StrCat(
          "[agent] ", Text(data, "end", "?"), " after ", Int(data, "steps").value_or(0), " steps, ",
          Int(data, "input_tokens").value_or(0) + Int(data, "output_tokens").value_or(0),
          " tokens, $", cost != nullptr && cost->is_number() ? cost->dump() : "0",
          Text(data, "reason", "").empty() ? "" : ": " + Text(data, "reason", "")));
    } else if (kind == "result") {
      if (std::string summary = Text(data, "summary", ""); !summary.empty()) {
        ToStderr(StrCat("[result] ", summary));
      }
      // The diff itself is in the event (--json, the API); here, which files changed.
      if (const Json* files = Field(data, "files");
          files != nullptr && files->is_array() && !files->empty()) {
        std::string names;
        for (const Json& f : *files) {
          names += (names.empty() ? "" : ", ") + Text(f, "path", "?") + " (+" +
                   Text(f, "added", "?") + " -" + Text(f, "removed", "?") + ")";
        }
        ToStderr(StrCat("[result] ", files->size(), " file(s) changed: ", OneLine(names, 400)));
      }
    } else {
      ToStderr(StrCat("[", OneLine(kind), "] ", Dump(data)));
    }
    return OkStatus();
  }

 private:
  static void ToStderr(const std::string& line) {
    std::cout.flush();  // keep the order of interleaved stdout and stderr lines
    std::cerr << line << '\n';
  }

  bool json_;
  bool live_;
};

// ---------------------------------------------------------------------------------------------
// Connecting

struct GlobalOptions {
  std::string server = kDefaultServer;
  std::string data_dir = kDefaultDataDir;
};

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
  std::unique_ptr<ApiClient> api;
  std::string token_problem;

  // `status`, with the missing token explained if that is what the server complained about.
  Status Explain(const Status& status) const {
    if (status.code() != StatusCode::kUnauthenticated || token_problem.empty()) return status;
    return Status(status.code(), StrCat(status.message(), " (", token_problem, ")"));
  }
};

StatusOr<Connection> Connect(const GlobalOptions& global) {
  ApiClient::Options options;
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
  ASSIGN_OR_RETURN(connection.api, ApiClient::Create(std::move(options)));
  return connection;
}

// ---------------------------------------------------------------------------------------------
// Verbs. Each returns the exit code, or the error to report (exit code 1).

struct RepoAddArgs {
  std::string name;
  std::string url;
  bool json = false;
};

// A relative path to an existing local directory or file is made absolute, since the server
// resolves paths from its own working directory; URLs and everything else go as they are.
std::string ResolveRepositoryUrl(const std::string& arg) {
  if (arg.empty() || arg.front() == '/' || arg.find("://") != std::string::npos) return arg;
  std::error_code error;
  if (!std::filesystem::exists(arg, error)) return arg;
  auto absolute = std::filesystem::absolute(arg, error);
  if (error) return arg;
  std::string path = absolute.lexically_normal().string();
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

StatusOr<int> RepoAdd(ApiClient& api, const RepoAddArgs& args) {
  Json body = {{"name", args.name}, {"url", ResolveRepositoryUrl(args.url)}};
  ASSIGN_OR_RETURN(Json repository, api.Post("/api/v1/repositories", body));
  if (args.json) {
    std::cout << Dump(repository, 2) << '\n';
  } else {
    std::cout << "repository " << Text(repository, "name") << " added (" << Text(repository, "url")
              << ")\n";
  }
  return 0;
}

StatusOr<int> RepoList(ApiClient& api, bool json) {
  ASSIGN_OR_RETURN(Json answer, api.Get("/api/v1/repositories"));
  const Json* found = Field(answer, "repositories");
  Json repositories = found != nullptr && found->is_array() ? *found : Json::array();
  if (json) {
    std::cout << Dump(repositories, 2) << '\n';
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const Json& repository : repositories) {
    rows.push_back({OneLine(Text(repository, "name")), OneLine(Text(repository, "url")),
                    TimeField(repository, "created_at")});
  }
  PrintTable({"NAME", "URL", "CREATED"}, rows);
  return 0;
}

StatusOr<int> RepoRemove(ApiClient& api, const std::string& name) {
  RETURN_IF_ERROR(api.Delete(StrCat("/api/v1/repositories/", UrlEncode(name))).status());
  std::cout << "repository " << name << " removed\n";
  return 0;
}

// Streams a run's events to the terminal until it ends; the final state.
StatusOr<std::string> Follow(ApiClient& api, int64_t run_id, bool json) {
  EventPrinter printer(json, /*live=*/true);
  return api.StreamEvents(run_id, 0, [&](int64_t, const std::string& kind, const Json& event) {
    return printer.Print(kind, event);
  });
}

struct RunArgs {
  std::string repo;
  std::string kind;  // empty: "agent" with a task, else "recipe"
  std::string recipe;
  std::string task;
  std::string model;
  std::string ref;
  std::optional<int> timeout_seconds;
  std::optional<int> max_attempts;
  bool follow = false;
  bool json = false;
};

StatusOr<int> Run(ApiClient& api, const RunArgs& args) {
  Json body = {{"repo", args.repo}};
  if (!args.kind.empty()) body["kind"] = args.kind;
  if (!args.recipe.empty()) body["recipe"] = args.recipe;
  if (!args.task.empty()) body["task"] = args.task;
  if (!args.model.empty()) body["model"] = args.model;
  if (!args.ref.empty()) body["ref"] = args.ref;
  if (args.timeout_seconds) body["timeout_seconds"] = *args.timeout_seconds;
  if (args.max_attempts) body["max_attempts"] = *args.max_attempts;
  ASSIGN_OR_RETURN(Json run, api.Post("/api/v1/runs", body));
  auto id = Int(run, "id");
  if (!id || *id <= 0) return InternalError("the server's answer has no run id: " + Dump(run));

  if (args.json) {
    std::cout << Dump(run, args.follow ? -1 : 2) << '\n';
  } else {
    (args.follow ? std::cerr : std::cout) << "run " << *id << " " << Text(run, "state") << '\n';
  }
  if (!args.follow) return 0;

  ASSIGN_OR_RETURN(std::string state, Follow(api, *id, args.json));
  if (state == "succeeded") return 0;
  // Why it did not succeed is on the run; the end event names only the state.
  std::string why;
  if (auto final_run = api.Get(StrCat("/api/v1/runs/", *id)); final_run.ok()) {
    why = Text(*final_run, "reason", "");
    if (why.empty()) {
      if (auto code = Int(*final_run, "exit_code")) why = StrCat("exit code ", *code);
    }
  }
  std::cout.flush();
  std::cerr << "run " << *id << " " << state << (why.empty() ? "" : ": ") << OneLine(why) << '\n';
  return 1;
}

struct RunsArgs {
  std::string repo;
  std::string state;
  std::optional<int64_t> limit;
  bool json = false;
};

StatusOr<int> Runs(ApiClient& api, const RunsArgs& args) {
  Json runs = Json::array();
  std::optional<int64_t> before;
  for (;;) {
    std::string query;
    auto add = [&](std::string_view key, const std::string& value) {
      query += StrCat(query.empty() ? "?" : "&", key, "=", UrlEncode(value));
    };
    if (!args.repo.empty()) add("repo", args.repo);
    if (!args.state.empty()) add("state", args.state);
    if (args.limit) {
      add("limit", std::to_string(std::min<int64_t>(*args.limit - static_cast<int64_t>(runs.size()),
                                                    kMaxRunsPageSize)));
    }
    if (before) add("before", std::to_string(*before));
    ASSIGN_OR_RETURN(Json page, api.Get("/api/v1/runs" + query));
    const Json* page_runs = Field(page, "runs");
    if (page_runs == nullptr || !page_runs->is_array()) {
      return InternalError("the server's list of runs has no 'runs' array");
    }
    for (const Json& run : *page_runs) runs.push_back(run);
    // Without --limit, one page (the server's default size) is the answer.
    auto next = Int(page, "next_before");
    if (!args.limit || !next || page_runs->empty() ||
        static_cast<int64_t>(runs.size()) >= *args.limit || (before && *next >= *before)) {
      break;
    }
    before = next;
  }

  if (args.json) {
    std::cout << Dump(runs, 2) << '\n';
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const Json& run : runs) {
    rows.push_back({Text(run, "id"), OneLine(Text(run, "repo")), Text(run, "state"),
                    OneLine(Text(run, "ref", "HEAD")), TimeField(run, "created_at"),
                    OneLine(Text(run, "recipe"), kRecipeColumnWidth)});
  }
  PrintTable({"ID", "REPO", "STATE", "REF", "CREATED", "RECIPE"}, rows);
  return 0;
}

StatusOr<int> Show(ApiClient& api, int64_t run_id, bool json) {
  ASSIGN_OR_RETURN(Json run, api.Get(StrCat("/api/v1/runs/", run_id)));
  if (json) {
    std::cout << Dump(run, 2) << '\n';
    return 0;
  }
  auto row = [](std::string_view key, const std::string& value) {
    std::cout << "  " << key << std::string(11 - std::min<size_t>(key.size(), 10), ' ') << value
              << '\n';
  };
  std::cout << "run " << Text(run, "id") << '\n';
  row("repo", OneLine(Text(run, "repo")));
  row("ref", OneLine(Text(run, "ref", "HEAD")));
  row("commit", Text(run, "commit"));
  row("recipe", OneLine(Text(run, "recipe")));
  row("state", Text(run, "state"));
  row("attempt", StrCat(Text(run, "attempt"), "/", Text(run, "max_attempts")));
  row("exit code", Text(run, "exit_code"));
  row("reason", OneLine(Text(run, "reason")));
  row("timeout", StrCat(Text(run, "timeout_seconds"), " s"));
  row("created", TimeField(run, "created_at"));
  row("started", TimeField(run, "started_at"));
  row("finished", TimeField(run, "finished_at"));
  if (const Json* lease = Field(run, "lease"); lease != nullptr && lease->is_object()) {
    row("lease",
        StrCat(OneLine(Text(*lease, "owner")), " until ", TimeField(*lease, "expires_at")));
  }
  const Json* attempts = Field(run, "attempts");
  if (attempts != nullptr && attempts->is_array() && !attempts->empty()) {
    std::cout << "attempts\n";
    std::vector<std::vector<std::string>> rows;
    for (const Json& attempt : *attempts) {
      rows.push_back({StrCat("  #", Text(attempt, "number")), OneLine(Text(attempt, "runner")),
                      TimeField(attempt, "started_at"), TimeField(attempt, "ended_at"),
                      Text(attempt, "outcome", "running"), OneLine(Text(attempt, "reason", ""))});
    }
    PrintTable({"  #", "RUNNER", "STARTED", "ENDED", "OUTCOME", "REASON"}, rows);
  }
  return 0;
}

StatusOr<int> Logs(ApiClient& api, int64_t run_id, bool follow, bool json) {
  if (follow) {
    RETURN_IF_ERROR(Follow(api, run_id, json).status());
    return 0;
  }
  EventPrinter printer(json, /*live=*/false);
  int64_t after = 0;
  for (;;) {
    ASSIGN_OR_RETURN(Json page,
                     api.Get(StrCat("/api/v1/runs/", run_id, "/events?format=json&after=", after)));
    const Json* events = Field(page, "events");
    if (events == nullptr || !events->is_array()) {
      return InternalError(
          StrCat("the server's events of run ", run_id, " have no 'events' array"));
    }
    int64_t last = after;
    for (const Json& event : *events) {
      auto seq = Int(event, "seq");
      if (!seq || *seq <= last) continue;  // out of order or repeated: skip, never loop
      RETURN_IF_ERROR(printer.Print(Text(event, "kind", ""), event));
      last = *seq;
    }
    if (last == after) return 0;  // an empty page: everything was read
    after = last;
  }
}

StatusOr<int> Cancel(ApiClient& api, int64_t run_id, bool json) {
  ASSIGN_OR_RETURN(Json run, api.Post(StrCat("/api/v1/runs/", run_id, "/cancel"), Json()));
  if (json) {
    std::cout << Dump(run, 2) << '\n';
  } else {
    std::cout << "run " << run_id << " " << Text(run, "state", "cancelled") << '\n';
  }
  return 0;
}

// --- Change requests ---

struct CrArgs {
  std::string verb;  // list, show, diff, comment, approve, merge, close
  std::string id_text;
  std::string repo;
  std::string state;
  std::string body;
  bool json = false;
};

StatusOr<int> ChangeRequests(ApiClient& api, const CrArgs& args) {
  if (args.verb == "list") {
    std::string query;
    if (!args.repo.empty())
      query += StrCat(query.empty() ? "?" : "&", "repo=", UrlEncode(args.repo));
    if (!args.state.empty()) {
      query += StrCat(query.empty() ? "?" : "&", "state=", UrlEncode(args.state));
    }
    ASSIGN_OR_RETURN(Json page, api.Get("/api/v1/change-requests" + query));
    const Json* list = Field(page, "change_requests");
    if (list == nullptr || !list->is_array()) return InternalError("no 'change_requests' array");
    if (args.json) {
      std::cout << Dump(*list, 2) << '\n';
      return 0;
    }
    if (list->empty()) {
      std::cout << "no change requests\n";
      return 0;
    }
    for (const Json& cr : *list) {
      std::cout << Int(cr, "id").value_or(0) << "  " << Text(cr, "state") << "/"
                << Text(cr, "review") << "  " << Text(cr, "repo") << "  " << Text(cr, "branch")
                << " -> " << Text(cr, "base_branch") << "  " << OneLine(Text(cr, "title"), 60)
                << '\n';
    }
    return 0;
  }
  const std::string path = StrCat("/api/v1/change-requests/", args.id_text);
  Json cr;
  if (args.verb == "show" || args.verb == "diff") {
    ASSIGN_OR_RETURN(cr, api.Get(path));
  } else if (args.verb == "comment") {
    ASSIGN_OR_RETURN(cr, api.Post(path + "/comments", Json{{"body", args.body}}));
  } else {
    ASSIGN_OR_RETURN(cr, api.Post(StrCat(path, "/", args.verb), Json()));
  }
  if (args.json) {
    std::cout << Dump(cr, 2) << '\n';
    return 0;
  }
  if (args.verb == "diff") {
    std::cout << Text(cr, "diff", "");
    return 0;
  }
  if (args.verb == "comment") {
    std::cout << "comment " << Int(cr, "id").value_or(0) << " added";
    if (auto run = Int(cr, "follow_up_run")) std::cout << "; follow-up run " << *run << " queued";
    std::cout << '\n';
    return 0;
  }
  if (args.verb == "show") {
    std::cout << "change request " << Int(cr, "id").value_or(0) << ": " << Text(cr, "title")
              << "\n  state   " << Text(cr, "state") << " (review " << Text(cr, "review")
              << ")\n  repo    " << Text(cr, "repo") << "\n  branch  " << Text(cr, "branch")
              << " -> " << Text(cr, "base_branch") << "\n  head    " << Text(cr, "head_commit")
              << "\n  run     " << Int(cr, "run_id").value_or(0) << "\n\n"
              << Text(cr, "body") << '\n';
    if (const Json* comments = Field(cr, "comments"); comments != nullptr && comments->is_array()) {
      for (const Json& c : *comments) {
        std::cout << "\n"
                  << Text(c, "author") << " (" << Text(c, "created_at") << "): " << Text(c, "body")
                  << '\n';
      }
    }
    return 0;
  }
  std::cout << "change request " << Int(cr, "id").value_or(0) << " " << Text(cr, "state") << " ("
            << Text(cr, "review") << ")\n";
  return 0;
}

// ---------------------------------------------------------------------------------------------
// The command line

std::optional<int64_t> ParseRunId(std::string_view text) {
  int64_t id = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (error != std::errc() || end != text.data() + text.size() || id <= 0) return std::nullopt;
  return id;
}

const CLI::Validator& RunIdValidator() {
  static const CLI::Validator kValidator(
      [](std::string& value) -> std::string {
        if (ParseRunId(value)) return "";
        return StrCat("run id must be a positive integer, got '", value, "'");
      },
      "");
  return kValidator;
}

// HOST:PORT, with a port in 0–65535 (0: any free port); an IPv6 host in brackets.
const CLI::Validator& ListenValidator() {
  static const CLI::Validator kValidator(
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
  return kValidator;
}

const char* const kStates[] = {"queued", "preparing", "running",   "succeeded",
                               "failed", "cancelled", "timed_out", "blocked_by_policy"};

void PrintError(const Status& status) {
  std::cout.flush();
  std::cerr << "nightshift: " << OneLine(status.message()) << '\n';
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

  GlobalOptions global;
  app.add_option("--server", global.server, "URL of the Nightshift server")
      ->type_name("URL")
      ->envname("NIGHTSHIFT_SERVER")
      ->capture_default_str();
  app.add_option("--data-dir", global.data_dir,
                 "the server's data directory (where the client finds admin-token)")
      ->type_name("DIR")
      ->envname("NIGHTSHIFT_DATA_DIR")
      ->capture_default_str();

  // serve
  ServeOptions serve_options;
  std::string serve_data_dir;
  CLI::App* serve_cmd = app.add_subcommand("serve", "run the server (and an embedded runner)");
  serve_cmd->add_option("--listen", serve_options.listen, "address to listen on (port 0: any)")
      ->type_name("HOST:PORT")
      ->check(ListenValidator())
      ->capture_default_str();
  serve_cmd
      ->add_option("--data-dir", serve_data_dir,
                   "directory for the database and admin-token [default: .nightshift, or "
                   "NIGHTSHIFT_DATA_DIR]")
      ->type_name("DIR");
  serve_cmd->add_option("--runners", serve_options.runners, "embedded runners; 0 disables them")
      ->type_name("N")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  serve_cmd
      ->add_option("--lease-ttl", serve_options.lease_ttl_seconds,
                   "seconds a runner's lease lasts without a heartbeat")
      ->type_name("SECONDS")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  serve_cmd->add_option("--log-level", serve_options.log_level, "how much the server logs")
      ->type_name("LEVEL")
      ->check(CLI::IsMember({"debug", "info", "warn", "error", "off"}))
      ->capture_default_str();
  serve_cmd
      ->add_option("--sandbox", serve_options.sandbox,
                   "run recipes in a sandbox: on (needs root), off, auto (on when root)")
      ->check(CLI::IsMember({"on", "off", "auto"}))
      ->capture_default_str();
  serve_cmd->add_option("--run-memory", serve_options.run_memory,
                        "memory limit of each sandboxed run: BYTES, or 512m, 2g");
  serve_cmd->add_option("--run-pids", serve_options.run_pids, "process limit of each sandboxed run")
      ->check(CLI::NonNegativeNumber);
  serve_cmd
      ->add_option("--run-cpus", serve_options.run_cpus, "CPU limit (cores) of each sandboxed run")
      ->check(CLI::NonNegativeNumber);
  serve_cmd
      ->add_option("--warm-sandboxes", serve_options.warm_sandboxes,
                   "sandboxes kept pre-forked for the next runs (0: start each cold)")
      ->check(CLI::Range(0, 64))
      ->capture_default_str();
  serve_cmd
      ->add_option("--sandbox-host-path", serve_options.sandbox_host_paths,
                   "host directory or file added read-only to every sandboxed run's root, at "
                   "the same path (repeatable; the root has only /usr, /bin, /sbin, /lib*, /etc "
                   "of the host otherwise)")
      ->type_name("PATH");
  serve_cmd
      ->add_option("--config", serve_options.config,
                   "YAML file: models and agent budgets (docs/agents.md)")
      ->type_name("FILE");
  serve_cmd
      ->add_option("--cache-size", serve_options.cache_size,
                   "keep cached checkouts and prebuilds under this size (BYTES, or 512m, 20g)")
      ->capture_default_str();
  serve_cmd
      ->add_option("--mirror-max-age", serve_options.mirror_max_age_seconds,
                   "reuse a repository mirror fetched less than this many seconds ago (0: fetch "
                   "on every run)")
      ->check(CLI::Range(0, 86400))
      ->capture_default_str();
  serve_cmd
      ->add_option("--durability", serve_options.durability,
                   "process: a commit survives any crash of the server; power: also power loss "
                   "(an fsync per commit)")
      ->type_name("LEVEL")
      ->check(CLI::IsMember({"process", "power"}))
      ->capture_default_str();

  // repo add|list|remove
  CLI::App* repo_cmd = app.add_subcommand("repo", "manage repositories");
  repo_cmd->require_subcommand(1);
  RepoAddArgs repo_add;
  CLI::App* repo_add_cmd = repo_cmd->add_subcommand("add", "register a repository");
  repo_add_cmd->add_option("NAME", repo_add.name, "repository name ([A-Za-z0-9._-], 1-100)")
      ->required();
  repo_add_cmd
      ->add_option("URL", repo_add.url,
                   "git URL, or a path on the server's machine (a relative path that exists here "
                   "is made absolute)")
      ->required();
  repo_add_cmd->add_flag("--json", repo_add.json, "print the repository as JSON");
  bool repo_list_json = false;
  CLI::App* repo_list_cmd = repo_cmd->add_subcommand("list", "list repositories");
  repo_list_cmd->add_flag("--json", repo_list_json, "print a JSON array");
  std::string repo_remove_name;
  CLI::App* repo_remove_cmd = repo_cmd->add_subcommand("remove", "remove a repository");
  repo_remove_cmd->add_option("NAME", repo_remove_name, "repository name")->required();

  // run
  RunArgs run_args;
  int timeout_seconds = 0;
  int max_attempts = 0;
  CLI::App* run_cmd = app.add_subcommand(
      "run", "start a run in a repository: a recipe (a command) or the agent on a task");
  run_cmd->add_option("--repo", run_args.repo, "repository name")->type_name("NAME")->required();
  CLI::Option* recipe_opt =
      run_cmd->add_option("--recipe", run_args.recipe, "shell command to run in the checkout")
          ->type_name("CMD");
  CLI::Option* task_opt =
      run_cmd->add_option("--task", run_args.task, "what the built-in agent should do")
          ->type_name("TEXT");
  recipe_opt->excludes(task_opt);
  run_cmd->add_option("--model", run_args.model, "model for --task [default: default]")
      ->type_name("NAME")
      ->needs(task_opt);
  run_cmd->add_option("--ref", run_args.ref, "branch, tag or commit [default: HEAD]")
      ->type_name("REF");
  CLI::Option* timeout_opt =
      run_cmd->add_option("--timeout", timeout_seconds, "seconds before the run times out [3600]")
          ->type_name("SECONDS")
          ->check(CLI::Range(1, 86400));
  CLI::Option* attempts_opt =
      run_cmd->add_option("--max-attempts", max_attempts, "attempts if runners are lost [3]")
          ->type_name("N")
          ->check(CLI::Range(1, 10));
  run_cmd->add_flag("-f,--follow", run_args.follow,
                    "stream the run's output; exit 0 only if it succeeds");
  run_cmd->add_flag("--json", run_args.json,
                    "print the run as JSON (with --follow: then one JSON event per line)");

  // prebuild
  RunArgs prebuild_args{.kind = "prebuild", .follow = true};
  bool prebuild_detach = false;
  CLI::App* prebuild_cmd = app.add_subcommand(
      "prebuild",
      "build a repository's environment snapshot (its setup commands, run once) ahead of runs");
  prebuild_cmd->add_option("REPO", prebuild_args.repo, "repository name")->required();
  prebuild_cmd->add_option("--ref", prebuild_args.ref, "branch, tag or commit [default: HEAD]")
      ->type_name("REF");
  prebuild_cmd->add_flag("--detach", prebuild_detach, "start it and return; do not stream it");
  prebuild_cmd->add_flag("--json", prebuild_args.json, "print the run (and its events) as JSON");

  // runs
  RunsArgs runs_args;
  int64_t runs_limit = 0;
  CLI::App* runs_cmd = app.add_subcommand("runs", "list runs, newest first");
  runs_cmd->add_option("--repo", runs_args.repo, "only runs of this repository")->type_name("NAME");
  runs_cmd->add_option("--state", runs_args.state, "only runs in this state")
      ->type_name("STATE")
      ->check(CLI::IsMember(std::vector<std::string>(std::begin(kStates), std::end(kStates))));
  CLI::Option* limit_opt =
      runs_cmd
          ->add_option("--limit", runs_limit, "at most this many runs [default: the server's, 50]")
          ->type_name("N")
          ->check(CLI::Range(int64_t{1}, int64_t{1000000}));
  runs_cmd->add_flag("--json", runs_args.json, "print a JSON array");

  // show, logs, cancel
  std::string run_id_text;
  bool json = false;
  bool follow = false;
  CLI::App* show_cmd = app.add_subcommand("show", "show a run");
  show_cmd->add_option("RUN", run_id_text, "run id")->required()->check(RunIdValidator());
  show_cmd->add_flag("--json", json, "print the run as JSON");
  CLI::App* logs_cmd = app.add_subcommand("logs", "print a run's output and events");
  logs_cmd->add_option("RUN", run_id_text, "run id")->required()->check(RunIdValidator());
  logs_cmd->add_flag("-f,--follow", follow, "stream until the run ends");
  logs_cmd->add_flag("--json", json, "print one JSON event per line");
  CrArgs cr_args;
  CLI::App* cr_cmd =
      app.add_subcommand("cr", "change requests: list, show, diff, comment, approve, merge, close");
  cr_cmd->require_subcommand(1);
  for (const char* verb : {"list", "show", "diff", "comment", "approve", "merge", "close"}) {
    CLI::App* sub = cr_cmd->add_subcommand(verb, StrCat(verb, " change requests"));
    sub->callback([&cr_args, verb] { cr_args.verb = verb; });
    sub->add_flag("--json", cr_args.json, "print JSON");
    if (std::string_view(verb) == "list") {
      sub->add_option("--repo", cr_args.repo, "only this repository")->type_name("NAME");
      sub->add_option("--state", cr_args.state, "open, merged or closed")
          ->check(CLI::IsMember({"open", "merged", "closed"}));
      continue;
    }
    sub->add_option("CR", cr_args.id_text, "change request id")
        ->required()
        ->check(RunIdValidator());
    if (std::string_view(verb) == "comment") {
      sub->add_option("TEXT", cr_args.body,
                      "the comment; \"/nightshift <instruction>\" starts a follow-up run")
          ->required();
    }
  }
  CLI::App* cancel_cmd = app.add_subcommand("cancel", "cancel a run");
  cancel_cmd->add_option("RUN", run_id_text, "run id")->required()->check(RunIdValidator());
  cancel_cmd->add_flag("--json", json, "print the run as JSON");

  // sandbox exec (local: no server)
  CLI::App* sandbox_cmd =
      app.add_subcommand("sandbox", "run commands in a sandbox on this machine");
  sandbox_cmd->require_subcommand(1);
  SandboxExecArgs sandbox_args;
  CLI::App* sandbox_exec_cmd = AddSandboxExecCommand(*sandbox_cmd, sandbox_args);
  // Everything after "--" is the command, options of its own included; CLI11 never sees it.
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--") {
      sandbox_args.command.assign(argv + i + 1, argv + argc);
      argc = i;
      break;
    }
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::string message = e.what();
    // "A subcommand is required" is CLI11's answer to a misspelt one too; say which word it was.
    const CLI::App* command = &app;
    std::string path = "nightshift";
    while (!command->get_subcommands().empty()) {
      command = command->get_subcommands().front();
      path += " " + command->get_name();
    }
    if (std::vector<std::string> extra = app.remaining(true);
        !extra.empty() && command->get_require_subcommand_min() > 0) {
      message = StrCat("unknown command '", extra.front(), "'; see '", path, " --help'");
    }
    std::cout.flush();
    std::cerr << "nightshift: " << OneLine(message) << '\n';
    return 2;
  }

  if (sandbox_exec_cmd->parsed()) {
    sandbox_args.data_dir = global.data_dir;
    if (sandbox_args.command.empty()) {
      std::cerr
          << "nightshift: no command given: nightshift sandbox exec [OPTIONS] -- CMD ARGS...\n";
      return 2;
    }
    return SandboxExec(sandbox_args);
  }
  if (serve_cmd->parsed()) {
    serve_options.data_dir = !serve_data_dir.empty() ? serve_data_dir : global.data_dir;
    return serve(serve_options);
  }

  if (run_cmd->parsed() && run_args.recipe.empty() && run_args.task.empty()) {
    std::cerr << "nightshift: run needs --recipe CMD or --task TEXT\n";
    return 2;
  }
  if (timeout_opt->count() > 0) run_args.timeout_seconds = timeout_seconds;
  if (attempts_opt->count() > 0) run_args.max_attempts = max_attempts;
  if (limit_opt->count() > 0) runs_args.limit = runs_limit;
  std::optional<int64_t> run_id = ParseRunId(run_id_text);  // validated when a verb takes it

  auto connection = Connect(global);
  if (!connection.ok()) {
    PrintError(connection.status());
    return 1;
  }
  ApiClient& api = *connection->api;
  StatusOr<int> result = InternalError("no command");
  try {
    if (repo_add_cmd->parsed()) {
      result = RepoAdd(api, repo_add);
    } else if (repo_list_cmd->parsed()) {
      result = RepoList(api, repo_list_json);
    } else if (repo_remove_cmd->parsed()) {
      result = RepoRemove(api, repo_remove_name);
    } else if (run_cmd->parsed()) {
      result = Run(api, run_args);
    } else if (prebuild_cmd->parsed()) {
      prebuild_args.follow = !prebuild_detach;
      result = Run(api, prebuild_args);
    } else if (runs_cmd->parsed()) {
      result = Runs(api, runs_args);
    } else if (show_cmd->parsed()) {
      result = Show(api, *run_id, json);
    } else if (logs_cmd->parsed()) {
      result = Logs(api, *run_id, follow, json);
    } else if (cr_cmd->parsed()) {
      result = ChangeRequests(api, cr_args);
    } else if (cancel_cmd->parsed()) {
      result = Cancel(api, *run_id, json);
    }
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

}  // namespace nightshift::cli
