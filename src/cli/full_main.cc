// nightshift-full: the whole `nightshift` command line, with `serve` wired to the control plane.
// The `nightshift` binary (main.cc) becomes this one for every verb but `sandbox exec`.

#include <cstdio>
#include <cstdlib>

#include "cli/commands.h"
#include "cli/sandbox_exec.h"
#include "core/log.h"
#include "server/server.h"

namespace {

int Serve(const nightshift::cli::ServeOptions& o) {
  nightshift::log::SetLevel(o.log_level);
  nightshift::server::ServerOptions options;
  // RunCli validated `listen` as HOST:PORT; the host may be a bracketed IPv6 address.
  size_t colon = o.listen.rfind(':');
  options.host = o.listen.substr(0, colon);
  if (options.host.size() >= 2 && options.host.front() == '[') {
    options.host = options.host.substr(1, options.host.size() - 2);
  }
  options.port = std::atoi(o.listen.c_str() + colon + 1);
  options.data_dir = o.data_dir;
  options.runner_slots = o.runners;
  options.lease_ttl_ms = int64_t{o.lease_ttl_seconds} * 1000;
  options.sync_full = o.durability == "power";
  options.sandbox = o.sandbox;
  auto memory = nightshift::cli::ParseByteSize(o.run_memory);
  if (!memory.ok()) {
    std::fprintf(stderr, "nightshift: --run-memory: %s\n", memory.status().message().c_str());
    return 2;
  }
  options.run_memory_bytes = *memory;
  options.run_pids = o.run_pids;
  options.run_cpus = o.run_cpus;
  options.warm_sandboxes = o.warm_sandboxes;
  for (const std::string& path : o.sandbox_host_paths) {
    options.sandbox_host_paths.push_back(nightshift::cli::HostPathArgument(path));
  }
  auto cache = nightshift::cli::ParseByteSize(o.cache_size);
  if (!cache.ok() || *cache < (int64_t{1} << 20)) {
    std::fprintf(stderr, "nightshift: --cache-size: %s\n",
                 cache.ok() ? "must be at least 1m" : cache.status().message().c_str());
    return 2;
  }
  options.cache_max_bytes = *cache;
  options.mirror_max_age_ms = int64_t{o.mirror_max_age_seconds} * 1000;
  return nightshift::server::Serve(options, o.config);
}

}  // namespace

int main(int argc, char** argv) { return nightshift::cli::RunCli(argc, argv, Serve); }
