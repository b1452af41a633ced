// Every API route with every scope and with none, against a real server on loopback: a route
// answers 401 without a valid token, 403 naming its scope to a token without it, and neither to
// one with it. The table below must name every route the server registers, so a new route
// cannot go untested. Expired and revoked tokens, logins, escalation and who a run is requested
// by. No root (no sandbox, no runner).

#include <httplib.h>

#include <regex>

#include "core/json.h"
#include "gtest/gtest.h"
#include "policy/identity.h"
#include "server/server.h"
#include "tests/support/test_support.h"

namespace nightshift::server {
namespace {

struct Case {
  std::string method;
  std::string path;   // a sample path the route matches
  std::string scope;  // what it needs ("": any valid token)
};

const std::vector<Case> kRoutes = {
    {"POST", "/api/v1/repositories", "repos:admin"},
    {"GET", "/api/v1/repositories", "runs:read"},
    {"GET", "/api/v1/repositories/nope", "runs:read"},
    {"DELETE", "/api/v1/repositories/nope", "repos:admin"},
    {"POST", "/api/v1/runs", "runs:write"},
    {"GET", "/api/v1/change-requests", "runs:read"},
    {"GET", "/api/v1/change-requests/99", "runs:read"},
    {"POST", "/api/v1/change-requests/99/approve", "crs:review"},
    {"POST", "/api/v1/change-requests/99/merge", "crs:merge"},
    {"POST", "/api/v1/change-requests/99/comments", "crs:review"},
    {"GET", "/api/v1/runs", "runs:read"},
    {"GET", "/api/v1/runs/99", "runs:read"},
    {"POST", "/api/v1/runs/99/cancel", "runs:write"},
    {"GET", "/api/v1/runs/99/events", "runs:read"},
    {"POST", "/api/v1/users", "admin"},
    {"GET", "/api/v1/users", "admin"},
    {"POST", "/api/v1/users/nope/disable", "admin"},
    {"POST", "/api/v1/tokens", ""},
    {"GET", "/api/v1/tokens", ""},
    {"DELETE", "/api/v1/tokens/99", ""},
    {"GET", "/api/v1/events", "runs:read"},
    {"GET", "/api/v1/events/99", "runs:read"},
    {"POST", "/api/v1/events/99/replay", "runs:write"},
    {"GET", "/api/v1/agents", "runs:read"},
    {"POST", "/api/v1/repositories/nope/agents/refresh", "repos:admin"},
    {"GET", "/api/v1/schedules", "runs:read"},
    {"POST", "/api/v1/pauses", "policies:admin"},
    {"GET", "/api/v1/pauses", "runs:read"},
    {"POST", "/api/v1/resume", "policies:admin"},
    {"POST", "/api/v1/secrets", "secrets:admin"},
    {"GET", "/api/v1/secrets", "secrets:admin"},
    {"DELETE", "/api/v1/secrets/NOPE", "secrets:admin"},
    {"GET", "/api/v1/audit", "audit:read"},
    {"GET", "/api/v1/audit/verify", "audit:read"},
    {"GET", "/api/v1/audit/key", "audit:read"},
};

class ApiScopes : public ::testing::Test {
 protected:
  void SetUp() override {
    const config::ServerConfig config;
    auto server = Server::Open(
        {.port = 0, .data_dir = dir_.path() / "data", .runner_slots = 0, .sandbox = "off"},
        config);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    ASSERT_TRUE(server_->Start().ok());
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
  }
  void TearDown() override { server_->Stop(); }

  std::pair<int, Json> Call(const std::string& method, const std::string& path,
                            const std::string& token, const std::string& body = "{}") {
    httplib::Headers headers;
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    httplib::Result res = method == "GET" ? client_->Get(path, headers)
                          : method == "POST"
                              ? client_->Post(path, headers, body, "application/json")
                              : client_->Delete(path, headers);
    EXPECT_TRUE(res) << method << " " << path;
    if (!res) return {0, Json()};
    return {res->status, Json::parse(res->body, nullptr, false)};
  }

  // A token with `scopes`, made by the admin token through the API.
  std::string Token(const std::vector<std::string>& scopes, const std::string& admin,
                    std::optional<int64_t> expires_in = std::nullopt) {
    Json body{{"name", "t"}, {"scopes", scopes}};
    if (expires_in) body["expires_in_seconds"] = *expires_in;
    auto [status, made] = Call("POST", "/api/v1/tokens", admin, body.dump());
    EXPECT_EQ(status, 201) << made.dump();
    return made.value("token", "");
  }

  testing::TempDir dir_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(ApiScopes, TheTableNamesEveryRouteTheServerRegisters) {
  for (const RouteInfo& route : server_->routes()) {
    int matched = 0;
    for (const Case& c : kRoutes) {
      if (c.method == route.method && std::regex_match(c.path, std::regex(route.pattern))) {
        ++matched;
        EXPECT_EQ(c.scope, route.scope) << route.method << " " << route.pattern;
      }
    }
    EXPECT_GE(matched, 1) << "no case for " << route.method << " " << route.pattern;
  }
  EXPECT_EQ(kRoutes.size(), server_->routes().size());
}

TEST_F(ApiScopes, EveryRouteWithEveryScopeAndWithNone) {
  const std::string admin = server_->admin_token();
  std::map<std::string, std::string> tokens;
  for (std::string_view scope : policy::kScopes) {
    tokens[std::string(scope)] = Token({std::string(scope)}, admin);
  }
  for (const Case& c : kRoutes) {
    for (const std::string& bad : {std::string(), std::string("nst_forged"), admin + "x"}) {
      auto [status, body] = Call(c.method, c.path, bad);
      EXPECT_EQ(status, 401) << c.method << " " << c.path << " with '" << bad << "'";
    }
    for (const auto& [scope, token] : tokens) {
      auto [status, body] = Call(c.method, c.path, token);
      const bool granted = c.scope.empty() || policy::Grants({scope}, c.scope);
      if (granted) {
        EXPECT_NE(status, 401) << c.method << " " << c.path << " with " << scope;
        EXPECT_NE(status, 403) << c.method << " " << c.path << " with " << scope << ": "
                               << body.dump();
      } else {
        EXPECT_EQ(status, 403) << c.method << " " << c.path << " with " << scope;
        EXPECT_NE(body["error"].value("message", "").find("needs scope '" + c.scope + "'"),
                  std::string::npos)
            << body.dump();
      }
    }
    auto [status, body] = Call(c.method, c.path, admin);
    EXPECT_NE(status, 401);
    EXPECT_NE(status, 403) << c.method << " " << c.path;
  }
  // Outside the API: no token needed.
  EXPECT_EQ(client_->Get("/healthz")->status, 200);
}

TEST_F(ApiScopes, ExpiredRevokedAndEscalatingTokensAreRefused) {
  const std::string admin = server_->admin_token();
  const std::string brief = Token({"runs:read"}, admin, 1);
  EXPECT_EQ(Call("GET", "/api/v1/runs", brief).first, 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  auto [expired, why] = Call("GET", "/api/v1/runs", brief);
  EXPECT_EQ(expired, 401);
  EXPECT_EQ(why["error"]["message"], "token expired");

  const std::string reader = Token({"runs:read"}, admin);
  auto [listed_status, listed] = Call("GET", "/api/v1/tokens", admin);
  ASSERT_EQ(listed_status, 200);
  // No secret is ever listed.
  EXPECT_EQ(listed.dump().find(reader), std::string::npos);
  const int64_t id = listed["tokens"].back()["id"];
  // A reader cannot make itself a writer, nor revoke the admin's other tokens.
  EXPECT_EQ(Call("POST", "/api/v1/tokens", reader,
                 Json{{"name", "up"}, {"scopes", {"runs:write"}}}.dump())
                .first,
            403);
  EXPECT_EQ(Call("DELETE", "/api/v1/tokens/1", reader).first, 404);
  EXPECT_EQ(Call("DELETE", StrCat("/api/v1/tokens/", id), admin).first, 200);
  auto [revoked, reason] = Call("GET", "/api/v1/runs", reader);
  EXPECT_EQ(revoked, 401);
  EXPECT_EQ(reason["error"]["message"], "token revoked");

  // Bad input: one clear 400 each, nothing stored.
  for (const std::string& body :
       {std::string("not json"), Json{{"name", "x"}, {"scopes", {"root"}}}.dump(),
        Json{{"name", "x"}, {"scopes", Json::array()}}.dump(),
        Json{{"name", ""}, {"scopes", {"runs:read"}}}.dump(),
        Json{{"name", "x"}, {"scopes", {"runs:read"}}, {"expires_in_seconds", -5}}.dump()}) {
    auto [status, answer] = Call("POST", "/api/v1/tokens", admin, body);
    EXPECT_EQ(status, 400) << body << " → " << answer.dump();
  }
  EXPECT_EQ(Call("GET", "/api/v1/tokens", admin).second["tokens"].size(), listed["tokens"].size());
}

TEST_F(ApiScopes, AUserLogsInAndTheirRunsAreRequestedByThem) {
  const std::string admin = server_->admin_token();
  ASSERT_EQ(Call("POST", "/api/v1/users", admin,
                 Json{{"name", "alice"},
                      {"password", "correct horse battery"},
                      {"scopes", {"runs:read", "runs:write"}}}
                     .dump())
                .first,
            201);
  auto [wrong, refused] =
      Call("POST", "/api/v1/login", "", Json{{"user", "alice"}, {"password", "nope"}}.dump());
  EXPECT_EQ(wrong, 401);
  auto [ok, session] = Call("POST", "/api/v1/login", "",
                            Json{{"user", "alice"}, {"password", "correct horse battery"}}.dump());
  ASSERT_EQ(ok, 201) << session.dump();
  const std::string token = session["token"];
  ASSERT_TRUE(token.starts_with("nst_"));

  const auto repo = dir_.path() / "repo";
  testing::MakeGitRepo(repo, {{"README", "x\n"}});
  ASSERT_EQ(Call("POST", "/api/v1/repositories", admin,
                 Json{{"name", "app"}, {"url", repo.string()}}.dump())
                .first,
            201);
  auto [created, run] =
      Call("POST", "/api/v1/runs", token, Json{{"repo", "app"}, {"recipe", "true"}}.dump());
  ASSERT_EQ(created, 201) << run.dump();
  EXPECT_EQ(run["requested_by"], "user:alice");
  // She may not add repositories, nor users.
  EXPECT_EQ(Call("POST", "/api/v1/repositories", token,
                 Json{{"name", "b"}, {"url", repo.string()}}.dump())
                .first,
            403);
  // Disabled: her session ends at once.
  ASSERT_EQ(Call("POST", "/api/v1/users/alice/disable", admin).first, 200);
  EXPECT_EQ(Call("GET", "/api/v1/runs", token).first, 401);
}

TEST_F(ApiScopes, AGuesserIsThrottledWith429) {
  ASSERT_EQ(
      Call("POST", "/api/v1/users", server_->admin_token(),
           Json{{"name", "gina"}, {"password", "correct horse battery"}, {"scopes", {"runs:read"}}}
               .dump())
          .first,
      201);
  for (int i = 0; i < policy::Identities::kMaxFailedLogins; ++i) {
    EXPECT_EQ(Call("POST", "/api/v1/login", "",
                   Json{{"user", "gina"}, {"password", StrCat("guess number ", i)}}.dump())
                  .first,
              401);
  }
  auto [status, body] = Call("POST", "/api/v1/login", "",
                             Json{{"user", "gina"}, {"password", "correct horse battery"}}.dump());
  EXPECT_EQ(status, 429) << body.dump();
  EXPECT_NE(body["error"].value("message", "").find("too many failed logins"), std::string::npos);
}

}  // namespace
}  // namespace nightshift::server
