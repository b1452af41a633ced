// Identities against a real store in a temp dir: passwords, tokens, scopes that never grow,
// expiry, revocation and disabled users. No root.

#include "policy/identity.h"

#include "gtest/gtest.h"
#include "store/sqlite_store.h"
#include "tests/support/test_support.h"

namespace nightshift::policy {
namespace {

class IdentitiesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::OpenSqliteStore(dir_.path() / "db", clock_);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    ids_ = std::make_unique<Identities>(*store_, "bootstrap-admin-token-0123456789", clock_);
  }

  Caller Admin() { return *ids_->Authenticate("bootstrap-admin-token-0123456789"); }

  testing::TempDir dir_;
  FakeClock clock_{1'796'637'600'000};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Identities> ids_;
};

TEST(Scopes, ParseKnownOnesAndRefuseTheRest) {
  auto scopes = ParseScopes("runs:write, runs:read runs:read");
  ASSERT_TRUE(scopes.ok());
  EXPECT_EQ(*scopes, (std::vector<std::string>{"runs:read", "runs:write"}));
  EXPECT_NE(ParseScopes("runs:read,root").status().message().find("unknown scope 'root'"),
            std::string::npos);
  EXPECT_FALSE(ParseScopes(" , ").ok());
  EXPECT_TRUE(Grants({"admin"}, "crs:merge"));
  EXPECT_FALSE(Grants({"crs:review"}, "crs:merge"));
}

TEST_F(IdentitiesTest, AUserLogsInWithTheRightPasswordOnly) {
  ASSERT_TRUE(ids_->AddUser("alice", "correct horse battery", {"runs:read", "runs:write"}).ok());
  auto user = store_->GetUser("alice");
  ASSERT_TRUE(user.ok());
  EXPECT_TRUE(user->password_hash.starts_with("$argon2id$")) << user->password_hash;
  EXPECT_EQ(user->password_hash.find("correct horse"), std::string::npos);

  auto session = ids_->Login("alice", "correct horse battery", 3'600'000);
  ASSERT_TRUE(session.ok()) << session.status();
  EXPECT_TRUE(session->secret.starts_with("nst_"));
  auto caller = ids_->Authenticate(session->secret);
  ASSERT_TRUE(caller.ok()) << caller.status();
  EXPECT_EQ(caller->Describe(), "user:alice");
  EXPECT_EQ(caller->scopes, (std::vector<std::string>{"runs:read", "runs:write"}));

  // One message, whatever was wrong.
  EXPECT_EQ(ids_->Login("alice", "wrong password!!", 1000).status().message(),
            "wrong user name or password");
  EXPECT_EQ(ids_->Login("mallory", "correct horse battery", 1000).status().message(),
            "wrong user name or password");
  // Stored hashed: the secret itself is nowhere in the store.
  auto tokens = store_->ListTokens(std::nullopt);
  ASSERT_EQ(tokens->size(), 1u);
  EXPECT_NE(tokens->front().hash, session->secret);
  EXPECT_EQ(tokens->front().hash.size(), 64u);
}

TEST_F(IdentitiesTest, BadUsersAreRefusedAndNothingIsStored) {
  EXPECT_EQ(ids_->AddUser("Alice", "correct horse battery", {"runs:read"}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ids_->AddUser("../x", "correct horse battery", {"runs:read"}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ids_->AddUser("bob", "short", {"runs:read"}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ids_->AddUser("bob", "correct horse battery", {}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(store_->ListUsers()->empty());
  ASSERT_TRUE(ids_->AddUser("bob", "correct horse battery", {"runs:read"}).ok());
  EXPECT_EQ(ids_->AddUser("bob", "another password!", {"admin"}).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->GetUser("bob")->scopes, "runs:read");  // the first one stands
}

TEST_F(IdentitiesTest, ATokenNeverHoldsMoreThanWhoMadeIt) {
  ASSERT_TRUE(ids_->AddUser("carol", "correct horse battery", {"runs:read", "runs:write"}).ok());
  auto session = ids_->Login("carol", "correct horse battery", 3'600'000);
  const Caller carol = *ids_->Authenticate(session->secret);
  auto escalate = ids_->CreateToken(carol, "ci", {"runs:read", "admin"}, 0);
  EXPECT_EQ(escalate.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(escalate.status().message().find("cannot grant scope 'admin'"), std::string::npos);
  auto ci = ids_->CreateToken(carol, "ci", {"runs:read"}, 0);
  ASSERT_TRUE(ci.ok()) << ci.status();
  auto as_ci = ids_->Authenticate(ci->secret);
  ASSERT_TRUE(as_ci.ok());
  EXPECT_EQ(as_ci->Describe(), "user:carol");
  EXPECT_EQ(as_ci->scopes, std::vector<std::string>{"runs:read"});
  // A token made by a narrower token is narrower still.
  EXPECT_EQ(ids_->CreateToken(*as_ci, "x", {"runs:write"}, 0).status().code(),
            StatusCode::kPermissionDenied);

  // The admin's tokens act for nobody but themselves.
  auto deploy = ids_->CreateToken(Admin(), "deploy", {"repos:admin"}, 0);
  ASSERT_TRUE(deploy.ok());
  EXPECT_EQ(ids_->Authenticate(deploy->secret)->Describe(), "token:deploy");

  // Carol sees and revokes her own tokens, not the admin's.
  auto own = ids_->Tokens(carol);
  ASSERT_TRUE(own.ok());
  EXPECT_EQ(own->size(), 2u);  // her session and ci
  EXPECT_EQ(ids_->Revoke(carol, deploy->token.id).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(ids_->Authenticate(deploy->secret).ok());
  ASSERT_TRUE(ids_->Revoke(carol, ci->token.id).ok());
  EXPECT_EQ(ids_->Authenticate(ci->secret).status().message(), "token revoked");
  EXPECT_EQ(ids_->Tokens(Admin())->size(), 3u);
}

TEST_F(IdentitiesTest, ExpiredTokensAndDisabledUsersAreRefused) {
  ASSERT_TRUE(ids_->AddUser("dave", "correct horse battery", {"runs:read"}).ok());
  auto session = ids_->Login("dave", "correct horse battery", 60'000);
  ASSERT_TRUE(ids_->Authenticate(session->secret).ok());
  clock_.AdvanceMs(60'000);
  EXPECT_EQ(ids_->Authenticate(session->secret).status().message(), "token expired");
  EXPECT_EQ(ids_->CreateToken(Admin(), "old", {"runs:read"}, clock_.NowMs() - 1).status().code(),
            StatusCode::kInvalidArgument);

  auto again = ids_->Login("dave", "correct horse battery", 60'000);
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(ids_->DisableUser("dave").ok());
  EXPECT_EQ(ids_->Authenticate(again->secret).status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(ids_->Login("dave", "correct horse battery", 60'000).status().code(),
            StatusCode::kUnauthenticated);
  EXPECT_EQ(ids_->DisableUser("nobody").status().code(), StatusCode::kNotFound);

  // Forged, truncated and empty bearers.
  for (std::string bearer :
       {std::string(), std::string("nst_"), session->secret.substr(0, 20), session->secret + "0",
        std::string("bootstrap-admin-token-012345678"), std::string(10000, 'a')}) {
    EXPECT_EQ(ids_->Authenticate(bearer).status().code(), StatusCode::kUnauthenticated) << bearer;
  }
}

TEST_F(IdentitiesTest, WrongPasswordsAreThrottledByNameAndByAddress) {
  ASSERT_TRUE(ids_->AddUser("erin", "correct horse battery", {"runs:read"}).ok());
  for (int i = 0; i < Identities::kMaxFailedLogins; ++i) {
    EXPECT_EQ(ids_->Login("erin", StrCat("guess ", i), 1000, "10.0.0.9").status().code(),
              StatusCode::kUnauthenticated);
  }
  // Now even the right password waits: a guesser cannot tell.
  auto throttled = ids_->Login("erin", "correct horse battery", 1000, "10.0.0.1");
  EXPECT_EQ(throttled.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(throttled.status().message().find("try again in 900 s"), std::string::npos)
      << throttled.status();
  // The address is throttled for every name.
  ASSERT_TRUE(ids_->AddUser("frank", "correct horse battery", {"runs:read"}).ok());
  EXPECT_EQ(ids_->Login("frank", "correct horse battery", 1000, "10.0.0.9").status().code(),
            StatusCode::kResourceExhausted);
  EXPECT_TRUE(ids_->Login("frank", "correct horse battery", 1000, "10.0.0.2").ok());
  // Once the window passes, the right password works again.
  clock_.AdvanceMs(Identities::kLoginWindowMs);
  EXPECT_TRUE(ids_->Login("erin", "correct horse battery", 1000, "10.0.0.9").ok());
}

}  // namespace
}  // namespace nightshift::policy
