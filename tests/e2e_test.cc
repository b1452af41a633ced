// End to end: the real `nightshift` binary as server and CLI, real git repositories in temp
// dirs, loopback HTTP. Nothing is mocked.

#include <httplib.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <optional>
#include <thread>

#include "core/fs.h"
#include "core/json.h"
#include "gtest/gtest.h"
#include "tests/support/config_cases.h"
#include "tests/support/server_fixture.h"
#include "tests/support/test_support.h"

namespace nightshift {
namespace {

using testing::Shell;
using testing::ShellQuote;

class EndToEnd : public ::testing::Test, protected testing::ServerFixture {
 protected:
  void SetUp() override {
    commit_ = testing::MakeGitRepo(
        repo_path(), {{"README.md", "hello\n"}, {"test.sh", "grep -q hello README.md\n"}});
    StartServer();
  }

  std::filesystem::path repo_path() const { return dir_.path() / "app"; }
  std::filesystem::path data_dir() const { return dir_.path() / "data"; }

  void StartServer() {
    ASSERT_TRUE(ServerFixture::StartServer(data_dir(), {"--lease-ttl", "2", "--log-level", "warn"},
                                           /*read_timeout_s=*/30));
  }

  void AddRepo() {
    int status = 0;
    Api("POST", "/api/v1/repositories", Json{{"name", "app"}, {"url", repo_path().string()}}.dump(),
        &status);
    ASSERT_EQ(status, 201);
  }

  std::string commit_;
};

TEST_F(EndToEnd, AdminTokenIsPrivateAndRequired) {
  struct stat st {};
  ASSERT_EQ(::stat((data_dir() / "admin-token").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_GE(server_->token().size(), 32u);

  httplib::Client anonymous("127.0.0.1", server_->port());
  auto r = anonymous.Get("/api/v1/runs");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(Json::parse(r->body)["error"]["code"], "unauthenticated");
  anonymous.set_bearer_token_auth("wrong");
  EXPECT_EQ(anonymous.Get("/api/v1/runs")->status, 401);
  EXPECT_EQ(anonymous.Get("/healthz")->status, 200);
}

TEST_F(EndToEnd, SecondServerOnTheSameDataDirIsRefused) {
  testing::ServerProcess second(data_dir());
  EXPECT_FALSE(second.Start());
  auto r = Shell(ShellQuote(testing::NightshiftBin()) + " serve --listen 127.0.0.1:0 --data-dir " +
                 ShellQuote(data_dir().string()));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("in use by another nightshift server"), std::string::npos) << r.output;
}

TEST(ServeCli, ImpossibleRunLimitsAreRefusedAtStart) {
  if (::geteuid() != 0) GTEST_SKIP() << "limits apply to sandboxed runs, which need root";
  testing::TempDir dir;
  auto r = Shell(ShellQuote(testing::NightshiftBin()) +
                 " serve --listen 127.0.0.1:0 --run-memory 8m --data-dir " +
                 ShellQuote(dir.path().string()));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("memory below 16 MiB"), std::string::npos) << r.output;
}

TEST_F(EndToEnd, CliTourOnARealRepository) {
  auto added = Cli("repo add app " + ShellQuote(repo_path().string()));
  ASSERT_EQ(added.exit_code, 0) << added.output;
  auto list = Cli("repo list --json");
  ASSERT_EQ(list.exit_code, 0) << list.output;
  Json repos = Json::parse(list.output, nullptr, false);
  ASSERT_TRUE(repos.is_array()) << list.output;
  EXPECT_EQ(repos[0]["name"], "app");

  // run --follow streams the log and exits 0 only when the run succeeded.
  auto ok = Cli("run --repo app --recipe 'sh test.sh && echo tests passed' --follow");
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_NE(ok.output.find("tests passed"), std::string::npos) << ok.output;
  auto bad = Cli("run --repo app --recipe 'echo broken; exit 3' --follow");
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_NE(bad.output.find("broken"), std::string::npos) << bad.output;

  auto created = Cli("run --repo app --recipe 'echo from-json' --json");
  ASSERT_EQ(created.exit_code, 0) << created.output;
  Json run = Json::parse(created.output, nullptr, false);
  ASSERT_TRUE(run.contains("id")) << created.output;
  EXPECT_EQ(run["state"], "queued");
  int64_t id = run["id"];
  EXPECT_EQ(WaitFinished(id)["state"], "succeeded");

  auto shown = Cli("show " + std::to_string(id) + " --json");
  ASSERT_EQ(shown.exit_code, 0) << shown.output;
  Json s = Json::parse(shown.output, nullptr, false);
  EXPECT_EQ(s["state"], "succeeded");
  EXPECT_EQ(s["commit"], commit_);
  EXPECT_EQ(s["requested_by"], "admin");
  auto shown_text = Cli("show " + std::to_string(id));
  ASSERT_EQ(shown_text.exit_code, 0) << shown_text.output;
  EXPECT_NE(shown_text.output.find("requester  admin"), std::string::npos) << shown_text.output;
  EXPECT_NE(shown_text.output.find("kind       recipe"), std::string::npos) << shown_text.output;

  auto logs = Cli("logs " + std::to_string(id));
  EXPECT_EQ(logs.exit_code, 0);
  EXPECT_NE(logs.output.find("from-json"), std::string::npos) << logs.output;
  auto follow = Cli("logs -f " + std::to_string(id));  // finished: prints all, then ends
  EXPECT_EQ(follow.exit_code, 0);
  EXPECT_NE(follow.output.find("from-json"), std::string::npos) << follow.output;

  auto runs = Cli("runs --json");
  ASSERT_EQ(runs.exit_code, 0);
  EXPECT_EQ(Json::parse(runs.output, nullptr, false).size(), 3u) << runs.output;
  auto failed = Cli("runs --state failed --json");
  EXPECT_EQ(Json::parse(failed.output, nullptr, false).size(), 1u) << failed.output;
  EXPECT_EQ(Cli("runs").exit_code, 0);
  EXPECT_EQ(Cli("show " + std::to_string(id)).exit_code, 0);

  // Cancelling a finished run is a conflict: one line, non-zero exit, nothing changed.
  auto cancel = Cli("cancel " + std::to_string(id));
  EXPECT_NE(cancel.exit_code, 0);
  EXPECT_NE(cancel.output.find("already succeeded"), std::string::npos) << cancel.output;
  EXPECT_EQ(Api("GET", "/api/v1/runs/" + std::to_string(id))["state"], "succeeded");
}

TEST_F(EndToEnd, CliErrorsAreOneClearLine) {
  auto unknown = Cli("run --repo nope --recipe true");
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.output.find("unknown repository 'nope'"), std::string::npos) << unknown.output;
  EXPECT_EQ(std::count(unknown.output.begin(), unknown.output.end(), '\n'), 1) << unknown.output;

  auto not_a_run = Cli("show 999999");
  EXPECT_NE(not_a_run.exit_code, 0);
  EXPECT_NE(not_a_run.output.find("unknown run 999999"), std::string::npos) << not_a_run.output;

  auto unreachable = Shell("NIGHTSHIFT_SERVER=http://127.0.0.1:1 NIGHTSHIFT_TOKEN=x " +
                           ShellQuote(testing::NightshiftBin()) + " runs");
  EXPECT_NE(unreachable.exit_code, 0);
  EXPECT_NE(unreachable.output.find("cannot reach"), std::string::npos) << unreachable.output;
}

TEST_F(EndToEnd, BadInputGets4xxJsonAndHarmsNothing) {
  AddRepo();
  int status = 0;
  Json created = Api("POST", "/api/v1/runs", R"({"repo":"app","recipe":"echo kept"})", &status);
  ASSERT_EQ(status, 201);
  int64_t kept = created["id"];
  WaitFinished(kept);

  struct Case {
    std::string method, path, body;
    int want;
    std::string code;
  };
  std::vector<Case> cases = {
      {"POST", "/api/v1/runs", "{\"repo\": ", 400, "invalid_argument"},
      {"POST", "/api/v1/runs", "[1,2]", 400, "invalid_argument"},
      {"POST", "/api/v1/runs", R"({"repo":"app"})", 400, "invalid_argument"},
      {"POST", "/api/v1/runs", R"({"repo":5,"recipe":"x"})", 400, "invalid_argument"},
      {"POST", "/api/v1/runs", R"({"repo":"nope","recipe":"x"})", 404, "not_found"},
      {"POST", "/api/v1/runs", R"({"repo":"app","recipe":"x","ref":"a..b"})", 400,
       "invalid_argument"},
      {"POST", "/api/v1/runs", R"({"repo":"app","recipe":"x","ref":"--upload-pack=evil"})", 400,
       "invalid_argument"},
      {"POST", "/api/v1/runs", R"({"repo":"app","recipe":"x","timeout_seconds":0})", 400,
       "invalid_argument"},
      {"POST", "/api/v1/runs", std::string(2 << 20, ' '), 413, "payload_too_large"},
      {"POST", "/api/v1/repositories", R"({"name":"app","url":"/tmp"})", 400, "invalid_argument"},
      {"POST", "/api/v1/repositories", Json{{"name", "app"}, {"url", repo_path().string()}}.dump(),
       409, "already_exists"},
      {"POST", "/api/v1/repositories", R"({"name":"a b","url":"https://x/y"})", 400,
       "invalid_argument"},
      {"POST", "/api/v1/repositories", R"({"name":"x","url":"ftp://x/y"})", 400,
       "invalid_argument"},
      {"GET", "/api/v1/runs/abc", "", 400, "invalid_argument"},
      {"GET", "/api/v1/runs/99999999999999999999", "", 400, "invalid_argument"},
      {"GET", "/api/v1/runs/424242", "", 404, "not_found"},
      {"GET", "/api/v1/runs?state=sleeping", "", 400, "invalid_argument"},
      {"GET", "/api/v1/runs?limit=0", "", 400, "invalid_argument"},
      {"POST", "/api/v1/runs/" + std::to_string(kept) + "/cancel", "", 409, "failed_precondition"},
      {"GET", "/api/v1/nothing-here", "", 404, "not_found"},
      {"DELETE", "/api/v1/repositories/nope", "", 404, "not_found"},
  };
  for (const Case& c : cases) {
    int got = 0;
    Json body = Api(c.method, c.path, c.body, &got);
    EXPECT_EQ(got, c.want) << c.method << " " << c.path << " " << c.body.substr(0, 60);
    EXPECT_EQ(body["error"]["code"], c.code) << c.method << " " << c.path;
    EXPECT_FALSE(body["error"]["message"].get<std::string>().empty());
  }
  // Nothing stored was harmed.
  Json runs = Api("GET", "/api/v1/runs")["runs"];
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0]["state"], "succeeded");
  EXPECT_EQ(Api("GET", "/api/v1/repositories")["repositories"].size(), 1u);
}

TEST_F(EndToEnd, EventStreamResumesWithLastEventId) {
  AddRepo();
  Json run = Api("POST", "/api/v1/runs",
                 R"({"repo":"app","recipe":"for i in 1 2 3 4 5; do echo line$i; done"})");
  int64_t id = run["id"];
  WaitFinished(id);
  size_t total = Events(id).size();
  ASSERT_GT(total, 8u);

  httplib::Headers headers = {{"Last-Event-ID", "4"}};
  std::string body;
  auto r = client_->Get("/api/v1/runs/" + std::to_string(id) + "/events", headers,
                        [&](const char* data, size_t n) {
                          body.append(data, n);
                          return true;
                        });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/event-stream");
  // Every event after 4, in order, then "end".
  std::vector<int64_t> ids;
  for (size_t at = body.find("id: "); at != std::string::npos; at = body.find("id: ", at + 1)) {
    ids.push_back(std::stoll(body.substr(at + 4)));
  }
  ASSERT_EQ(ids.size(), total - 4);
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(ids[i], static_cast<int64_t>(i + 5));
  EXPECT_NE(body.find("event: end\ndata: {\"state\":\"succeeded\"}"), std::string::npos) << body;
}

// The SSE stream delivers events as they happen, not only at the end.
TEST_F(EndToEnd, EventStreamIsLive) {
  AddRepo();
  Json run = Api("POST", "/api/v1/runs",
                 R"({"repo":"app","recipe":"echo waiting; sleep 1.5; echo released"})");
  int64_t id = run["id"];
  std::string body;
  auto start = std::chrono::steady_clock::now();
  std::optional<std::chrono::steady_clock::duration> waiting_at, released_at;
  auto r = client_->Get(
      "/api/v1/runs/" + std::to_string(id) + "/events", [&](const char* data, size_t n) {
        body.append(data, n);
        auto now = std::chrono::steady_clock::now() - start;
        if (!waiting_at && body.find("\"line\":\"waiting\"") != std::string::npos) {
          waiting_at = now;
        }
        if (!released_at && body.find("released") != std::string::npos) {
          released_at = now;
        }
        return true;
      });
  ASSERT_TRUE(r);
  ASSERT_TRUE(waiting_at && released_at) << body;
  // "waiting" arrived while the recipe slept, not with the rest at the end.
  EXPECT_GT(*released_at - *waiting_at, std::chrono::milliseconds(1000));
  EXPECT_NE(body.find("event: end"), std::string::npos);
}

// The recipe's processes are found on the host by a marker in their command line: that works
// whether the server runs recipes in a sandbox (own PID namespace) or not. Write the marker as a
// regex that does not match itself ("sleep 2[.]0123"), or the shell running pgrep counts too.
int CountProcesses(const std::string& marker) {
  return std::stoi(testing::Shell("pgrep -f '" + marker + "' | wc -l").output);
}

TEST_F(EndToEnd, CancelStopsATreeIgnoringSigtermWithinOneSecond) {
  ASSERT_EQ(Cli("repo add app " + ShellQuote(repo_path().string())).exit_code, 0);
  auto created = Cli("run --repo app --json --recipe " +
                     ShellQuote("trap '' TERM; (trap '' TERM; sleep 3457) & sleep 3458; wait"));
  ASSERT_EQ(created.exit_code, 0) << created.output;
  int64_t id = Json::parse(created.output)["id"];
  for (int i = 0; i < 400 && CountProcesses("sleep 345[78]") < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_GE(CountProcesses("sleep 345[78]"), 2);  // both sleeps (and the shell, whose line matches)
  // Timed from the cancel request itself (the API, in this process): a CLI's own start-up,
  // several hundred ms for a sanitizer build on a loaded machine, is not the platform's.
  auto start = std::chrono::steady_clock::now();
  int status = 0;
  Json cancelled = Api("POST", "/api/v1/runs/" + std::to_string(id) + "/cancel", "", &status);
  ASSERT_EQ(status, 200) << cancelled.dump();
  EXPECT_EQ(cancelled["state"], "cancelled");
  bool gone = false;
  while (std::chrono::steady_clock::now() - start < std::chrono::seconds(1)) {
    if (CountProcesses("sleep 345[78]") == 0) {
      gone = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(gone) << "the process tree outlived the cancel by more than a second";
  auto shown = Cli("show " + std::to_string(id) + " --json");
  EXPECT_EQ(Json::parse(shown.output)["state"], "cancelled") << shown.output;
}

// Runs execute in a sandbox when the server runs as root (as CI does): the recipe sees its
// checkout at /workspace, its own hostname, and not the platform's data dir.
TEST_F(EndToEnd, RunsAreSandboxedWhenRoot) {
  if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root";
  AddRepo();
  Json run = Api("POST", "/api/v1/runs",
                 Json{{"repo", "app"},
                      {"recipe", "pwd; hostname; cat " + (data_dir() / "admin-token").string() +
                                     " 2>/dev/null || echo no-token"}}
                     .dump());
  int64_t id = run["id"];
  Json done = WaitFinished(id);
  EXPECT_EQ(done["state"], "succeeded") << done.dump();
  std::string out;
  for (const auto& e : Events(id)) {
    if (e["kind"] == "log") out += e["data"]["line"].get<std::string>() + "\n";
  }
  EXPECT_EQ(out, "/workspace\nrun-" + std::to_string(id) + "\nno-token\n");
}

// SIGKILL the server in the middle of a run, start it again: the run ends exactly once, as a
// second attempt, with every event of both attempts intact.
TEST_F(EndToEnd, ServerKilledMidRunRestartsAndTheRunEndsExactlyOnce) {
  AddRepo();
  Json run = Api(
      "POST", "/api/v1/runs",
      R"({"repo":"app","recipe":"echo attempt $NIGHTSHIFT_RUN_ID; sleep 5.0123; echo finished"})");
  int64_t id = run["id"];
  // Wait until the first attempt is running and has printed.
  for (int i = 0; i < 400; ++i) {
    bool printed = false;
    for (const auto& e : Events(id)) {
      if (e["kind"] == "log") printed = true;
    }
    if (printed) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_EQ(Api("GET", "/api/v1/runs/" + std::to_string(id))["state"], "running");
  EXPECT_EQ(server_->Stop(SIGKILL), 128 + SIGKILL);
  // A sandboxed recipe dies with the server: its PID 1 has a parent-death signal, and its
  // namespace's processes die with it. Unsandboxed (not root), only the shell has that signal:
  // the `sleep` it started lives on until it ends (docs/architecture.md, limits).
  if (::geteuid() == 0) {
    for (int i = 0; i < 50 && CountProcesses("sleep 5[.]0123") > 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_EQ(CountProcesses("sleep 5[.]0123"), 0) << "the recipe outlived the killed server";
  }

  StartServer();
  Json done = WaitFinished(id, 60);
  EXPECT_EQ(done["state"], "succeeded") << done.dump();
  EXPECT_EQ(done["attempt"], 2);
  ASSERT_EQ(done["attempts"].size(), 2u);
  EXPECT_EQ(done["attempts"][0]["outcome"], "requeued");
  EXPECT_EQ(done["attempts"][1]["outcome"], "succeeded");

  // Events: gapless, both attempts' output present, exactly one terminal state event.
  Json events = Events(id);
  int terminal = 0, attempt_lines = 0, finished_lines = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i]["seq"], static_cast<int64_t>(i + 1));
    const Json& d = events[i]["data"];
    if (events[i]["kind"] == "state") {
      std::string to = d["to"];
      if (to == "succeeded" || to == "failed" || to == "cancelled" || to == "timed_out") ++terminal;
    }
    if (events[i]["kind"] == "log") {
      std::string line = d["line"];
      if (line.starts_with("attempt")) ++attempt_lines;
      if (line == "finished") ++finished_lines;
    }
  }
  EXPECT_EQ(terminal, 1);
  EXPECT_EQ(attempt_lines, 2);
  EXPECT_EQ(finished_lines, 1);
}

// `make run` uses a relative data dir; runs execute in other directories, so every path the
// server derives from it must still resolve.
TEST_F(EndToEnd, RelativeDataDirWorks) {
  server_->Stop(SIGTERM);
  server_ = std::make_unique<testing::ServerProcess>(
      "relative-data", std::vector<std::string>{"--log-level", "warn"}, dir_.path());
  ASSERT_TRUE(server_->Start()) << server_->error();
  client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
  client_->set_bearer_token_auth(server_->token());
  AddRepo();
  Json run = Api("POST", "/api/v1/runs", R"({"repo":"app","recipe":"cat README.md"})");
  Json done = WaitFinished(run["id"]);
  EXPECT_EQ(done["state"], "succeeded") << done.dump();
  EXPECT_TRUE(std::filesystem::exists(dir_.path() / "relative-data" / "nightshift.db"));
}

// `nightshift sandbox exec`: the command's exit status, 127 for a missing command, 125 and one
// line for a sandbox that cannot be set up.
TEST(SandboxExecCli, ExitStatusesAndBadInput) {
  if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root";
  testing::TempDir dir;
  ASSERT_EQ(::chown(dir.path().c_str(), 100000, 100000), 0);  // the sandbox's user: its owner
  std::string bin = ShellQuote(testing::NightshiftBin());
  std::string ws = ShellQuote(dir.path().string());
  auto ok = Shell(bin + " sandbox exec --workspace " + ws +
                  " --hostname box -- sh -c 'hostname; pwd; id -u; exit 7'");
  EXPECT_EQ(ok.exit_code, 7) << ok.output;
  EXPECT_EQ(ok.output, "box\n/workspace\n0\n");
  EXPECT_EQ(Shell(bin + " sandbox exec --workspace " + ws + " -- no-such-command").exit_code, 127);
  for (const std::string& bad : std::vector<std::string>{
           "--workspace /no/such/dir -- true", "--workspace " + ws + " --rootfs /no/rootfs -- true",
           "--workspace " + ws + " --layer /no/layer -- true",
           "--workspace " + ws + " --memory 10 -- true",
           "--workspace " + ws + " --memory lots -- true",
           "--workspace " + ws + " --host-path /no/such/dir -- true",
           "--workspace " + ws + " --host-path /tmp -- true"}) {
    auto r = Shell(bin + " sandbox exec " + bad);
    EXPECT_EQ(r.exit_code, 125) << bad << ": " << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << bad << ": " << r.output;
    EXPECT_TRUE(r.output.starts_with("nightshift: ")) << r.output;
  }
  auto timed = Shell(bin + " sandbox exec --workspace " + ws + " --timeout 0.5 -- sleep 30");
  EXPECT_EQ(timed.exit_code, 128 + SIGTERM) << timed.output;  // PID 1 forwarded SIGTERM
  EXPECT_NE(timed.output.find("timed out"), std::string::npos) << timed.output;
}

// A workspace the sandbox's user cannot write is refused before anything starts, in one line —
// root's, mode 0755, with the default uid, is the usual case — rather than with a "Permission
// denied" from the command. --uid, its owner's uid, or --read-only-workspace make it work.
TEST(SandboxExecCli, AWorkspaceTheSandboxCannotWriteIsRefusedInOneLine) {
  if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root";
  testing::TempDir dir;
  const std::string bin = ShellQuote(testing::NightshiftBin());
  const std::string ws = ShellQuote(dir.path().string());
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  auto refused = Shell(bin + " sandbox exec --workspace " + ws + " -- touch made");
  EXPECT_EQ(refused.exit_code, 125) << refused.output;
  EXPECT_EQ(refused.output,
            "nightshift: the sandbox's user (host uid 100000) cannot write the "
            "workspace " +
                dir.path().string() +
                " (owner 0, mode 0755): chown it to that uid or pass --uid, or "
                "--read-only-workspace\n");
  // Read-only, it only needs to read it; writes fail inside.
  auto read_only = Shell(bin + " sandbox exec --read-only-workspace --workspace " + ws +
                         " -- sh -c 'pwd; touch made 2>&1 | grep -o Read-only.*'");
  EXPECT_EQ(read_only.exit_code, 0) << read_only.output;
  EXPECT_EQ(read_only.output, "/workspace\nRead-only file system\n");
  // Group-writable for the sandbox's gid will do.
  ASSERT_EQ(::chown(dir.path().c_str(), 0, 100000), 0);
  ASSERT_EQ(::chmod(dir.path().c_str(), 0775), 0);
  EXPECT_EQ(Shell(bin + " sandbox exec --workspace " + ws + " -- touch made").exit_code, 0);
  // Another owner's, private: its owner's uid is the default, another uid is refused.
  ASSERT_EQ(::chown(dir.path().c_str(), 4242, 4242), 0);
  ASSERT_EQ(::chmod(dir.path().c_str(), 0700), 0);
  EXPECT_EQ(Shell(bin + " sandbox exec --workspace " + ws + " -- touch made2").exit_code, 0);
  auto other = Shell(bin + " sandbox exec --uid 100000 --read-only-workspace --workspace " + ws +
                     " -- true");
  EXPECT_EQ(other.exit_code, 125) << other.output;
  EXPECT_TRUE(other.output.starts_with(
      "nightshift: the sandbox's user (host uid 100000) cannot read the workspace "))
      << other.output;
  EXPECT_EQ(std::count(other.output.begin(), other.output.end(), '\n'), 1) << other.output;
}

// The `nightshift` binary runs a well-formed `sandbox exec` itself and hands every other command
// line — other verbs, help, usage errors — to nightshift-full beside it, which answers exactly as
// it does when run directly. Without nightshift-full, it says so in one line.
TEST(NightshiftFront, EveryOtherCommandLineIsTheFullClis) {
  const std::filesystem::path front = testing::NightshiftBin();
  const std::string bin = ShellQuote(front.string());
  const std::string full = ShellQuote((front.parent_path() / "nightshift-full").string());
  for (const std::string args : {"--help", "sandbox --help", "sandbox exec --help", "sandbox exec",
                                 "sandbox exec --bogus -- true", "sandbox exec --pids many -- true",
                                 "no-such-verb", "--server http://127.0.0.1:1 runs"}) {
    auto via_front = Shell(bin + " " + args);
    auto direct = Shell(full + " " + args);
    EXPECT_EQ(via_front.exit_code, direct.exit_code) << args;
    EXPECT_EQ(via_front.output, direct.output) << args;
  }
  EXPECT_NE(Shell(bin + " --help").output.find("serve"), std::string::npos);

  testing::TempDir dir;
  std::filesystem::copy_file(front, dir.path() / "nightshift");
  auto alone = Shell(ShellQuote((dir.path() / "nightshift").string()) + " --help");
  EXPECT_EQ(alone.exit_code, 1);
  EXPECT_EQ(alone.output, "nightshift: cannot run " + (dir.path() / "nightshift-full").string() +
                              ": No such file or directory\n");
}

// --host-path adds a host directory, read-only at the same path, to a root that otherwise has
// only the host's system directories.
TEST(SandboxExecCli, HostPathsAddToTheAllowListedRoot) {
  if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root";
  testing::TempDir dir;
  ASSERT_EQ(::chown(dir.path().c_str(), 100000, 100000), 0);
  const bool made_srv = std::filesystem::create_directories("/srv");
  const std::filesystem::path tools = "/srv/nightshift-e2e-" + RandomHex(6);
  std::filesystem::create_directories(tools);
  std::ofstream(tools / "version") << "tool-1\n";
  const std::string bin = ShellQuote(testing::NightshiftBin());
  const std::string ws = ShellQuote(dir.path().string());
  const std::string script =
      " -- sh -c 'cat " + (tools / "version").string() + " 2>/dev/null || echo absent; ls /srv'";
  auto without = Shell(bin + " sandbox exec --workspace " + ws + script);
  // A trailing slash is taken as the directory.
  auto with = Shell(bin + " sandbox exec --workspace " + ws + " --host-path " +
                    ShellQuote(tools.string() + "/") + script);
  std::filesystem::remove_all(tools);
  if (made_srv) std::filesystem::remove("/srv");
  EXPECT_NE(without.output.find("absent\n"), std::string::npos) << without.output;
  EXPECT_NE(without.output.find("No such file or directory"), std::string::npos) << without.output;
  EXPECT_EQ(with.exit_code, 0) << with.output;
  EXPECT_EQ(with.output, "tool-1\n" + tools.filename().string() + "\n");
}

// The runs of a server get the same allow-listed root, and the server's --sandbox-host-path.
TEST_F(EndToEnd, RunsSeeTheAllowListedRootAndTheServersHostPaths) {
  if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root";
  const bool made_srv = std::filesystem::create_directories("/srv");
  const std::filesystem::path srv = "/srv/nightshift-e2e-" + RandomHex(6);
  std::filesystem::create_directories(srv / "tools");
  std::filesystem::create_directories(srv / "other");
  std::ofstream(srv / "tools" / "version") << "tool-1\n";
  std::ofstream(srv / "other" / "secret") << "secret\n";
  server_->Stop(SIGTERM);
  ASSERT_TRUE(ServerFixture::StartServer(
      data_dir(),
      {"--lease-ttl", "2", "--log-level", "warn", "--sandbox-host-path", (srv / "tools").string()},
      /*read_timeout_s=*/30));
  AddRepo();
  Json run = Api("POST", "/api/v1/runs",
                 Json{{"repo", "app"},
                      {"recipe", "cat " + (srv / "tools" / "version").string() + "; cat " +
                                     (srv / "other" / "secret").string() +
                                     " 2>/dev/null || echo no-secret; ls /srv; [ -e " +
                                     data_dir().string() + " ] || echo no-data-dir"}}
                     .dump());
  int64_t id = run["id"];
  Json done = WaitFinished(id);
  std::filesystem::remove_all(srv);
  if (made_srv) std::filesystem::remove("/srv");
  EXPECT_EQ(done["state"], "succeeded") << done.dump();
  std::string out;
  for (const auto& e : Events(id)) {
    if (e["kind"] == "log") out += e["data"]["line"].get<std::string>() + "\n";
  }
  EXPECT_EQ(out, "tool-1\nno-secret\n" + srv.filename().string() + "\nno-data-dir\n");
}

TEST(ServeCli, AMissingSandboxHostPathIsRefusedAtStart) {
  if (::geteuid() != 0) GTEST_SKIP() << "host paths apply to sandboxed runs, which need root";
  testing::TempDir dir;
  auto r = Shell(ShellQuote(testing::NightshiftBin()) +
                 " serve --listen 127.0.0.1:0 --sandbox-host-path /no/such/dir --data-dir " +
                 ShellQuote(dir.path().string()));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("host path is not a directory or a file on this host: /no/such/dir"),
            std::string::npos)
      << r.output;
}

// Without the sandbox a server runs recipes only: an agent or prebuild run is refused when it is
// submitted (409, one line in the CLI), never run as an empty recipe that "succeeds".
TEST_F(EndToEnd, RunsThisServerCannotExecuteAreRefusedAtSubmission) {
  server_->Stop(SIGTERM);
  ASSERT_TRUE(ServerFixture::StartServer(dir_.path() / "plain",
                                         {"--sandbox", "off", "--log-level", "error"}));
  ASSERT_EQ(Cli("repo add app " + ShellQuote(repo_path().string())).exit_code, 0);
  auto task = Cli("run --repo app --task 'fix the tests'");
  EXPECT_EQ(task.exit_code, 1);
  EXPECT_EQ(std::count(task.output.begin(), task.output.end(), '\n'), 1) << task.output;
  EXPECT_NE(task.output.find("need the sandbox"), std::string::npos) << task.output;
  int status = 0;
  Json refused =
      Api("POST", "/api/v1/runs", Json{{"repo", "app"}, {"kind", "prebuild"}}.dump(), &status);
  EXPECT_EQ(status, 409) << refused.dump();
  EXPECT_EQ(refused["error"]["code"], "failed_precondition");
  EXPECT_TRUE(Api("GET", "/api/v1/runs")["runs"].empty());
  // Recipes still run, recorded with who asked.
  auto recipe = Cli("run --repo app --recipe 'sh test.sh' --follow");
  EXPECT_EQ(recipe.exit_code, 0) << recipe.output;
  EXPECT_EQ(Api("GET", "/api/v1/runs/1")["requested_by"], "admin");
}

// `nightshift config check` gives every case of tests/config_cases what its comments say:
// "ok" on stdout and 0, or each error as one line "nightshift: …" on stderr and 1.
TEST(ConfigCheckCli, EveryConfigCaseThroughTheBinary) {
  const std::vector<testing::ConfigCase> cases = testing::LoadConfigCases(CONFIG_CASES_DIR);
  ASSERT_GE(cases.size(), 20u) << CONFIG_CASES_DIR;
  for (const testing::ConfigCase& c : cases) {
    testing::TempDir dir;
    std::ofstream(dir.path() / "nightshift.yml") << c.text;
    std::string command = "cd " + ShellQuote(dir.path().string()) + " && env";
    for (const auto& [name, value] : c.environment) command += " " + ShellQuote(name + "=" + value);
    command += " " + ShellQuote(testing::NightshiftBin()) + " config check nightshift.yml";
    const bool ok = c.want == std::vector<std::string>{"ok"};
    std::string want;
    for (const std::string& line : c.want) want += (ok ? "" : "nightshift: ") + line + "\n";
    // Only the stream the answer belongs on: stdout for ok, stderr for errors.
    auto r = Shell(command + (ok ? " 2>/dev/null" : " 2>&1 >/dev/null"));
    EXPECT_EQ(r.exit_code, ok ? 0 : 1) << c.name << ".yml: " << r.output;
    EXPECT_EQ(r.output, want) << c.name << ".yml";
  }
}

TEST(ConfigCheckCli, AMissingFileOrNoFileAtAll) {
  testing::TempDir dir;
  const std::string missing = (dir.path() / "nope.yml").string();
  auto r = Shell(ShellQuote(testing::NightshiftBin()) + " config check " + ShellQuote(missing));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.output, "nightshift: open " + missing + ": No such file or directory\n");
  auto empty = Shell(": > " + ShellQuote((dir.path() / "empty.yml").string()) + " && " +
                     ShellQuote(testing::NightshiftBin()) + " config check " +
                     ShellQuote((dir.path() / "empty.yml").string()));
  EXPECT_EQ(empty.exit_code, 0) << empty.output;
  EXPECT_EQ(empty.output, "ok\n");
  auto usage = Shell(ShellQuote(testing::NightshiftBin()) + " config check");
  EXPECT_EQ(usage.exit_code, 2) << usage.output;
}

TEST(ConfigCheckCli, NeedsNeitherAServerNorRoot) {
  testing::TempDir dir;
  const auto file = dir.path() / "nightshift.yml";
  std::ofstream(file) << "review:\n  max_files: 10\n";
  std::filesystem::permissions(dir.path(), std::filesystem::perms::owner_all |
                                               std::filesystem::perms::group_exec |
                                               std::filesystem::perms::others_exec);
  std::filesystem::permissions(file, std::filesystem::perms::owner_read |
                                         std::filesystem::perms::group_read |
                                         std::filesystem::perms::others_read);
  // Nothing listens on port 1; as root, the check runs as nobody.
  const std::string as_user = ::geteuid() == 0 ? "setpriv --reuid=65534 --regid=65534 "
                                                 "--clear-groups "
                                               : "";
  auto r =
      Shell("NIGHTSHIFT_SERVER=http://127.0.0.1:1 " + as_user +
            ShellQuote(testing::NightshiftBin()) + " config check " + ShellQuote(file.string()));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "ok\n");
}

// `serve` reads the config once, before it touches the data directory: a bad one stops it with
// one line, the first error (and how many more there are).
TEST(ServeCli, ABadConfigIsRefusedInOneLineBeforeAnythingStarts) {
  testing::TempDir dir;
  const auto config = dir.path() / "nightshift.yml";
  std::ofstream(config) << "models:\n  default:\n    provider: openai\n    model: gpt-4.1\n"
                           "    max_output_tokens: lots\nreveiw:\n  max_files: 3\n";
  const auto data = dir.path() / "data";
  auto r = Shell(ShellQuote(testing::NightshiftBin()) +
                 " serve --listen 127.0.0.1:0 --sandbox off --data-dir " +
                 ShellQuote(data.string()) + " --config " + ShellQuote(config.string()) + " 2>&1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.output, "nightshift: " + config.string() +
                          ":5:24: models.default.max_output_tokens must be an integer (and 1 "
                          "more)\n");
  EXPECT_FALSE(std::filesystem::exists(data)) << "the data directory was created";

  // The unknown section alone: once ignored, now refused.
  std::ofstream(config, std::ios::trunc) << "reveiw:\n  max_files: 3\n";
  r = Shell(ShellQuote(testing::NightshiftBin()) +
            " serve --listen 127.0.0.1:0 --sandbox off --data-dir " + ShellQuote(data.string()) +
            " --config " + ShellQuote(config.string()) + " 2>&1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.output, "nightshift: " + config.string() +
                          ":1:1: unknown key 'reveiw' (expected models, agent, review, "
                          "review_repositories, policy, budgets, identity, forges, webhooks, "
                          "agents, repository_agents)\n");

  // A missing file, the same way.
  r = Shell(ShellQuote(testing::NightshiftBin()) +
            " serve --listen 127.0.0.1:0 --sandbox off --data-dir " + ShellQuote(data.string()) +
            " --config " + ShellQuote((dir.path() / "nope.yml").string()) + " 2>&1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.output, "nightshift: open " + (dir.path() / "nope.yml").string() +
                          ": No such file or directory\n");
  EXPECT_FALSE(std::filesystem::exists(data)) << "the data directory was created";

  // And a good one starts.
  std::ofstream(config, std::ios::trunc) << "review:\n  max_files: 3\n";
  testing::ServerProcess server(
      data, {"--sandbox", "off", "--config", config.string(), "--log-level", "warn"});
  EXPECT_TRUE(server.Start()) << server.error();
}

TEST_F(EndToEnd, GracefulStopOnSigterm) { EXPECT_EQ(server_->Stop(SIGTERM), 0); }

// `nightshift cron next`: a schedule checked before it is saved, with no server and no root.
TEST(CronNextCli, PrintsFireTimesOrOneErrorLine) {
  const std::string bin = ShellQuote(testing::NightshiftBin());
  auto r = Shell("NIGHTSHIFT_SERVER=http://127.0.0.1:1 " + bin +
                 " cron next '30 2 * * *' --tz Europe/Berlin --after 2026-03-28T12:00:00Z -n 3");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  // 29 March skips 02:00-02:59 in Berlin: that day's 02:30 fires once, when the gap ends.
  EXPECT_EQ(r.output,
            "2026-03-29T03:00:00+02:00\n2026-03-30T02:30:00+02:00\n2026-03-31T02:30:00+02:00\n");
  auto defaults = Shell(bin + " cron next @hourly");
  EXPECT_EQ(defaults.exit_code, 0) << defaults.output;
  EXPECT_EQ(std::count(defaults.output.begin(), defaults.output.end(), '\n'), 5);
  EXPECT_NE(defaults.output.find(":00:00+00:00\n"), std::string::npos) << defaults.output;
  struct Case {
    std::string args;
    std::string error;
  };
  for (const Case& c : std::vector<Case>{
           {"'0 0 31 4 *'", "cron: '0 0 31 4 *' can never fire: no month it names has that day"},
           {"'61 * * * *'", "cron: minute field '61': 61 is out of range 0-59"},
           {"'* * * * *' --tz Moon/Base",
            "cron: unknown time zone 'Moon/Base' (expected an IANA "
            "name such as Europe/Berlin)"},
           {"'* * * * *' --after 2026-03-28",
            "'2026-03-28' is not an RFC 3339 time (e.g. 2026-03-29T01:30:00Z)"},
           {"'$(touch /tmp/nightshift-cron-pwned)'",
            "cron: expected 5 fields (minute hour day-of-month month day-of-week), got 2"},
       }) {
    auto bad = Shell(bin + " cron next " + c.args + " 2>&1 >/dev/null");
    EXPECT_EQ(bad.exit_code, 1) << c.args;
    EXPECT_EQ(bad.output, "nightshift: " + c.error + "\n") << c.args;
  }
  EXPECT_FALSE(std::filesystem::exists("/tmp/nightshift-cron-pwned"));
}

}  // namespace
}  // namespace nightshift
