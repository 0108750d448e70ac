// The daemon's configuration (conf/ecm.toml). Relative paths are resolved against the directory of
// the config file, so the same file works whatever the current directory is.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
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
  // [paths]
  std::filesystem::path work_root;  // <work_root>/<user>/<engine-id>/
  std::filesystem::path state_dir;  // private plugin copies, the address file
  // [plugins]
  std::filesystem::path plugin_dir;       // NAME.so
  std::filesystem::path plugin_conf_dir;  // NAME.toml
  std::vector<std::string> enabled_plugins;
  // [engines]
  std::chrono::milliseconds stop_grace{std::chrono::seconds(10)};
  bool stop_on_shutdown = true;
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
  // [log]
  std::string log_level = "info";

  std::filesystem::path source;  // the file this came from
};

// Throws ConfigError (file, line, key) for a syntax error, unknown key, wrong type or bad value.
EcmConfig load_config(const std::filesystem::path& file);

// The same from text; `base_dir` resolves relative paths, `source_name` names it in errors.
EcmConfig parse_config(std::string_view text, const std::string& source_name,
                       const std::filesystem::path& base_dir);

}  // namespace ecm::host
