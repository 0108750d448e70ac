#include "plugins/listener_generation.hpp"

#include <stdexcept>
#include <string>

#include "plugins/plugin_call.hpp"
#include "util/log.hpp"

namespace ecm::host {

ListenerGeneration::ListenerGeneration(std::shared_ptr<PluginLibrary> library,
                                       const sdk::PluginConfig& config)
    : library_(std::move(library)) {
  const std::string who = "plugin '" + library_->name + "' " + library_->version;
  auto load_error = [&](const std::string& m) { throw PluginLoadError(who + ": " + m); };
  auto* create = library_->descriptor->create_listener;
  sdk::EventListener* raw = guarded([&] { return create(config); }, load_error);
  if (raw == nullptr) load_error("create_listener returned null");
  auto lib = library_;  // library-holding deleter: the object is deleted before the library goes
  listener_ = std::shared_ptr<sdk::EventListener>(raw, [lib](sdk::EventListener* l) { delete l; });
  kinds_ = guarded([&] { return listener_->kinds(); }, load_error);
  for (auto kind : kinds_) {
    const auto v = static_cast<std::uint32_t>(kind);
    if (v == 0 || v > sdk::kEventKindCount) {
      load_error("listener asks for event kind " + std::to_string(v) + ", unknown to this host");
    }
  }
}

void ListenerGeneration::on_event(const sdk::Event& event) {
  const std::string who = "listener of plugin '" + library_->name + "'";
  guarded([&] { listener_->on_event(event); },
          [&](const std::string& m) { throw std::runtime_error(who + " " + m); });
}

void ListenerGeneration::on_close() {
  try {
    guarded([&] { listener_->on_close(); },
            [&](const std::string& m) { throw std::runtime_error(m); });
  } catch (const std::exception& e) {
    log("events")->warn("listener of plugin '{}' on_close {}", library_->name, e.what());
  }
}

}  // namespace ecm::host
