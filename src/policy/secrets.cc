#include "policy/secrets.h"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <map>

#include "core/digest.h"
#include "core/fs.h"

namespace nightshift::policy {
namespace {

constexpr size_t kKeyBytes = crypto_aead_xchacha20poly1305_ietf_KEYBYTES;
constexpr size_t kNonceBytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr size_t kMaxValueBytes = 64 * 1024;

StatusOr<std::string> FromHex(std::string_view hex, std::string_view what) {
  std::string out(hex.size() / 2, '\0');
  size_t length = 0;
  if (sodium_hex2bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), hex.data(),
                     hex.size(), nullptr, &length, nullptr) != 0 ||
      length * 2 != hex.size()) {
    return InvalidArgumentError(StrCat(what, " is not hex"));
  }
  out.resize(length);
  return out;
}

// What a sealed value is bound to: moved to another name or scope, it does not open.
std::string Binding(const std::string& name, const std::string& repo, const std::string& agent) {
  return StrCat("nightshift-secret\n", name, "\n", repo, "\n", agent);
}

Status CheckName(const std::string& name) {
  const bool shape = !name.empty() && name.size() <= 128 &&
                     (std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_') &&
                     std::all_of(name.begin(), name.end(), [](char c) {
                       return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
                     });
  if (!shape) {
    return InvalidArgumentError(
        "a secret's name is an environment variable's: [A-Za-z_][A-Za-z0-9_]{0,127}");
  }
  static constexpr std::array<std::string_view, 6> kReserved = {"PATH", "HOME",  "LANG",
                                                                "TERM", "SHELL", "USER"};
  if (std::find(kReserved.begin(), kReserved.end(), name) != kReserved.end() ||
      name.starts_with("NIGHTSHIFT_") || name.starts_with("LD_")) {
    return InvalidArgumentError(StrCat("'", name, "' is set by the platform for every run"));
  }
  return OkStatus();
}

}  // namespace

StatusOr<std::unique_ptr<SecretVault>> SecretVault::Open(store::Store& store,
                                                         const std::filesystem::path& key_file,
                                                         const Environment& environment,
                                                         const Gate* gate, AuditLog* audit) {
  if (sodium_init() < 0) return InternalError("libsodium cannot start");
  std::string key;
  if (auto it = environment.find("NIGHTSHIFT_SECRETS_KEY");
      it != environment.end() && !it->second.empty()) {
    auto decoded = FromHex(it->second, "NIGHTSHIFT_SECRETS_KEY");
    if (!decoded.ok() || decoded->size() != kKeyBytes) {
      return InvalidArgumentError("NIGHTSHIFT_SECRETS_KEY must be 64 hex digits (32 bytes)");
    }
    key = *std::move(decoded);
  } else {
    auto text = ReadFile(key_file);
    if (!text.ok()) {
      if (text.status().code() != StatusCode::kNotFound) return text.status();
      std::string fresh(kKeyBytes, '\0');
      randombytes_buf(fresh.data(), fresh.size());
      const std::string hex = HexOf(fresh.data(), fresh.size());
      if (Status st = CreateFileExclusive(key_file, hex + "\n", 0600); !st.ok()) return st;
      text = ReadFile(key_file);
      if (!text.ok()) return text.status();
    }
    std::string_view hex = *text;
    while (!hex.empty() && std::isspace(static_cast<unsigned char>(hex.back()))) {
      hex.remove_suffix(1);
    }
    auto decoded = FromHex(hex, key_file.string());
    if (!decoded.ok() || decoded->size() != kKeyBytes) {
      return InvalidArgumentError(StrCat(key_file.string(), " must hold 64 hex digits"));
    }
    key = *std::move(decoded);
  }
  return std::unique_ptr<SecretVault>(new SecretVault(store, std::move(key), gate, audit));
}

SecretVault::~SecretVault() { sodium_memzero(key_.data(), key_.size()); }

StatusOr<store::Secret> SecretVault::Set(const std::string& name, const std::string& repo,
                                         const std::string& agent, std::string_view value,
                                         const std::string& by) {
  RETURN_IF_ERROR(CheckName(name));
  if (value.empty()) return InvalidArgumentError("the secret's value is empty");
  if (value.size() > kMaxValueBytes) {
    return InvalidArgumentError("the secret's value is longer than 64 KiB");
  }
  if (repo.size() > 256 || agent.size() > 256) {
    return InvalidArgumentError("a secret's repository or agent is longer than 256 bytes");
  }
  std::string sealed(kNonceBytes + value.size() + crypto_aead_xchacha20poly1305_ietf_ABYTES, '\0');
  auto* out = reinterpret_cast<unsigned char*>(sealed.data());
  randombytes_buf(out, kNonceBytes);
  const std::string binding = Binding(name, repo, agent);
  unsigned long long length = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      out + kNonceBytes, &length, reinterpret_cast<const unsigned char*>(value.data()),
      value.size(), reinterpret_cast<const unsigned char*>(binding.data()), binding.size(), nullptr,
      out, reinterpret_cast<const unsigned char*>(key_.data()));
  sealed.resize(kNonceBytes + length);
  ASSIGN_OR_RETURN(store::Secret stored,
                   store_.PutSecret({.name = name,
                                     .repo = repo,
                                     .agent = agent,
                                     .sealed = HexOf(sealed.data(), sealed.size()),
                                     .created_by = by}));
  stored.sealed.clear();
  return stored;
}

StatusOr<std::vector<store::Secret>> SecretVault::List() const {
  ASSIGN_OR_RETURN(std::vector<store::Secret> secrets, store_.ListSecrets());
  for (auto& s : secrets) s.sealed.clear();
  return secrets;
}

Status SecretVault::Remove(const std::string& name, const std::string& repo,
                           const std::string& agent) {
  return store_.DeleteSecret(name, repo, agent);
}

StatusOr<std::string> SecretVault::Open(const store::Secret& secret) const {
  ASSIGN_OR_RETURN(std::string sealed, FromHex(secret.sealed, "a sealed secret"));
  if (sealed.size() < kNonceBytes + crypto_aead_xchacha20poly1305_ietf_ABYTES) {
    return InternalError(StrCat("secret '", secret.name, "' is damaged"));
  }
  const auto* in = reinterpret_cast<const unsigned char*>(sealed.data());
  std::string value(sealed.size() - kNonceBytes - crypto_aead_xchacha20poly1305_ietf_ABYTES, '\0');
  const std::string binding = Binding(secret.name, secret.repo, secret.agent);
  unsigned long long length = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(value.data()), &length, nullptr, in + kNonceBytes,
          sealed.size() - kNonceBytes, reinterpret_cast<const unsigned char*>(binding.data()),
          binding.size(), in, reinterpret_cast<const unsigned char*>(key_.data())) != 0) {
    return InternalError(StrCat("secret '", secret.name,
                                "' does not open with this key (another key, or it was moved or "
                                "changed in the database)"));
  }
  value.resize(length);
  return value;
}

StatusOr<std::vector<std::pair<store::Secret, std::string>>> SecretVault::InScope(
    const store::Run& run) const {
  const std::string agent = RunPrincipal(run).name;
  ASSIGN_OR_RETURN(std::vector<store::Secret> all, store_.ListSecrets());
  std::vector<std::pair<store::Secret, std::string>> out;
  for (auto& secret : all) {
    if ((!secret.repo.empty() && secret.repo != run.repo) ||
        (!secret.agent.empty() && secret.agent != agent)) {
      continue;
    }
    ASSIGN_OR_RETURN(std::string value, Open(secret));
    out.emplace_back(std::move(secret), std::move(value));
  }
  // Narrowest first: repository and agent, repository, agent, all.
  auto rank = [](const store::Secret& s) {
    return (s.repo.empty() ? 2 : 0) + (s.agent.empty() ? 1 : 0);
  };
  std::stable_sort(out.begin(), out.end(), [&](const auto& a, const auto& b) {
    return a.first.name != b.first.name ? a.first.name < b.first.name
                                        : rank(a.first) < rank(b.first);
  });
  return out;
}

StatusOr<std::vector<SecretValue>> SecretVault::ForRun(const store::Run& run) const {
  ASSIGN_OR_RETURN(auto scoped, InScope(run));
  std::vector<SecretValue> out;
  for (auto& [secret, value] : scoped) {
    if (!out.empty() && out.back().name == secret.name) continue;  // a narrower one is given
    if (gate_ != nullptr) {
      const Decision d = gate_->DecideForRun(run, "secret.read", {{"secret", secret.name}}, {});
      if (!d.allowed) continue;  // the gate recorded the deny
    }
    if (audit_ != nullptr) {
      auto recorded = audit_->Append(AuditEntry{
          .actor = RunPrincipal(run).Describe(),
          .action = "secret.read",
          .resource = StrCat(secret.name, secret.repo.empty() ? "" : " repo ", secret.repo,
                             secret.agent.empty() ? "" : " agent ", secret.agent),
          .run_id = run.id,
          .detail = Json{{"repository", run.repo}}});
      if (!recorded.ok()) return recorded.status();  // no read goes unrecorded
    }
    out.push_back({.name = secret.name, .value = std::move(value)});
  }
  return out;
}

StatusOr<std::vector<std::string>> SecretVault::FormsForRun(const store::Run& run) const {
  ASSIGN_OR_RETURN(auto scoped, InScope(run));
  std::vector<std::string> forms;
  for (const auto& [secret, value] : scoped) {
    for (auto& form : SecretForms(value)) forms.push_back(std::move(form));
  }
  return forms;
}

namespace {

bool HoldsAny(std::string_view text, const std::vector<std::string>& forms) {
  return std::any_of(forms.begin(), forms.end(), [&](const std::string& form) {
    return text.find(form) != std::string_view::npos;
  });
}

void RedactStrings(Json& value, const std::vector<std::string>& forms) {
  if (value.is_string()) {
    auto& s = value.get_ref<std::string&>();
    if (HoldsAny(s, forms)) s = RedactForms(std::move(s), forms);
  } else if (value.is_array()) {
    for (auto& item : value) RedactStrings(item, forms);
  } else if (value.is_object()) {
    Json out = Json::object();
    for (auto& [key, item] : value.items()) {
      RedactStrings(item, forms);
      out[HoldsAny(key, forms) ? RedactForms(key, forms) : key] = std::move(item);
    }
    value = std::move(out);
  }
}

}  // namespace

std::string RedactEventData(const std::string& data, const std::vector<std::string>& forms) {
  // The serialized text holds a value as JSON escapes it, which is one of its forms: when no
  // form occurs in the text, no string in it holds one.
  if (forms.empty() || !HoldsAny(data, forms)) return data;
  Json parsed = Json::parse(data, nullptr, false);
  if (parsed.is_discarded()) return RedactForms(data, forms);
  RedactStrings(parsed, forms);
  return parsed.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace nightshift::policy
