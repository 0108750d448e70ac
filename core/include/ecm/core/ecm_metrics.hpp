// ECMMetrics: what the ECM counts about itself (since it started) and its gauges as of now.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ecm/core/resources.hpp"

namespace ecm::core {

// Cumulative buckets as Prometheus counts them: bucket i holds the observations <= bounds[i];
// the last (+Inf) holds them all.
class LatencyHistogram {
 public:
  // Upper bounds in milliseconds, before the implicit +Inf bucket.
  static constexpr std::array<double, 12> kBoundsMs{5,   10,   25,   50,   100,   250,
                                                    500, 1000, 2500, 5000, 10000, 30000};
  struct Bucket {
    double le_ms;  // +infinity for the last
    std::uint64_t count;
  };

  void observe(std::chrono::microseconds latency);
  std::vector<Bucket> buckets() const;  // cumulative, kBoundsMs.size() + 1 of them
  double sum_ms() const { return sum_ms_; }
  std::uint64_t count() const { return count_; }

 private:
  std::array<std::uint64_t, kBoundsMs.size() + 1> per_bucket_{};  // not cumulative
  double sum_ms_ = 0;
  std::uint64_t count_ = 0;
};

struct EcmMetrics {
  ResourceSnapshot resources;
  std::map<std::string, std::int32_t> engines_by_status;  // every status, 0 included
  std::map<std::string, std::int32_t> engines_by_type;
  std::uint64_t launches_started = 0;
  std::uint64_t launches_succeeded = 0;
  std::uint64_t launches_failed = 0;     // failed before becoming available, timeouts included
  std::uint64_t launches_timed_out = 0;  // of launches_failed, the ones not ready in time
  std::map<std::string, std::uint64_t> stops_by_reason;
  LatencyHistogram launch_latency;  // from the launch call to the process being spawned
  std::uint64_t plugin_calls = 0;
  std::uint64_t plugin_failures = 0;
  std::uint64_t events_published = 0;
  std::uint64_t event_bus_drops = 0;  // events a full listener queue lost, all listeners together
  int launch_failures_in_a_row = 0;
  std::chrono::milliseconds uptime{0};
};

}  // namespace ecm::core
