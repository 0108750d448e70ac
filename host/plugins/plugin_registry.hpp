// The plugin registry owns every loaded plugin library and answers "which launcher serves this
// engine type". Callers keep the shared_ptr they get: it pins that generation of the plugin.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "plugins/hook_generation.hpp"
#include "plugins/launcher_generation.hpp"
#include "plugins/plugin_library.hpp"

namespace ecm::host {

struct PluginInfo {
  std::string name;
  std::string version;
  std::string abi;  // "1.0"
  std::string sha256;
  std::string source_path;
  std::string engine_type;  // for a launcher
  std::uint64_t generation = 0;
  std::chrono::system_clock::time_point loaded_at;
};

class PluginRegistry {
 public:
  // `private_dir` holds the content-addressed copies that are actually loaded.
  PluginRegistry(std::filesystem::path plugin_dir, std::filesystem::path conf_dir,
                 std::filesystem::path private_dir);

  // Loads <plugin_dir>/NAME.so with <conf_dir>/NAME.toml. Throws PluginLoadError or ConfigError;
  // on failure the registry is unchanged.
  void load(const std::string& name);
  // The same from explicit files.
  void load_file(const std::string& name, const std::filesystem::path& so,
                 const std::filesystem::path& conf);

  // Throws EcmException(kUnknownEngineType) naming the types served when none matches.
  std::shared_ptr<const LauncherGeneration> launcher_for(const std::string& engine_type,
                                                         const std::string& version) const;

  // The hooks that apply to `engine_type`, in the order of their plugin names.
  std::vector<std::shared_ptr<const HookGeneration>> hooks_for(
      const std::string& engine_type) const;

  std::vector<PluginInfo> list() const;

 private:
  std::filesystem::path plugin_dir_;
  std::filesystem::path conf_dir_;
  std::filesystem::path private_dir_;
  mutable std::mutex mu_;
  std::uint64_t next_generation_ = 1;
  std::map<std::string, std::shared_ptr<const LauncherGeneration>> launchers_;  // by engine type
  std::map<std::string, std::shared_ptr<const HookGeneration>> hooks_;          // by plugin name
};

}  // namespace ecm::host
