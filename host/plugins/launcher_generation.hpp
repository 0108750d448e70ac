// A launcher made by one loaded generation of a plugin. Every call into the plugin goes through
// here and is guarded: an exception or a malformed answer becomes an EcmException for that request
// and never leaves plugin-made objects (exceptions, strings owned by the plugin) in the host.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ecm/sdk/launcher.hpp"
#include "plugins/plugin_call.hpp"
#include "plugins/plugin_call_runner.hpp"
#include "plugins/plugin_library.hpp"

namespace ecm::host {

// What the administrator sets for a launcher plugin in the `[ecm]` table of its config file
// (conf/plugins/NAME.toml). The host reads that table; the plugin never sees it.
struct LauncherHostSettings {
  std::chrono::milliseconds launch_timeout{0};     // 0: the request's, the rule's or the node's
  std::chrono::milliseconds heartbeat_timeout{0};  // 0: heartbeats not required
  // How long one call into the plugin (validate, build...) may take; 0: the node's default.
  std::chrono::milliseconds call_timeout{0};
};

// Calls into launcher plugins per request (validate, build, readiness, ports) and the ones that
// failed: the plugin threw, gave a malformed answer, or reported its own failure (a refusal of an
// invalid request is not one). Owned by the registry, shared with every generation it makes.
struct PluginCallStats {
  std::atomic<std::uint64_t> calls{0};
  std::atomic<std::uint64_t> failures{0};
};

class LauncherGeneration {
 public:
  // Creates the plugin's launcher with its config. Throws PluginLoadError when the plugin throws,
  // returns null, or names an invalid engine type. `stats`, when set, counts the request calls.
  LauncherGeneration(std::shared_ptr<PluginLibrary> library, const sdk::PluginConfig& config,
                     std::uint64_t generation, std::shared_ptr<PluginCallStats> stats = nullptr,
                     std::shared_ptr<PluginCallRunner> runner = nullptr);

  const std::string& engine_type() const { return engine_type_; }
  const std::vector<std::string>& engine_versions() const { return engine_versions_; }
  bool serves_version(const std::string& version) const;
  const LauncherHostSettings& host_settings() const { return host_settings_; }
  const PluginLibrary& library() const { return *library_; }
  std::uint64_t generation() const { return generation_; }

  // Throws EcmException: kInvalidRequest when the plugin says the request is wrong, kPluginFailed
  // when the plugin fails or throws.
  void validate(const sdk::LaunchRequest& request) const;
  // As validate(); the spec is checked (validate_launch_spec) before it is returned.
  sdk::LaunchSpec build(const sdk::LaunchRequest& request, const sdk::LaunchContext& context) const;
  // The plugin's readiness rule (ABI 1.1+; a 1.0 plugin gets the default: the process exists),
  // checked by validate_readiness_rule. Throws EcmException(kPluginFailed).
  sdk::ReadinessRule readiness(const sdk::LaunchRequest& request,
                               const sdk::LaunchContext& context) const;
  // The ports the request needs (ABI 1.2+; an older plugin asks for none), checked by
  // core::validate_port_requests. Throws EcmException(kPluginFailed).
  std::vector<sdk::PortRequest> ports(const sdk::LaunchRequest& request) const;
  // The resources the plugin adds to the request's (ABI 1.4+; an older plugin adds none).
  std::vector<sdk::ResourceSpec> resources(const sdk::LaunchRequest& request) const;

 private:
  // A call into the plugin with the call timeout, on the runner (guarded_within).
  template <class Fn, class OnError>
  auto within(Fn fn, OnError&& on_error) const {
    const auto timeout =
        host_settings_.call_timeout.count() > 0
            ? host_settings_.call_timeout
            : (runner_ ? runner_->default_timeout() : std::chrono::milliseconds(0));
    return guarded_within(runner_.get(), timeout, std::move(fn), on_error);
  }

  std::shared_ptr<PluginLibrary> library_;
  std::shared_ptr<sdk::LauncherPlugin> plugin_;  // its deleter holds library_ too
  LauncherHostSettings host_settings_;
  std::string engine_type_;
  std::vector<std::string> engine_versions_;
  std::uint64_t generation_;
  std::shared_ptr<PluginCallStats> stats_;
  std::shared_ptr<PluginCallRunner> runner_;  // null: calls are made on the caller's thread
};

}  // namespace ecm::host
