#pragma once

// Shapes of credentials that must never reach a model or land in a change request: cloud and
// forge tokens, API keys, private key blocks, bearer headers.

#include <regex>
#include <vector>

namespace nightshift {

const std::vector<std::regex>& SecretPatterns();

}  // namespace nightshift
