// health, metrics: the ECM's health report (getHealthReport) and its metrics (getMetrics).
#include <cmath>
#include <iomanip>
#include <sstream>

#include <spdlog/fmt/fmt.h>

#include "ctl_commands.hpp"
#include "ctl_output.hpp"
#include "ecm/core/health_assessment.hpp"
#include "thrift/thrift_convert.hpp"

namespace ecm::ctl {
namespace {

namespace api = ::ecm::thrift;
namespace json = boost::json;

// "Healthy", "WARN", ... as the ECM and Linkis name them.
std::string health_name(api::NodeHealth::type h) {
  auto core_health = host::to_core(h);
  return core_health ? std::string(core::to_string(*core_health)) : std::to_string(h);
}

std::string status_name(api::EcmStatus::type s) {
  switch (s) {
    case api::EcmStatus::STARTING:
      return "Starting";
    case api::EcmStatus::RUNNING:
      return "Running";
    case api::EcmStatus::SHUTTING_DOWN:
      return "ShuttingDown";
  }
  return std::to_string(s);
}

json::value opt(bool isset, double v) {
  return isset ? json::value(v) : json::value(nullptr);
}
json::value opt(bool isset, std::int64_t v) {
  return isset ? json::value(v) : json::value(nullptr);
}

json::object health_to_json(const api::HealthReport& r) {
  const auto& s = r.__isset;
  json::object o;
  o["status"] = s.status ? json::value(status_name(r.status)) : json::value(nullptr);
  o["health"] = s.health ? json::value(health_name(r.health)) : json::value(nullptr);
  o["assessed_health"] =
      s.assessed_health ? json::value(health_name(r.assessed_health)) : json::value(nullptr);
  json::array reasons;
  for (const auto& reason : r.reasons)
    reasons.emplace_back(reason);
  o["reasons"] = std::move(reasons);
  o["set_by_rm"] = s.set_by_rm && r.set_by_rm;
  o["memory_total_bytes"] = opt(s.memory_total_bytes, r.memory_total_bytes);
  o["memory_available_bytes"] = opt(s.memory_available_bytes, r.memory_available_bytes);
  o["cpu_busy_percent"] = opt(s.cpu_busy_percent, r.cpu_busy_percent);
  o["load1"] = opt(s.load1, r.load1);
  o["work_disk"] =
      s.work_disk ? json::value(disk_usage_to_json(r.work_disk)) : json::value(nullptr);
  o["launch_failures_in_a_row"] =
      opt(s.launch_failures_in_a_row, static_cast<std::int64_t>(r.launch_failures_in_a_row));
  o["plugin_failures"] = opt(s.plugin_failures, r.plugin_failures);
  o["reported_at"] =
      s.reported_at_ms ? json::value(format_time_ms(r.reported_at_ms)) : json::value(nullptr);
  return o;
}

void print_health(std::ostream& out, const api::HealthReport& r) {
  const auto& s = r.__isset;
  out << "status: " << (s.status ? status_name(r.status) : "-") << "\n";
  out << "health: " << (s.health ? health_name(r.health) : "-")
      << (s.set_by_rm && r.set_by_rm ? " (set by the RM)" : "") << "\n";
  if (s.set_by_rm && r.set_by_rm && s.assessed_health) {
    out << "assessed health: " << health_name(r.assessed_health) << "\n";
  }
  out << "reasons:" << (r.reasons.empty() ? " -" : "") << "\n";
  for (const auto& reason : r.reasons)
    out << "  " << reason << "\n";
  if (s.memory_total_bytes && s.memory_available_bytes && r.memory_total_bytes > 0) {
    out << fmt::format("memory: {} available of {} ({:.1f}%)\n",
                       format_mib(r.memory_available_bytes), format_mib(r.memory_total_bytes),
                       100.0 * static_cast<double>(r.memory_available_bytes) /
                           static_cast<double>(r.memory_total_bytes));
  } else {
    out << "memory: -\n";
  }
  out << "cpu busy: " << (s.cpu_busy_percent ? fmt::format("{:.1f}%", r.cpu_busy_percent) : "-")
      << "\n";
  out << "load1: " << (s.load1 ? fmt::format("{:.2f}", r.load1) : "-") << "\n";
  if (s.work_disk && r.work_disk.__isset.used_percent) {
    out << fmt::format("work disk: {} {:.1f}% used (high watermark {:g}%){}\n", r.work_disk.path,
                       r.work_disk.used_percent, r.work_disk.high_watermark_percent,
                       r.work_disk.over_watermark ? ", over the watermark" : "");
  } else {
    out << "work disk: -\n";
  }
  out << "launch failures in a row: " << r.launch_failures_in_a_row << "\n";
  out << "plugin failures: " << r.plugin_failures << "\n";
  out << "reported at: " << (s.reported_at_ms ? format_time_ms(r.reported_at_ms) : "-") << "\n";
}

template <class T>
json::object map_to_json(const std::map<std::string, T>& m) {
  json::object o;
  for (const auto& [k, v] : m)
    o[k] = static_cast<std::int64_t>(v);
  return o;
}

json::object metrics_to_json(const api::Metrics& m) {
  json::object o;
  o["resources"] =
      m.__isset.resources ? json::value(resources_to_json(m.resources)) : json::value(nullptr);
  o["engines_by_status"] = map_to_json(m.engines_by_status);
  o["engines_by_type"] = map_to_json(m.engines_by_type);
  o["launches"] = json::object{{"started", m.launches_started},
                               {"succeeded", m.launches_succeeded},
                               {"failed", m.launches_failed},
                               {"timed_out", m.launches_timed_out}};
  o["stops_by_reason"] = map_to_json(m.stops_by_reason);
  json::array buckets;
  for (const auto& b : m.launch_latency_buckets) {
    // JSON has no infinity: the last (+Inf) bucket's bound is null.
    buckets.emplace_back(
        json::object{{"le_ms", std::isinf(b.le_ms) ? json::value(nullptr) : json::value(b.le_ms)},
                     {"count", b.count}});
  }
  o["launch_latency"] = json::object{{"buckets", std::move(buckets)},
                                     {"sum_ms", m.launch_latency_sum_ms},
                                     {"count", m.launch_latency_count}};
  o["plugin_calls"] = m.plugin_calls;
  o["plugin_failures"] = m.plugin_failures;
  o["events_published"] = m.events_published;
  o["event_bus_drops"] = m.event_bus_drops;
  o["uptime_ms"] = m.uptime_ms;
  return o;
}

void print_metrics(std::ostream& out, const api::Metrics& m) {
  out << "uptime: " << m.uptime_ms / 1000 << "s\n";
  out << "engines by status:";
  for (const auto& [status, n] : m.engines_by_status) {
    if (n > 0) out << " " << status << "=" << n;
  }
  out << "\nengines by type:";
  for (const auto& [type, n] : m.engines_by_type)
    out << " " << type << "=" << n;
  out << "\n";
  out << fmt::format("launches: {} started, {} succeeded, {} failed ({} timed out)\n",
                     m.launches_started, m.launches_succeeded, m.launches_failed,
                     m.launches_timed_out);
  out << "stops:" << (m.stops_by_reason.empty() ? " -" : "");
  for (const auto& [reason, n] : m.stops_by_reason)
    out << " " << reason << "=" << n;
  out << "\n";
  out << fmt::format("launch latency: {} launch(es), mean {}\n", m.launch_latency_count,
                     m.launch_latency_count > 0
                         ? fmt::format("{:.1f}ms", m.launch_latency_sum_ms /
                                                       static_cast<double>(m.launch_latency_count))
                         : std::string("-"));
  out << fmt::format("plugin calls: {} ({} failed)\n", m.plugin_calls, m.plugin_failures);
  out << fmt::format("events: {} published, {} dropped by full listener queues\n",
                     m.events_published, m.event_bus_drops);
  if (m.__isset.resources) print_resources_table(out, m.resources);
}

}  // namespace

void run_health(Context& ctx) {
  api::HealthReport report;
  ctx.service().getHealthReport(report);
  if (ctx.global.json) {
    print_json(ctx.out, health_to_json(report));
  } else {
    print_health(ctx.out, report);
  }
}

void run_metrics(Context& ctx) {
  api::Metrics metrics;
  ctx.service().getMetrics(metrics);
  if (ctx.global.json) {
    print_json(ctx.out, metrics_to_json(metrics));
  } else {
    print_metrics(ctx.out, metrics);
  }
}

}  // namespace ecm::ctl
