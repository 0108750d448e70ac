#include "ecm/core/health_assessment.hpp"

#include <array>
#include <utility>

#include <boost/algorithm/string/predicate.hpp>

#include <spdlog/fmt/fmt.h>

namespace ecm::core {
namespace {

constexpr std::array<std::pair<NodeHealth, std::string_view>, 5> kHealthNames{{
    {NodeHealth::kHealthy, "Healthy"},
    {NodeHealth::kWarn, "WARN"},
    {NodeHealth::kUnhealthy, "UnHealthy"},
    {NodeHealth::kStockAvailable, "StockAvailable"},
    {NodeHealth::kStockUnavailable, "StockUnavailable"},
}};

void worsen(HealthAssessment& a, NodeHealth h, std::string reason) {
  if (severity(h) > severity(a.health)) a.health = h;
  a.reasons.push_back(std::move(reason));
}

}  // namespace

std::string_view to_string(EcmStatus s) {
  switch (s) {
    case EcmStatus::kStarting:
      return "Starting";
    case EcmStatus::kRunning:
      return "Running";
    case EcmStatus::kShuttingDown:
      return "ShuttingDown";
  }
  return "Starting";
}

std::string_view to_string(NodeHealth h) {
  for (auto [v, name] : kHealthNames) {
    if (v == h) return name;
  }
  return "UnHealthy";
}

std::optional<NodeHealth> node_health_from_string(std::string_view text) {
  for (auto [v, name] : kHealthNames) {  // case-insensitive, as engine_status_from_string
    if (boost::algorithm::iequals(name, text)) return v;
  }
  return std::nullopt;
}

bool takes_new_engines(NodeHealth h) {
  return h == NodeHealth::kHealthy || h == NodeHealth::kWarn;
}

int severity(NodeHealth h) {
  switch (h) {
    case NodeHealth::kHealthy:
      return 0;
    case NodeHealth::kWarn:
      return 1;
    case NodeHealth::kStockAvailable:
      return 2;
    case NodeHealth::kStockUnavailable:
      return 3;
    case NodeHealth::kUnhealthy:
      return 4;
  }
  return 4;
}

HealthAssessment HealthAssessor::assess(const HealthInputs& in) {
  HealthAssessment a;
  // A reading that is missing keeps its in-a-row count: no evidence either way.
  if (in.cpu_busy_percent) {
    cpu_over_in_a_row_ =
        *in.cpu_busy_percent > t_.cpu_overload_percent ? cpu_over_in_a_row_ + 1 : 0;
  }
  if (in.memory) {
    memory_under_in_a_row_ = in.memory->available_percent() < t_.memory_min_available_percent
                                 ? memory_under_in_a_row_ + 1
                                 : 0;
  }
  if (cpu_over_in_a_row_ > 0) {
    const bool overloaded = cpu_over_in_a_row_ >= t_.overload_samples;
    worsen(a, overloaded ? NodeHealth::kStockAvailable : NodeHealth::kWarn,
           fmt::format("cpu busy {:.1f}% > {:g}% ({} sample(s) in a row{})",
                       in.cpu_busy_percent.value_or(0), t_.cpu_overload_percent, cpu_over_in_a_row_,
                       overloaded ? ": overloaded, no new engines" : ""));
  }
  if (memory_under_in_a_row_ > 0) {
    const bool overloaded = memory_under_in_a_row_ >= t_.overload_samples;
    worsen(a, overloaded ? NodeHealth::kStockAvailable : NodeHealth::kWarn,
           fmt::format("memory available {:.1f}% < {:g}% ({} sample(s) in a row{})",
                       in.memory ? in.memory->available_percent() : 0.0,
                       t_.memory_min_available_percent, memory_under_in_a_row_,
                       overloaded ? ": overloaded, no new engines" : ""));
  }
  if (in.disk && in.disk->over_watermark) {
    worsen(a, NodeHealth::kWarn,
           fmt::format("work disk {} {:.1f}% used > {:g}% high watermark", in.disk->path,
                       in.disk->used_percent, in.disk->high_watermark_percent));
  }
  if (in.disk_unreadable) worsen(a, NodeHealth::kWarn, "work disk cannot be measured");
  if (t_.launch_failures_unhealthy > 0 &&
      in.launch_failures_in_a_row >= t_.launch_failures_unhealthy) {
    worsen(a, NodeHealth::kUnhealthy,
           fmt::format("{} launches failed in a row (limit {})", in.launch_failures_in_a_row,
                       t_.launch_failures_unhealthy));
  }
  if (in.plugin_failures_since_last_sample > 0) {
    worsen(a, NodeHealth::kWarn,
           fmt::format("{} plugin failure(s) since the last sample",
                       in.plugin_failures_since_last_sample));
  }
  for (const auto& e : in.read_errors)
    worsen(a, NodeHealth::kWarn, e);
  if (in.status == EcmStatus::kShuttingDown) {
    worsen(a, NodeHealth::kStockUnavailable, "the ECM is shutting down");
  }
  return a;
}

}  // namespace ecm::core
