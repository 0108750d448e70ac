// The launcher plugin "sleep", for bench/launch_bench.cpp: engines are `/bin/sleep SECONDS`
// (request property `seconds`, default 1000), exec'd directly as an engine team's launcher execs
// its engine's binary, and ready as soon as the process runs. The workload of the floor
// (bench/launch_floor.cpp) and of supervisord (`command=/bin/sleep 1000`): the `shell` launcher
// would add a /bin/sh to every engine.
#include <ecm/sdk/sdk.hpp>

#include <string>

namespace {

using namespace ecm::sdk;

class SleepLauncher final : public LauncherPlugin {
 public:
  std::string engine_type() const override { return "sleep"; }
  std::vector<std::string> engine_versions() const override { return {}; }
  Status validate(const LaunchRequest& request) const override {
    const auto seconds = request.properties.find("seconds");
    if (seconds != request.properties.end() &&
        (seconds->second.empty() || seconds->second.size() > 9 ||
         seconds->second.find_first_not_of("0123456789") != std::string::npos)) {
      return invalid_request("seconds must be a number of seconds");
    }
    return {};
  }
  Result<LaunchSpec> build(const LaunchRequest& request, const LaunchContext&) const override {
    const auto seconds = request.properties.find("seconds");
    LaunchSpec spec;
    spec.executable = "/bin/sleep";
    spec.argv = {"/bin/sleep", seconds == request.properties.end() ? "1000" : seconds->second};
    return spec;
  }
};

LauncherPlugin* create_launcher(const PluginConfig&) {
  return new SleepLauncher();
}

const PluginDescriptor kDescriptor{ECM_SDK_DESCRIPTOR_HEAD, "sleep", "1.0.0", kLauncherKind,
                                   &create_launcher,        nullptr, nullptr, nullptr};

}  // namespace

ECM_PLUGIN(kDescriptor)
