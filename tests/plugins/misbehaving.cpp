// A launcher that loads fine and then misbehaves according to the request's `mode` property:
//   throw       build() throws a std::runtime_error
//   throw_int   build() throws an int
//   garbage     build() returns a spec with a relative executable
//   escape      build() asks for a file outside the work dir
//   refuse      build() returns an internal error
//   hang        build() never returns (sleeps an hour)
//   ok          a valid spec running /bin/sleep 600
// validate() throws when mode is `throw_validate` and never returns when it is `hang_validate`.
// ports() throws when mode is `throw_ports`, asks for a port without a name when it is
// `bad_ports`, and never returns when it is `hang_ports`; readiness() throws when mode is
// `throw_readiness` (these run in one go with validate() and build(): each error must name its
// own call).
#include <ecm/sdk/sdk.hpp>

#include <chrono>
#include <stdexcept>
#include <thread>

namespace {

using namespace ecm::sdk;

class Misbehaving final : public LauncherPlugin {
 public:
  std::string engine_type() const override { return "misbehaving"; }
  std::vector<std::string> engine_versions() const override { return {"1", "2"}; }
  Status validate(const LaunchRequest& r) const override {
    if (mode(r) == "throw_validate") throw std::runtime_error("validate exploded");
    if (mode(r) == "hang_validate") std::this_thread::sleep_for(std::chrono::hours(1));
    return {};
  }
  std::vector<PortRequest> ports(const LaunchRequest& r) const override {
    if (mode(r) == "throw_ports") throw std::runtime_error("ports exploded");
    if (mode(r) == "hang_ports") std::this_thread::sleep_for(std::chrono::hours(1));
    if (mode(r) == "bad_ports") return {PortRequest{}};
    return {};
  }
  ReadinessRule readiness(const LaunchRequest& r, const LaunchContext&) const override {
    if (mode(r) == "throw_readiness") throw std::runtime_error("readiness exploded");
    return {};
  }
  Result<LaunchSpec> build(const LaunchRequest& r, const LaunchContext&) const override {
    const auto m = mode(r);
    if (m == "throw") throw std::runtime_error("build exploded");
    if (m == "throw_int") throw 42;
    if (m == "refuse") return internal_error("backend unavailable");
    if (m == "hang") std::this_thread::sleep_for(std::chrono::hours(1));
    LaunchSpec spec;
    spec.executable = "/bin/sleep";
    spec.argv = {"/bin/sleep", "600"};
    if (m == "garbage") spec.executable = "sleep";
    if (m == "escape") spec.files["../../../evil"] = "x";
    return spec;
  }

 private:
  static std::string mode(const LaunchRequest& r) {
    auto it = r.properties.find("mode");
    return it == r.properties.end() ? "ok" : it->second;
  }
};

LauncherPlugin* create(const PluginConfig&) {
  return new Misbehaving();
}
const PluginDescriptor kDescriptor{ECM_SDK_DESCRIPTOR_HEAD,
                                   "misbehaving",
                                   "0.1.0",
                                   kLauncherKind,
                                   &create,
                                   nullptr,
                                   nullptr,
                                   nullptr};

}  // namespace

ECM_PLUGIN(kDescriptor)
