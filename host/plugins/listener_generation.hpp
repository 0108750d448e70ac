// An event listener made by one loaded generation of a plugin (SDK ABI 1.3). The bus holds it as
// any listener; every call into the plugin goes through here, guarded, so no exception object of
// the plugin's outlives the call, and the plugin-made listener holds its library.
#pragma once

#include <memory>
#include <vector>

#include "ecm/sdk/listener.hpp"
#include "plugins/plugin_library.hpp"

namespace ecm::host {

class ListenerGeneration final : public sdk::EventListener {
 public:
  // Creates the plugin's listener with its config and reads the kinds it wants. Throws
  // PluginLoadError when the plugin throws, returns null, or names a kind this host lacks.
  ListenerGeneration(std::shared_ptr<PluginLibrary> library, const sdk::PluginConfig& config);

  std::vector<sdk::EventKind> kinds() const override { return kinds_; }
  // Throws std::runtime_error (a host exception) when the plugin throws.
  void on_event(const sdk::Event& event) override;
  void on_close() override;

  const PluginLibrary& library() const { return *library_; }

 private:
  std::shared_ptr<PluginLibrary> library_;
  std::shared_ptr<sdk::EventListener> listener_;  // its deleter holds library_ too
  std::vector<sdk::EventKind> kinds_;
};

}  // namespace ecm::host
