#pragma once

#include <memory>
#include <string>

#include "spdlog/spdlog.h"

namespace nightshift::log {

// One structured logger per component ("server", "runner", "store"), all writing to stderr
// with the component as a tag. Thread-safe.
std::shared_ptr<spdlog::logger> Get(const std::string& component);

// Sets the level of every logger: "debug", "info", "warn", "error", "off".
void SetLevel(const std::string& level);

}  // namespace nightshift::log
