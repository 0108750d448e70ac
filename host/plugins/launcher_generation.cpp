#include "plugins/launcher_generation.hpp"

#include <algorithm>

#include "ecm/core/errors.hpp"
#include "ecm/core/launch_validation.hpp"
#include "ecm/core/names.hpp"
#include "ecm/core/units.hpp"
#include "plugins/plugin_call.hpp"
#include "services/engine_readiness.hpp"

namespace ecm::host {

using core::EcmException;
using core::ErrorCode;

namespace {

// Counts one request call into the plugin, and its failure (kPluginFailed) if it fails.
template <class Fn>
auto counted(PluginCallStats* stats, Fn&& fn) -> decltype(fn()) {
  if (!stats) return fn();
  stats->calls.fetch_add(1, std::memory_order_relaxed);
  try {
    return fn();
  } catch (const EcmException& e) {
    if (e.code() == ErrorCode::kPluginFailed) {
      stats->failures.fetch_add(1, std::memory_order_relaxed);
    }
    throw;
  }
}

}  // namespace

LauncherGeneration::LauncherGeneration(std::shared_ptr<PluginLibrary> library,
                                       const sdk::PluginConfig& config, std::uint64_t generation,
                                       std::shared_ptr<PluginCallStats> stats,
                                       std::shared_ptr<PluginCallRunner> runner)
    : library_(std::move(library)),
      generation_(generation),
      stats_(std::move(stats)),
      runner_(std::move(runner)) {
  const std::string who = "plugin '" + library_->name + "' " + library_->version;
  auto load_error = [&](const std::string& m) { throw PluginLoadError(who + ": " + m); };
  // The [ecm] table is the host's: read here, taken out of what the plugin sees.
  sdk::PluginConfig plugin_config = config;
  for (const auto& [key, value] : config.table("ecm")) {
    plugin_config.values.erase("ecm." + key);
    auto d = core::parse_duration(value);
    if (!d || d->count() <= 0) load_error("[ecm] " + key + " = '" + value + "' is not a duration");
    if (key == "launch_timeout") {
      host_settings_.launch_timeout = *d;
    } else if (key == "call_timeout") {
      host_settings_.call_timeout = *d;
    } else if (key == "heartbeat_timeout") {
      host_settings_.heartbeat_timeout = *d;
    } else {
      load_error("[ecm] has no key '" + key +
                 "' (known: launch_timeout, heartbeat_timeout, call_timeout)");
    }
  }
  auto* create = library_->descriptor->create_launcher;
  sdk::LauncherPlugin* raw = guarded([&] { return create(plugin_config); }, load_error);
  if (raw == nullptr) load_error("create_launcher returned null");
  // Library-holding deleter: the object is destroyed by the plugin's code while the library is
  // still mapped; the library reference is dropped after.
  auto lib = library_;
  plugin_ = std::shared_ptr<sdk::LauncherPlugin>(raw, [lib](sdk::LauncherPlugin* p) { delete p; });
  engine_type_ = guarded([&] { return plugin_->engine_type(); }, load_error);
  if (!core::is_safe_name(engine_type_)) {
    load_error("engine_type '" + engine_type_.substr(0, 64) + "' is not a valid name");
  }
  engine_versions_ = guarded([&] { return plugin_->engine_versions(); }, load_error);
  for (const auto& v : engine_versions_) {
    if (!core::is_safe_name(v)) load_error("engine version '" + v.substr(0, 64) + "' is invalid");
  }
}

bool LauncherGeneration::serves_version(const std::string& version) const {
  return version.empty() || engine_versions_.empty() ||
         std::find(engine_versions_.begin(), engine_versions_.end(), version) !=
             engine_versions_.end();
}

void LauncherGeneration::validate(const sdk::LaunchRequest& request) const {
  return counted(stats_.get(), [&] {
    const std::string who = "plugin '" + library_->name + "'";
    auto failed = [&](const std::string& m) {
      throw EcmException(ErrorCode::kPluginFailed, who + " validate " + m);
    };
    sdk::Status status =
        within([plugin = plugin_, request] { return plugin->validate(request); }, failed);
    if (!status.ok()) {
      const auto& e = status.error();
      throw EcmException(code_of(e), e.message.empty()
                                         ? who + " refused the request without a reason"
                                         : e.message);
    }
  });
}

sdk::LaunchSpec LauncherGeneration::build(const sdk::LaunchRequest& request,
                                          const sdk::LaunchContext& context) const {
  return counted(stats_.get(), [&]() -> sdk::LaunchSpec {
    const std::string who = "plugin '" + library_->name + "'";
    auto failed = [&](const std::string& m) {
      throw EcmException(ErrorCode::kPluginFailed, who + " build " + m);
    };
    sdk::Result<sdk::LaunchSpec> result = within(
        [plugin = plugin_, request, context] { return plugin->build(request, context); }, failed);
    if (!result.ok()) {
      const auto& e = result.error();
      throw EcmException(code_of(e), who + ": " + e.message);
    }
    sdk::LaunchSpec spec = std::move(result.value());
    try {
      core::validate_launch_spec(spec);
    } catch (const EcmException& e) {
      throw EcmException(e.code(), who + ": " + e.what());
    }
    return spec;
  });
}

sdk::ReadinessRule LauncherGeneration::readiness(const sdk::LaunchRequest& request,
                                                 const sdk::LaunchContext& context) const {
  // The slot exists only in the vtable of a plugin built against SDK 1.1 or later.
  if (library_->abi_minor < 1) return {};
  return counted(stats_.get(), [&]() -> sdk::ReadinessRule {
    const std::string who = "plugin '" + library_->name + "'";
    auto failed = [&](const std::string& m) {
      throw EcmException(ErrorCode::kPluginFailed, who + " readiness " + m);
    };
    sdk::ReadinessRule rule =
        within([plugin = plugin_, request, context] { return plugin->readiness(request, context); },
               failed);
    try {
      validate_readiness_rule(rule);
    } catch (const EcmException& e) {
      throw EcmException(e.code(), who + ": " + e.what());
    }
    return rule;
  });
}

std::vector<sdk::PortRequest> LauncherGeneration::ports(const sdk::LaunchRequest& request) const {
  // The slot exists only in the vtable of a plugin built against SDK 1.2 or later.
  if (library_->abi_minor < 2) return {};
  return counted(stats_.get(), [&]() -> std::vector<sdk::PortRequest> {
    const std::string who = "plugin '" + library_->name + "'";
    auto failed = [&](const std::string& m) {
      throw EcmException(ErrorCode::kPluginFailed, who + " ports " + m);
    };
    auto ports = within([plugin = plugin_, request] { return plugin->ports(request); }, failed);
    try {
      core::validate_port_requests(ports);
    } catch (const EcmException& e) {
      throw EcmException(e.code(), who + ": " + e.what());
    }
    return ports;
  });
}

std::vector<sdk::ResourceSpec> LauncherGeneration::resources(
    const sdk::LaunchRequest& request) const {
  // The slot exists only in the vtable of a plugin built against SDK 1.4 or later.
  if (library_->abi_minor < 4) return {};
  return counted(stats_.get(), [&]() -> std::vector<sdk::ResourceSpec> {
    auto failed = [&](const std::string& m) {
      throw EcmException(ErrorCode::kPluginFailed,
                         "plugin '" + library_->name + "' resources " + m);
    };
    return within([plugin = plugin_, request] { return plugin->resources(request); }, failed);
  });
}

}  // namespace ecm::host
