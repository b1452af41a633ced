#include "core/secrets.h"

namespace nightshift {

const std::vector<std::regex>& SecretPatterns() {
  static const auto* patterns = [] {
    auto* out = new std::vector<std::regex>;
    for (const char* pattern : {
             R"(AKIA[0-9A-Z]{16})",                     // AWS access key id
             R"(gh[pousr]_[A-Za-z0-9]{30,})",           // GitHub tokens
             R"(github_pat_[A-Za-z0-9_]{40,})",         // GitHub fine-grained
             R"(glpat-[A-Za-z0-9_\-]{20,})",            // GitLab
             R"(xox[abprs]-[A-Za-z0-9\-]{10,})",        // Slack
             R"(sk-(ant-|proj-)?[A-Za-z0-9_\-]{20,})",  // OpenAI / Anthropic keys
             R"(AIza[0-9A-Za-z_\-]{35})",               // Google API keys
             R"(-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----)",
             R"((authorization:\s*bearer\s+)[A-Za-z0-9._~+/\-]{16,}=*)",
         }) {
      out->emplace_back(pattern, std::regex::ECMAScript | std::regex::icase);
    }
    return out;
  }();
  return *patterns;
}

}  // namespace nightshift
