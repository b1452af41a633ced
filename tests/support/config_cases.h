#pragma once

// The declarative cases of the server's config file in tests/config_cases: each a YAML file
// whose comments say what reading it must give. One loader for the runners (config_test reads
// them in process, e2e_test through `nightshift config check`).

#include <filesystem>
#include <string>
#include <vector>

#include "core/config_node.h"

namespace nightshift::testing {

// A case: the file's text, the environment it is read with ("# env: NAME=VALUE" lines) and the
// lines it must give ("# want: ok", or one "# want: nightshift.yml:LINE:COLUMN: reason" per
// error, in the file's order). Cases are read as if the file were named nightshift.yml.
struct ConfigCase {
  std::string name;  // the file's name without .yml
  std::string text;
  Environment environment;
  std::vector<std::string> want;
};

// Every *.yml in `dir`, by name. Aborts the test binary if one cannot be read.
std::vector<ConfigCase> LoadConfigCases(const std::filesystem::path& dir);

}  // namespace nightshift::testing
