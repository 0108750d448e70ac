#include "plugins/plugin_registry.hpp"

#include "util/log.hpp"

#include "ecm/core/errors.hpp"
#include "plugins/plugin_config.hpp"

namespace ecm::host {

PluginRegistry::PluginRegistry(std::filesystem::path plugin_dir, std::filesystem::path conf_dir,
                               std::filesystem::path private_dir)
    : plugin_dir_(std::move(plugin_dir)),
      conf_dir_(std::move(conf_dir)),
      private_dir_(std::move(private_dir)) {}

void PluginRegistry::load(const std::string& name) {
  load_file(name, plugin_dir_ / (name + ".so"), conf_dir_ / (name + ".toml"));
}

void PluginRegistry::load_file(const std::string& name, const std::filesystem::path& so,
                               const std::filesystem::path& conf) {
  auto config = load_plugin_config(conf);
  auto library = open_plugin_library(name, so, private_dir_);
  std::uint64_t generation;
  {
    std::lock_guard lock(mu_);
    generation = next_generation_++;
  }
  std::shared_ptr<const LauncherGeneration> launcher;
  if (library->kinds & sdk::kLauncherKind) {
    launcher = std::make_shared<const LauncherGeneration>(library, config, generation);
  }
  std::shared_ptr<const HookGeneration> hook;
  if (library->kinds & sdk::kHookKind)
    hook = std::make_shared<const HookGeneration>(library, config);
  std::lock_guard lock(mu_);
  if (launcher) {
    auto it = launchers_.find(launcher->engine_type());
    if (it != launchers_.end() && it->second->library().name != name) {
      throw PluginLoadError("plugin '" + name + "': engine type '" + launcher->engine_type() +
                            "' is already served by plugin '" + it->second->library().name + "'");
    }
    launchers_[launcher->engine_type()] = launcher;
  }
  if (hook) hooks_[name] = hook;
  log("registry")
      ->info("loaded plugin {} {} (ABI {}.{}, sha256 {}, generation {})", name, library->version,
             library->abi_major, library->abi_minor, library->sha256.substr(0, 12), generation);
}

std::shared_ptr<const LauncherGeneration> PluginRegistry::launcher_for(
    const std::string& engine_type, const std::string& version) const {
  std::lock_guard lock(mu_);
  auto it = launchers_.find(engine_type);
  if (it == launchers_.end()) {
    std::string known;
    for (const auto& [type, _] : launchers_)
      known += (known.empty() ? "" : ", ") + type;
    throw core::EcmException(core::ErrorCode::kUnknownEngineType,
                             "unknown engine type '" + engine_type.substr(0, 64) +
                                 "' (served here: " + (known.empty() ? "none" : known) + ")");
  }
  if (!it->second->serves_version(version)) {
    std::string served;
    for (const auto& v : it->second->engine_versions())
      served += (served.empty() ? "" : ", ") + v;
    throw core::EcmException(core::ErrorCode::kUnknownEngineType,
                             "engine type '" + engine_type + "' has no version '" + version +
                                 "' (served: " + served + ")");
  }
  return it->second;
}

std::vector<std::shared_ptr<const HookGeneration>> PluginRegistry::hooks_for(
    const std::string& engine_type) const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<const HookGeneration>> out;
  for (const auto& [name, hook] : hooks_) {
    if (hook->applies_to(engine_type)) out.push_back(hook);
  }
  return out;
}

std::vector<PluginInfo> PluginRegistry::list() const {
  std::lock_guard lock(mu_);
  std::vector<PluginInfo> out;
  for (const auto& [type, gen] : launchers_) {
    const auto& lib = gen->library();
    out.push_back(PluginInfo{
        lib.name, lib.version, std::to_string(lib.abi_major) + "." + std::to_string(lib.abi_minor),
        lib.sha256, lib.source_path.string(), type, gen->generation(), lib.loaded_at});
  }
  return out;
}

}  // namespace ecm::host
