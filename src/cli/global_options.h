#pragma once

// The options every `nightshift` command line may take before its verb, with their defaults and
// environment variables: one definition for the full CLI (commands.cc) and the lean binary's
// own `sandbox exec` (sandbox_exec.cc), so both read a command line alike.

#include <string>

namespace CLI {
class App;
}  // namespace CLI

namespace nightshift::cli {

struct GlobalOptions {
  std::string server = "http://127.0.0.1:8080";
  std::string data_dir = ".nightshift";
};

// --server (NIGHTSHIFT_SERVER) and --data-dir (NIGHTSHIFT_DATA_DIR) on `app`, into `options`.
void AddGlobalOptions(CLI::App& app, GlobalOptions& options);

}  // namespace nightshift::cli
