// The `shell` launcher: runs the request's `command` property with an allowed shell.
// The worked example of SDK.md: everything a launcher plugin needs is in this file.
#include <ecm/sdk/sdk.hpp>

#include <algorithm>

namespace {

using namespace ecm::sdk;

class ShellLauncher final : public LauncherPlugin {
 public:
  explicit ShellLauncher(const PluginConfig& config)
      : default_shell_(config.get_or("shell", "/bin/sh")),
        allowed_shells_(config.list("allowed_shells")),
        default_env_(config.table("env")) {
    if (allowed_shells_.empty()) allowed_shells_ = {default_shell_};
  }

  std::string engine_type() const override { return "shell"; }
  std::vector<std::string> engine_versions() const override { return {}; }

  Status validate(const LaunchRequest& request) const override {
    auto command = request.properties.find("command");
    if (command == request.properties.end() || command->second.empty()) {
      return invalid_request("property 'command' is required (the shell command to run)");
    }
    auto shell = request.properties.find("shell");
    if (shell != request.properties.end() &&
        std::find(allowed_shells_.begin(), allowed_shells_.end(), shell->second) ==
            allowed_shells_.end()) {
      return invalid_request("shell '" + shell->second + "' is not allowed on this node");
    }
    return {};
  }

  Result<LaunchSpec> build(const LaunchRequest& request, const LaunchContext&) const override {
    auto status = validate(request);
    if (!status.ok()) return status.error();
    auto shell = request.properties.find("shell");
    LaunchSpec spec;
    spec.executable = shell != request.properties.end() ? shell->second : default_shell_;
    spec.argv = {spec.executable, "-c", request.properties.at("command")};
    spec.env = default_env_;
    for (const auto& [k, v] : request.env)
      spec.env[k] = v;
    return spec;
  }

 private:
  std::string default_shell_;
  std::vector<std::string> allowed_shells_;
  std::map<std::string, std::string> default_env_;
};

LauncherPlugin* create_launcher(const PluginConfig& config) {
  return new ShellLauncher(config);
}

const PluginDescriptor kDescriptor{ECM_SDK_DESCRIPTOR_HEAD, "shell", "1.0.0", kLauncherKind,
                                   &create_launcher};

}  // namespace

ECM_PLUGIN(kDescriptor)
