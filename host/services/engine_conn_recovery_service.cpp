#include "services/engine_conn_recovery_service.hpp"

#include "ecm/core/engine_exit.hpp"
#include "ecm/core/linux_process_launch.hpp"
#include "util/log.hpp"

namespace ecm::host {

EngineConnRecoveryService::EngineConnRecoveryService(EngineStateStore& store,
                                                     EngineConnListService& engines,
                                                     EngineConnLaunchService& launch,
                                                     ResourceCache& cache, std::string boot_id)
    : store_(store),
      engines_(engines),
      launch_(launch),
      cache_(cache),
      boot_id_(std::move(boot_id)) {}

std::string EngineConnRecoveryService::why_not_adoptable(core::EngineConn& r) const {
  const auto& sv = r.supervision;
  if (sv.boot_id.empty()) {
    // Written before the spawn; absent only in records of an ECM that did not keep it (schema 1)
    // or of a launch that never reached its spawn.
    return r.pid > 0
               ? "its process cannot be recognised after the ECM restarted (the record "
                 "predates process start times); it is no longer supervised"
               : "the ECM stopped while the engine was being prepared; no process was started";
  }
  if (boot_id_.empty() || sv.boot_id != boot_id_) {
    return "the machine restarted (boot id changed) while the ECM was down";
  }
  if (r.pid == 0) {
    // The ECM went away between the spawn and the write of the pid: the process, if any, carries
    // the engine's id in its environment.
    auto pid = core::find_session_leader_with_env("ECM_ENGINE_ID=" + r.id);
    auto start = pid ? core::read_process_start_time(*pid) : std::nullopt;
    if (!pid || !start) return "the ECM stopped while the engine was being launched";
    r.pid = *pid;
    r.supervision.start_time = *start;
    r.started_at = r.created_at;
    return {};
  }
  const auto now = core::read_process_start_time(r.pid);
  // A zombie has exited; its new parent has not reaped it yet (or never will, in a container
  // whose init does not reap).
  if (!now || core::is_zombie(r.pid)) return "exited while the ECM was down (exit status unknown)";
  if (*now != sv.start_time) {
    return "exited while the ECM was down (exit status unknown; its pid now belongs to another "
           "process)";
  }
  return {};
}

void EngineConnRecoveryService::mark_ended(const core::EngineConn& r, const std::string& reason) {
  if (r.status == core::EngineStatus::kShuttingDown) {
    // It was being stopped: its end is the stop's (Success, or Failed with the stop's reason).
    engines_.finish(r.id, core::ExitStatus{});
    return;
  }
  engines_.transition(r.id, core::EngineStatus::kFailed, [&](core::EngineConn& e) {
    e.failure_reason = reason;
    e.stop_reason = core::kStopReasonEcmRestart;
    e.ended_at = core::Clock::now();
  });
}

RecoveryReport EngineConnRecoveryService::recover() {
  RecoveryReport report;
  auto records = store_.load_all();
  report.records = records.size();
  for (const auto& r : records)
    engines_.restore(r);
  for (auto& r : records) {
    if (core::is_ended(r.status)) continue;
    auto reason = why_not_adoptable(r);
    if (reason.empty()) {
      ResourceLocalizationService::Holdings holdings;
      for (const auto& name : r.supervision.cache_entries) {
        if (auto lease = cache_.acquire_by_name(name)) {
          holdings.push_back(std::move(*lease));
        } else {
          report.missing_cache.push_back(r.id + ": " + name);
          log("recovery")->warn("[{}] cache entry {} it used is gone", r.id, name);
        }
      }
      // A pid found by the engine's id is written before the process is watched.
      engines_.update(r.id, [&](core::EngineConn& e) {
        e.pid = r.pid;
        e.started_at = r.started_at;
        e.supervision.start_time = r.supervision.start_time;
      });
      if (launch_.adopt(r, std::move(holdings))) {
        report.adopted.push_back(r.id);
        log("recovery")
            ->info("[{}] re-adopted: pid {}, {}, user {}", r.id, r.pid, core::to_string(r.status),
                   r.user);
        continue;
      }
      reason = "exited while the ECM was restarting (exit status unknown)";
    }
    mark_ended(r, reason);
    report.ended.push_back(r.id);
    log("recovery")
        ->warn("[{}] not re-adopted (was {}, pid {}): {}", r.id, core::to_string(r.status), r.pid,
               reason);
  }
  log("recovery")
      ->info("{} record(s) read back: {} engine(s) re-adopted, {} ended while away", report.records,
             report.adopted.size(), report.ended.size());
  return report;
}

}  // namespace ecm::host
