#include "plugins/plugin_registry.hpp"

#include <algorithm>

#include "config/config_error.hpp"
#include "ecm/core/errors.hpp"
#include "plugins/plugin_config.hpp"
#include "util/log.hpp"

namespace ecm::host {
namespace {

PluginGenerationInfo generation_info(const PluginLibrary& lib, std::uint64_t generation,
                                     const void* launcher_pin) {
  PluginGenerationInfo g;
  g.generation = generation;
  g.version = lib.version;
  g.abi = std::to_string(lib.abi_major) + "." + std::to_string(lib.abi_minor);
  g.sha256 = lib.sha256;
  g.loaded_at = lib.loaded_at;
  g.launcher_pin = launcher_pin;
  return g;
}

sdk::Event plugin_event(sdk::EventKind kind, const std::string& name) {
  sdk::Event e;
  e.kind = kind;
  e.plugin_name = name;
  return e;
}

}  // namespace

std::vector<std::string> plugin_kind_names(std::uint32_t kinds) {
  std::vector<std::string> out;
  if (kinds & sdk::kLauncherKind) out.emplace_back("launcher");
  if (kinds & sdk::kHookKind) out.emplace_back("hook");
  if (kinds & sdk::kListenerKind) out.emplace_back("listener");
  if (kinds & sdk::kLocalizerKind) out.emplace_back("localizer");
  return out;
}

PluginRegistry::PluginRegistry(std::filesystem::path plugin_dir, std::filesystem::path conf_dir,
                               std::filesystem::path private_dir, core::ECMEventListenerBus* bus)
    : plugin_dir_(std::move(plugin_dir)),
      conf_dir_(std::move(conf_dir)),
      private_dir_(std::move(private_dir)),
      bus_(bus) {}

PluginLoadOutcome PluginRegistry::load(const std::string& name) {
  return load_file(name, plugin_dir_ / (name + ".so"), conf_dir_ / (name + ".toml"));
}

PluginLoadOutcome PluginRegistry::load_path(const std::filesystem::path& so) {
  if (so.extension() != ".so" || so.stem().empty()) {
    throw PluginLoadError("plugin file '" + so.string() + "': the name must be NAME.so");
  }
  return load_file(so.stem().string(), so, conf_dir_ / (so.stem().string() + ".toml"));
}

PluginLoadOutcome PluginRegistry::load_file(const std::string& name,
                                            const std::filesystem::path& so,
                                            const std::filesystem::path& conf) {
  std::lock_guard serial(load_mu_);
  try {
    return load_locked(name, so, conf);
  } catch (const std::exception& e) {
    auto event = plugin_event(sdk::EventKind::kPluginRefused, name);
    event.reason = e.what();
    event.message = so.string();
    publish(std::move(event));
    log("registry")->warn("{}", e.what());
    throw;
  }
}

PluginLoadOutcome PluginRegistry::load_locked(const std::string& name,
                                              const std::filesystem::path& so,
                                              const std::filesystem::path& conf) {
  auto config = load_plugin_config(conf);
  auto library = open_plugin_library(name, so, private_dir_);
  std::uint64_t generation;
  {
    std::lock_guard lock(mu_);
    generation = next_generation_++;
  }
  // Everything the plugin makes is made before anything changes: a throw here changes nothing.
  Loaded fresh;
  fresh.library = library;
  fresh.generation = generation;
  if (library->kinds & sdk::kLauncherKind) {
    fresh.launcher = std::make_shared<const LauncherGeneration>(library, config, generation,
                                                                call_stats_, call_runner_);
  }
  if (library->kinds & sdk::kHookKind)
    fresh.hook = std::make_shared<const HookGeneration>(library, config);
  if (library->kinds & sdk::kListenerKind)
    fresh.listener = std::make_shared<ListenerGeneration>(library, config);
  if (library->kinds & sdk::kLocalizerKind)
    fresh.localizer = std::make_shared<const LocalizerGeneration>(library, config);
  if (fresh.listener && bus_ == nullptr) {
    throw PluginLoadError("plugin '" + name + "': a listener needs the event bus");
  }

  PluginLoadOutcome outcome;
  std::optional<Loaded> old;
  {
    std::lock_guard lock(mu_);
    if (fresh.launcher) {
      auto it = type_to_plugin_.find(fresh.launcher->engine_type());
      if (it != type_to_plugin_.end() && it->second != name) {
        throw PluginLoadError("plugin '" + name + "': engine type '" +
                              fresh.launcher->engine_type() + "' is already served by plugin '" +
                              it->second + "'");
      }
    }
    if (fresh.localizer) check_localizer_unique_locked(name, *fresh.localizer);
    if (auto it = plugins_.find(name); it != plugins_.end()) {
      old = it->second;
      const void* pin = old->launcher.get();
      outcome.replaced = generation_info(*old->library, old->generation, pin);
      if (old->launcher) type_to_plugin_.erase(old->launcher->engine_type());
      retire_locked(name, *old);
    }
    if (fresh.launcher) type_to_plugin_[fresh.launcher->engine_type()] = name;
    // The listener: a reload swaps the object behind the same subscription, so the old
    // generation gets every event queued before this point and the new one every later event.
    if (fresh.listener) {
      if (old && old->subscription) {
        bus_->replace(*old->subscription, fresh.listener, fresh.listener->kinds());
        fresh.subscription = old->subscription;
      } else {
        core::SubscriptionOptions options;
        options.name = "plugin:" + name;
        options.kinds = fresh.listener->kinds();
        options.queue_capacity = listener_queue_capacity_;
        fresh.subscription = bus_->subscribe(fresh.listener, std::move(options));
      }
    } else if (old && old->subscription) {
      bus_->unsubscribe(*old->subscription);
    }
    plugins_[name] = fresh;
    outcome.plugin = info_locked(name);
  }
  old.reset();  // outside the lock: may drop the last reference to the old library
  log("registry")
      ->info("{} plugin {} {} (ABI {}.{}, sha256 {}, generation {}){}",
             outcome.replaced ? "swapped in" : "loaded", name, library->version, library->abi_major,
             library->abi_minor, library->sha256.substr(0, 12), generation,
             outcome.replaced ? " replacing " + outcome.replaced->version + " (generation " +
                                    std::to_string(outcome.replaced->generation) + ")"
                              : std::string());
  auto event = plugin_event(
      outcome.replaced ? sdk::EventKind::kPluginSwapped : sdk::EventKind::kPluginLoaded, name);
  event.plugin_version = library->version;
  event.generation = generation;
  event.message = so.string();
  if (outcome.replaced) {
    event.from = outcome.replaced->version;
    event.to = library->version;
  }
  publish(std::move(event));
  return outcome;
}

PluginInfo PluginRegistry::unload(const std::string& name) {
  std::lock_guard serial(load_mu_);
  std::optional<Loaded> old;
  PluginInfo info;
  {
    std::lock_guard lock(mu_);
    auto it = plugins_.find(name);
    if (it == plugins_.end()) {
      throw core::EcmException(core::ErrorCode::kNotFound,
                               "plugin '" + name.substr(0, 64) + "' is not loaded");
    }
    old = it->second;
    plugins_.erase(it);
    if (old->launcher) type_to_plugin_.erase(old->launcher->engine_type());
    if (old->subscription) bus_->unsubscribe(*old->subscription);
    retire_locked(name, *old);
    info = info_locked(name);
  }
  auto event = plugin_event(sdk::EventKind::kPluginUnloaded, name);
  event.plugin_version = old->library->version;
  event.generation = old->generation;
  event.reason = "unloaded by request";
  old.reset();
  publish(std::move(event));
  log("registry")->info("unloaded plugin {}", name);
  return info;
}

void PluginRegistry::retire_locked(const std::string& name, const Loaded& old) {
  if (!old.launcher) return;
  retired_.push_back(
      {name, generation_info(*old.library, old.generation, old.launcher.get()), old.launcher});
}

std::shared_ptr<const LauncherGeneration> PluginRegistry::launcher_for(
    const std::string& engine_type, const std::string& version) const {
  std::lock_guard lock(mu_);
  auto it = type_to_plugin_.find(engine_type);
  if (it == type_to_plugin_.end()) {
    std::string known;
    for (const auto& [type, _] : type_to_plugin_)
      known += (known.empty() ? "" : ", ") + type;
    throw core::EcmException(core::ErrorCode::kUnknownEngineType,
                             "unknown engine type '" + engine_type.substr(0, 64) +
                                 "' (served here: " + (known.empty() ? "none" : known) + ")");
  }
  const auto& launcher = plugins_.at(it->second).launcher;
  if (!launcher->serves_version(version)) {
    std::string served;
    for (const auto& v : launcher->engine_versions())
      served += (served.empty() ? "" : ", ") + v;
    throw core::EcmException(core::ErrorCode::kUnknownEngineType,
                             "engine type '" + engine_type + "' has no version '" +
                                 version.substr(0, 64) + "' (served: " + served + ")");
  }
  return launcher;
}

// One default localizer per scheme, and one bound localizer per (scheme, engine type): else which
// one fetches would depend on load order.
void PluginRegistry::check_localizer_unique_locked(const std::string& name,
                                                   const LocalizerGeneration& fresh) const {
  for (const auto& [other, loaded] : plugins_) {
    if (other == name || !loaded.localizer) continue;
    for (const auto& scheme : fresh.schemes()) {
      if (!loaded.localizer->serves(scheme)) continue;
      if (fresh.engine_types().empty() && loaded.localizer->engine_types().empty()) {
        throw PluginLoadError("plugin '" + name + "': URI scheme '" + scheme +
                              "' is already served by plugin '" + other + "'");
      }
      for (const auto& type : fresh.engine_types()) {
        if (loaded.localizer->bound_to(type)) {
          throw PluginLoadError("plugin '" + name + "': URI scheme '" + scheme +
                                "' for engine type '" + type + "' is already served by plugin '" +
                                other + "'");
        }
      }
    }
  }
}

std::shared_ptr<const LocalizerGeneration> PluginRegistry::localizer_for(
    const std::string& scheme, const std::string& engine_type) const {
  std::lock_guard lock(mu_);
  std::shared_ptr<const LocalizerGeneration> fallback;
  for (const auto& [name, loaded] : plugins_) {
    const auto& l = loaded.localizer;
    if (!l || !l->serves(scheme)) continue;
    if (l->bound_to(engine_type)) return l;
    if (l->engine_types().empty()) fallback = l;
  }
  return fallback;
}

std::vector<std::string> PluginRegistry::localized_schemes() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [name, loaded] : plugins_) {
    if (!loaded.localizer) continue;
    for (const auto& s : loaded.localizer->schemes()) {
      if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::shared_ptr<const HookGeneration>> PluginRegistry::hooks_for(
    const std::string& engine_type) const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<const HookGeneration>> out;
  for (const auto& [name, loaded] : plugins_) {
    if (loaded.hook && loaded.hook->applies_to(engine_type)) out.push_back(loaded.hook);
  }
  return out;
}

PluginInfo PluginRegistry::info_locked(const std::string& name) const {
  PluginInfo info;
  info.name = name;
  info.loaded = false;
  if (auto it = plugins_.find(name); it != plugins_.end()) {
    const auto& l = it->second;
    info.loaded = true;
    info.kinds = plugin_kind_names(l.library->kinds);
    info.source_path = l.library->source_path.string();
    if (l.launcher) info.engine_type = l.launcher->engine_type();
    auto g = generation_info(*l.library, l.generation, l.launcher.get());
    g.serving = true;
    info.generations.push_back(std::move(g));
  }
  std::erase_if(retired_, [](const Retired& r) { return r.launcher.expired(); });
  for (const auto& r : retired_) {
    if (r.name != name) continue;
    if (!info.loaded && info.generations.empty()) {
      // Unloaded: describe it by the newest generation still held.
      if (auto l = r.launcher.lock()) {
        info.kinds = plugin_kind_names(l->library().kinds);
        info.source_path = l->library().source_path.string();
        info.engine_type = l->engine_type();
      }
    }
    info.generations.push_back(r.info);
  }
  // Newest first after the serving one.
  auto first_old = info.generations.begin() + (info.loaded ? 1 : 0);
  std::sort(first_old, info.generations.end(),
            [](const auto& a, const auto& b) { return a.generation > b.generation; });
  return info;
}

std::vector<PluginInfo> PluginRegistry::list() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> names;
  for (const auto& [name, _] : plugins_)
    names.push_back(name);
  std::erase_if(retired_, [](const Retired& r) { return r.launcher.expired(); });
  for (const auto& r : retired_) {
    if (std::find(names.begin(), names.end(), r.name) == names.end()) names.push_back(r.name);
  }
  std::sort(names.begin(), names.end());
  std::vector<PluginInfo> out;
  for (const auto& name : names)
    out.push_back(info_locked(name));
  return out;
}

std::optional<PluginInfo> PluginRegistry::find(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto info = info_locked(name);
  if (!info.loaded && info.generations.empty()) return std::nullopt;
  return info;
}

void PluginRegistry::publish(sdk::Event event) const {
  if (bus_ != nullptr) bus_->publish(std::move(event));
}

}  // namespace ecm::host
