#include "tests/support/config_cases.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "core/fs.h"

namespace nightshift::testing {

std::vector<ConfigCase> LoadConfigCases(const std::filesystem::path& dir) {
  std::vector<ConfigCase> cases;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() != ".yml") continue;
    auto text = ReadFile(entry.path());
    if (!text.ok()) {
      std::fprintf(stderr, "config case: %s\n", text.status().message().c_str());
      std::abort();
    }
    ConfigCase c{.name = entry.path().stem().string(), .text = std::move(*text)};
    size_t start = 0;
    while (start < c.text.size()) {
      size_t end = c.text.find('\n', start);
      if (end == std::string::npos) end = c.text.size();
      const std::string_view line(c.text.data() + start, end - start);
      if (line.starts_with("# want: ")) c.want.emplace_back(line.substr(8));
      if (line.starts_with("# env: ")) {
        const std::string_view var = line.substr(7);
        const size_t eq = var.find('=');
        c.environment[std::string(var.substr(0, eq))] =
            eq == std::string_view::npos ? "" : std::string(var.substr(eq + 1));
      }
      start = end + 1;
    }
    cases.push_back(std::move(c));
  }
  std::sort(cases.begin(), cases.end(),
            [](const ConfigCase& a, const ConfigCase& b) { return a.name < b.name; });
  return cases;
}

}  // namespace nightshift::testing
