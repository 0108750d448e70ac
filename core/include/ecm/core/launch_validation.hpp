// Validation of a launch request before anything is created or locked.
#pragma once

#include <cstddef>
#include <vector>

#include "ecm/sdk/launcher.hpp"

namespace ecm::core {

// Throws EcmException(kInvalidRequest) naming the first bad field.
void validate_launch_request(const sdk::LaunchRequest& request);

// Throws EcmException(kPluginFailed) when a plugin's spec is malformed or escapes the work dir.
void validate_launch_spec(const sdk::LaunchSpec& spec);

// At most kMaxPortsPerEngine ports, names [A-Za-z0-9_]+ (they become ECM_PORT_<NAME>), unique.
// Throws EcmException(kPluginFailed).
inline constexpr std::size_t kMaxPortsPerEngine = 16;
void validate_port_requests(const std::vector<sdk::PortRequest>& ports);

}  // namespace ecm::core
