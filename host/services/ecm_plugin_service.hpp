// ECMPluginService: what an administrator does with plugins on a live node — list them with the
// engines still holding each generation, reload one (hot swap), load a new file, unload one.
// The registry does the loading; this service adds what needs the engine table.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "plugins/plugin_registry.hpp"
#include "services/engine_conn_list_service.hpp"

namespace ecm::host {

struct PluginGenerationView {
  PluginGenerationInfo info;
  std::size_t engines = 0;  // live engines launched by this generation
};

struct PluginView {
  PluginInfo plugin;
  std::vector<PluginGenerationView> generations;  // as plugin.generations, with engine counts
  std::size_t engines() const;
};

class ECMPluginService {
 public:
  ECMPluginService(PluginRegistry& registry, const EngineConnListService& engines)
      : registry_(registry), engines_(engines) {}

  std::vector<PluginView> list() const;
  // Throws EcmException(kNotFound) for a name neither loaded nor held.
  PluginView get(const std::string& name) const;

  // Loads <plugin dir>/NAME.so anew; the new generation serves new launches, running engines
  // keep theirs. Throws EcmException: kInvalidRequest for a bad name, kPluginFailed (with the
  // loader's message) when the file is refused — the old generation keeps serving.
  PluginView reload(const std::string& name);
  // Loads a plugin file by its path (NAME.so); as reload() otherwise.
  PluginView load(const std::filesystem::path& path);
  // Takes NAME out of service. Refused with kPluginBusy while engines it launched run, unless
  // `force`: then new launches stop at once and the library leaves when its last engine ends.
  PluginView unload(const std::string& name, bool force);

 private:
  PluginView view(PluginInfo info) const;

  PluginRegistry& registry_;
  const EngineConnListService& engines_;
};

}  // namespace ecm::host
