#include "plugins/hook_generation.hpp"

#include <algorithm>

#include "ecm/core/errors.hpp"
#include "ecm/core/launch_validation.hpp"
#include "ecm/core/names.hpp"
#include "plugins/plugin_call.hpp"
#include "util/log.hpp"

namespace ecm::host {

using core::EcmException;
using core::ErrorCode;

HookGeneration::HookGeneration(std::shared_ptr<PluginLibrary> library,
                               const sdk::PluginConfig& config)
    : library_(std::move(library)) {
  const std::string who = "plugin '" + library_->name + "' " + library_->version;
  auto load_error = [&](const std::string& m) { throw PluginLoadError(who + ": " + m); };
  auto* create = library_->descriptor->create_hook;
  sdk::LaunchHook* raw = guarded([&] { return create(config); }, load_error);
  if (raw == nullptr) load_error("create_hook returned null");
  auto lib = library_;  // library-holding deleter, as for launchers
  hook_ = std::shared_ptr<sdk::LaunchHook>(raw, [lib](sdk::LaunchHook* h) { delete h; });
  engine_types_ = guarded([&] { return hook_->engine_types(); }, load_error);
  for (const auto& t : engine_types_) {
    if (!core::is_safe_name(t)) load_error("hook engine type '" + t.substr(0, 64) + "' is invalid");
  }
}

bool HookGeneration::applies_to(const std::string& engine_type) const {
  return engine_types_.empty() ||
         std::find(engine_types_.begin(), engine_types_.end(), engine_type) != engine_types_.end();
}

void HookGeneration::before_launch(const sdk::LaunchRequest& request,
                                   const sdk::LaunchContext& context, sdk::LaunchSpec& spec) const {
  const std::string who = "hook of plugin '" + library_->name + "'";
  auto failed = [&](const std::string& m) {
    throw EcmException(ErrorCode::kPluginFailed, who + " before_launch " + m);
  };
  sdk::Status status =
      guarded([&] { return hook_->before_launch(request, context, spec); }, failed);
  if (!status.ok()) {
    const auto& e = status.error();
    throw EcmException(code_of(e), who + " refused the launch: " +
                                       (e.message.empty() ? "(no reason given)" : e.message));
  }
  try {
    core::validate_launch_spec(spec);
  } catch (const EcmException& e) {
    throw EcmException(e.code(), who + ": " + e.what());
  }
}

void HookGeneration::after_launch(const sdk::LaunchRequest& request,
                                  const sdk::LaunchContext& context,
                                  const sdk::LaunchOutcome& outcome) const noexcept {
  try {
    guarded([&] { hook_->after_launch(request, context, outcome); },
            [&](const std::string& m) { throw std::runtime_error(m); });
  } catch (const std::exception& e) {
    log("launch")->warn("[{}] hook of plugin '{}' after_launch {}", context.engine_id,
                        library_->name, e.what());
  }
}

}  // namespace ecm::host
