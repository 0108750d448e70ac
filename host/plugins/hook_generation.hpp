// A launch hook made by one loaded generation of a plugin (SDK ABI 1.2). Like LauncherGeneration,
// every call into the plugin goes through here and is guarded.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ecm/sdk/hook.hpp"
#include "plugins/plugin_library.hpp"

namespace ecm::host {

class HookGeneration {
 public:
  // Creates the plugin's hook with its config. Throws PluginLoadError when the plugin throws,
  // returns null, or names an invalid engine type.
  HookGeneration(std::shared_ptr<PluginLibrary> library, const sdk::PluginConfig& config);

  const std::string& plugin_name() const { return library_->name; }
  bool applies_to(const std::string& engine_type) const;

  // Lets the hook adjust `spec`; the result is checked like a build() result. Throws
  // EcmException: the hook's own error code (kInvalidRequest or kPluginFailed) when it refuses,
  // kPluginFailed when it throws or leaves a malformed spec.
  void before_launch(const sdk::LaunchRequest& request, const sdk::LaunchContext& context,
                     sdk::LaunchSpec& spec) const;
  // Never throws: a failing observer is logged under `engine_id` and changes nothing.
  void after_launch(const sdk::LaunchRequest& request, const sdk::LaunchContext& context,
                    const sdk::LaunchOutcome& outcome) const noexcept;

 private:
  std::shared_ptr<PluginLibrary> library_;
  std::shared_ptr<sdk::LaunchHook> hook_;  // its deleter holds library_ too
  std::vector<std::string> engine_types_;
};

}  // namespace ecm::host
