// ECMMetricsService: keeps the ECM's counters current (launches, stops, launch latency) from the
// engine table's status observer and the launch service's latency hook, and answers snapshots
// with the gauges (engines by status and type, resources, plugin calls) read at that moment.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "ecm/core/ecm_event_listener_bus.hpp"
#include "ecm/core/ecm_metrics.hpp"
#include "ecm/core/engine_conn.hpp"
#include "ecm/core/resources.hpp"
#include "plugins/launcher_generation.hpp"
#include "services/engine_conn_list_service.hpp"

namespace ecm::host {

class ECMMetricsService {
 public:
  // Registers its observer with `engines` (before the daemon serves). `plugin_stats` may be null
  // (no plugin counts). Each reference must outlive this service.
  ECMMetricsService(EngineConnListService& engines, const core::ResourceLedger& resources,
                    const PluginCallStats* plugin_stats);
  ECMMetricsService(const ECMMetricsService&) = delete;
  ECMMetricsService& operator=(const ECMMetricsService&) = delete;

  // The launch service's latency hook: one spawned engine.
  void observe_launch_latency(std::chrono::microseconds latency);

  // Counters as of now, and the gauges read now. Never call it from a status observer (it reads
  // the engine table).
  core::EcmMetrics snapshot() const;

  // Launches that failed one after the other up to now (0 after any success).
  int launch_failures_in_a_row() const;
  // The bus whose published and dropped events are reported. Set before the daemon serves.
  void set_event_bus(const core::ECMEventListenerBus* bus) { bus_ = bus; }
  std::uint64_t plugin_failures() const;

 private:
  // Under the engine table's lock: must stay quick and must not call back into the table.
  void on_status(core::EngineStatus from, const core::EngineConn& record);

  EngineConnListService& engines_;
  const core::ResourceLedger& resources_;
  const PluginCallStats* plugin_stats_;
  const core::ECMEventListenerBus* bus_ = nullptr;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();

  mutable std::mutex mu_;  // the counters below
  std::uint64_t launches_started_ = 0;
  std::uint64_t launches_succeeded_ = 0;
  std::uint64_t launches_failed_ = 0;
  std::uint64_t launches_timed_out_ = 0;
  int failures_in_a_row_ = 0;
  std::map<std::string, std::uint64_t> stops_by_reason_;
  core::LatencyHistogram latency_;
};

}  // namespace ecm::host
