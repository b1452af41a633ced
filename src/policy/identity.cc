#include "policy/identity.h"

#include <sodium.h>

#include <algorithm>
#include <cctype>

#include "core/digest.h"
#include "core/secrets.h"

namespace nightshift::policy {
namespace {

constexpr std::string_view kTokenPrefix = "nst_";

bool ValidUserName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  if (!std::islower(static_cast<unsigned char>(name[0])) &&
      !std::isdigit(static_cast<unsigned char>(name[0]))) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) ||
           std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

}  // namespace

std::vector<std::string> SplitScopes(std::string_view text) {
  std::vector<std::string> out;
  std::string current;
  for (char c : text) {
    if (c == ',' || std::isspace(static_cast<unsigned char>(c))) {
      if (!current.empty()) out.push_back(std::move(current));
      current.clear();
    } else {
      current += c;
    }
  }
  if (!current.empty()) out.push_back(std::move(current));
  return out;
}

StatusOr<std::vector<std::string>> ParseScopes(std::string_view text) {
  std::vector<std::string> scopes = SplitScopes(text);
  if (scopes.empty()) return InvalidArgumentError("no scope given");
  for (const std::string& scope : scopes) {
    if (std::find(kScopes.begin(), kScopes.end(), scope) == kScopes.end()) {
      std::string known;
      for (std::string_view k : kScopes) known += StrCat(known.empty() ? "" : ", ", k);
      return InvalidArgumentError(StrCat("unknown scope '", scope, "' (scopes: ", known, ")"));
    }
  }
  std::sort(scopes.begin(), scopes.end());
  scopes.erase(std::unique(scopes.begin(), scopes.end()), scopes.end());
  return scopes;
}

std::string JoinScopes(const std::vector<std::string>& scopes) {
  std::string out;
  for (const std::string& scope : scopes) out += StrCat(out.empty() ? "" : " ", scope);
  return out;
}

bool Grants(const std::vector<std::string>& held, std::string_view needed) {
  return std::any_of(held.begin(), held.end(),
                     [&](const std::string& s) { return s == "admin" || s == needed; });
}

StatusOr<Caller> Identities::Authenticate(std::string_view bearer) const {
  if (!admin_token_.empty() && ConstantTimeEquals(bearer, admin_token_)) {
    return Caller{.kind = "admin", .scopes = {"admin"}};
  }
  if (!bearer.starts_with(kTokenPrefix)) return UnauthenticatedError("invalid bearer token");
  // The secret has 256 bits: a lookup by its hash gives nothing away.
  auto token = store_.GetTokenByHash(Sha256Hex(bearer));
  if (!token.ok()) {
    if (IsNotFound(token.status())) return UnauthenticatedError("invalid bearer token");
    return token.status();
  }
  if (token->revoked_ms != 0) return UnauthenticatedError("token revoked");
  if (token->expires_ms != 0 && token->expires_ms <= clock_.NowMs()) {
    return UnauthenticatedError("token expired");
  }
  std::vector<std::string> scopes = SplitScopes(token->scopes);
  if (token->owner.empty()) {
    return Caller{.kind = "token", .name = token->name, .scopes = scopes, .token_id = token->id};
  }
  auto user = store_.GetUser(token->owner);
  if (!user.ok() || user->disabled_ms != 0) return UnauthenticatedError("user disabled");
  // Never more than the user holds now (their scopes may have been narrowed since).
  const std::vector<std::string> held = SplitScopes(user->scopes);
  std::erase_if(scopes, [&](const std::string& scope) { return !Grants(held, scope); });
  return Caller{.kind = "user", .name = user->name, .scopes = scopes, .token_id = token->id};
}

StatusOr<store::User> Identities::AddUser(const std::string& name, const std::string& password,
                                          const std::vector<std::string>& scopes) {
  if (!ValidUserName(name)) {
    return InvalidArgumentError(
        StrCat("user name '", name,
               "' must be 1 to 64 lower-case letters, digits, '.', '_' or '-', starting with a "
               "letter or digit"));
  }
  if (password.size() < 12 || password.size() > 1024) {
    return InvalidArgumentError("a password must be 12 to 1024 bytes long");
  }
  if (scopes.empty()) return InvalidArgumentError("a user needs at least one scope");
  char hash[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(hash, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
    return ResourceExhaustedError("out of memory hashing the password");
  }
  return store_.AddUser(
      store::User{.name = name, .password_hash = hash, .scopes = JoinScopes(scopes)});
}

StatusOr<store::User> Identities::DisableUser(const std::string& name) {
  return store_.DisableUser(name);
}

Status Identities::Throttled(const std::vector<std::string>& keys) {
  const int64_t now = clock_.NowMs();
  std::lock_guard lock(throttle_mu_);
  for (const std::string& key : keys) {
    auto it = failures_.find(key);
    if (it == failures_.end()) continue;
    std::deque<int64_t>& times = it->second;
    while (!times.empty() && times.front() <= now - kLoginWindowMs) times.pop_front();
    if (times.empty()) {
      failures_.erase(it);
    } else if (static_cast<int>(times.size()) >= kMaxFailedLogins) {
      const int64_t wait_s = (times.front() + kLoginWindowMs - now + 999) / 1000;
      return ResourceExhaustedError(
          StrCat("too many failed logins for this user or address; try again in ", wait_s, " s"));
    }
  }
  return OkStatus();
}

void Identities::Failed(const std::vector<std::string>& keys) {
  std::lock_guard lock(throttle_mu_);
  if (failures_.size() > 100'000) failures_.clear();  // a flood of names: forget, stay bounded
  for (const std::string& key : keys) {
    std::deque<int64_t>& times = failures_[key];
    times.push_back(clock_.NowMs());
    while (static_cast<int>(times.size()) > kMaxFailedLogins) times.pop_front();
  }
}

StatusOr<NewToken> Identities::Login(const std::string& name, const std::string& password,
                                     int64_t ttl_ms, const std::string& from) {
  std::vector<std::string> keys = {"user:" + name};
  if (!from.empty()) keys.push_back("from:" + from);
  RETURN_IF_ERROR(Throttled(keys));
  auto result = Check(name, password, ttl_ms);
  if (!result.ok() && result.status().code() == StatusCode::kUnauthenticated) Failed(keys);
  return result;
}

StatusOr<NewToken> Identities::Check(const std::string& name, const std::string& password,
                                     int64_t ttl_ms) {
  const Status refused = UnauthenticatedError("wrong user name or password");
  auto user = store_.GetUser(name);
  if (!user.ok()) {
    if (!IsNotFound(user.status())) return user.status();
    // As long as a real check, so that the time taken does not tell which names exist.
    char hash[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str(hash, password.data(), password.size(),
                          crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
      return ResourceExhaustedError("out of memory hashing the password");
    }
    return refused;
  }
  if (crypto_pwhash_str_verify(user->password_hash.c_str(), password.data(), password.size()) !=
          0 ||
      user->disabled_ms != 0) {
    return refused;
  }
  return Issue(user->name, "session", SplitScopes(user->scopes), clock_.NowMs() + ttl_ms);
}

StatusOr<NewToken> Identities::CreateToken(const Caller& by, const std::string& name,
                                           const std::vector<std::string>& scopes,
                                           int64_t expires_ms) {
  if (name.empty() || name.size() > 64 || !std::all_of(name.begin(), name.end(), [](char c) {
        return std::isprint(static_cast<unsigned char>(c));
      })) {
    return InvalidArgumentError("a token's name must be 1 to 64 printable characters");
  }
  if (scopes.empty()) return InvalidArgumentError("a token needs at least one scope");
  for (const std::string& scope : scopes) {
    if (!Grants(by.scopes, scope)) {
      return PermissionDeniedError(
          StrCat("cannot grant scope '", scope, "': ", by.Describe(), " does not hold it"));
    }
  }
  if (expires_ms != 0 && expires_ms <= clock_.NowMs()) {
    return InvalidArgumentError("the expiry is in the past");
  }
  return Issue(by.kind == "user" ? by.name : "", name, scopes, expires_ms);
}

StatusOr<NewToken> Identities::Issue(const std::string& owner, const std::string& name,
                                     const std::vector<std::string>& scopes, int64_t expires_ms) {
  unsigned char random[32];
  randombytes_buf(random, sizeof random);
  NewToken made{.secret = StrCat(kTokenPrefix, HexOf(random, sizeof random))};
  ASSIGN_OR_RETURN(made.token, store_.AddToken(store::ApiToken{.name = name,
                                                               .owner = owner,
                                                               .hash = Sha256Hex(made.secret),
                                                               .scopes = JoinScopes(scopes),
                                                               .expires_ms = expires_ms}));
  return made;
}

StatusOr<std::vector<store::ApiToken>> Identities::Tokens(const Caller& by) const {
  if (Grants(by.scopes, "admin")) return store_.ListTokens(std::nullopt);
  if (by.kind != "user") return std::vector<store::ApiToken>{};
  return store_.ListTokens(by.name);
}

StatusOr<store::ApiToken> Identities::Revoke(const Caller& by, int64_t id) {
  if (!Grants(by.scopes, "admin")) {
    ASSIGN_OR_RETURN(std::vector<store::ApiToken> own, Tokens(by));
    if (std::none_of(own.begin(), own.end(),
                     [&](const store::ApiToken& t) { return t.id == id; })) {
      return NotFoundError(StrCat("no token ", id));
    }
  }
  return store_.RevokeToken(id);
}

}  // namespace nightshift::policy
