#include "thrift/thrift_convert.hpp"

namespace ecm::host {
namespace {

std::int64_t to_ms(core::Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

ecm::thrift::ErrorCode::type to_thrift(core::ErrorCode c) {
  using T = ecm::thrift::ErrorCode;
  switch (c) {
    case core::ErrorCode::kInvalidRequest:
      return T::INVALID_REQUEST;
    case core::ErrorCode::kNotFound:
      return T::NOT_FOUND;
    case core::ErrorCode::kUnknownEngineType:
      return T::UNKNOWN_ENGINE_TYPE;
    case core::ErrorCode::kInsufficientResources:
      return T::INSUFFICIENT_RESOURCES;
    case core::ErrorCode::kPluginFailed:
      return T::PLUGIN_FAILED;
    case core::ErrorCode::kShuttingDown:
      return T::SHUTTING_DOWN;
    case core::ErrorCode::kInternal:
      return T::INTERNAL;
    case core::ErrorCode::kLaunchFailed:
      return T::LAUNCH_FAILED;
    case core::ErrorCode::kPermissionDenied:
      return T::PERMISSION_DENIED;
    case core::ErrorCode::kNodeUnavailable:
      return T::NODE_UNAVAILABLE;
    case core::ErrorCode::kPluginBusy:
      return T::PLUGIN_BUSY;
    case core::ErrorCode::kLocalizationFailed:
      return T::LOCALIZATION_FAILED;
    case core::ErrorCode::kUnauthenticated:
      return T::UNAUTHENTICATED;
  }
  return T::INTERNAL;
}

}  // namespace

sdk::LaunchRequest to_core(const ecm::thrift::LaunchRequest& r) {
  sdk::LaunchRequest out;
  out.ticket_id = r.ticket_id;
  out.user = r.user;
  out.engine_type = r.engine_type;
  out.engine_version = r.engine_version;
  out.labels = r.labels;
  out.properties = r.properties;
  out.env = r.env;
  return out;
}

namespace {

using TS = ecm::thrift::EngineStatus;
constexpr std::pair<core::EngineStatus, TS::type> kStatuses[] = {
    {core::EngineStatus::kStarting, TS::STARTING},
    {core::EngineStatus::kRunning, TS::RUNNING},
    {core::EngineStatus::kShuttingDown, TS::SHUTTING_DOWN},
    {core::EngineStatus::kSuccess, TS::SUCCESS},
    {core::EngineStatus::kFailed, TS::FAILED},
    {core::EngineStatus::kUnlock, TS::UNLOCK},
    {core::EngineStatus::kLocked, TS::LOCKED},
    {core::EngineStatus::kIdle, TS::IDLE},
    {core::EngineStatus::kBusy, TS::BUSY},
};

ecm::thrift::ResourceAmount to_thrift(const core::Resource& r) {
  ecm::thrift::ResourceAmount t;
  t.__set_memory_bytes(static_cast<std::int64_t>(r.memory_bytes));
  t.__set_cores(static_cast<std::int32_t>(r.cores));
  t.__set_instances(static_cast<std::int32_t>(r.instances));
  return t;
}

}  // namespace

ecm::thrift::EngineStatus::type to_thrift(core::EngineStatus s) {
  for (auto [c, t] : kStatuses) {
    if (c == s) return t;
  }
  return TS::FAILED;
}

std::optional<core::EngineStatus> to_core(ecm::thrift::EngineStatus::type s) {
  for (auto [c, t] : kStatuses) {
    if (t == s) return c;
  }
  return std::nullopt;
}

EngineConnFilter to_core(const ecm::thrift::EngineConnFilter& f) {
  EngineConnFilter out;
  if (f.__isset.user) out.user = f.user;
  if (f.__isset.engine_type) out.engine_type = f.engine_type;
  if (f.__isset.status) {
    out.status = to_core(f.status);
    if (!out.status) {
      throw core::EcmException(core::ErrorCode::kInvalidRequest,
                               "unknown status " + std::to_string(static_cast<int>(f.status)));
    }
  }
  return out;
}

core::Resource requested_resources(const ecm::thrift::LaunchRequest& r) {
  if (r.memory_bytes < 0 || r.cores < 0) {
    throw core::EcmException(core::ErrorCode::kInvalidRequest,
                             "memory_bytes and cores may not be negative");
  }
  return {static_cast<std::uint64_t>(r.memory_bytes), static_cast<std::uint64_t>(r.cores), 1};
}

std::vector<sdk::ResourceSpec> requested_resource_specs(const ecm::thrift::LaunchRequest& r) {
  std::vector<sdk::ResourceSpec> out;
  for (const auto& t : r.resources) {
    sdk::ResourceSpec s;
    s.uri = t.uri;
    s.sha256 = t.sha256;
    s.name = t.name;
    s.unpack = t.unpack;
    if (t.visibility == "public") {
      s.visibility = sdk::ResourceSpec::Visibility::kPublic;
    } else if (t.visibility.empty() || t.visibility == "private") {
      s.visibility = sdk::ResourceSpec::Visibility::kPrivate;
    } else {
      throw core::EcmException(
          core::ErrorCode::kInvalidRequest,
          "resource visibility '" + t.visibility.substr(0, 32) + "' is neither private nor public");
    }
    out.push_back(std::move(s));
  }
  return out;
}

ecm::thrift::NodeResources to_thrift(const core::ResourceSnapshot& s) {
  ecm::thrift::NodeResources t;
  t.__set_max(to_thrift(s.max));
  t.__set_protected_(to_thrift(s.protected_));
  t.__set_locked(to_thrift(s.locked));
  t.__set_used(to_thrift(s.used));
  t.__set_left(to_thrift(s.left));
  return t;
}

ecm::thrift::DiskUsage to_thrift(const CleanupStatus& s) {
  ecm::thrift::DiskUsage t;
  t.__set_path(s.path.string());
  if (s.disk) {
    t.__set_total_bytes(static_cast<std::int64_t>(s.disk->total_bytes));
    t.__set_free_bytes(static_cast<std::int64_t>(s.disk->free_bytes));
    t.__set_used_percent(s.disk->used_percent());
    t.__set_over_watermark(s.over_watermark);
  }
  t.__set_high_watermark_percent(s.high_watermark_percent);
  t.__set_low_watermark_percent(s.low_watermark_percent);
  t.__set_removed_by_retention(static_cast<std::int64_t>(s.removed_by_retention));
  t.__set_removed_by_watermark(static_cast<std::int64_t>(s.removed_by_watermark));
  if (s.last_pass) t.__set_last_pass_ms(to_ms(*s.last_pass));
  return t;
}

ecm::thrift::EngineConn to_thrift(const core::EngineConn& e) {
  ecm::thrift::EngineConn t;
  t.__set_id(e.id);
  if (!e.ticket_id.empty()) t.__set_ticket_id(e.ticket_id);
  t.__set_user(e.user);
  t.__set_engine_type(e.engine_type);
  if (!e.engine_version.empty()) t.__set_engine_version(e.engine_version);
  t.__set_labels(e.labels);
  t.__set_properties(e.properties);
  t.__set_status(to_thrift(e.status));
  if (e.pid > 0) t.__set_pid(e.pid);
  t.__set_work_dir(e.work_dir);
  t.__set_log_dir(e.log_dir);
  t.__set_created_at_ms(to_ms(e.created_at));
  if (e.started_at) t.__set_started_at_ms(to_ms(*e.started_at));
  if (e.ended_at) t.__set_ended_at_ms(to_ms(*e.ended_at));
  if (e.exit_code) t.__set_exit_code(*e.exit_code);
  if (e.exit_signal) t.__set_exit_signal(*e.exit_signal);
  if (!e.failure_reason.empty()) t.__set_failure_reason(e.failure_reason);
  if (!e.stop_reason.empty()) t.__set_stop_reason(e.stop_reason);
  t.__set_plugin_name(e.plugin_name);
  t.__set_plugin_version(e.plugin_version);
  t.__set_memory_bytes(static_cast<std::int64_t>(e.resources.memory_bytes));
  t.__set_cores(static_cast<std::int32_t>(e.resources.cores));
  if (!e.service_address.empty()) t.__set_service_address(e.service_address);
  if (!e.last_message.empty()) t.__set_last_message(e.last_message);
  if (e.reported_pid > 0) t.__set_reported_pid(e.reported_pid);
  if (e.last_heartbeat) t.__set_last_heartbeat_ms(to_ms(*e.last_heartbeat));
  if (!e.ports.empty()) t.__set_ports(e.ports);
  if (e.run_as_uid) t.__set_run_as_uid(static_cast<std::int32_t>(*e.run_as_uid));
  if (!e.unhealthy_reason.empty()) t.__set_unhealthy_reason(e.unhealthy_reason);
  return t;
}

ecm::thrift::EcmError to_thrift(const core::EcmException& e) {
  ecm::thrift::EcmError err;
  err.__set_code(to_thrift(e.code()));
  err.__set_message(e.what());
  return err;
}

core::LogQuery to_core(const ecm::thrift::LogRequest& r) {
  core::LogQuery q;
  q.stream = r.stream.empty() ? "stdout" : r.stream;
  q.from_line = r.from_line;
  q.page_size = r.page_size;
  q.tail = r.tail;
  q.include = r.include_words;
  q.exclude = r.exclude_words;
  q.record_pattern = r.record_pattern;
  return q;
}

ecm::thrift::LogPage to_thrift(const core::LogPage& p) {
  ecm::thrift::LogPage out;
  out.__set_lines(p.lines);
  out.__set_first_line(p.first_line);
  out.__set_next_from_line(p.next_from_line.value_or(0));
  out.__set_truncated(p.truncated);
  out.__set_end_line(p.end_line);
  return out;
}

ecm::thrift::StopResult to_thrift(const StopOutcome& o) {
  ecm::thrift::StopResult r;
  r.__set_engine(to_thrift(o.engine));
  r.__set_already_ended(o.already_ended);
  return r;
}

namespace {

using TH = ecm::thrift::NodeHealth;
constexpr std::pair<core::NodeHealth, TH::type> kHealths[] = {
    {core::NodeHealth::kHealthy, TH::HEALTHY},
    {core::NodeHealth::kWarn, TH::WARN},
    {core::NodeHealth::kUnhealthy, TH::UNHEALTHY},
    {core::NodeHealth::kStockAvailable, TH::STOCK_AVAILABLE},
    {core::NodeHealth::kStockUnavailable, TH::STOCK_UNAVAILABLE},
};

}  // namespace

ecm::thrift::NodeHealth::type to_thrift(core::NodeHealth h) {
  for (auto [c, t] : kHealths) {
    if (c == h) return t;
  }
  return TH::UNHEALTHY;
}

std::optional<core::NodeHealth> to_core(ecm::thrift::NodeHealth::type h) {
  for (auto [c, t] : kHealths) {
    if (t == h) return c;
  }
  return std::nullopt;
}

ecm::thrift::EcmStatus::type to_thrift(core::EcmStatus s) {
  using T = ecm::thrift::EcmStatus;
  switch (s) {
    case core::EcmStatus::kStarting:
      return T::STARTING;
    case core::EcmStatus::kRunning:
      return T::RUNNING;
    case core::EcmStatus::kShuttingDown:
      return T::SHUTTING_DOWN;
  }
  return T::STARTING;
}

ecm::thrift::HealthReport to_thrift(const core::HealthReport& r) {
  ecm::thrift::HealthReport t;
  t.__set_status(to_thrift(r.status));
  t.__set_health(to_thrift(r.health));
  t.__set_assessed_health(to_thrift(r.assessed_health));
  t.__set_reasons(r.reasons);
  t.__set_set_by_rm(r.set_by_rm);
  if (r.memory) {
    t.__set_memory_total_bytes(static_cast<std::int64_t>(r.memory->total_bytes));
    t.__set_memory_available_bytes(static_cast<std::int64_t>(r.memory->available_bytes));
  }
  if (r.cpu_busy_percent) t.__set_cpu_busy_percent(*r.cpu_busy_percent);
  if (r.load) t.__set_load1(r.load->load1);
  if (r.work_disk) {
    ecm::thrift::DiskUsage d;
    d.__set_path(r.work_disk->path);
    d.__set_total_bytes(static_cast<std::int64_t>(r.work_disk->total_bytes));
    d.__set_free_bytes(static_cast<std::int64_t>(r.work_disk->free_bytes));
    d.__set_used_percent(r.work_disk->used_percent);
    d.__set_high_watermark_percent(r.work_disk->high_watermark_percent);
    d.__set_low_watermark_percent(r.work_disk->low_watermark_percent);
    d.__set_over_watermark(r.work_disk->over_watermark);
    t.__set_work_disk(d);
  }
  t.__set_launch_failures_in_a_row(r.launch_failures_in_a_row);
  t.__set_plugin_failures(static_cast<std::int64_t>(r.plugin_failures));
  if (r.reported_at) t.__set_reported_at_ms(to_ms(*r.reported_at));
  return t;
}

ecm::thrift::Metrics to_thrift(const core::EcmMetrics& m) {
  ecm::thrift::Metrics t;
  t.__set_resources(to_thrift(m.resources));
  t.__set_engines_by_status(m.engines_by_status);
  t.__set_engines_by_type(m.engines_by_type);
  t.__set_launches_started(static_cast<std::int64_t>(m.launches_started));
  t.__set_launches_succeeded(static_cast<std::int64_t>(m.launches_succeeded));
  t.__set_launches_failed(static_cast<std::int64_t>(m.launches_failed));
  t.__set_launches_timed_out(static_cast<std::int64_t>(m.launches_timed_out));
  std::map<std::string, std::int64_t> stops;
  for (const auto& [reason, n] : m.stops_by_reason)
    stops[reason] = static_cast<std::int64_t>(n);
  t.__set_stops_by_reason(stops);
  std::vector<ecm::thrift::HistogramBucket> buckets;
  for (const auto& b : m.launch_latency.buckets()) {
    ecm::thrift::HistogramBucket hb;
    hb.__set_le_ms(b.le_ms);
    hb.__set_count(static_cast<std::int64_t>(b.count));
    buckets.push_back(hb);
  }
  t.__set_launch_latency_buckets(buckets);
  t.__set_launch_latency_sum_ms(m.launch_latency.sum_ms());
  t.__set_launch_latency_count(static_cast<std::int64_t>(m.launch_latency.count()));
  t.__set_plugin_calls(static_cast<std::int64_t>(m.plugin_calls));
  t.__set_plugin_failures(static_cast<std::int64_t>(m.plugin_failures));
  t.__set_events_published(static_cast<std::int64_t>(m.events_published));
  t.__set_event_bus_drops(static_cast<std::int64_t>(m.event_bus_drops));
  t.__set_uptime_ms(m.uptime.count());
  return t;
}

ecm::thrift::PluginInfo to_thrift(const PluginView& p) {
  ecm::thrift::PluginInfo t;
  t.__set_name(p.plugin.name);
  t.__set_kinds(p.plugin.kinds);
  if (!p.plugin.engine_type.empty()) t.__set_engine_type(p.plugin.engine_type);
  t.__set_file(p.plugin.source_path);
  t.__set_loaded(p.plugin.loaded);
  std::vector<ecm::thrift::PluginGeneration> generations;
  for (const auto& g : p.generations) {
    ecm::thrift::PluginGeneration tg;
    tg.__set_generation(static_cast<std::int64_t>(g.info.generation));
    tg.__set_version(g.info.version);
    tg.__set_abi(g.info.abi);
    tg.__set_sha256(g.info.sha256);
    tg.__set_loaded_at_ms(to_ms(g.info.loaded_at));
    tg.__set_serving(g.info.serving);
    tg.__set_engines(static_cast<std::int32_t>(g.engines));
    generations.push_back(std::move(tg));
  }
  t.__set_generations(std::move(generations));
  return t;
}

}  // namespace ecm::host
