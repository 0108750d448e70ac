#pragma once

#include <memory>
#include <string>

#include <spdlog/logger.h>

namespace ecm::host {

// The logger of one component ("launch", "registry", ...), created on first use. All of them write
// to stderr with the same pattern and level (set_log_level).
std::shared_ptr<spdlog::logger> log(const std::string& component);
void set_log_level(const std::string& level);

}  // namespace ecm::host
