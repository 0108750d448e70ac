// The ECM daemon: wires the config, the plugin registry, the services, the event loop and the
// Thrift server together, and takes them down in the right order.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "config/config_reload.hpp"
#include "config/ecm_config.hpp"
#include "ecm/core/ecm_event_listener_bus.hpp"
#include "ecm/core/linux_process_launch.hpp"
#include "http/metrics_http_server.hpp"
#include "plugins/plugin_dir_watcher.hpp"
#include "plugins/plugin_registry.hpp"
#include "services/ecm_health_service.hpp"
#include "services/ecm_metrics_service.hpp"
#include "services/ecm_plugin_service.hpp"
#include "services/ecm_register_service.hpp"
#include "services/engine_conn_callback_service.hpp"
#include "services/engine_conn_cleanup_service.hpp"
#include "services/engine_conn_kill_service.hpp"
#include "services/engine_conn_launch_service.hpp"
#include "services/engine_conn_list_service.hpp"
#include "services/engine_log_rotation.hpp"
#include "store/engine_state_store.hpp"

namespace apache::thrift {
class TProcessor;
class TProcessorFactory;
namespace server {
class TServer;
}
}  // namespace apache::thrift

namespace ecm::host {

struct ThriftServing;

class EcmDaemon {
 public:
  explicit EcmDaemon(EcmConfig config);
  ~EcmDaemon();
  EcmDaemon(const EcmDaemon&) = delete;
  EcmDaemon& operator=(const EcmDaemon&) = delete;

  // Loads the enabled plugins, starts the event loop and the Thrift server, and writes
  // <state_dir>/ecm.address once listening. Throws (PluginLoadError, std::runtime_error) if any
  // of that fails; nothing is left running then.
  void start();
  std::uint16_t port() const { return port_; }
  // Refuses new launches, stops the Thrift server, stops the engines when the config says so, and
  // stops the event loop. Idempotent.
  void shutdown();
  // A re-read config (SIGHUP): the keys that can change live are applied (config_reload.hpp says
  // which), the others keep their running values and are named in a warning as needing a restart.
  // From the thread that calls start() and shutdown(), between the two.
  ConfigChanges reload(const EcmConfig& next);

 private:
  struct ThriftServer {
    std::shared_ptr<apache::thrift::server::TServer> server;
    std::uint16_t port = 0;
  };
  // Serves a processor per connection from `processors` on host:port as `serving` says (TLS,
  // message limits), from `thread`; returns once it listens. Throws if it cannot.
  ThriftServer serve_thrift(std::shared_ptr<apache::thrift::TProcessorFactory> processors,
                            const ThriftServing& serving, const std::string& host,
                            std::uint16_t port, std::thread& thread);
  void write_address_file() const;
  std::uint16_t callback_port() const;
  void write_metrics_address_file(std::uint16_t port) const;
  void make_register_service();
  // Every event source of the daemon publishes on bus_ from here.
  void connect_events();
  std::string advertise_address() const;  // HOST:PORT the RM is told

  EcmConfig config_;
  // The kernel's boot id, read once: new records carry it, recovery compares the stored ones.
  const std::string boot_id_;
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard_;
  std::vector<std::thread> io_threads_;
  core::LinuxProcessEngineConnLaunch processes_;
  // Declared before everything that publishes on it; stopped last in shutdown(), after the
  // ECM stopping event, so listeners hear it.
  core::ECMEventListenerBus bus_;
  PluginRegistry registry_;
  // Opened in start(), once the state dir exists; declared before engines_, which writes to it.
  std::optional<EngineStateStore> store_;
  EngineConnListService engines_;
  core::ResourceLedger resources_;
  core::PortReservations ports_;
  // The resource cache (opened in start()) and the service that fills it; before launch_, which
  // holds cache entries for its engines.
  ResourceCache cache_;
  ResourceLocalizationService localization_;
  EngineConnLaunchService launch_;
  EngineConnKillService kill_;
  EngineConnCallbackService callbacks_;
  // Ended engines' dirs and records past retention or over the disk watermark; its pool also runs
  // the log rotation (declared after it, so stopped and destroyed first).
  EngineConnCleanupService cleanup_;
  EngineLogRotation log_rotation_;
  // Counters from the engine table's observer and the launch service's hooks; the health samples
  // on a timer on io_ and reads the clean-up's disk status and the metrics' failure counts.
  ECMMetricsService metrics_;
  ECMHealthService health_;
  ECMPluginService plugins_;
  std::optional<PluginDirWatcher> plugin_watcher_;  // [plugins] watch = true
  std::optional<MetricsHttpServer> metrics_http_;   // [metrics] listen; unset: off
  // Reports to the RM ([rm] address); unset: standalone. Made in start() (its id lives in the
  // state dir) before anything serves, so it sees every engine change; started once the main
  // server listens (it advertises the bound port), stopped first in shutdown().
  std::optional<ECMRegisterService> rm_;
  ThriftServer main_server_;
  ThriftServer callback_server_;
  std::thread server_thread_;
  std::thread callback_thread_;
  std::uint16_t port_ = 0;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace ecm::host
