#pragma once

#include <filesystem>

#include "ecm/sdk/plugin.hpp"

namespace ecm::host {

// Reads conf/plugins/NAME.toml into the SDK's flat form (dotted keys, arrays as lists).
// A missing file is an empty config; a syntax error or a value of an unsupported shape (an array
// of tables, a nested array) is a ConfigError.
sdk::PluginConfig load_plugin_config(const std::filesystem::path& file);

}  // namespace ecm::host
