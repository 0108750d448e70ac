// The one place that maps Thrift types to core types and back.
#pragma once

#include "EngineConnManagerService.h"
#include "ecm/core/engine_conn.hpp"
#include "ecm/core/errors.hpp"
#include "ecm/sdk/launcher.hpp"
#include "services/engine_conn_list_service.hpp"

namespace ecm::host {

sdk::LaunchRequest to_core(const ecm::thrift::LaunchRequest& r);
EngineConnFilter to_core(const ecm::thrift::EngineConnFilter& f);
ecm::thrift::EngineConn to_thrift(const core::EngineConn& e);
ecm::thrift::EngineStatus::type to_thrift(core::EngineStatus s);
ecm::thrift::EcmError to_thrift(const core::EcmException& e);

}  // namespace ecm::host
