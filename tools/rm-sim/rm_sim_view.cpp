#include "rm_sim_view.hpp"

#include <algorithm>
#include <cstdio>

#include "ecm/core/engine_status.hpp"
#include "ecm/core/health_assessment.hpp"

namespace ecm::rmsim {
namespace {

namespace api = ::ecm::thrift;

std::string without_underscores(std::string name) {
  std::erase(name, '_');
  return name;
}

}  // namespace

std::string status_name(api::EngineStatus::type s) {
  auto core_status = core::engine_status_from_string(without_underscores(api::to_string(s)));
  return core_status ? std::string(core::to_string(*core_status)) : api::to_string(s);
}

std::string health_name(api::NodeHealth::type h) {
  auto core_health = core::node_health_from_string(without_underscores(api::to_string(h)));
  return core_health ? std::string(core::to_string(*core_health)) : api::to_string(h);
}

int live_engines(const SimEcm& e) {
  return static_cast<int>(std::count_if(e.engines.begin(), e.engines.end(), [](const auto& kv) {
    return kv.second != api::EngineStatus::SUCCESS && kv.second != api::EngineStatus::FAILED;
  }));
}

std::string ecm_table(const std::vector<SimEcm>& ecms, std::int64_t now_ms) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "%-24s %-22s %-12s %-16s %7s %9s %12s %10s %8s\n", "ECM",
                "ADDRESS", "STATE", "HEALTH", "ENGINES", "LEFT_INST", "LEFT_MEM_MiB", "HEARTBEATS",
                "BEAT_AGO");
  out += line;
  for (const auto& e : ecms) {
    const auto& left = e.metrics.resources.left;
    std::snprintf(line, sizeof line, "%-24s %-22s %-12s %-16s %7d %9d %12lld %10lld %7llds\n",
                  e.ecm_id.c_str(), e.address.c_str(), e.state.c_str(),
                  e.health.__isset.health ? health_name(e.health.health).c_str() : "-",
                  live_engines(e), left.instances, static_cast<long long>(left.memory_bytes >> 20),
                  static_cast<long long>(e.heartbeats),
                  static_cast<long long>((now_ms - e.last_heartbeat_ms) / 1000));
    out += line;
  }
  return out;
}

}  // namespace ecm::rmsim
