#include "http/prometheus_text.hpp"

#include <cmath>
#include <initializer_list>
#include <utility>

#include <spdlog/fmt/fmt.h>

#include "ecm/core/resources.hpp"

namespace ecm::host {
namespace {

class Writer {
 public:
  void family(const char* name, const char* type, const char* help) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  void sample(const std::string& name, double value,
              std::initializer_list<std::pair<const char*, std::string>> labels = {}) {
    out_ += name;
    if (labels.size() > 0) {
      out_ += '{';
      bool first = true;
      for (const auto& [k, v] : labels) {
        out_ += fmt::format("{}{}=\"{}\"", first ? "" : ",", k, escape_label_value(v));
        first = false;
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += number(value);
    out_ += '\n';
  }
  std::string take() { return std::move(out_); }

  static std::string number(double v) {
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    if (std::isnan(v)) return "NaN";
    return fmt::format("{}", v);
  }

 private:
  std::string out_;
};

template <class T>
double d(T v) {
  return static_cast<double>(v);
}

}  // namespace

std::string escape_label_value(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string prometheus_text(const core::EcmMetrics& m, const core::HealthReport& h) {
  Writer w;
  w.family("ecm_up", "gauge", "1 while the ECM answers.");
  w.sample("ecm_up", 1);
  w.family("ecm_uptime_seconds", "gauge", "Seconds since the ECM started.");
  w.sample("ecm_uptime_seconds", d(m.uptime.count()) / 1000.0);

  w.family("ecm_status", "gauge", "The ECM's own state: 1 for the current one.");
  for (auto s :
       {core::EcmStatus::kStarting, core::EcmStatus::kRunning, core::EcmStatus::kShuttingDown}) {
    w.sample("ecm_status", h.status == s ? 1 : 0, {{"status", std::string(core::to_string(s))}});
  }
  w.family("ecm_health", "gauge",
           "The node's health (the RM's while it has set one): 1 for the current one.");
  for (auto v : {core::NodeHealth::kHealthy, core::NodeHealth::kWarn, core::NodeHealth::kUnhealthy,
                 core::NodeHealth::kStockAvailable, core::NodeHealth::kStockUnavailable}) {
    w.sample("ecm_health", h.health == v ? 1 : 0, {{"health", std::string(core::to_string(v))}});
  }
  w.family("ecm_health_set_by_rm", "gauge", "1 while the health is the one the RM set.");
  w.sample("ecm_health_set_by_rm", h.set_by_rm ? 1 : 0);
  if (h.memory) {
    w.family("ecm_node_memory_total_bytes", "gauge", "MemTotal of the node.");
    w.sample("ecm_node_memory_total_bytes", d(h.memory->total_bytes));
    w.family("ecm_node_memory_available_bytes", "gauge", "MemAvailable of the node.");
    w.sample("ecm_node_memory_available_bytes", d(h.memory->available_bytes));
  }
  if (h.cpu_busy_percent) {
    w.family("ecm_node_cpu_busy_percent", "gauge",
             "Busy share of all CPUs between the last two health samples.");
    w.sample("ecm_node_cpu_busy_percent", *h.cpu_busy_percent);
  }
  if (h.load) {
    w.family("ecm_node_load1", "gauge", "1-minute load average of the node.");
    w.sample("ecm_node_load1", h.load->load1);
  }
  if (h.work_disk) {
    w.family("ecm_work_disk_used_percent", "gauge",
             "How full the file system of the work root is, as the clean-up last measured it.");
    w.sample("ecm_work_disk_used_percent", h.work_disk->used_percent);
  }

  const std::pair<const char*, const core::Resource*> kinds[] = {
      {"max", &m.resources.max},       {"protected", &m.resources.protected_},
      {"locked", &m.resources.locked}, {"used", &m.resources.used},
      {"left", &m.resources.left},
  };
  w.family("ecm_resources_memory_bytes", "gauge", "Node memory by kind (max, protected, ...).");
  for (auto [kind, r] : kinds)
    w.sample("ecm_resources_memory_bytes", d(r->memory_bytes), {{"kind", kind}});
  w.family("ecm_resources_cores", "gauge", "Node cores by kind.");
  for (auto [kind, r] : kinds)
    w.sample("ecm_resources_cores", d(r->cores), {{"kind", kind}});
  w.family("ecm_resources_instances", "gauge", "Engine instances by kind.");
  for (auto [kind, r] : kinds)
    w.sample("ecm_resources_instances", d(r->instances), {{"kind", kind}});

  w.family("ecm_engines", "gauge", "Engines in the table by status.");
  for (const auto& [status, n] : m.engines_by_status)
    w.sample("ecm_engines", n, {{"status", status}});
  w.family("ecm_engines_by_type", "gauge", "Engines in the table by engine type.");
  for (const auto& [type, n] : m.engines_by_type)
    w.sample("ecm_engines_by_type", n, {{"type", type}});

  w.family("ecm_launches_started_total", "counter", "Launches that created an engine.");
  w.sample("ecm_launches_started_total", d(m.launches_started));
  w.family("ecm_launches_succeeded_total", "counter", "Launched engines that became available.");
  w.sample("ecm_launches_succeeded_total", d(m.launches_succeeded));
  w.family("ecm_launches_failed_total", "counter",
           "Launched engines that failed before becoming available (timeouts included).");
  w.sample("ecm_launches_failed_total", d(m.launches_failed));
  w.family("ecm_launches_timed_out_total", "counter",
           "Launched engines not ready before their launch timeout.");
  w.sample("ecm_launches_timed_out_total", d(m.launches_timed_out));
  w.family("ecm_launch_failures_in_a_row", "gauge", "Launches failed one after the other.");
  w.sample("ecm_launch_failures_in_a_row", m.launch_failures_in_a_row);
  w.family("ecm_engine_stops_total", "counter", "Engines stopped or ended, by stop reason.");
  for (const auto& [reason, n] : m.stops_by_reason)
    w.sample("ecm_engine_stops_total", d(n), {{"reason", reason}});

  w.family("ecm_launch_latency_seconds", "histogram",
           "From the launch call to the engine's process being spawned.");
  for (const auto& b : m.launch_latency.buckets()) {
    w.sample("ecm_launch_latency_seconds_bucket", d(b.count),
             {{"le", Writer::number(std::isinf(b.le_ms) ? b.le_ms : b.le_ms / 1000.0)}});
  }
  w.sample("ecm_launch_latency_seconds_sum", m.launch_latency.sum_ms() / 1000.0);
  w.sample("ecm_launch_latency_seconds_count", d(m.launch_latency.count()));

  w.family("ecm_plugin_calls_total", "counter", "Request calls into launcher plugins.");
  w.sample("ecm_plugin_calls_total", d(m.plugin_calls));
  w.family("ecm_plugin_failures_total", "counter",
           "Launcher plugin calls that failed (threw, malformed answer, the plugin's own error).");
  w.sample("ecm_plugin_failures_total", d(m.plugin_failures));
  w.family("ecm_events_published_total", "counter", "ECM events published on the listener bus.");
  w.sample("ecm_events_published_total", d(m.events_published));
  w.family("ecm_event_bus_drops_total", "counter",
           "Events a listener lost because its queue was full.");
  w.sample("ecm_event_bus_drops_total", d(m.event_bus_drops));
  return w.take();
}

}  // namespace ecm::host
