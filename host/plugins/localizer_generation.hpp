// A resource localizer made by one loaded generation of a plugin (SDK ABI 1.4). Every call into the
// plugin goes through here, guarded: a throw becomes a host error, and the plugin-made object holds
// its library. A fetch in flight holds its generation, so a swap never unloads code still running.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ecm/sdk/localizer.hpp"
#include "plugins/plugin_library.hpp"

namespace ecm::host {

class LocalizerGeneration {
 public:
  // Creates the plugin's localizer and reads its schemes and bound engine types. Throws
  // PluginLoadError when the plugin throws, returns null, or names no or a malformed scheme.
  LocalizerGeneration(std::shared_ptr<PluginLibrary> library, const sdk::PluginConfig& config);

  const std::vector<std::string>& schemes() const { return schemes_; }
  const std::vector<std::string>& engine_types() const { return engine_types_; }
  bool serves(const std::string& scheme) const;
  bool bound_to(const std::string& engine_type) const;

  // The plugin's fetch; a throw comes back as an sdk::Error of kind kInternal.
  sdk::Result<sdk::FetchResult> fetch(const sdk::FetchRequest& request,
                                      sdk::FetchProgress& progress) const;

  const PluginLibrary& library() const { return *library_; }

 private:
  std::shared_ptr<PluginLibrary> library_;
  std::shared_ptr<sdk::ResourceLocalizer> localizer_;  // its deleter holds library_ too
  std::vector<std::string> schemes_;
  std::vector<std::string> engine_types_;
};

}  // namespace ecm::host
