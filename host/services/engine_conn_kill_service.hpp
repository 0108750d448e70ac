// EngineConnKillService: stops engines. Signals go to the engine's process group only through the
// process launcher, which knows only groups this ECM created.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "ecm/core/engine_conn.hpp"
#include "ecm/core/linux_process_launch.hpp"
#include "services/engine_conn_list_service.hpp"

namespace ecm::host {

struct StopOutcome {
  core::EngineConn engine;
  bool already_ended = false;
};

class EngineConnKillService {
 public:
  EngineConnKillService(EngineConnListService& engines,
                        core::LinuxProcessEngineConnLaunch& processes);

  // The stop signal to the group, SIGKILL after the grace; `force` sends SIGKILL at once.
  // Throws EcmException(kNotFound). Stopping an ended engine changes nothing and says so.
  StopOutcome stop(const std::string& engine_id, bool force, const std::string& reason);

  // Stops every engine not yet ended that belongs to `user` and/or is of `engine_type` (at least
  // one given, else kInvalidRequest). Ended engines are not listed.
  std::vector<StopOutcome> stop_matching(const std::optional<std::string>& user,
                                         const std::optional<std::string>& engine_type, bool force,
                                         const std::string& reason);

  // Stops every engine not yet ended and waits until they are gone, at most the longest stop grace
  // among them plus `deadline`.
  // Returns how many were still running at the deadline.
  std::size_t stop_all(const std::string& reason, std::chrono::milliseconds deadline);

 private:
  EngineConnListService& engines_;
  core::LinuxProcessEngineConnLaunch& processes_;
};

}  // namespace ecm::host
