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

  // The request calls. Each trip to the call runner (one hand-over to a worker thread, about as
  // costly as the calls themselves) makes several calls when a launch needs them together. Every
  // answer is checked; errors name the call that failed. Throws EcmException: kInvalidRequest when
  // the plugin says the request is wrong, kPluginFailed when it fails, throws, answers something
  // malformed or does not return within the call timeout.

  // What the plugin says of a request before anything is made for it: validate(), then, when it
  // accepts, the resources it adds (ABI 1.4+) and the ports it needs (ABI 1.2+, checked by
  // core::validate_port_requests). An older plugin adds no resource and asks for no port.
  struct Admission {
    std::vector<sdk::ResourceSpec> resources;
    std::vector<sdk::PortRequest> ports;
  };
  Admission admit(const sdk::LaunchRequest& request) const;
  // build() (the spec checked by validate_launch_spec) and the readiness rule (ABI 1.1+, checked
  // by validate_readiness_rule; a 1.0 plugin gets the default: the process exists).
  struct Plan {
    sdk::LaunchSpec spec;
    sdk::ReadinessRule readiness;
  };
  Plan plan(const sdk::LaunchRequest& request, const sdk::LaunchContext& context) const;

 private:
  // Names the call under way in a trip, for its errors, and counts it.
  class CallScope {
   public:
    explicit CallScope(std::shared_ptr<PluginCallStats> stats) : stats_(std::move(stats)) {}
    void enter(const char* call) {
      call_.store(call);
      if (stats_) stats_->calls.fetch_add(1, std::memory_order_relaxed);
    }
    const char* call() const { return call_.load(); }

   private:
    std::shared_ptr<PluginCallStats> stats_;
    std::atomic<const char*> call_{"call"};
  };
  // One trip: `fn(scope)` makes its calls on the runner within the call timeout (guarded_within).
  // `fn` must own what it uses (copies of the request...): a call given up on goes on running.
  template <class Fn>
  auto trip(Fn fn) const {
    auto scope = std::make_shared<CallScope>(stats_);
    const auto timeout =
        host_settings_.call_timeout.count() > 0
            ? host_settings_.call_timeout
            : (runner_ ? runner_->default_timeout() : std::chrono::milliseconds(0));
    auto failed = [&](const std::string& m) { fail(std::string(scope->call()) + " " + m); };
    return guarded_within(
        runner_.get(), timeout, [fn = std::move(fn), scope]() mutable { return fn(*scope); },
        failed);
  }
  // Throws EcmException(kPluginFailed, "plugin 'NAME' " + what), counted as a failed call.
  [[noreturn]] void fail(const std::string& what) const;
  // A refusal or failure the plugin reported itself (sdk::Error): `context` + its message.
  [[noreturn]] void reported(const sdk::Error& e, const std::string& context) const;
  // validate()'s refusal: its message, or that it gave none.
  [[noreturn]] void refused(const sdk::Error& e) const;
  // A malformed answer (a check threw `e`): the plugin named first, counted when kPluginFailed.
  [[noreturn]] void malformed(const core::EcmException& e) const;

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
