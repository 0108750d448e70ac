#include "ctl_output.hpp"

#include <array>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <optional>
#include <utility>

#include "ctl_status.hpp"

namespace ecm::ctl {
namespace {

namespace api = ::ecm::thrift;
namespace json = boost::json;

template <typename T>
std::optional<T> field(bool isset, const T& value) {
  return isset ? std::optional<T>(value) : std::nullopt;
}

json::value to_json(const std::optional<std::string>& v) {
  return v ? json::value(*v) : json::value(nullptr);
}

json::value to_json(const std::optional<std::int32_t>& v) {
  return v ? json::value(*v) : json::value(nullptr);
}

json::value to_json(const std::optional<std::int64_t>& v) {
  return v ? json::value(*v) : json::value(nullptr);
}

json::value time_to_json(bool isset, std::int64_t ms) {
  return isset ? json::value(format_time_ms(ms)) : json::value(nullptr);
}

json::value map_to_json(bool isset, const std::map<std::string, std::string>& m) {
  if (!isset) return nullptr;
  json::object o;
  for (const auto& [k, v] : m)
    o[k] = v;
  return o;
}

std::string or_dash(bool isset, const std::string& s) {
  return isset && !s.empty() ? s : "-";
}

std::string time_or_dash(bool isset, std::int64_t ms) {
  return isset ? format_time_ms(ms) : "-";
}

std::string signal_text(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? std::to_string(sig) + " (SIG" + abbrev + ")" : std::to_string(sig);
}

// How the process ended, for the table's EXIT column: "0", "SIGKILL", or "-".
std::string exit_column(const api::EngineConn& e) {
  if (e.__isset.exit_code) return std::to_string(e.exit_code);
  if (e.__isset.exit_signal) {
    const char* abbrev = sigabbrev_np(e.exit_signal);
    return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(e.exit_signal);
  }
  return "-";
}

template <std::size_t N>
void print_table(std::ostream& out, const std::vector<std::array<std::string, N>>& rows) {
  std::array<std::size_t, N> width{};
  for (const auto& r : rows) {
    for (std::size_t c = 0; c < N; ++c)
      width[c] = std::max(width[c], r[c].size());
  }
  for (const auto& r : rows) {
    for (std::size_t c = 0; c < N; ++c) {
      out << r[c];
      if (c + 1 < N) out << std::string(width[c] - r[c].size() + 2, ' ');
    }
    out << '\n';
  }
}

}  // namespace

std::string format_time_ms(std::int64_t ms) {
  std::int64_t secs = ms / 1000;
  std::int64_t frac = ms % 1000;
  if (frac < 0) {
    frac += 1000;
    secs -= 1;
  }
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) return std::to_string(ms) + "ms";
  std::array<char, 64> buf{};
  std::snprintf(buf.data(), buf.size(), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(frac));
  return buf.data();
}

json::object engine_to_json(const api::EngineConn& e) {
  const auto& s = e.__isset;
  json::object o;
  o["id"] = to_json(field(s.id, e.id));
  o["ticket_id"] = to_json(field(s.ticket_id, e.ticket_id));
  o["user"] = to_json(field(s.user, e.user));
  o["engine_type"] = to_json(field(s.engine_type, e.engine_type));
  o["engine_version"] = to_json(field(s.engine_version, e.engine_version));
  o["status"] = s.status ? json::value(status_name(e.status)) : json::value(nullptr);
  o["pid"] = to_json(field(s.pid, e.pid));
  o["work_dir"] = to_json(field(s.work_dir, e.work_dir));
  o["log_dir"] = to_json(field(s.log_dir, e.log_dir));
  o["created_at"] = time_to_json(s.created_at_ms, e.created_at_ms);
  o["started_at"] = time_to_json(s.started_at_ms, e.started_at_ms);
  o["ended_at"] = time_to_json(s.ended_at_ms, e.ended_at_ms);
  o["exit_code"] = to_json(field(s.exit_code, e.exit_code));
  o["exit_signal"] = to_json(field(s.exit_signal, e.exit_signal));
  o["failure_reason"] = to_json(field(s.failure_reason, e.failure_reason));
  o["stop_reason"] = to_json(field(s.stop_reason, e.stop_reason));
  o["plugin_name"] = to_json(field(s.plugin_name, e.plugin_name));
  o["plugin_version"] = to_json(field(s.plugin_version, e.plugin_version));
  o["memory_bytes"] = to_json(field(s.memory_bytes, e.memory_bytes));
  o["cores"] = to_json(field(s.cores, e.cores));
  o["labels"] = map_to_json(s.labels, e.labels);
  o["properties"] = map_to_json(s.properties, e.properties);
  o["service_address"] = to_json(field(s.service_address, e.service_address));
  o["last_message"] = to_json(field(s.last_message, e.last_message));
  o["reported_pid"] = to_json(field(s.reported_pid, e.reported_pid));
  o["last_heartbeat"] = time_to_json(s.last_heartbeat_ms, e.last_heartbeat_ms);
  json::object ports;
  for (const auto& [name, port] : e.ports)
    ports[name] = port;
  o["ports"] = std::move(ports);
  o["run_as_uid"] = to_json(field(s.run_as_uid, e.run_as_uid));
  o["unhealthy_reason"] = to_json(field(s.unhealthy_reason, e.unhealthy_reason));
  return o;
}

json::array engines_to_json(const std::vector<api::EngineConn>& engines) {
  json::array a;
  a.reserve(engines.size());
  for (const auto& e : engines)
    a.emplace_back(engine_to_json(e));
  return a;
}

void print_engine(std::ostream& out, const api::EngineConn& e) {
  const auto& s = e.__isset;
  std::vector<std::pair<std::string, std::string>> rows = {
      {"id", or_dash(s.id, e.id)},
      {"ticket_id", or_dash(s.ticket_id, e.ticket_id)},
      {"user", or_dash(s.user, e.user)},
      {"engine_type", or_dash(s.engine_type, e.engine_type)},
      {"engine_version", or_dash(s.engine_version, e.engine_version)},
      {"status", s.status ? status_name(e.status) : "-"},
      {"pid", s.pid ? std::to_string(e.pid) : "-"},
      {"work_dir", or_dash(s.work_dir, e.work_dir)},
      {"log_dir", or_dash(s.log_dir, e.log_dir)},
      {"created_at", time_or_dash(s.created_at_ms, e.created_at_ms)},
      {"started_at", time_or_dash(s.started_at_ms, e.started_at_ms)},
      {"ended_at", time_or_dash(s.ended_at_ms, e.ended_at_ms)},
      {"exit_code", s.exit_code ? std::to_string(e.exit_code) : "-"},
      {"exit_signal", s.exit_signal ? signal_text(e.exit_signal) : "-"},
      {"failure_reason", or_dash(s.failure_reason, e.failure_reason)},
      {"stop_reason", or_dash(s.stop_reason, e.stop_reason)},
      {"plugin_name", or_dash(s.plugin_name, e.plugin_name)},
      {"plugin_version", or_dash(s.plugin_version, e.plugin_version)},
      {"memory", s.memory_bytes ? format_mib(e.memory_bytes) : "-"},
      {"cores", s.cores ? std::to_string(e.cores) : "-"},
      {"service_address", or_dash(s.service_address, e.service_address)},
      {"last_message", or_dash(s.last_message, e.last_message)},
      {"reported_pid", s.reported_pid ? std::to_string(e.reported_pid) : "-"},
      {"last_heartbeat", time_or_dash(s.last_heartbeat_ms, e.last_heartbeat_ms)},
      {"run_as_uid", s.run_as_uid ? std::to_string(e.run_as_uid) : "-"},
      {"unhealthy", or_dash(s.unhealthy_reason, e.unhealthy_reason)},
  };
  std::string ports;
  for (const auto& [name, port] : e.ports)
    ports += (ports.empty() ? "" : " ") + name + "=" + std::to_string(port);
  rows.emplace_back("ports", ports.empty() ? "-" : ports);
  constexpr std::size_t kWidth = 16;  // longest key, "failure_reason:", plus a space
  auto line = [&](const std::string& key, const std::string& value) {
    std::string label = key + ":";
    label.resize(std::max(label.size() + 1, kWidth), ' ');
    out << label << value << '\n';
  };
  for (const auto& [k, v] : rows)
    line(k, v);
  auto map_lines = [&](const std::string& key, bool isset,
                       const std::map<std::string, std::string>& m) {
    if (!isset || m.empty()) return line(key, "-");
    out << key << ":\n";
    for (const auto& [k, v] : m)
      out << "  " << k << '=' << v << '\n';
  };
  map_lines("labels", s.labels, e.labels);
  map_lines("properties", s.properties, e.properties);
}

void print_engine_table(std::ostream& out, const std::vector<api::EngineConn>& engines) {
  using Row = std::array<std::string, 7>;
  std::vector<Row> rows;
  rows.push_back({"ID", "USER", "TYPE", "STATUS", "PID", "EXIT", "CREATED"});
  for (const auto& e : engines) {
    const auto& s = e.__isset;
    rows.push_back({or_dash(s.id, e.id), or_dash(s.user, e.user),
                    or_dash(s.engine_type, e.engine_type), s.status ? status_name(e.status) : "-",
                    s.pid ? std::to_string(e.pid) : "-", exit_column(e),
                    time_or_dash(s.created_at_ms, e.created_at_ms)});
  }
  print_table(out, rows);
}

std::string format_mib(std::int64_t bytes) {
  constexpr std::int64_t kMiB = 1024 * 1024;
  if (bytes % kMiB == 0) return std::to_string(bytes / kMiB) + "MiB";
  std::array<char, 64> buf{};
  std::snprintf(buf.data(), buf.size(), "%.1fMiB", static_cast<double>(bytes) / kMiB);
  return buf.data();
}

json::object resource_amount_to_json(const api::ResourceAmount& a) {
  const auto& s = a.__isset;
  json::object o;
  o["memory_bytes"] = to_json(field(s.memory_bytes, a.memory_bytes));
  o["cores"] = to_json(field(s.cores, a.cores));
  o["instances"] = to_json(field(s.instances, a.instances));
  return o;
}

json::object disk_usage_to_json(const api::DiskUsage& d) {
  const auto& s = d.__isset;
  auto number = [](bool isset, double v) { return isset ? json::value(v) : json::value(nullptr); };
  json::object o;
  o["path"] = to_json(field(s.path, d.path));
  o["total_bytes"] = to_json(field(s.total_bytes, d.total_bytes));
  o["free_bytes"] = to_json(field(s.free_bytes, d.free_bytes));
  o["used_percent"] = number(s.used_percent, d.used_percent);
  o["high_watermark_percent"] = number(s.high_watermark_percent, d.high_watermark_percent);
  o["low_watermark_percent"] = number(s.low_watermark_percent, d.low_watermark_percent);
  o["over_watermark"] = s.over_watermark ? json::value(d.over_watermark) : json::value(nullptr);
  o["removed_by_retention"] = to_json(field(s.removed_by_retention, d.removed_by_retention));
  o["removed_by_watermark"] = to_json(field(s.removed_by_watermark, d.removed_by_watermark));
  o["last_pass"] = time_to_json(s.last_pass_ms, d.last_pass_ms);
  return o;
}

json::object resources_to_json(const api::NodeResources& r) {
  const auto& s = r.__isset;
  auto amount = [](bool isset, const api::ResourceAmount& a) {
    return isset ? json::value(resource_amount_to_json(a)) : json::value(nullptr);
  };
  json::object o;
  o["max"] = amount(s.max, r.max);
  o["protected"] = amount(s.protected_, r.protected_);
  o["locked"] = amount(s.locked, r.locked);
  o["used"] = amount(s.used, r.used);
  o["left"] = amount(s.left, r.left);
  o["disk"] = s.disk ? json::value(disk_usage_to_json(r.disk)) : json::value(nullptr);
  return o;
}

void print_resources_table(std::ostream& out, const api::NodeResources& r) {
  using Row = std::array<std::string, 4>;
  std::vector<Row> rows;
  rows.push_back({"", "MEMORY", "CORES", "INSTANCES"});
  auto row = [&](const std::string& name, bool isset, const api::ResourceAmount& a) {
    if (!isset) return rows.push_back({name, "-", "-", "-"});
    const auto& s = a.__isset;
    rows.push_back({name, s.memory_bytes ? format_mib(a.memory_bytes) : "-",
                    s.cores ? std::to_string(a.cores) : "-",
                    s.instances ? std::to_string(a.instances) : "-"});
  };
  row("max", r.__isset.max, r.max);
  row("protected", r.__isset.protected_, r.protected_);
  row("locked", r.__isset.locked, r.locked);
  row("used", r.__isset.used, r.used);
  row("left", r.__isset.left, r.left);
  print_table(out, rows);
  if (!r.__isset.disk) return;
  // disk: /var/lib/ecm/work 18.2% used (80.1GiB free of 251.0GiB), watermarks 80%/90%;
  // removed 3 by retention, 0 by watermark
  const auto& d = r.disk;
  auto gib = [](std::int64_t bytes) {
    std::array<char, 32> buf{};
    std::snprintf(buf.data(), buf.size(), "%.1fGiB", static_cast<double>(bytes) / (1 << 30));
    return std::string(buf.data());
  };
  auto percent = [](double v) {
    std::array<char, 32> buf{};
    std::snprintf(buf.data(), buf.size(), "%.4g%%", v);
    return std::string(buf.data());
  };
  out << "disk: " << (d.__isset.path ? d.path : "-");
  if (d.__isset.used_percent) {
    out << " " << percent(d.used_percent) << " used (" << gib(d.free_bytes) << " free of "
        << gib(d.total_bytes) << ")";
  } else {
    out << " usage unknown";
  }
  out << ", watermarks " << percent(d.low_watermark_percent) << "/"
      << percent(d.high_watermark_percent);
  if (d.__isset.over_watermark && d.over_watermark) out << " OVER THE HIGH WATERMARK";
  out << "; removed " << d.removed_by_retention << " by retention, " << d.removed_by_watermark
      << " by watermark\n";
}

void print_json(std::ostream& out, const json::value& value) {
  out << json::serialize(value) << '\n';
}

}  // namespace ecm::ctl
