#include "ecm/core/engine_exit.hpp"

#include <cstring>

namespace ecm::core {

std::string describe_exit(const ExitStatus& exit) {
  if (exit.code) return "exited with code " + std::to_string(*exit.code);
  if (exit.signal) {
    const char* name = sigabbrev_np(*exit.signal);
    return "killed by signal " + std::to_string(*exit.signal) +
           (name ? std::string(" (SIG") + name + ")" : std::string());
  }
  return "exit status unknown (reaped elsewhere)";
}

void record_exit(EngineConn& e, const ExitStatus& exit, Clock::time_point now) {
  e.exit_code = exit.code;
  e.exit_signal = exit.signal;
  e.ended_at = now;
  if (e.status == EngineStatus::kShuttingDown) {
    // Stopped on request: Success. Stopped because it failed (launch timeout...): Failed.
    e.status = e.failure_reason.empty() ? EngineStatus::kSuccess : EngineStatus::kFailed;
    return;
  }
  e.stop_reason = "exited on its own";
  if (exit.success()) {
    e.status = EngineStatus::kSuccess;
  } else {
    e.status = EngineStatus::kFailed;
    if (e.failure_reason.empty()) e.failure_reason = describe_exit(exit);
  }
}

}  // namespace ecm::core
