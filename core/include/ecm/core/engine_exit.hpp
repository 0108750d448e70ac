// How the end of an engine's process is written into its record: one rule, used everywhere.
#pragma once

#include "ecm/core/engine_conn.hpp"
#include "ecm/core/linux_process_launch.hpp"

namespace ecm::core {

// Sets status, exit code or signal, end time and reasons. An engine being stopped (ShuttingDown)
// ends as Success whatever signal ended it, unless it was stopped for a failure (failure_reason
// set, e.g. a launch timeout), which ends it Failed; otherwise exit code 0 is Success and anything
// else (non-zero code, a signal, an unknown status) is Failed with the reason spelled out.
void record_exit(EngineConn& engine, const ExitStatus& exit, Clock::time_point now);

std::string describe_exit(const ExitStatus& exit);

}  // namespace ecm::core
