// The ECM's judgement of its node (ECMHealthReport / NodeHealthReport): from the node's readings,
// the work disk, and failure counters to a health and the reasons for it. Pure: the health
// service samples, this decides.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ecm/core/engine_conn.hpp"
#include "ecm/core/node_readings.hpp"

namespace ecm::core {

// The ECM's own state.
enum class EcmStatus { kStarting, kRunning, kShuttingDown };

// As Linkis names it (NodeHealthy). Healthy and Warn take new engines; StockAvailable serves its
// engines but takes no new ones (overload); StockUnavailable takes none and its engines should be
// moved (the ECM is going away); UnHealthy takes none.
enum class NodeHealth { kHealthy, kWarn, kUnhealthy, kStockAvailable, kStockUnavailable };

std::string_view to_string(EcmStatus s);
std::string_view to_string(NodeHealth h);  // "Healthy", "WARN", "UnHealthy", ...
std::optional<NodeHealth> node_health_from_string(std::string_view text);  // any case
// Healthy and Warn.
bool takes_new_engines(NodeHealth h);
// How bad a health is, to combine causes: Healthy < Warn < StockAvailable < StockUnavailable <
// UnHealthy.
int severity(NodeHealth h);

struct HealthThresholds {
  double cpu_overload_percent = 95;         // busy share of all CPUs over this ...
  double memory_min_available_percent = 5;  // ... or MemAvailable under this share of MemTotal ...
  int overload_samples = 2;                 // ... in this many samples in a row: StockAvailable
  int launch_failures_unhealthy = 5;        // launches failed in a row: UnHealthy
};

// The file system of the work root (engines' work and log dirs), as the clean-up measured it.
struct DiskReading {
  std::string path;
  std::uint64_t total_bytes = 0;
  std::uint64_t free_bytes = 0;
  double used_percent = 0;
  double high_watermark_percent = 0;
  double low_watermark_percent = 0;
  bool over_watermark = false;
};

// One sample. A reading that could not be taken is unset, and why is in read_errors.
struct HealthInputs {
  EcmStatus status = EcmStatus::kRunning;
  std::optional<MemoryReading> memory;
  std::optional<double> cpu_busy_percent;
  std::optional<LoadAverage> load;
  std::optional<DiskReading> disk;
  // True when the disk could not be measured (statvfs failed).
  bool disk_unreadable = false;
  int launch_failures_in_a_row = 0;
  std::uint64_t plugin_failures_since_last_sample = 0;
  std::vector<std::string> read_errors;
};

struct HealthAssessment {
  NodeHealth health = NodeHealth::kHealthy;
  std::vector<std::string> reasons;  // empty when Healthy
};

// Keeps the in-a-row counts between samples: the overload rule needs two (overload_samples)
// readings in a row over a threshold, so one spike only warns.
class HealthAssessor {
 public:
  explicit HealthAssessor(HealthThresholds thresholds = {}) : t_(thresholds) {}
  HealthAssessment assess(const HealthInputs& in);
  const HealthThresholds& thresholds() const { return t_; }
  // New thresholds from the next assessment on; the counts of samples in a row are kept.
  void set_thresholds(const HealthThresholds& thresholds) { t_ = thresholds; }

 private:
  HealthThresholds t_;
  int cpu_over_in_a_row_ = 0;
  int memory_under_in_a_row_ = 0;
};

// What getHealthReport answers.
struct HealthReport {
  EcmStatus status = EcmStatus::kStarting;
  NodeHealth health = NodeHealth::kHealthy;           // the RM's while set_by_rm, else assessed
  NodeHealth assessed_health = NodeHealth::kHealthy;  // the ECM's own judgement
  std::vector<std::string> reasons;
  bool set_by_rm = false;
  std::optional<MemoryReading> memory;
  std::optional<double> cpu_busy_percent;
  std::optional<LoadAverage> load;
  std::optional<DiskReading> work_disk;
  int launch_failures_in_a_row = 0;
  std::uint64_t plugin_failures = 0;             // since the ECM started
  std::optional<Clock::time_point> reported_at;  // unset before the first sample
};

}  // namespace ecm::core
