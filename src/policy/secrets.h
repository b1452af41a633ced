#pragma once

// Secrets (docs/governance.md): values people set — API keys, registry tokens — sealed at rest
// with XChaCha20-Poly1305 (libsodium) under a key kept out of the database (the environment's
// NIGHTSHIFT_SECRETS_KEY, else DATA_DIR/secrets-key), each bound to its name and scope so a
// sealed value cannot be moved to another. Scoped to a repository and an agent, or to all. A run
// gets those in its scope as environment variables when the policy permits (secret.read), and
// every read is in the audit log. Their values are never shown again: listing gives names and
// scopes only, and everything a run produces is redacted of every form of them (FormsForRun).

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/config_node.h"
#include "core/status.h"
#include "policy/audit.h"
#include "policy/gate.h"
#include "store/store.h"

namespace nightshift::policy {

struct SecretValue {
  std::string name;
  std::string value;
};

class SecretVault {
 public:
  // The key: NIGHTSHIFT_SECRETS_KEY in `environment` (64 hex digits) when set, else `key_file`,
  // made with a random key (mode 0600) when absent. `gate` and `audit` may be null.
  static StatusOr<std::unique_ptr<SecretVault>> Open(store::Store& store,
                                                     const std::filesystem::path& key_file,
                                                     const Environment& environment,
                                                     const Gate* gate, AuditLog* audit);
  ~SecretVault();

  // Adds or replaces a secret. `name`: [A-Za-z_][A-Za-z0-9_]{0,127}, not one the platform sets
  // for runs (PATH, HOME, LANG, TERM, NIGHTSHIFT_…); `value`: 1 byte to 64 KiB; `repo` and
  // `agent` as given ("" for all). InvalidArgument naming what is wrong.
  StatusOr<store::Secret> Set(const std::string& name, const std::string& repo,
                              const std::string& agent, std::string_view value,
                              const std::string& by);
  // Every secret's name, scope and times; never a value (`sealed` is empty).
  StatusOr<std::vector<store::Secret>> List() const;
  Status Remove(const std::string& name, const std::string& repo, const std::string& agent);

  // The secrets a run gets: for each name, the narrowest in the run's scope (repository and
  // agent, then repository, then agent, then all), each only if the policy permits its
  // secret.read (resource: `secret`, `repository`); each read recorded in the audit log.
  StatusOr<std::vector<SecretValue>> ForRun(const store::Run& run) const;
  // Every form (core/digest.h SecretForms) of every secret in the run's scope, given or not:
  // what is redacted from all the run produces.
  StatusOr<std::vector<std::string>> FormsForRun(const store::Run& run) const;

 private:
  SecretVault(store::Store& store, std::string key, const Gate* gate, AuditLog* audit)
      : store_(store), key_(std::move(key)), gate_(gate), audit_(audit) {}
  // The secrets in the run's scope, narrowest first for each name, opened.
  StatusOr<std::vector<std::pair<store::Secret, std::string>>> InScope(const store::Run& run) const;
  StatusOr<std::string> Open(const store::Secret& secret) const;

  store::Store& store_;
  std::string key_;  // crypto_aead_xchacha20poly1305_ietf_KEYBYTES; wiped on destruction
  const Gate* const gate_;
  AuditLog* const audit_;
};

// An event's JSON text with every one of `forms` (FormsForRun) redacted from its strings, keys
// included; the text as it was when none occurs in it.
std::string RedactEventData(const std::string& data, const std::vector<std::string>& forms);

}  // namespace nightshift::policy
