// EngineConnLaunchService: the path of a launch, from a validated request to a running process.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "ecm/core/engine_conn.hpp"
#include "ecm/core/engine_ports.hpp"
#include "ecm/core/linux_process_launch.hpp"
#include "ecm/core/resources.hpp"
#include "ecm/core/user_identity.hpp"
#include "ecm/sdk/event.hpp"
#include "ecm/sdk/launcher.hpp"
#include "plugins/plugin_registry.hpp"
#include "services/engine_conn_list_service.hpp"
#include "services/engine_heartbeat_monitor.hpp"
#include "services/engine_readiness.hpp"
#include "services/resource_localization_service.hpp"

namespace ecm::host {

struct LaunchSettings {
  std::filesystem::path work_root;
  std::chrono::milliseconds default_stop_grace{std::chrono::seconds(10)};
  core::Resource engine_default{0, 0, 1};  // for a request naming no amount
  std::chrono::milliseconds launch_timeout{std::chrono::seconds(60)};
  // ecmctl installed beside ecm, given to engines as ECM_CTL so a script can `$ECM_CTL callback`.
  std::filesystem::path ctl_path;
  // Set when the ECM runs as root and switches users: engines run as the requested user, checked
  // against this policy. Unset: engines run as the ECM's own user; the request's user is recorded.
  std::optional<core::UserPolicy> run_as_user;
  std::string port_host = "127.0.0.1";  // where engine ports (sockets, reserved) are bound
  std::string boot_id;  // the kernel's, kept in each record: a restarted ECM compares it
};

struct LaunchOptions {
  core::Resource asked;                         // memory and cores (0: the default)
  std::chrono::milliseconds launch_timeout{0};  // 0: the plugin's, else the configured one
  std::vector<sdk::ResourceSpec> resources;     // the request's; the plugin's are added
};

class EngineConnLaunchService {
 public:
  EngineConnLaunchService(LaunchSettings settings, PluginRegistry& registry,
                          EngineConnListService& engines, core::ResourceLedger& resources,
                          core::LinuxProcessEngineConnLaunch& processes,
                          core::PortReservations& ports, boost::asio::io_context& io);

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
  // engine's resources become used. `mutate` is applied to the record in the same write. False
  // (nothing applied) when the transition is not legal.
  bool mark_ready(const std::string& engine_id, core::EngineStatus status,
                  const std::function<void(core::EngineConn&)>& mutate = {});

  // Takes back a live engine of an earlier run of the ECM (EngineConnRecoveryService): its
  // resources, ports and cache entries (`holdings`) held again, its process watched (recognised
  // by pid and start time), its readiness, heartbeat or stop resumed. The record must be in the
  // table already. False, with nothing held, when its process is not there any more.
  bool adopt(const core::EngineConn& record, ResourceLocalizationService::Holdings holdings);

  // ECM_CALLBACK_ADDRESS given to engines launched from now on.
  void set_callback_address(const std::string& address);

  // A config reload: the node's defaults for engines launched from now on (those launched keep
  // theirs): the stop grace when the plugin's spec names none, the launch timeout when neither
  // the request, the plugin's [ecm] table nor its readiness rule names one, and what a request
  // naming no memory or cores is admitted with. Thread-safe.
  void set_launch_defaults(std::chrono::milliseconds stop_grace,
                           std::chrono::milliseconds launch_timeout,
                           const core::Resource& engine_default);

  // From now on every launch is refused with kShuttingDown.
  void refuse_new_launches() { shutting_down_ = true; }

  // Asked before each launch is admitted (a retried ticket excepted): a message refuses it with
  // kNodeUnavailable (the node's health). Set before the daemon serves.
  void set_admission_check(std::function<std::optional<std::string>()> check) {
    admission_check_ = std::move(check);
  }
  // Told, for each spawned engine, how long it took from the launch call to the spawn.
  void set_latency_observer(std::function<void(std::chrono::microseconds)> observer) {
    latency_observer_ = std::move(observer);
  }
  // Told of each engine's process spawned and ended (kEngineLaunched, kEngineExited events).
  // Must not block: it runs on the launch's thread and on the event loop.
  void set_event_sink(std::function<void(sdk::Event)> sink) { event_sink_ = std::move(sink); }
  // Where resources are localized; without it a launch naming resources is refused.
  void set_localization(ResourceLocalizationService* localization) { localization_ = localization; }

 private:
  // What a launch holds until the process is spawned (sockets) or the engine ends (the rest).
  struct Preparation;
  core::EngineConn make_record(const sdk::LaunchRequest& request,
                               const LauncherGeneration& launcher) const;
  void assign_ports(const std::string& engine_id, const std::vector<sdk::PortRequest>& wanted,
                    Preparation& prep);
  core::ProcessSpec prepare(const core::EngineConn& record, const sdk::LaunchRequest& request,
                            const LauncherGeneration& launcher, Preparation& prep) const;
  void on_exit(const std::string& engine_id, const core::ExitStatus& exit);
  void localize(const core::EngineConn& record, Preparation& prep) const;
  void on_not_ready(const std::string& engine_id);
  void on_heartbeat_lost(const std::string& engine_id, std::chrono::milliseconds silent);
  // Frees what an engine held (resources, reserved ports); each part once, whoever calls first.
  void release(const std::string& engine_id);
  std::string callback_address() const;

  LaunchSettings settings_;
  PluginRegistry& registry_;
  EngineConnListService& engines_;
  core::ResourceLedger& resources_;
  core::LinuxProcessEngineConnLaunch& processes_;
  core::PortReservations& ports_;
  std::atomic<bool> shutting_down_{false};
  std::function<std::optional<std::string>()> admission_check_;
  std::function<void(std::chrono::microseconds)> latency_observer_;
  std::function<void(sdk::Event)> event_sink_;
  ResourceLocalizationService* localization_ = nullptr;
  std::mutex holdings_mu_;
  // The cache entries each live engine's resource links point into, until it ends.
  std::map<std::string, ResourceLocalizationService::Holdings> holdings_;
  mutable std::mutex callback_mu_;
  std::string callback_address_;
  // settings_'s default_stop_grace, launch_timeout and engine_default, which a reload changes.
  mutable std::mutex defaults_mu_;
  template <class T>
  T locked_default(const T& field) const {
    std::lock_guard lock(defaults_mu_);
    return field;
  }
  EngineReadinessWatcher readiness_;  // its handlers use the members above
  EngineHeartbeatMonitor heartbeats_;
};

}  // namespace ecm::host
