#include "plugins/localizer_generation.hpp"

#include <algorithm>
#include <string>

#include "ecm/core/names.hpp"
#include "plugins/plugin_call.hpp"

namespace ecm::host {
namespace {

// RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), and we keep schemes lowercase.
bool valid_scheme(const std::string& s) {
  if (s.empty() || s.size() > 32 || s[0] < 'a' || s[0] > 'z') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
  });
}

}  // namespace

LocalizerGeneration::LocalizerGeneration(std::shared_ptr<PluginLibrary> library,
                                         const sdk::PluginConfig& config)
    : library_(std::move(library)) {
  const std::string who = "plugin '" + library_->name + "' " + library_->version;
  auto load_error = [&](const std::string& m) { throw PluginLoadError(who + ": " + m); };
  auto* create = library_->descriptor->create_localizer;
  sdk::ResourceLocalizer* raw = guarded([&] { return create(config); }, load_error);
  if (raw == nullptr) load_error("create_localizer returned null");
  auto lib = library_;  // library-holding deleter: the object is deleted before the library goes
  localizer_ =
      std::shared_ptr<sdk::ResourceLocalizer>(raw, [lib](sdk::ResourceLocalizer* l) { delete l; });
  schemes_ = guarded([&] { return localizer_->schemes(); }, load_error);
  engine_types_ = guarded([&] { return localizer_->engine_types(); }, load_error);
  if (schemes_.empty()) load_error("localizer serves no URI scheme");
  for (const auto& s : schemes_) {
    if (!valid_scheme(s)) load_error("URI scheme '" + s.substr(0, 64) + "' is invalid");
  }
  for (const auto& t : engine_types_) {
    if (!core::is_safe_name(t)) load_error("engine type '" + t.substr(0, 64) + "' is invalid");
  }
}

bool LocalizerGeneration::serves(const std::string& scheme) const {
  return std::find(schemes_.begin(), schemes_.end(), scheme) != schemes_.end();
}

bool LocalizerGeneration::bound_to(const std::string& engine_type) const {
  return std::find(engine_types_.begin(), engine_types_.end(), engine_type) != engine_types_.end();
}

sdk::Result<sdk::FetchResult> LocalizerGeneration::fetch(const sdk::FetchRequest& request,
                                                         sdk::FetchProgress& progress) const {
  std::string thrown;
  try {
    return guarded([&] { return localizer_->fetch(request, progress); },
                   [&](const std::string& m) { throw std::runtime_error(m); });
  } catch (const std::runtime_error& e) {
    thrown = e.what();
  }
  return sdk::internal_error("localizer '" + library_->name + "' " + thrown);
}

}  // namespace ecm::host
