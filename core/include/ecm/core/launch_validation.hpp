// Validation of a launch request before anything is created or locked.
#pragma once

#include "ecm/sdk/launcher.hpp"

namespace ecm::core {

// Throws EcmException(kInvalidRequest) naming the first bad field.
void validate_launch_request(const sdk::LaunchRequest& request);

// Throws EcmException(kPluginFailed) when a plugin's spec is malformed or escapes the work dir.
void validate_launch_spec(const sdk::LaunchSpec& spec);

}  // namespace ecm::core
