// The daemon's configuration (conf/ecm.toml). Relative paths are resolved against the directory of
// the config file, so the same file works whatever the current directory is.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "ecm/core/resources.hpp"

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
  // [resources] node capacity ("auto": the machine's), the part kept back, and what an engine
  // is admitted with when its request names no amount.
  core::Resource capacity;  // filled from the machine unless configured
  core::Resource protected_;
  core::Resource engine_default{0, 0, 1};  // by default only the instance is counted
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
