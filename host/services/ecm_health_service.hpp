// ECMHealthService: the ECM's status (Starting, Running, ShuttingDown) and its node's health.
// Samples on a timer on the daemon's io_context (reading three small /proc files is cheap): memory
// and CPU from the files the config names, the work disk as the clean-up service last measured it
// (not measured twice), launch and plugin failures from the metrics service. A health the RM sets
// is kept over the ECM's own judgement until the RM clears it.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "ecm/core/health_assessment.hpp"
#include "ecm/core/node_readings.hpp"
#include "services/ecm_metrics_service.hpp"
#include "services/engine_conn_cleanup_service.hpp"

namespace ecm::host {

struct HealthSettings {
  std::chrono::milliseconds sample_interval{std::chrono::seconds(5)};
  core::HealthThresholds thresholds;
  std::filesystem::path proc_meminfo = "/proc/meminfo";
  std::filesystem::path proc_stat = "/proc/stat";
  std::filesystem::path proc_loadavg = "/proc/loadavg";
};

class ECMHealthService {
 public:
  // `cleanup` may be null (no disk in the report). References must outlive this service; stop()
  // it before the io_context stops.
  ECMHealthService(HealthSettings settings, const ECMMetricsService& metrics,
                   const EngineConnCleanupService* cleanup, boost::asio::io_context& io);
  ~ECMHealthService();
  ECMHealthService(const ECMHealthService&) = delete;
  ECMHealthService& operator=(const ECMHealthService&) = delete;

  // Samples now, then every sample_interval. stop() cancels the timer; idempotent.
  void start();
  void stop();

  void set_status(core::EcmStatus status);

  // Called whenever the node's effective health (the RM's while set, else the ECM's own) changes,
  // with the first reason. Set before start(); must be quick (it runs under the service's lock).
  using HealthObserver =
      std::function<void(core::NodeHealth from, core::NodeHealth to, const std::string& reason)>;
  void set_health_observer(HealthObserver observer) { observer_ = std::move(observer); }

  // The current report: the last sample's readings, the RM's health while it is set.
  core::HealthReport report() const;

  // The RM's word: kept over every sample until clear_rm_health(). Returns the new report.
  core::HealthReport set_rm_health(core::NodeHealth health, const std::string& reason);
  core::HealthReport clear_rm_health();

  // True when the current health takes new engines (Healthy, WARN).
  bool accepts_launches() const;
  // nullopt when a launch may go ahead; else why not ("node health StockAvailable: memory ...").
  std::optional<std::string> launch_refusal() const;

  // One sample now, on the calling thread (the timer's samples go through here too).
  core::HealthReport sample();

  // New settings (a config reload): the thresholds and files from the next sample on, the
  // interval from the next scheduling on. Thread-safe.
  void update_settings(const HealthSettings& settings);

 private:
  void schedule();
  core::HealthReport effective_locked() const;
  // Tells the observer when the effective health differs from the last one it was told.
  void notify_locked();

  HealthSettings settings_;
  const ECMMetricsService& metrics_;
  const EngineConnCleanupService* cleanup_;
  boost::asio::steady_timer timer_;

  std::mutex sample_mu_;  // one sample at a time; the fields below it
  core::HealthAssessor assessor_;
  std::optional<core::CpuTimes> last_cpu_;
  std::chrono::steady_clock::time_point last_cpu_at_;
  std::optional<double> last_cpu_busy_;
  std::uint64_t plugin_failures_seen_ = 0;

  mutable std::mutex mu_;  // everything below
  bool stopped_ = false;
  core::EcmStatus status_ = core::EcmStatus::kStarting;
  core::HealthReport last_;  // the ECM's own judgement, at the last sample
  std::optional<std::pair<core::NodeHealth, std::string>> rm_health_;
  HealthObserver observer_;
  std::optional<core::NodeHealth> told_;  // the effective health the observer last heard
};

}  // namespace ecm::host
