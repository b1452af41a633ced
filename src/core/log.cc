#include "core/log.h"

#include <mutex>

#include "spdlog/sinks/stdout_color_sinks.h"

namespace nightshift::log {

std::shared_ptr<spdlog::logger> Get(const std::string& component) {
  static std::mutex mu;  // registering one name twice would throw
  std::lock_guard lock(mu);
  if (auto existing = spdlog::get(component)) return existing;
  auto logger = spdlog::stderr_color_mt(component);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v");
  logger->set_level(spdlog::get_level());
  return logger;
}

void SetLevel(const std::string& level) { spdlog::set_level(spdlog::level::from_str(level)); }

}  // namespace nightshift::log
