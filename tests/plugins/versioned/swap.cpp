// The launcher plugin "swap" in several builds, for the hot-swap tests (tests/CMakeLists.txt):
//   SWAP_VERSION=N       version "N.0.0"; engines get SWAP_PLUGIN_VERSION=N in their environment
//   SWAP_THROW_ON_CREATE create_launcher throws (a file that fails in its init)
//   SWAP_WRONG_ABI       declares ABI major + 1
// Engines run /bin/sleep 600 until stopped. A request property `resource` (a URI) makes the
// plugin ask for that resource itself (ABI 1.4 resources()), named "from-plugin".
#include <ecm/sdk/sdk.hpp>

#include <stdexcept>

#ifndef SWAP_VERSION
#define SWAP_VERSION 1
#endif

namespace {

using namespace ecm::sdk;

class SwapLauncher final : public LauncherPlugin {
 public:
  std::string engine_type() const override { return "swap"; }
  std::vector<std::string> engine_versions() const override { return {}; }
  Status validate(const LaunchRequest&) const override { return {}; }
  Result<LaunchSpec> build(const LaunchRequest&, const LaunchContext&) const override {
    LaunchSpec spec;
    spec.executable = "/bin/sleep";
    spec.argv = {"/bin/sleep", "600"};
    spec.env["SWAP_PLUGIN_VERSION"] = ECM_SDK_STRINGIFY(SWAP_VERSION);
    return spec;
  }
  std::vector<ResourceSpec> resources(const LaunchRequest& request) const override {
    auto it = request.properties.find("resource");
    if (it == request.properties.end()) return {};
    ResourceSpec r;
    r.uri = it->second;
    r.name = "from-plugin";
    return {r};
  }
};

LauncherPlugin* create_launcher(const PluginConfig&) {
#ifdef SWAP_THROW_ON_CREATE
  throw std::runtime_error("swap plugin cannot initialise: no licence");
#else
  return new SwapLauncher();
#endif
}

#ifdef SWAP_WRONG_ABI
#define SWAP_HEAD ::ecm::sdk::kAbiMajor + 1, 0, ECM_SDK_BUILD_TAG
#else
#define SWAP_HEAD ECM_SDK_DESCRIPTOR_HEAD
#endif

const PluginDescriptor kDescriptor{
    SWAP_HEAD,     "swap",           ECM_SDK_STRINGIFY(SWAP_VERSION) ".0.0",
    kLauncherKind, &create_launcher, nullptr,
    nullptr,       nullptr};

}  // namespace

ECM_PLUGIN(kDescriptor)
