// A test localizer for file://, built twice (tests/CMakeLists.txt sets LOCALIZER_NAME):
//   bound_localizer  bound to the engine type "swap" (versioned/swap.cpp): for swap engines it wins
//                    over the `file` plugin, the scheme's default;
//   file_clash       (LOCALIZER_UNBOUND) a second default for file://, which the host refuses
//                    while `file` serves it.
// It writes a fixed text naming itself, whatever the URI, so a test sees who served a resource.
#include <ecm/sdk/sdk.hpp>

#include <fstream>

namespace {

using namespace ecm::sdk;

class BoundLocalizer final : public ResourceLocalizer {
 public:
  std::vector<std::string> schemes() const override { return {"file"}; }
  std::vector<std::string> engine_types() const override {
#ifdef LOCALIZER_UNBOUND
    return {};
#else
    return {"swap"};
#endif
  }
  Result<FetchResult> fetch(const FetchRequest& request, FetchProgress& progress) const override {
    const std::string text = "served by " LOCALIZER_NAME " for " + request.engine_type + "\n";
    std::ofstream(request.destination, std::ios::binary | std::ios::trunc) << text;
    progress.progress(text.size(), text.size());
    FetchResult r;
    r.bytes = text.size();
    return r;
  }
};

ResourceLocalizer* create_localizer(const PluginConfig&) {
  return new BoundLocalizer();
}

const PluginDescriptor kDescriptor{
    ECM_SDK_DESCRIPTOR_HEAD, LOCALIZER_NAME, "1.0.0", kLocalizerKind, nullptr, nullptr, nullptr,
    &create_localizer};

}  // namespace

ECM_PLUGIN(kDescriptor)
