#include "services/ecm_plugin_service.hpp"

#include "config/config_error.hpp"
#include "ecm/core/errors.hpp"
#include "ecm/core/names.hpp"

namespace ecm::host {

using core::EcmException;
using core::ErrorCode;

std::size_t PluginView::engines() const {
  std::size_t n = 0;
  for (const auto& g : generations)
    n += g.engines;
  return n;
}

PluginView ECMPluginService::view(PluginInfo info) const {
  const auto pins = engines_.count_by_plugin_pin();
  PluginView v;
  for (const auto& g : info.generations) {
    PluginGenerationView gv;
    gv.info = g;
    if (g.launcher_pin != nullptr) {
      auto it = pins.find(g.launcher_pin);
      if (it != pins.end()) gv.engines = it->second;
    }
    v.generations.push_back(std::move(gv));
  }
  v.plugin = std::move(info);
  return v;
}

std::vector<PluginView> ECMPluginService::list() const {
  std::vector<PluginView> out;
  for (auto& info : registry_.list())
    out.push_back(view(std::move(info)));
  return out;
}

PluginView ECMPluginService::get(const std::string& name) const {
  auto info = registry_.find(name);
  if (!info) {
    throw EcmException(ErrorCode::kNotFound, "plugin '" + name.substr(0, 64) + "' is not loaded");
  }
  return view(std::move(*info));
}

namespace {

void check_name(const std::string& name) {
  if (!core::is_safe_name(name)) {
    throw EcmException(ErrorCode::kInvalidRequest,
                       "invalid plugin name '" + name.substr(0, 64) +
                           "': 1 to 64 of A-Z a-z 0-9 . _ -, not starting with '-'");
  }
}

// Load failures are the plugin file's fault, reported as such; the old generation serves on.
template <class Fn>
PluginLoadOutcome guarded_load(Fn&& fn) {
  try {
    return fn();
  } catch (const PluginLoadError& e) {
    throw EcmException(ErrorCode::kPluginFailed, e.what());
  } catch (const ConfigError& e) {
    throw EcmException(ErrorCode::kPluginFailed, e.what());
  }
}

}  // namespace

PluginView ECMPluginService::reload(const std::string& name) {
  check_name(name);
  auto outcome = guarded_load([&] { return registry_.load(name); });
  return view(std::move(outcome.plugin));
}

PluginView ECMPluginService::load(const std::filesystem::path& path) {
  if (path.empty() || !path.is_absolute()) {
    throw EcmException(ErrorCode::kInvalidRequest,
                       "plugin path '" + path.string().substr(0, 256) + "' must be absolute");
  }
  if (path.extension() != ".so") {
    throw EcmException(ErrorCode::kInvalidRequest,
                       "plugin path '" + path.string().substr(0, 256) + "' must name NAME.so");
  }
  check_name(path.stem().string());
  auto outcome = guarded_load([&] { return registry_.load_path(path); });
  return view(std::move(outcome.plugin));
}

PluginView ECMPluginService::unload(const std::string& name, bool force) {
  check_name(name);
  auto current = get(name);
  if (!current.plugin.loaded) {
    throw EcmException(ErrorCode::kNotFound, "plugin '" + name + "' is already unloaded (" +
                                                 std::to_string(current.engines()) +
                                                 " engine(s) still hold it)");
  }
  if (!force && current.engines() > 0) {
    throw EcmException(ErrorCode::kPluginBusy,
                       "plugin '" + name + "' still serves " + std::to_string(current.engines()) +
                           " running engine(s); stop them first, or unload with force (no new "
                           "launches; the library leaves when the last of them ends)");
  }
  return view(registry_.unload(name));
}

}  // namespace ecm::host
