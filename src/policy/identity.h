#pragma once

// Identities (docs/governance.md): who calls the API, and with which scopes. The admin token in
// the data dir is the bootstrap and holds every scope; people are local users whose passwords
// are kept only as Argon2id hashes (libsodium); scripts, CI and sessions use API tokens, kept
// only as the SHA-256 of their random secret, each with scopes and an expiry, and never more
// scopes than whoever made it holds. A user disabled, a token revoked or expired: refused.

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "store/store.h"

namespace nightshift::policy {

// Every scope. `admin` holds all the others.
inline constexpr std::array<std::string_view, 9> kScopes = {
    "runs:read",      "runs:write",    "repos:admin", "crs:review", "crs:merge",
    "policies:admin", "secrets:admin", "audit:read",  "admin"};

// Scopes written as a list separated by commas or spaces ("runs:read,runs:write").
// InvalidArgument naming an unknown one, or for none. Sorted, without duplicates.
StatusOr<std::vector<std::string>> ParseScopes(std::string_view text);
std::string JoinScopes(const std::vector<std::string>& scopes);  // space-separated
// The scopes of a stored list (JoinScopes's text), as they are: not checked.
std::vector<std::string> SplitScopes(std::string_view text);
// Whether `held` grants `needed` (admin grants every scope).
bool Grants(const std::vector<std::string>& held, std::string_view needed);

// Who made a request.
struct Caller {
  // "admin" (the bootstrap token), "user" (a user's token or session) or "token" (one made
  // with the admin token, or by such a token: it acts for nobody but itself).
  std::string kind;
  std::string name;  // the user, or the token's name; empty for the bootstrap token
  std::vector<std::string> scopes;
  int64_t token_id = 0;  // the stored token it used (0: the bootstrap token)
  // "admin", "user:alice", "token:ci": what runs' requested_by shows.
  std::string Describe() const { return kind == "admin" ? "admin" : kind + ":" + name; }
};

// A token as made: its secret, shown once, and what is stored of it.
struct NewToken {
  std::string secret;  // "nst_" and 64 hex digits
  store::ApiToken token;
};

class Identities {
 public:
  Identities(store::Store& store, std::string admin_token, const Clock& clock)
      : store_(store), admin_token_(std::move(admin_token)), clock_(clock) {}

  // The caller a bearer token is. Unauthenticated, with the reason, for an unknown, revoked or
  // expired token or a disabled user's.
  StatusOr<Caller> Authenticate(std::string_view bearer) const;

  // A user: name [a-z0-9][a-z0-9._-]{0,63}, a password of 12 to 1024 bytes, its scopes.
  StatusOr<store::User> AddUser(const std::string& name, const std::string& password,
                                const std::vector<std::string>& scopes);
  StatusOr<store::User> DisableUser(const std::string& name);
  // A session token for a user whose password matches: their scopes, expiring after
  // `ttl_ms`. Unauthenticated, with one message whatever was wrong (no user, a wrong password,
  // disabled). After kMaxFailedLogins failures for the name, or from the address `from`, within
  // kLoginWindowMs, further attempts for either are refused (ResourceExhausted, saying when to
  // try again) without a password hash being computed, until the oldest failure leaves the
  // window.
  static constexpr int kMaxFailedLogins = 10;
  static constexpr int64_t kLoginWindowMs = 15 * 60 * 1000;
  StatusOr<NewToken> Login(const std::string& name, const std::string& password, int64_t ttl_ms,
                           const std::string& from = "");

  // A token for `by` (owned by the same user), with `scopes` — each one `by` holds
  // (PermissionDenied otherwise) — expiring at `expires_ms` (0: never; in the past:
  // InvalidArgument). Name: 1 to 64 printable characters.
  StatusOr<NewToken> CreateToken(const Caller& by, const std::string& name,
                                 const std::vector<std::string>& scopes, int64_t expires_ms);
  // `by`'s own tokens; every token for an admin.
  StatusOr<std::vector<store::ApiToken>> Tokens(const Caller& by) const;
  // Revokes one of `by`'s tokens (an admin: any). NotFound for another's, as for none.
  StatusOr<store::ApiToken> Revoke(const Caller& by, int64_t id);

 private:
  StatusOr<NewToken> Issue(const std::string& owner, const std::string& name,
                           const std::vector<std::string>& scopes, int64_t expires_ms);

  // Login without the throttle.
  StatusOr<NewToken> Check(const std::string& name, const std::string& password, int64_t ttl_ms);
  // The failures of login keys ("user:NAME", "from:ADDRESS") within the window, oldest first.
  Status Throttled(const std::vector<std::string>& keys);
  void Failed(const std::vector<std::string>& keys);

  store::Store& store_;
  const std::string admin_token_;
  const Clock& clock_;
  std::mutex throttle_mu_;
  std::map<std::string, std::deque<int64_t>> failures_;  // GUARDED_BY(throttle_mu_)
};

}  // namespace nightshift::policy
