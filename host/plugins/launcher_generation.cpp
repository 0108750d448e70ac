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

void LauncherGeneration::fail(const std::string& what) const {
  if (stats_) stats_->failures.fetch_add(1, std::memory_order_relaxed);
  throw EcmException(ErrorCode::kPluginFailed, "plugin '" + library_->name + "' " + what);
}

void LauncherGeneration::refused(const sdk::Error& e) const {
  if (e.message.empty())
    reported(e, "plugin '" + library_->name + "' refused the request without a reason");
  reported(e, "");
}

void LauncherGeneration::reported(const sdk::Error& e, const std::string& context) const {
  const auto code = code_of(e);
  if (code == ErrorCode::kPluginFailed && stats_) {
    stats_->failures.fetch_add(1, std::memory_order_relaxed);
  }
  throw EcmException(code, context + e.message);
}

void LauncherGeneration::malformed(const EcmException& e) const {
  if (e.code() == ErrorCode::kPluginFailed && stats_) {
    stats_->failures.fetch_add(1, std::memory_order_relaxed);
  }
  throw EcmException(e.code(), "plugin '" + library_->name + "': " + e.what());
}

LauncherGeneration::Admission LauncherGeneration::admit(const sdk::LaunchRequest& request) const {
  struct Answers {
    sdk::Status status;
    Admission admission;
  };
  const int minor = library_->abi_minor;
  Answers a = trip([plugin = plugin_, request, minor](CallScope& scope) {
    Answers out;
    scope.enter("validate");
    out.status = plugin->validate(request);
    if (!out.status.ok()) return out;
    // The slots exist only in the vtables of plugins built against SDK 1.4 and 1.2 or later.
    if (minor >= 4) {
      scope.enter("resources");
      out.admission.resources = plugin->resources(request);
    }
    if (minor >= 2) {
      scope.enter("ports");
      out.admission.ports = plugin->ports(request);
    }
    return out;
  });
  if (!a.status.ok()) refused(a.status.error());
  try {
    core::validate_port_requests(a.admission.ports);
  } catch (const EcmException& e) {
    malformed(e);
  }
  return std::move(a.admission);
}

LauncherGeneration::Plan LauncherGeneration::plan(const sdk::LaunchRequest& request,
                                                  const sdk::LaunchContext& context) const {
  struct Answers {
    sdk::Result<sdk::LaunchSpec> spec;
    sdk::ReadinessRule readiness;
  };
  const int minor = library_->abi_minor;
  Answers a = trip([plugin = plugin_, request, context, minor](CallScope& scope) {
    scope.enter("build");
    Answers out{plugin->build(request, context), {}};
    // The slot exists only in the vtable of a plugin built against SDK 1.1 or later.
    if (out.spec.ok() && minor >= 1) {
      scope.enter("readiness");
      out.readiness = plugin->readiness(request, context);
    }
    return out;
  });
  if (!a.spec.ok()) reported(a.spec.error(), "plugin '" + library_->name + "': ");
  Plan p{std::move(a.spec.value()), std::move(a.readiness)};
  try {
    core::validate_launch_spec(p.spec);
    validate_readiness_rule(p.readiness);
  } catch (const EcmException& e) {
    malformed(e);
  }
  return p;
}

}  // namespace ecm::host
