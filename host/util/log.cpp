#include "util/log.hpp"

#include <mutex>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace ecm::host {
namespace {
std::mutex g_mu;
}

std::shared_ptr<spdlog::logger> log(const std::string& component) {
  if (auto l = spdlog::get(component)) return l;
  std::lock_guard lock(g_mu);
  if (auto l = spdlog::get(component)) return l;
  auto l = spdlog::stderr_color_mt(component);
  l->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v");
  l->set_level(spdlog::get_level());
  return l;
}

void set_log_level(const std::string& level) {
  spdlog::set_level(spdlog::level::from_str(level));
}

}  // namespace ecm::host
