// The engine status between its Thrift form and the names people type and read ("Running").
#pragma once

#include <string>
#include <string_view>

#include "ecm/core/engine_status.hpp"
#include "ecm_types.h"

namespace ecm::ctl {

// The status name ("Running", "Idle"...); "Unknown(N)" for a value newer than this ecmctl.
std::string status_name(::ecm::thrift::EngineStatus::type status);

// Case-insensitive name to the Thrift value. Throws UsageError listing the valid names.
::ecm::thrift::EngineStatus::type parse_status(std::string_view text);

bool is_ended(::ecm::thrift::EngineStatus::type status);

}  // namespace ecm::ctl
