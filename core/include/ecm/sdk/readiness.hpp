// How an engine's Starting ends (SDK ABI 1.1): the host watches the rule and moves the engine to an
// available state when it holds, or fails it when the launch timeout passes first.
#pragma once

#include <chrono>
#include <string>

namespace ecm::sdk {

struct ReadinessRule {
  enum class Kind {
    kProcessAlive,  // the process is still alive `alive_for` after it started (0: at once)
    kCallback,      // the engine reports an available status through EngineConnCallbackService
    kPort,          // a TCP connection to 127.0.0.1:`port` succeeds
    kLogLine,       // a line of `stream` (stdout, stderr) matches `pattern` (ECMAScript regex)
  };
  Kind kind = Kind::kProcessAlive;
  std::chrono::milliseconds alive_for{0};
  int port = 0;
  std::string stream = "stdout";
  std::string pattern;
  // Not ready by then: stopped and Failed. 0: the request's or the host's launch timeout.
  std::chrono::milliseconds timeout{0};
};

}  // namespace ecm::sdk
