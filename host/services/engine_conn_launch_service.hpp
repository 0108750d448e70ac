// EngineConnLaunchService: the path of a launch, from a validated request to a running process.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <string>

#include "ecm/core/engine_conn.hpp"
#include "ecm/core/linux_process_launch.hpp"
#include "ecm/core/resources.hpp"
#include "ecm/sdk/launcher.hpp"
#include "plugins/plugin_registry.hpp"
#include "services/engine_conn_list_service.hpp"
#include "services/engine_readiness.hpp"

namespace ecm::host {

struct LaunchSettings {
  std::filesystem::path work_root;
  std::chrono::milliseconds default_stop_grace{std::chrono::seconds(10)};
  core::Resource engine_default{0, 0, 1};  // for a request naming no amount
  std::chrono::milliseconds launch_timeout{std::chrono::seconds(60)};
  // ecmctl installed beside ecm, given to engines as ECM_CTL so a script can `$ECM_CTL callback`.
  std::filesystem::path ctl_path;
};

struct LaunchOptions {
  core::Resource asked;                         // memory and cores (0: the default)
  std::chrono::milliseconds launch_timeout{0};  // 0: the plugin's, else the configured one
};

class EngineConnLaunchService {
 public:
  EngineConnLaunchService(LaunchSettings settings, PluginRegistry& registry,
                          EngineConnListService& engines, core::ResourceLedger& resources,
                          core::LinuxProcessEngineConnLaunch& processes,
                          boost::asio::io_context& io);

  // Launches an engine, or returns the one already made for this ticket. Throws EcmException:
  // before anything is created for invalid input, unknown type, a plugin refusal or shutdown;
  // after the record exists (plugin build failure, spawn failure) the record is left Failed with
  // the reason, and the error is thrown too.
  // `asked`: memory and cores the request names (0: the default); always one instance.
  // Admission locks the amount; it becomes used when the engine is available and is released
  // exactly once when it ends (or its launch fails). Refusal: kInsufficientResources.
  // The engine stays Starting until the plugin's readiness rule holds (then Running, resources
  // used), or is stopped and Failed when the launch timeout passes first.
  core::EngineConn launch(const sdk::LaunchRequest& request, const LaunchOptions& options = {});

  // Starting (or an available state) -> `status` (an available state); the first time, the
  // engine's resources become used. False when the transition is not legal.
  bool mark_ready(const std::string& engine_id, core::EngineStatus status);

  // ECM_CALLBACK_ADDRESS given to engines launched from now on.
  void set_callback_address(const std::string& address);

  // From now on every launch is refused with kShuttingDown.
  void refuse_new_launches() { shutting_down_ = true; }

 private:
  core::EngineConn make_record(const sdk::LaunchRequest& request,
                               const LauncherGeneration& launcher) const;
  core::ProcessSpec prepare(const core::EngineConn& record, const sdk::LaunchRequest& request,
                            const LauncherGeneration& launcher, EngineRuntime& runtime) const;
  void on_exit(const std::string& engine_id, const core::ExitStatus& exit);
  void on_not_ready(const std::string& engine_id);
  std::string callback_address() const;

  LaunchSettings settings_;
  PluginRegistry& registry_;
  EngineConnListService& engines_;
  core::ResourceLedger& resources_;
  core::LinuxProcessEngineConnLaunch& processes_;
  std::atomic<bool> shutting_down_{false};
  mutable std::mutex callback_mu_;
  std::string callback_address_;
  EngineReadinessWatcher readiness_;  // last: its handlers use the members above
};

}  // namespace ecm::host
