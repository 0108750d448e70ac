// A plugin whose factory throws: the load is refused with the plugin's message.
#include <ecm/sdk/sdk.hpp>

#include <stdexcept>

namespace {
ecm::sdk::LauncherPlugin* create(const ecm::sdk::PluginConfig&) {
  throw std::runtime_error("cannot start: license server unreachable");
}
const ecm::sdk::PluginDescriptor kDescriptor{ECM_SDK_DESCRIPTOR_HEAD,
                                             "throws_on_create",
                                             "1.0.0",
                                             ecm::sdk::kLauncherKind,
                                             &create,
                                             nullptr,
                                             nullptr,
                                             nullptr};
}  // namespace

ECM_PLUGIN(kDescriptor)
