#pragma once

// The `nightshift` command line: `serve` (handed to the caller) and the client verbs, which talk
// to a server through the HTTP API (docs/api.md).

#include <functional>
#include <string>
#include <vector>

namespace nightshift::cli {

// What `nightshift serve` was asked to do. Validated by RunCli: `listen` is HOST:PORT with a
// port in 0–65535, `runners` >= 0 (0 disables the embedded runner), `lease_ttl_seconds` >= 1,
// `log_level` one of debug, info, warn, error, off.
struct ServeOptions {
  std::string listen = "127.0.0.1:8080";
  std::string data_dir = ".nightshift";  // --data-dir, else $NIGHTSHIFT_DATA_DIR
  int runners = 2;
  int lease_ttl_seconds = 15;
  std::string log_level = "info";
  std::string durability = "process";  // or "power"
  std::string sandbox = "auto";        // on, off, auto (on when root)
  std::string run_memory;              // per-run limit: BYTES or with k/m/g
  int64_t run_pids = 0;
  double run_cpus = 0;
  int warm_sandboxes = 2;
  std::vector<std::string> sandbox_host_paths;  // added read-only to every run's root
  std::string cache_size = "20g";
  int mirror_max_age_seconds = 0;
  std::string config;
};

// Runs the server until it stops; returns the process exit code.
using ServeFn = std::function<int(const ServeOptions&)>;

// Parses the command line and runs the verb. Returns the process exit code: 0 on success,
// 1 when the verb failed (one line "nightshift: ..." on stderr, or a run that did not succeed
// under `run --follow`), 2 for a usage error. `serve` returns what `serve` returns.
int RunCli(int argc, char** argv, const ServeFn& serve);

}  // namespace nightshift::cli
