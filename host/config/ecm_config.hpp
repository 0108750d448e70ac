// The daemon's configuration (conf/ecm.toml). Relative paths are resolved against the directory of
// the config file, so the same file works whatever the current directory is.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "ecm/core/engine_ports.hpp"
#include "ecm/core/resources.hpp"
#include "ecm/core/user_identity.hpp"

namespace ecm::host {

struct EcmConfig {
  // [server]
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 9101;  // 0: any free port (written to <state_dir>/ecm.address)
  // Where engines call back (EngineConnCallbackService); given to them in ECM_CALLBACK_ADDRESS.
  std::string callback_host = "127.0.0.1";
  std::uint16_t callback_port = 0;
  unsigned io_threads = 2;  // threads running the event loop (exits, timers)
  // TLS on the main port: tls_cert and tls_key (PEM) both or neither; with tls_client_ca, every
  // client must present a certificate that CA signed. Unset: plain TCP.
  std::filesystem::path tls_cert;
  std::filesystem::path tls_key;
  std::filesystem::path tls_client_ca;
  // The shared token of the main port, read from token_file (0600 or stricter, not empty; the
  // trailing line break dropped) when the config is loaded. Empty: none required.
  std::filesystem::path token_file;
  std::string token;
  // The most bytes one Thrift message to the ECM (either port) may take; also its longest string.
  std::uint64_t max_message_bytes = 16ull << 20;
  // [paths]
  std::filesystem::path work_root;  // <work_root>/<user>/<engine-id>/
  std::filesystem::path state_dir;  // private plugin copies, the address file
  // [plugins]
  std::filesystem::path plugin_dir;       // NAME.so
  std::filesystem::path plugin_conf_dir;  // NAME.toml
  std::vector<std::string> enabled_plugins;
  // Reload a loaded plugin when its NAME.so in plugin_dir is replaced, after this much quiet.
  bool watch_plugins = false;
  std::chrono::milliseconds watch_debounce{500};
  // A call into a launcher plugin (validate, build, ...) that takes longer fails the launch.
  std::chrono::milliseconds plugin_call_timeout{std::chrono::seconds(30)};
  // [events]: the queue of each listener; events beyond it are dropped for that listener.
  std::size_t event_queue_capacity = 4096;
  // [cache]: the resource cache (<state_dir>/cache by default) and its bound (0: none).
  std::filesystem::path cache_dir;
  std::uint64_t cache_max_bytes = std::uint64_t{10} << 30;
  // [localization]
  bool allow_unverified = false;                              // remote resources without a sha256
  std::uint64_t max_unpacked_bytes = std::uint64_t{4} << 30;  // an archive's expanded size
  std::uint64_t max_archive_entries = 100000;
  // [engines]
  std::chrono::milliseconds stop_grace{std::chrono::seconds(10)};
  // A clean shutdown stops the engines (true) or leaves them running for the next start to
  // re-adopt (false). A crash always leaves them.
  bool stop_on_shutdown = false;
  // Where the kernel's boot id is read: engines recorded under another boot are never re-adopted.
  std::filesystem::path boot_id_file = "/proc/sys/kernel/random/boot_id";
  std::chrono::milliseconds launch_timeout{std::chrono::seconds(60)};  // not ready by then: Failed
  // How long an ended engine's work dir and record are kept before the clean-up removes them.
  std::chrono::milliseconds retention{std::chrono::hours(24)};
  // [resources] node capacity ("auto": the machine's), the part kept back, and what an engine
  // is admitted with when its request names no amount.
  core::Resource capacity;  // filled from the machine unless configured
  core::Resource protected_;
  core::Resource engine_default{0, 0, 1};  // by default only the instance is counted
  // [users] who engines run as. "auto": as the requested user when the ECM runs as root, else as
  // the ECM's user; "requested": always as the requested user (the ECM must be root); "ecm":
  // always as the ECM's user (the request's user is recorded only).
  std::string run_as = "auto";
  core::UserPolicy user_policy;  // allow, deny, allow_root, min_uid: applied when switching
  // [ports] ports handed to engines: sockets bound on `host`; reserved ports from `range`.
  std::string port_host = "127.0.0.1";
  core::PortRange port_range;  // empty: engines cannot ask for reserved ports
  // [cleanup] a pass every `cleanup_interval`; while the file system of the work root is more
  // than the high watermark full (percent used), ended engines are removed oldest first,
  // regardless of retention, until it is below the low one.
  std::chrono::milliseconds cleanup_interval{std::chrono::seconds(60)};
  double disk_high_watermark = 90;
  double disk_low_watermark = 80;
  // [logs] engines' stdout/stderr: rotated (copy-truncate) past rotate_size, rotate_keep rotated
  // files kept besides the live one, checked every rotate_check_interval; getEngineLog returns
  // at most max_read_lines lines per read.
  std::uint64_t log_rotate_size = 64ull << 20;
  int log_rotate_keep = 5;
  std::chrono::milliseconds log_rotate_check_interval{std::chrono::seconds(5)};
  std::int64_t log_max_read_lines = 5000;
  // [health] a sample every `health_sample_interval`; busy CPU over cpu_overload_percent or
  // MemAvailable under memory_min_available_percent of MemTotal in two samples in a row makes the
  // node StockAvailable (no new engines); launch_failures_unhealthy launches failed in a row make
  // it UnHealthy (0: never). The /proc files are read where these paths say (tests point them at
  // files of their own).
  std::chrono::milliseconds health_sample_interval{std::chrono::seconds(5)};
  double cpu_overload_percent = 95;
  double memory_min_available_percent = 5;
  int launch_failures_unhealthy = 5;
  std::filesystem::path proc_meminfo = "/proc/meminfo";
  std::filesystem::path proc_stat = "/proc/stat";
  std::filesystem::path proc_loadavg = "/proc/loadavg";
  // [metrics] Prometheus /metrics and /healthz over HTTP on HOST:PORT (port 0: any free port,
  // written to <state_dir>/metrics.address). Empty: off.
  std::string metrics_host;
  std::uint16_t metrics_port = 0;
  bool metrics_enabled = false;
  // [log]
  std::string log_level = "info";
  // [rm] the RM this ECM reports to (ECMRegisterService). No address: standalone, nothing runs.
  std::string rm_host;
  std::uint16_t rm_port = 0;
  std::chrono::milliseconds report_interval{std::chrono::seconds(10)};
  std::map<std::string, std::string> rm_labels;  // labels = ["k=v", ...]
  std::string ecm_id;                            // empty: made once and kept in <state_dir>/ecm.id
  std::string advertise_address;  // HOST:PORT; empty: the listen host and the bound port

  std::filesystem::path source;  // the file this came from

  // Every field compared: a reload (config/config_reload.cpp) names the keys that changed. A new
  // key needs a line in that file's table too, or a change of it is named "(other keys)".
  bool operator==(const EcmConfig&) const = default;
};

// Throws ConfigError (file, line, key) for a syntax error, unknown key, wrong type or bad value.
EcmConfig load_config(const std::filesystem::path& file);

// The same from text; `base_dir` resolves relative paths, `source_name` names it in errors.
EcmConfig parse_config(std::string_view text, const std::string& source_name,
                       const std::filesystem::path& base_dir);

}  // namespace ecm::host
