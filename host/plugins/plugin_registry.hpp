// The plugin registry owns every loaded plugin and answers "which launcher serves this engine
// type" and "which hooks apply". It loads, reloads (hot swap) and unloads plugins while the ECM
// runs: a new generation replaces the old one in the maps only once it loaded and created all
// its objects, so a refused load leaves the old generation serving. Callers keep the shared_ptr
// they get: it pins that generation (engines hold their launcher's until they end), and a
// plugin's library leaves the process when the last object it made is gone.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "ecm/core/ecm_event_listener_bus.hpp"
#include "plugins/hook_generation.hpp"
#include "plugins/launcher_generation.hpp"
#include "plugins/listener_generation.hpp"
#include "plugins/localizer_generation.hpp"
#include "plugins/plugin_library.hpp"

namespace ecm::host {

// One generation of a plugin as the registry knows it.
struct PluginGenerationInfo {
  std::uint64_t generation = 0;
  std::string version;
  std::string abi;  // "1.3"
  std::string sha256;
  std::chrono::system_clock::time_point loaded_at;
  bool serving = false;  // the generation new launches and events go to
  // What engines launched by this generation hold (EngineRuntime::plugin_pin); null when the
  // plugin has no launcher. Compared, never dereferenced.
  const void* launcher_pin = nullptr;
};

struct PluginInfo {
  std::string name;
  std::vector<std::string> kinds;  // "launcher", "hook", "listener", "localizer"
  std::string engine_type;         // for a launcher
  std::string source_path;         // the file the serving generation was loaded from
  bool loaded = true;              // false: unloaded, its older generations still held by engines
  // The serving generation first (when loaded), then older ones still held by engines.
  std::vector<PluginGenerationInfo> generations;
  const PluginGenerationInfo* serving() const {
    return !generations.empty() && generations.front().serving ? &generations.front() : nullptr;
  }
};

// What a load did: the plugin as it is now, and the generation it replaced, if any.
struct PluginLoadOutcome {
  PluginInfo plugin;
  std::optional<PluginGenerationInfo> replaced;
};

std::vector<std::string> plugin_kind_names(std::uint32_t kinds);

class PluginRegistry {
 public:
  // `private_dir` holds the content-addressed copies that are actually loaded. With a bus,
  // listener plugins are subscribed to it and plugin events are published on it.
  PluginRegistry(std::filesystem::path plugin_dir, std::filesystem::path conf_dir,
                 std::filesystem::path private_dir, core::ECMEventListenerBus* bus = nullptr);

  // Loads <plugin_dir>/NAME.so with <conf_dir>/NAME.toml, replacing the generation serving under
  // NAME if there is one. Throws PluginLoadError or ConfigError; on failure the registry is
  // unchanged (the old generation keeps serving) and a plugin_refused event says why.
  PluginLoadOutcome load(const std::string& name);
  // The same from explicit files.
  PluginLoadOutcome load_file(const std::string& name, const std::filesystem::path& so,
                              const std::filesystem::path& conf);
  // Loads a plugin file from anywhere: its name is the file name without ".so", its config
  // <conf_dir>/NAME.toml when that exists.
  PluginLoadOutcome load_path(const std::filesystem::path& so);
  // Takes NAME out of service: no new launch of its engine type, its hooks no longer run, its
  // listener gets what is queued and is closed. Engines it launched keep their generation (and
  // its library) until they end. Throws EcmException(kNotFound) for a plugin not loaded.
  PluginInfo unload(const std::string& name);

  // Throws EcmException(kUnknownEngineType) naming the types served when none matches.
  std::shared_ptr<const LauncherGeneration> launcher_for(const std::string& engine_type,
                                                         const std::string& version) const;

  // The hooks that apply to `engine_type`, in the order of their plugin names.
  std::vector<std::shared_ptr<const HookGeneration>> hooks_for(
      const std::string& engine_type) const;

  // The localizer for `scheme`: one bound to `engine_type` if a plugin is, else the scheme's
  // default. Null when none serves the scheme.
  std::shared_ptr<const LocalizerGeneration> localizer_for(const std::string& scheme,
                                                           const std::string& engine_type) const;
  // The schemes some localizer serves, sorted (for error messages).
  std::vector<std::string> localized_schemes() const;

  // Every plugin loaded, and every unloaded one whose launcher generations engines still hold.
  std::vector<PluginInfo> list() const;
  std::optional<PluginInfo> find(const std::string& name) const;

  const std::filesystem::path& plugin_dir() const { return plugin_dir_; }
  // The queue each listener plugin gets on the bus. Set before the first load.
  void set_listener_queue_capacity(std::size_t capacity) { listener_queue_capacity_ = capacity; }

  // Calls into the launchers this registry made, and their failures, since it was created.
  const PluginCallStats& call_stats() const { return *call_stats_; }
  // Calls into launchers made from now on give up after `timeout` (a plugin's [ecm] call_timeout
  // wins); 0: no deadline, calls are made on the caller's thread. Set before plugins load.
  void set_call_timeout(std::chrono::milliseconds timeout) {
    call_runner_ = timeout.count() > 0 ? std::make_shared<PluginCallRunner>(timeout) : nullptr;
  }

 private:
  struct Loaded {
    std::shared_ptr<PluginLibrary> library;
    std::uint64_t generation = 0;
    std::shared_ptr<const LauncherGeneration> launcher;
    std::shared_ptr<const HookGeneration> hook;
    std::shared_ptr<ListenerGeneration> listener;
    std::shared_ptr<const LocalizerGeneration> localizer;
    std::optional<core::ECMEventListenerBus::SubscriptionId> subscription;
  };
  // A launcher generation no longer serving; listed while something still holds it.
  struct Retired {
    std::string name;
    PluginGenerationInfo info;
    std::weak_ptr<const LauncherGeneration> launcher;
  };

  PluginLoadOutcome load_locked(const std::string& name, const std::filesystem::path& so,
                                const std::filesystem::path& conf);
  // Under mu_.
  PluginInfo info_locked(const std::string& name) const;
  void retire_locked(const std::string& name, const Loaded& old);
  void check_localizer_unique_locked(const std::string& name,
                                     const LocalizerGeneration& fresh) const;
  void publish(sdk::Event event) const;

  std::filesystem::path plugin_dir_;
  std::filesystem::path conf_dir_;
  std::filesystem::path private_dir_;
  core::ECMEventListenerBus* bus_;
  std::size_t listener_queue_capacity_ = 4096;
  std::mutex load_mu_;     // one load or unload at a time; held across the (slow) library load
  mutable std::mutex mu_;  // the maps below; never held across a plugin call
  std::uint64_t next_generation_ = 1;
  std::map<std::string, Loaded> plugins_;              // by plugin name
  std::map<std::string, std::string> type_to_plugin_;  // launcher engine type -> plugin name
  mutable std::vector<Retired> retired_;               // pruned when listed
  // Shared: a generation pinned by a running engine may outlive the registry's map entry.
  std::shared_ptr<PluginCallStats> call_stats_ = std::make_shared<PluginCallStats>();
  std::shared_ptr<PluginCallRunner> call_runner_;
};

}  // namespace ecm::host
