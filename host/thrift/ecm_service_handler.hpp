// The Thrift face of the ECM: converts, delegates to the services, maps every error to EcmError.
// Kept thin on purpose: no behaviour lives here.
#pragma once

#include "EngineConnManagerService.h"
#include "ecm/core/engine_log_reader.hpp"
#include "services/ecm_health_service.hpp"
#include "services/ecm_metrics_service.hpp"
#include "services/ecm_plugin_service.hpp"
#include "services/engine_conn_cleanup_service.hpp"
#include "services/engine_conn_kill_service.hpp"
#include "services/engine_conn_launch_service.hpp"
#include "services/engine_conn_list_service.hpp"

namespace ecm::host {

struct EcmServices {
  EngineConnLaunchService& launch;
  EngineConnListService& list;
  EngineConnKillService& kill;
  core::ResourceLedger& resources;
  // Disk usage and clean-up counters for getResources; null: none reported.
  const EngineConnCleanupService* cleanup = nullptr;
  // getHealthReport / setHealth and getMetrics; null: those answer INTERNAL (not configured).
  ECMHealthService* health = nullptr;
  const ECMMetricsService* metrics = nullptr;
  // listPlugins, reloadPlugin, loadPlugin, unloadPlugin; null: those answer INTERNAL.
  ECMPluginService* plugins = nullptr;
  // listCache, pruneCache; null: those answer INTERNAL.
  ResourceCache* cache = nullptr;
};

class EcmServiceHandler : public ecm::thrift::EngineConnManagerServiceIf {
 public:
  // `max_log_lines`: the most lines one getEngineLog returns ([logs] max_read_lines).
  explicit EcmServiceHandler(EcmServices services,
                             std::int64_t max_log_lines = core::kDefaultMaxLogLines)
      : s_(services), logs_(max_log_lines) {}

  void launchEngineConn(ecm::thrift::EngineConn& out,
                        const ecm::thrift::LaunchRequest& request) override;
  void getEngineConn(ecm::thrift::EngineConn& out, const std::string& engine_id) override;
  void listEngineConns(std::vector<ecm::thrift::EngineConn>& out,
                       const ecm::thrift::EngineConnFilter& filter) override;
  void stopEngineConn(ecm::thrift::StopResult& out,
                      const ecm::thrift::StopRequest& request) override;
  void stopEngineConns(std::vector<ecm::thrift::StopResult>& out,
                       const ecm::thrift::StopRequest& request) override;
  void getResources(ecm::thrift::NodeResources& out) override;
  void getEngineLog(ecm::thrift::LogPage& out, const ecm::thrift::LogRequest& request) override;
  void getHealthReport(ecm::thrift::HealthReport& out) override;
  void getMetrics(ecm::thrift::Metrics& out) override;
  void setHealth(ecm::thrift::HealthReport& out,
                 const ecm::thrift::SetHealthRequest& request) override;
  void listPlugins(std::vector<ecm::thrift::PluginInfo>& out) override;
  void reloadPlugin(ecm::thrift::PluginInfo& out, const std::string& name) override;
  void loadPlugin(ecm::thrift::PluginInfo& out, const std::string& path) override;
  void unloadPlugin(ecm::thrift::PluginInfo& out,
                    const ecm::thrift::UnloadPluginRequest& request) override;
  void listCache(ecm::thrift::CacheReport& out) override;
  void pruneCache(ecm::thrift::PruneCacheResult& out,
                  const ecm::thrift::PruneCacheRequest& request) override;
  // Succeeds for any token. The token check is per connection and lives in
  // AuthenticatingProcessor (thrift/authenticating_processor.hpp), which answers authenticate
  // itself: this is reached only where the handler is served without it.
  void authenticate(const std::string& token) override;

 private:
  ECMPluginService& plugins() const;

  EcmServices s_;
  core::EngineLogReader logs_;
};

}  // namespace ecm::host
