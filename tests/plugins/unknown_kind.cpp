// A plugin declaring a kind this host does not know (a bit no SDK 1.0 host understands).
#include <ecm/sdk/sdk.hpp>

namespace {
const ecm::sdk::PluginDescriptor kDescriptor{
    ECM_SDK_DESCRIPTOR_HEAD, "unknown_kind", "1.0.0", 1u << 7, nullptr, nullptr, nullptr, nullptr};
}  // namespace

ECM_PLUGIN(kDescriptor)
