// A launch hook (SDK 1.2) for the tests. It applies to the engine types in its config's `types`
// (every type when absent), and does what the request's properties ask:
//   hook_refuse=REASON  before_launch refuses with REASON
//   hook_throw=1        before_launch throws
//   hook_escape=1       before_launch adds a file outside the work dir (a bad spec)
// Otherwise it adds HOOKED_BY=launch_hook to the engine's environment. after_launch appends
// "started PID" or "failed: REASON" to <log_dir>/hook_after_launch when that dir exists.
#include <ecm/sdk/sdk.hpp>

#include <fstream>
#include <stdexcept>

namespace {

using namespace ecm::sdk;

class TestHook final : public LaunchHook {
 public:
  explicit TestHook(const PluginConfig& config) : types_(config.list("types")) {}

  std::vector<std::string> engine_types() const override { return types_; }

  Status before_launch(const LaunchRequest& request, const LaunchContext&,
                       LaunchSpec& spec) const override {
    const auto& p = request.properties;
    if (auto it = p.find("hook_refuse"); it != p.end()) return invalid_request(it->second);
    if (p.count("hook_throw") != 0) throw std::runtime_error("hook exploded");
    if (p.count("hook_escape") != 0) spec.files["../outside"] = "x";
    spec.env["HOOKED_BY"] = "launch_hook";
    return {};
  }

  void after_launch(const LaunchRequest&, const LaunchContext& context,
                    const LaunchOutcome& outcome) const override {
    std::ofstream out(context.log_dir + "/hook_after_launch", std::ios::app);
    if (!out) return;
    if (outcome.started) {
      out << "started " << outcome.pid << "\n";
    } else {
      out << "failed: " << outcome.error << "\n";
    }
  }

 private:
  std::vector<std::string> types_;
};

LaunchHook* create_hook(const PluginConfig& config) {
  return new TestHook(config);
}

const PluginDescriptor kDescriptor{ECM_SDK_DESCRIPTOR_HEAD,
                                   "launch_hook",
                                   "1.0.0",
                                   kHookKind,
                                   nullptr,
                                   &create_hook,
                                   nullptr,
                                   nullptr};

}  // namespace

ECM_PLUGIN(kDescriptor)
