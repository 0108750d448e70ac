// Launch hooks (SDK ABI 1.2), Linkis's ECMHook: code a plugin runs around every launch of the
// engine types it names, whichever plugin launches them. A site plugin can, say, add a proxy or
// Kerberos setting to every engine's environment, or record each launch in its own system.
#pragma once

#include <string>
#include <vector>

#include "ecm/sdk/launcher.hpp"
#include "ecm/sdk/result.hpp"

namespace ecm::sdk {

// What came of a launch, as after_launch sees it.
struct LaunchOutcome {
  bool started = false;  // the process was spawned
  int pid = 0;           // when started
  std::string error;     // why not, when !started
};

class LaunchHook {
 public:
  virtual ~LaunchHook() = default;
  // The engine types this hook applies to; an empty list: every type.
  virtual std::vector<std::string> engine_types() const = 0;
  // After the launcher's build(), before anything is spawned. May change the spec (the host checks
  // it again afterwards, as it checks build()'s). An error fails the launch: nothing is started,
  // the engine is Failed with the hook's message and its resources are released. Hooks run in
  // the order of their plugin names.
  virtual Status before_launch(const LaunchRequest& request, const LaunchContext& context,
                               LaunchSpec& spec) const = 0;
  // Once the process is spawned, or the launch failed after before_launch ran. Observes only:
  // an exception here is logged and changes nothing. Keep it short: the launch waits for it.
  virtual void after_launch(const LaunchRequest& request, const LaunchContext& context,
                            const LaunchOutcome& outcome) const = 0;
  // ABI minor bumps append new virtual functions here, never above.
};

}  // namespace ecm::sdk
