// EngineConnCallbackService: what an engine tells the ECM about itself. Every call carries the
// engine's id and its secret token (ECM_ENGINE_TOKEN), so an engine can only speak for itself.
#pragma once

#include <optional>
#include <string>

#include "ecm/core/engine_status.hpp"
#include "services/engine_conn_launch_service.hpp"
#include "services/engine_conn_list_service.hpp"

namespace ecm::host {

struct EngineReport {
  std::string engine_id;
  std::string token;
  std::optional<int> pid;                    // the real engine, when a wrapper started it
  std::optional<core::EngineStatus> status;  // an available status
  std::optional<std::string> address;        // host:port the engine serves
  std::optional<std::string> message;
};

class EngineConnCallbackService {
 public:
  EngineConnCallbackService(EngineConnListService& engines, EngineConnLaunchService& launch);

  // Throws EcmException: kNotFound (unknown engine), kPermissionDenied (wrong token),
  // kInvalidRequest (a status that is not available, a pid outside the engine's process group, an
  // illegal transition, an oversized field). Nothing is changed when it throws.
  void report(const EngineReport& report);
  void heartbeat(const std::string& engine_id, const std::string& token);

 private:
  core::EngineConn authenticate(const std::string& engine_id, const std::string& token) const;

  EngineConnListService& engines_;
  EngineConnLaunchService& launch_;
};

}  // namespace ecm::host
