#include "cli/config_check.h"

#include <iostream>

#include "config/config.h"
#include "core/config_node.h"

namespace nightshift::cli {

int ConfigCheck(const std::string& file) {
  ConfigErrors errors(file);
  if (config::LoadServerConfig(file, ProcessEnvironment(), errors).ok()) {
    std::cout << "ok\n";
    return 0;
  }
  std::cout.flush();
  for (const std::string& line : errors.Lines()) std::cerr << "nightshift: " << line << '\n';
  return 1;
}

}  // namespace nightshift::cli
