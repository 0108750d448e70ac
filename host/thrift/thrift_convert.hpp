// The one place that maps Thrift types to core types and back.
#pragma once

#include "EngineConnManagerService.h"
#include "ecm/core/ecm_metrics.hpp"
#include "ecm/core/engine_conn.hpp"
#include "ecm/core/engine_log_reader.hpp"
#include "ecm/core/errors.hpp"
#include "ecm/core/health_assessment.hpp"
#include "ecm/core/resources.hpp"
#include "ecm/sdk/launcher.hpp"
#include "services/ecm_plugin_service.hpp"
#include "services/engine_conn_cleanup_service.hpp"
#include "services/engine_conn_kill_service.hpp"
#include "services/engine_conn_list_service.hpp"

namespace ecm::host {

sdk::LaunchRequest to_core(const ecm::thrift::LaunchRequest& r);
EngineConnFilter to_core(const ecm::thrift::EngineConnFilter& f);
ecm::thrift::EngineConn to_thrift(const core::EngineConn& e);
ecm::thrift::EngineStatus::type to_thrift(core::EngineStatus s);
std::optional<core::EngineStatus> to_core(ecm::thrift::EngineStatus::type s);
ecm::thrift::EcmError to_thrift(const core::EcmException& e);
// What the request asks for: its memory and cores (0: the node's default), and one instance.
// Throws EcmException(kInvalidRequest) for negative amounts.
core::Resource requested_resources(const ecm::thrift::LaunchRequest& r);
// The request's resources; an unknown visibility is INVALID_REQUEST.
std::vector<sdk::ResourceSpec> requested_resource_specs(const ecm::thrift::LaunchRequest& r);
ecm::thrift::NodeResources to_thrift(const core::ResourceSnapshot& s);
// Unset fields when the disk could not be measured.
ecm::thrift::DiskUsage to_thrift(const CleanupStatus& s);
ecm::thrift::StopResult to_thrift(const StopOutcome& o);

// An empty stream is stdout; the numbers and words as they are (EngineLogReader checks them).
core::LogQuery to_core(const ecm::thrift::LogRequest& r);
ecm::thrift::LogPage to_thrift(const core::LogPage& p);

// Health and metrics (getHealthReport, getMetrics; the RM's heartbeats carry the same).
ecm::thrift::NodeHealth::type to_thrift(core::NodeHealth h);
std::optional<core::NodeHealth> to_core(ecm::thrift::NodeHealth::type h);
ecm::thrift::EcmStatus::type to_thrift(core::EcmStatus s);
ecm::thrift::HealthReport to_thrift(const core::HealthReport& r);
ecm::thrift::Metrics to_thrift(const core::EcmMetrics& m);
ecm::thrift::PluginInfo to_thrift(const PluginView& p);

}  // namespace ecm::host
