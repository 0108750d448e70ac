#include "services/engine_conn_kill_service.hpp"

#include <algorithm>
#include <thread>

#include "ecm/core/errors.hpp"
#include "util/log.hpp"

namespace ecm::host {

EngineConnKillService::EngineConnKillService(EngineConnListService& engines,
                                             core::LinuxProcessEngineConnLaunch& processes)
    : engines_(engines), processes_(processes) {}

StopOutcome EngineConnKillService::stop(const std::string& engine_id, bool force,
                                        const std::string& reason) {
  auto record = engines_.get(engine_id);
  if (!record) {
    throw core::EcmException(core::ErrorCode::kNotFound,
                             "no engine '" + engine_id.substr(0, 64) + "'");
  }
  if (core::is_ended(record->status)) return {*record, true};
  auto runtime = engines_.runtime(engine_id).value_or(EngineRuntime{});
  engines_.transition(engine_id, core::EngineStatus::kShuttingDown,
                      [&](core::EngineConn& e) { e.stop_reason = reason; });
  // pid 0: still being built; the launch service stops it as soon as it has a process.
  if (record->pid > 0) {
    const auto grace = force ? std::chrono::milliseconds(0) : runtime.stop_grace;
    processes_.stop(record->pid, runtime.stop_signal, grace);
    log("kill")->info("[{}] stopping pid {} ({}, grace {} ms)", engine_id, record->pid,
                      force ? "forced" : reason, grace.count());
  }
  return {*engines_.get(engine_id), false};
}

std::vector<StopOutcome> EngineConnKillService::stop_matching(
    const std::optional<std::string>& user, const std::optional<std::string>& engine_type,
    bool force, const std::string& reason) {
  if (!user && !engine_type) {
    throw core::EcmException(core::ErrorCode::kInvalidRequest,
                             "name an engine id, a user or an engine type to stop");
  }
  std::vector<StopOutcome> out;
  for (const auto& e : engines_.list({user, engine_type, std::nullopt})) {
    if (core::is_ended(e.status)) continue;
    out.push_back(stop(e.id, force, reason));
  }
  return out;
}

std::size_t EngineConnKillService::stop_all(const std::string& reason,
                                            std::chrono::milliseconds deadline) {
  // Each engine gets its own grace: wait for the longest of them, plus `deadline` as a margin.
  std::chrono::milliseconds longest{0};
  for (const auto& e : engines_.list({})) {
    if (core::is_ended(e.status)) continue;
    longest = std::max(longest, engines_.runtime(e.id).value_or(EngineRuntime{}).stop_grace);
    stop(e.id, false, reason);
  }
  const auto until = std::chrono::steady_clock::now() + longest + deadline;
  while (processes_.running_count() > 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return processes_.running_count();
}

}  // namespace ecm::host
