// Secrets end to end, through the CLI and the API against the real `nightshift serve`: a canary
// set from standard input, given to a run that prints it in every encoding a careless or hostile
// recipe would — plain, base64 in both alphabets and inside a longer base64 stream, percent-
// encoded, hex in both cases, on stdout and stderr — and then looked for in everything the
// platform shows: the run, its events, `logs`, the secret list, the audit log, and the database
// file. A secret the policy forbids is not given. Bad input is refused and changes nothing. As
// root, a file holding the canary is never delivered, and the diff shown of it is redacted.

#include "core/fs.h"
#include "gtest/gtest.h"
#include "tests/support/server_fixture.h"
#include "tests/support/test_support.h"

namespace nightshift {
namespace {

using testing::Shell;
using testing::ShellQuote;

// Characters that percent-encoding, base64 and JSON each treat differently.
constexpr std::string_view kCanary = "ns-canary:7f3a9c1e/Zq+x\"w";

// The canary in every encoding, printed by the recipe (from its environment) and computed here
// by the same tools, outside the platform, to look for.
constexpr std::string_view kPrintAll =
    R"(printf 'length %s\n' "${#CANARY}"; )"
    R"(printf '%s\n' "$CANARY"; printf 'err %s\n' "$CANARY" >&2; )"
    R"(printf '%s' "$CANARY" | base64 -w0; echo; )"
    R"(printf '%s' "$CANARY" | base64 -w0 | tr '+/' '-_' | tr -d '='; echo; )"
    R"(printf 'x%s' "$CANARY" | base64 -w0; echo; )"
    R"(printf 'xy%s' "$CANARY" | base64 -w0; echo; )"
    R"(printf '%s' "$CANARY" | od -An -tx1 | tr -d ' \n'; echo; )"
    R"(printf '%s' "$CANARY" | od -An -tx1 | tr -d ' \n' | tr a-f A-F; echo; )"
    R"(printf '%s' "$CANARY" | sed 's/:/%3A/g; s|/|%2F|g; s/+/%2B/g; s/"/%22/g'; echo; )"
    R"(printf 'denied=%s\n' "${DENIED_TOKEN:-unset}")";

class SecretsEndToEnd : public ::testing::Test, protected testing::ServerFixture {
 protected:
  void Start(const std::vector<std::string>& extra) {
    ASSERT_TRUE(WriteFileAtomic(dir_.path() / "rules.yml", R"(rules:
  - id: no-denied-token
    effect: forbid
    action: secret.read
    resource: {secret: DENIED_TOKEN}
)")
                    .ok());
    ASSERT_TRUE(
        WriteFileAtomic(dir_.path() / "nightshift.yml", "policy:\n  files: [rules.yml]\n").ok());
    std::vector<std::string> args = {"--config", (dir_.path() / "nightshift.yml").string(),
                                     "--log-level", "warn"};
    args.insert(args.end(), extra.begin(), extra.end());
    ASSERT_TRUE(StartServer(dir_.path() / "data", args));
    testing::MakeGitRepo(dir_.path() / "repo", {{"README", "x\n"}});
    ASSERT_EQ(Cli("repo add app " + (dir_.path() / "repo").string()).exit_code, 0);
    ASSERT_EQ(SetSecret("CANARY", kCanary, "--repo app").exit_code, 0);
    ASSERT_EQ(SetSecret("DENIED_TOKEN", "denied-value-123456", "").exit_code, 0);
    // Every encoding the recipe prints, computed here.
    auto forms = Shell(StrCat("CANARY=", ShellQuote(std::string(kCanary)), " sh -c ",
                              ShellQuote(std::string(kPrintAll)), " 2>/dev/null"));
    ASSERT_EQ(forms.exit_code, 0);
    size_t start = 0;
    for (size_t end; (end = forms.output.find('\n', start)) != std::string::npos; start = end + 1) {
      std::string line = forms.output.substr(start, end - start);
      if (line.starts_with("length") || line.starts_with("denied")) continue;
      forms_.push_back(line);
    }
    // The canary inside a longer stream: drop the characters the prefix shares.
    forms_.push_back(forms_[3].substr(2, forms_[3].size() - 4));
    forms_.push_back(forms_[4].substr(3, forms_[4].size() - 5));
    // As a JSON string holds it (the events are JSON).
    const std::string json = Json(std::string(kCanary)).dump();
    forms_.push_back(json.substr(1, json.size() - 2));
    ASSERT_EQ(forms_.size(), 11u) << forms.output;
  }

  testing::ShellResult SetSecret(const std::string& name, std::string_view value,
                                 const std::string& flags) {
    const auto file = dir_.path() / "value";
    EXPECT_TRUE(WriteFileAtomic(file, StrCat(value, "\n"), 0600).ok());
    return Cli(StrCat("secret set ", name, " ", flags, " < ", ShellQuote(file.string())));
  }

  // Which form of the canary `text` holds, if any.
  std::string Leak(const std::string& text) const {
    for (const auto& form : forms_) {
      if (form.size() >= 8 && text.find(form) != std::string::npos) return form;
    }
    return "";
  }

  std::vector<std::string> forms_;
};

TEST_F(SecretsEndToEnd, ACanaryPrintedInEveryEncodingIsNeverShown) {
  Start({"--sandbox", "off"});
  int status = 0;
  Json run = Api("POST", "/api/v1/runs",
                 Json{{"repo", "app"}, {"recipe", std::string(kPrintAll)}}.dump(), &status);
  ASSERT_EQ(status, 201) << run.dump();
  const int64_t id = run.value("id", int64_t{0});
  Json done = WaitFinished(id);
  ASSERT_EQ(done.value("state", ""), "succeeded") << done.dump();

  const std::string events = Events(id).dump();
  // The run had it: its length is printed, and the lines that held it are there, redacted.
  EXPECT_NE(events.find(StrCat("length ", kCanary.size())), std::string::npos) << events;
  EXPECT_NE(events.find("[REDACTED]"), std::string::npos) << events;
  EXPECT_NE(events.find("err [REDACTED]"), std::string::npos) << events;
  // The policy forbids the other secret: the run never got it.
  EXPECT_NE(events.find("denied=unset"), std::string::npos) << events;

  EXPECT_EQ(Leak(events), "") << events;
  EXPECT_EQ(Leak(done.dump()), "");
  auto logs = Cli(StrCat("logs ", id));
  EXPECT_EQ(logs.exit_code, 0);
  EXPECT_EQ(Leak(logs.output), "") << logs.output;
  auto list = Cli("secret list --json");
  EXPECT_EQ(list.exit_code, 0) << list.output;
  EXPECT_NE(list.output.find("\"CANARY\""), std::string::npos) << list.output;
  EXPECT_EQ(Leak(list.output), "") << list.output;
  auto human = Cli("secret list");
  EXPECT_NE(human.output.find("CANARY  repository app, every agent  set by admin"),
            std::string::npos)
      << human.output;
  auto audit = Cli("audit export");
  EXPECT_EQ(Leak(audit.output), "") << audit.output;
  EXPECT_NE(audit.output.find(R"("action":"secret.read")"), std::string::npos) << audit.output;
  EXPECT_NE(audit.output.find(R"("resource":"CANARY repo app")"), std::string::npos);
  auto listed = Cli(StrCat("audit --run ", id));
  EXPECT_NE(listed.output.find("agent:adhoc  deny  secret.read  app DENIED_TOKEN  run " +
                               std::to_string(id) + "  rules no-denied-token"),
            std::string::npos)
      << listed.output;
  // At rest: neither the value nor its hex is in the database.
  auto dump = Shell(
      StrCat("sqlite3 ", ShellQuote((dir_.path() / "data/nightshift.db").string()), " .dump"));
  ASSERT_EQ(dump.exit_code, 0);
  EXPECT_NE(dump.output.find("CANARY"), std::string::npos);
  EXPECT_EQ(Leak(dump.output), "");
  EXPECT_TRUE(std::filesystem::exists(dir_.path() / "data/secrets-key"));
  EXPECT_EQ(std::filesystem::status(dir_.path() / "data/secrets-key").permissions() &
                std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

TEST_F(SecretsEndToEnd, BadInputIsRefusedAndChangesNothing) {
  Start({"--sandbox", "off"});
  struct Case {
    std::string name, value, flags, says;
  };
  for (const Case& c : std::vector<Case>{
           {"PATH", "x-value-1234", "", "'PATH' is set by the platform for every run"},
           {"NIGHTSHIFT_TOKEN", "x-value-1234", "", "set by the platform"},
           {"9LIVES", "x-value-1234", "", "a secret's name is an environment variable's"},
           {"BAD-NAME", "x-value-1234", "", "a secret's name is an environment variable's"},
           {"EMPTY", "", "", "no value on standard input"},
           {"CANARY", "replacement-value", "--repo nope", "unknown repository 'nope'"},
       }) {
    auto r = SetSecret(c.name, c.value, c.flags);
    EXPECT_EQ(r.exit_code, 1) << c.name << ": " << r.output;
    EXPECT_NE(r.output.find(c.says), std::string::npos) << c.name << ": " << r.output;
  }
  auto missing = Cli("secret rm CANARY");  // it is scoped to app: this one does not exist
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("no secret 'CANARY'"), std::string::npos) << missing.output;
  Json list = Api("GET", "/api/v1/secrets");
  ASSERT_EQ(list["secrets"].size(), 2u) << list.dump();
  EXPECT_EQ(list["secrets"][0].value("name", ""), "CANARY");
  int status = 0;
  Api("POST", "/api/v1/secrets", R"({"name": "X_KEY", "value": 42})", &status);
  EXPECT_EQ(status, 400);
  Api("POST", "/api/v1/secrets", R"({"name": "X_KEY", "value": "abcdefghij", "colour": "red"})",
      &status);
  EXPECT_EQ(status, 400);
  // The canary still opens: a run gets it unchanged.
  Json run = Api("POST", "/api/v1/runs",
                 Json{{"repo", "app"}, {"recipe", R"(printf 'length %s\n' "${#CANARY}")"}}.dump(),
                 &status);
  const int64_t id = run.value("id", int64_t{0});
  EXPECT_EQ(WaitFinished(id).value("state", ""), "succeeded");
  EXPECT_NE(Events(id).dump().find(StrCat("length ", kCanary.size())), std::string::npos);
  ASSERT_EQ(Cli("secret rm CANARY --repo app").exit_code, 0);
  EXPECT_EQ(Api("GET", "/api/v1/secrets")["secrets"].size(), 1u);
}

// As root, with delivery: a file holding the canary never leaves the platform, and the diff
// shown of it is redacted.
TEST_F(SecretsEndToEnd, AFileHoldingASecretIsNeverDelivered) {
  if (::geteuid() != 0) GTEST_SKIP() << "delivery needs the sandbox, which needs root";
  Start({"--sandbox", "on", "--warm-sandboxes", "0"});
  int status = 0;
  Json run = Api("POST", "/api/v1/runs",
                 Json{{"repo", "app"},
                      {"recipe", R"(printf 'token=%s\n' "$CANARY" > config.env; )"
                                 R"(printf '%s' "$CANARY" | base64 -w0 > b64.txt)"}}
                     .dump(),
                 &status);
  ASSERT_EQ(status, 201);
  const int64_t id = run.value("id", int64_t{0});
  Json done = WaitFinished(id);
  EXPECT_EQ(done.value("state", ""), "blocked_by_policy") << done.dump();
  EXPECT_NE(
      done.value("reason", "").find("config.env: holds the value of one of the run's secrets"),
      std::string::npos)
      << done.dump();
  EXPECT_NE(done.value("reason", "").find("b64.txt: holds the value"), std::string::npos);
  const std::string events = Events(id).dump();
  EXPECT_EQ(Leak(events), "") << events;
  EXPECT_NE(events.find("token=[REDACTED]"), std::string::npos) << events;
  EXPECT_TRUE(Api("GET", "/api/v1/change-requests")["change_requests"].empty());
}

}  // namespace
}  // namespace nightshift
