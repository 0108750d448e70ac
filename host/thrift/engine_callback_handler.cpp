#include "thrift/engine_callback_handler.hpp"

#include "thrift/rpc_guard.hpp"

namespace ecm::host {

void EngineCallbackHandler::report(const ecm::thrift::EngineReport& r) {
  rpc("report", [&] {
    EngineReport report;
    report.engine_id = r.engine_id;
    report.token = r.token;
    if (r.__isset.pid) report.pid = r.pid;
    if (r.__isset.status) {
      report.status = to_core(r.status);
      if (!report.status) {
        throw core::EcmException(core::ErrorCode::kInvalidRequest,
                                 "unknown status " + std::to_string(static_cast<int>(r.status)));
      }
    }
    if (r.__isset.address) report.address = r.address;
    if (r.__isset.message) report.message = r.message;
    service_.report(report);
  });
}

void EngineCallbackHandler::heartbeat(const std::string& engine_id, const std::string& token) {
  rpc("heartbeat", [&] { service_.heartbeat(engine_id, token); });
}

}  // namespace ecm::host
