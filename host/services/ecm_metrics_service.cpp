#include "services/ecm_metrics_service.hpp"

#include "ecm/core/engine_status.hpp"

namespace ecm::host {
namespace {

constexpr core::EngineStatus kAllStatuses[] = {
    core::EngineStatus::kStarting, core::EngineStatus::kRunning, core::EngineStatus::kShuttingDown,
    core::EngineStatus::kSuccess,  core::EngineStatus::kFailed,  core::EngineStatus::kUnlock,
    core::EngineStatus::kLocked,   core::EngineStatus::kIdle,    core::EngineStatus::kBusy,
};

// The stop reason the launch service gives an engine that was not ready in time.
constexpr std::string_view kLaunchTimeout = "launch timeout";

}  // namespace

ECMMetricsService::ECMMetricsService(EngineConnListService& engines,
                                     const core::ResourceLedger& resources,
                                     const PluginCallStats* plugin_stats)
    : engines_(engines), resources_(resources), plugin_stats_(plugin_stats) {
  engines_.add_status_observer(
      [this](core::EngineStatus from, const core::EngineConn& record) { on_status(from, record); });
}

void ECMMetricsService::on_status(core::EngineStatus from, const core::EngineConn& record) {
  using S = core::EngineStatus;
  const S to = record.status;
  std::lock_guard lock(mu_);
  if (from == S::kStarting && to == S::kStarting) {  // a new engine
    ++launches_started_;
    return;
  }
  // Each engine leaves Starting once: that move says how its launch went. One the previous run
  // left Starting and this run found gone counts for neither (its launch was not this run's).
  if (from == S::kStarting && record.stop_reason != core::kStopReasonEcmRestart) {
    if (core::is_available(to)) {
      ++launches_succeeded_;
      failures_in_a_row_ = 0;
    } else if (!record.failure_reason.empty()) {
      ++launches_failed_;
      ++failures_in_a_row_;
      if (record.stop_reason == kLaunchTimeout) ++launches_timed_out_;
    }
    // Starting -> ShuttingDown without a failure: stopped by request before it was ready.
  }
  // A stop is counted when the engine starts stopping, or when it ends without having been
  // stopped (it exited on its own): once per engine either way.
  const bool stopping = to == S::kShuttingDown && from != S::kShuttingDown;
  const bool ended_unasked = core::is_ended(to) && from != S::kShuttingDown;
  if ((stopping || ended_unasked) && !record.stop_reason.empty()) {
    ++stops_by_reason_[record.stop_reason];
  }
}

void ECMMetricsService::observe_launch_latency(std::chrono::microseconds latency) {
  std::lock_guard lock(mu_);
  latency_.observe(latency);
}

int ECMMetricsService::launch_failures_in_a_row() const {
  std::lock_guard lock(mu_);
  return failures_in_a_row_;
}

std::uint64_t ECMMetricsService::plugin_failures() const {
  return plugin_stats_ ? plugin_stats_->failures.load(std::memory_order_relaxed) : 0;
}

core::EcmMetrics ECMMetricsService::snapshot() const {
  core::EcmMetrics m;
  // Read before taking mu_: an observer holds the table's lock while it waits for mu_.
  const auto engines = engines_.list({});
  for (auto s : kAllStatuses)
    m.engines_by_status[std::string(core::to_string(s))] = 0;
  for (const auto& e : engines) {
    ++m.engines_by_status[std::string(core::to_string(e.status))];
    ++m.engines_by_type[e.engine_type];
  }
  m.resources = resources_.snapshot();
  if (plugin_stats_) {
    m.plugin_calls = plugin_stats_->calls.load(std::memory_order_relaxed);
    m.plugin_failures = plugin_stats_->failures.load(std::memory_order_relaxed);
  }
  if (bus_) {
    m.events_published = bus_->published_total();
    m.event_bus_drops = bus_->dropped_total();
  }
  m.uptime = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started_);
  std::lock_guard lock(mu_);
  m.launches_started = launches_started_;
  m.launches_succeeded = launches_succeeded_;
  m.launches_failed = launches_failed_;
  m.launches_timed_out = launches_timed_out_;
  m.launch_failures_in_a_row = failures_in_a_row_;
  m.stops_by_reason = stops_by_reason_;
  m.launch_latency = latency_;
  return m;
}

}  // namespace ecm::host
