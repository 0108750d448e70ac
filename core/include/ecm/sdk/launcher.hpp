// The launcher plugin interface: a plugin *describes* how to start an engine of its type; the host
// creates the directories, writes the files, spawns, watches and stops the process.
#pragma once

#include <chrono>
#include <csignal>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ecm/sdk/localizer.hpp"
#include "ecm/sdk/readiness.hpp"
#include "ecm/sdk/result.hpp"

namespace ecm::sdk {

// A launch request as the plugin sees it, already validated by the host (user and type are safe
// names, maps hold no NUL bytes).
struct LaunchRequest {
  std::string ticket_id;
  std::string user;
  std::string engine_type;
  std::string engine_version;  // empty: the plugin's choice
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> properties;  // engine-type specific settings
  std::map<std::string, std::string> env;         // environment the caller asks for
};

// A TCP port the engine needs (ABI 1.2), asked for by LauncherPlugin::ports().
struct PortRequest {
  enum class Mode {
    // The host binds a listening socket (port chosen by the kernel) and hands it to the engine
    // already open, as systemd does: fds 3, 4, ... in request order, LISTEN_FDS, LISTEN_FDNAMES
    // and LISTEN_PID set. Nobody else can take the port between choosing and using it.
    kSocket,
    // For an engine that must bind itself: a port from the node's configured range, held for
    // this engine until it ends (no other engine of this ECM gets it meanwhile).
    kReserved,
  };
  std::string name;  // [A-Za-z0-9_]+, unique within the request; the engine sees ECM_PORT_<NAME>
  Mode mode = Mode::kSocket;
};

// Where the engine will live, decided by the host before build() is called.
struct LaunchContext {
  std::string engine_id;
  std::string work_dir;  // absolute, created by the host, the engine's own
  std::string log_dir;   // absolute, created by the host; stdout and stderr go here
  // ABI 1.2 (appended: a 1.1 plugin never reads it). Port number of each requested port by name.
  std::map<std::string, int> ports;
};

// How to start the engine. Paths in `directories` and `files` are relative to the work dir and may
// not escape it; the host refuses a spec that tries.
struct LaunchSpec {
  std::string executable;                    // absolute path of the program to exec
  std::vector<std::string> argv;             // argv[0] included; empty means {executable}
  std::map<std::string, std::string> env;    // added to the host's minimal base environment
  std::string working_dir;                   // relative to the work dir; empty: the work dir itself
  std::vector<std::string> directories;      // created (0700, each level) before launch
  std::map<std::string, std::string> files;  // relative path -> content, written before launch
  int stop_signal = SIGTERM;                 // sent to the engine's process group on stop
  std::chrono::milliseconds stop_grace{0};   // 0: the host's configured grace; then SIGKILL
};

class LauncherPlugin {
 public:
  virtual ~LauncherPlugin() = default;
  // The engine type this launcher serves ("shell"). A safe name: [A-Za-z0-9._-]+.
  virtual std::string engine_type() const = 0;
  // Versions served; an empty list serves any requested version.
  virtual std::vector<std::string> engine_versions() const = 0;
  // Cheap checks of the request (required properties present and well formed).
  virtual Status validate(const LaunchRequest& request) const = 0;
  // The launch spec for a validated request. May block briefly; never spawns anything itself.
  virtual Result<LaunchSpec> build(const LaunchRequest& request,
                                   const LaunchContext& context) const = 0;
  // ABI 1.1. How Starting ends for this request; the default: the process exists. The host calls
  // it only on plugins built against 1.1 or later (a 1.0 plugin's vtable has no such slot).
  virtual ReadinessRule readiness(const LaunchRequest& request,
                                  const LaunchContext& context) const {
    (void)request;
    (void)context;
    return {};
  }
  // ABI 1.2. The ports this request needs; the host assigns them before build() and puts the
  // numbers in LaunchContext::ports and ECM_PORT_<NAME>. Default: none.
  virtual std::vector<PortRequest> ports(const LaunchRequest& request) const {
    (void)request;
    return {};
  }
  // ABI 1.4. Resources the engine needs besides those the request names (the plugin knows where
  // its runtime lives): fetched, verified and linked into the work dir before build() is called.
  // Default: none.
  virtual std::vector<ResourceSpec> resources(const LaunchRequest& request) const {
    (void)request;
    return {};
  }
  // ABI minor bumps append new virtual functions here, never above.
};

}  // namespace ecm::sdk
