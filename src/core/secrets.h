#pragma once

// Shapes of credentials that must never reach a model or land in a change request: cloud and
// forge tokens, API keys, private key blocks, bearer headers.

#include <cstddef>
#include <string_view>
#include <vector>

namespace nightshift {

// One credential-shaped span found by FindSecrets.
struct SecretMatch {
  size_t offset = 0;  // into the scanned text
  size_t length = 0;
  // What it looks like: "aws-access-key-id", "aws-secret-access-key", "github-token",
  // "gitlab-token", "slack-token", "openai-api-key", "anthropic-api-key", "stripe-key",
  // "npm-token", "google-api-key", "private-key", "bearer-token". Points to a static string.
  std::string_view kind;

  bool operator==(const SecretMatch&) const = default;
};

// Every credential-shaped span in `text`, in order of offset and non-overlapping. `text` may be
// any bytes: binary, NULs, invalid UTF-8. Linear time in text.size(), constant stack.
//
// Token shapes (AKIA/ASIA…, gh[pousr]_…, github_pat_…, glpat-…, xox[abprs]-…, sk-…, sk-proj-…,
// sk-ant-…, sk_live_…, rk_live_…, npm_…, AIza…) have case-sensitive prefixes and only start
// where the byte before is not one of [A-Za-z0-9_-] (or is the letter of an escape such as
// `\n`), so `disk-cache-…` or `task_…` never match; a match covers the whole token.
// For "aws-secret-access-key" (after `aws_secret_access_key =`) and "bearer-token" (after
// `Authorization: Bearer`) the match covers the value only, not the key or header name.
// A "private-key" match runs from `-----BEGIN …PRIVATE KEY-----` to the end of the matching
// `-----END …-----` marker, or to the end of `text` when there is none; the newlines between
// may be real or escaped (`\n` inside JSON).
std::vector<SecretMatch> FindSecrets(std::string_view text);

// Whether `given` (from a request) equals the secret `want`, in time that depends on neither's
// content nor on how much of them matches: only on the secret's length. For tokens and webhook
// secrets compared as they arrive.
bool ConstantTimeEquals(std::string_view given, std::string_view want);

}  // namespace nightshift
