// A plugin built against a future SDK ABI major: the host must refuse it before calling anything.
#include <ecm/sdk/sdk.hpp>

namespace {
ecm::sdk::LauncherPlugin* create(const ecm::sdk::PluginConfig&) {
  return nullptr;
}
const ecm::sdk::PluginDescriptor kDescriptor{
    ecm::sdk::kAbiMajor + 1, 0,       ECM_SDK_BUILD_TAG, "wrong_abi", "9.9.9",
    ecm::sdk::kLauncherKind, &create, nullptr,           nullptr,     nullptr};
}  // namespace

ECM_PLUGIN(kDescriptor)
