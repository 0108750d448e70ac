#include "config/config_reload.hpp"

#include <functional>
#include <tuple>

namespace ecm::host {
namespace {

// One key of conf/ecm.toml: the EcmConfig fields it sets, and whether a running daemon applies a
// new value (EcmDaemon::reload) or only a restart does.
struct KeyRule {
  const char* key;
  bool live;
  std::function<bool(const EcmConfig&, const EcmConfig&)> differs;
  std::function<void(EcmConfig&, const EcmConfig&)> copy;
};

// `fields(config)` returns std::tie(...) of the key's fields: compared, and assigned through.
template <class Fields>
KeyRule rule(const char* key, bool live, Fields fields) {
  return {key, live,
          [fields](const EcmConfig& a, const EcmConfig& b) { return fields(a) != fields(b); },
          [fields](EcmConfig& to, const EcmConfig& from) { fields(to) = fields(from); }};
}

constexpr bool kLive = true;
constexpr bool kRestart = false;

// Live means the change truly takes effect in the running daemon, through a thread-safe setter:
//  log.level                    every logger, at once
//  engines.stop_grace           engines launched from now on (a running one keeps its own)
//  engines.launch_timeout       the same
//  resources.engine_memory/_cores  launches admitted from now on
//  engines.stop_on_shutdown     read when the ECM stops
//  engines.retention, cleanup.* the clean-up's next pass (interval: from the next scheduling)
//  health.*                     the health's next sample (interval: from the next scheduling)
// Everything else is wired into servers, threads, files or services when the daemon starts.
const std::vector<KeyRule>& rules() {
  static const std::vector<KeyRule> table = {
      rule("server.listen", kRestart,
           [](auto& c) { return std::tie(c.listen_host, c.listen_port); }),
      rule("server.callback_listen", kRestart,
           [](auto& c) { return std::tie(c.callback_host, c.callback_port); }),
      rule("server.io_threads", kRestart, [](auto& c) { return std::tie(c.io_threads); }),
      // One rule: tls_client_ca is only valid with the other two.
      rule("server.tls_cert/tls_key/tls_client_ca", kRestart,
           [](auto& c) { return std::tie(c.tls_cert, c.tls_key, c.tls_client_ca); }),
      rule("server.max_message_size", kRestart,
           [](auto& c) { return std::tie(c.max_message_bytes); }),
      rule("paths.work_root", kRestart, [](auto& c) { return std::tie(c.work_root); }),
      rule("paths.state_dir", kRestart, [](auto& c) { return std::tie(c.state_dir); }),
      rule("plugins.dir", kRestart, [](auto& c) { return std::tie(c.plugin_dir); }),
      rule("plugins.conf_dir", kRestart, [](auto& c) { return std::tie(c.plugin_conf_dir); }),
      rule("plugins.enabled", kRestart, [](auto& c) { return std::tie(c.enabled_plugins); }),
      rule("plugins.watch", kRestart, [](auto& c) { return std::tie(c.watch_plugins); }),
      rule("plugins.watch_debounce", kRestart, [](auto& c) { return std::tie(c.watch_debounce); }),
      rule("plugins.call_timeout", kRestart,
           [](auto& c) { return std::tie(c.plugin_call_timeout); }),
      rule("engines.stop_grace", kLive, [](auto& c) { return std::tie(c.stop_grace); }),
      rule("engines.stop_on_shutdown", kLive, [](auto& c) { return std::tie(c.stop_on_shutdown); }),
      rule("engines.launch_timeout", kLive, [](auto& c) { return std::tie(c.launch_timeout); }),
      rule("engines.retention", kLive, [](auto& c) { return std::tie(c.retention); }),
      rule("engines.boot_id_file", kRestart, [](auto& c) { return std::tie(c.boot_id_file); }),
      rule("resources.memory", kRestart, [](auto& c) { return std::tie(c.capacity.memory_bytes); }),
      rule("resources.cores", kRestart, [](auto& c) { return std::tie(c.capacity.cores); }),
      rule("resources.instances", kRestart, [](auto& c) { return std::tie(c.capacity.instances); }),
      rule("resources.protected_memory", kRestart,
           [](auto& c) { return std::tie(c.protected_.memory_bytes); }),
      rule("resources.protected_cores", kRestart,
           [](auto& c) { return std::tie(c.protected_.cores); }),
      rule("resources.engine_memory", kLive,
           [](auto& c) { return std::tie(c.engine_default.memory_bytes); }),
      rule("resources.engine_cores", kLive,
           [](auto& c) { return std::tie(c.engine_default.cores); }),
      rule("cleanup.interval", kLive, [](auto& c) { return std::tie(c.cleanup_interval); }),
      rule("cleanup.disk_high_watermark", kLive,
           [](auto& c) { return std::tie(c.disk_high_watermark); }),
      rule("cleanup.disk_low_watermark", kLive,
           [](auto& c) { return std::tie(c.disk_low_watermark); }),
      rule("logs.rotate_size", kRestart, [](auto& c) { return std::tie(c.log_rotate_size); }),
      rule("logs.rotate_keep", kRestart, [](auto& c) { return std::tie(c.log_rotate_keep); }),
      rule("logs.rotate_check_interval", kRestart,
           [](auto& c) { return std::tie(c.log_rotate_check_interval); }),
      rule("logs.max_read_lines", kRestart, [](auto& c) { return std::tie(c.log_max_read_lines); }),
      rule("health.sample_interval", kLive,
           [](auto& c) { return std::tie(c.health_sample_interval); }),
      rule("health.cpu_overload_percent", kLive,
           [](auto& c) { return std::tie(c.cpu_overload_percent); }),
      rule("health.memory_min_available_percent", kLive,
           [](auto& c) { return std::tie(c.memory_min_available_percent); }),
      rule("health.launch_failures_unhealthy", kLive,
           [](auto& c) { return std::tie(c.launch_failures_unhealthy); }),
      rule("health.proc_meminfo", kLive, [](auto& c) { return std::tie(c.proc_meminfo); }),
      rule("health.proc_stat", kLive, [](auto& c) { return std::tie(c.proc_stat); }),
      rule("health.proc_loadavg", kLive, [](auto& c) { return std::tie(c.proc_loadavg); }),
      rule("metrics.listen", kRestart,
           [](auto& c) { return std::tie(c.metrics_host, c.metrics_port, c.metrics_enabled); }),
      rule("users.run_as", kRestart, [](auto& c) { return std::tie(c.run_as); }),
      rule("users.allow", kRestart, [](auto& c) { return std::tie(c.user_policy.allow); }),
      rule("users.deny", kRestart, [](auto& c) { return std::tie(c.user_policy.deny); }),
      rule("users.allow_root", kRestart,
           [](auto& c) { return std::tie(c.user_policy.allow_root); }),
      rule("users.min_uid", kRestart, [](auto& c) { return std::tie(c.user_policy.min_uid); }),
      rule("ports.host", kRestart, [](auto& c) { return std::tie(c.port_host); }),
      rule("ports.range", kRestart,
           [](auto& c) { return std::tie(c.port_range.first, c.port_range.last); }),
      rule("log.level", kLive, [](auto& c) { return std::tie(c.log_level); }),
      rule("rm.address", kRestart, [](auto& c) { return std::tie(c.rm_host, c.rm_port); }),
      rule("rm.report_interval", kRestart, [](auto& c) { return std::tie(c.report_interval); }),
      rule("rm.labels", kRestart, [](auto& c) { return std::tie(c.rm_labels); }),
      rule("rm.ecm_id", kRestart, [](auto& c) { return std::tie(c.ecm_id); }),
      rule("rm.advertise_address", kRestart, [](auto& c) { return std::tie(c.advertise_address); }),
      rule("cache.dir", kRestart, [](auto& c) { return std::tie(c.cache_dir); }),
      rule("cache.max_size", kRestart, [](auto& c) { return std::tie(c.cache_max_bytes); }),
      rule("localization.allow_unverified", kRestart,
           [](auto& c) { return std::tie(c.allow_unverified); }),
      rule("localization.max_unpacked_size", kRestart,
           [](auto& c) { return std::tie(c.max_unpacked_bytes); }),
      rule("localization.max_archive_entries", kRestart,
           [](auto& c) { return std::tie(c.max_archive_entries); }),
      rule("events.queue_capacity", kRestart,
           [](auto& c) { return std::tie(c.event_queue_capacity); }),
  };
  return table;
}

std::vector<std::string> keys_where(bool live) {
  std::vector<std::string> keys;
  for (const auto& r : rules()) {
    if (r.live == live) keys.emplace_back(r.key);
  }
  return keys;
}

}  // namespace

ConfigChanges classify_config_changes(const EcmConfig& current, const EcmConfig& next) {
  ConfigChanges changes;
  // `rest`: `next` with every named key put back as in `current`; what still differs then is a
  // field no rule names.
  EcmConfig rest = next;
  for (const auto& r : rules()) {
    if (r.differs(current, next)) (r.live ? changes.live : changes.restart).emplace_back(r.key);
    r.copy(rest, current);
  }
  rest.source = current.source;  // where it was read from: not a key
  if (!(rest == current)) changes.restart.emplace_back(kUnnamedConfigKeys);
  return changes;
}

void adopt_live_keys(EcmConfig& current, const EcmConfig& next) {
  for (const auto& r : rules()) {
    if (r.live) r.copy(current, next);
  }
}

std::vector<std::string> live_config_keys() {
  return keys_where(kLive);
}

std::vector<std::string> restart_config_keys() {
  return keys_where(kRestart);
}

std::string join_keys(const std::vector<std::string>& keys) {
  if (keys.empty()) return "-";
  std::string out;
  for (const auto& k : keys) {
    if (!out.empty()) out += ", ";
    out += k;
  }
  return out;
}

}  // namespace ecm::host
