#include "thrift/ecm_service_handler.hpp"

#include "thrift/rpc_guard.hpp"
#include "thrift/thrift_convert.hpp"

namespace ecm::host {
void EcmServiceHandler::launchEngineConn(ecm::thrift::EngineConn& out,
                                         const ecm::thrift::LaunchRequest& request) {
  rpc("launchEngineConn", [&] {
    if (request.launch_timeout_ms < 0) {
      throw core::EcmException(core::ErrorCode::kInvalidRequest, "launch_timeout_ms is negative");
    }
    LaunchOptions options{requested_resources(request),
                          std::chrono::milliseconds(request.launch_timeout_ms)};
    out = to_thrift(s_.launch.launch(to_core(request), options));
  });
}

void EcmServiceHandler::getEngineConn(ecm::thrift::EngineConn& out, const std::string& engine_id) {
  rpc("getEngineConn", [&] {
    auto e = s_.list.get(engine_id);
    if (!e) {
      throw core::EcmException(core::ErrorCode::kNotFound,
                               "no engine '" + engine_id.substr(0, 64) + "'");
    }
    out = to_thrift(*e);
  });
}

void EcmServiceHandler::listEngineConns(std::vector<ecm::thrift::EngineConn>& out,
                                        const ecm::thrift::EngineConnFilter& filter) {
  rpc("listEngineConns", [&] {
    auto engines = s_.list.list(to_core(filter));
    out.reserve(engines.size());
    for (const auto& e : engines)
      out.push_back(to_thrift(e));
  });
}

void EcmServiceHandler::stopEngineConn(ecm::thrift::StopResult& out,
                                       const ecm::thrift::StopRequest& request) {
  rpc("stopEngineConn", [&] {
    if (request.engine_id.empty()) {
      throw core::EcmException(core::ErrorCode::kInvalidRequest, "engine_id is required");
    }
    out = to_thrift(s_.kill.stop(request.engine_id, request.force, "stopped by request"));
  });
}

void EcmServiceHandler::stopEngineConns(std::vector<ecm::thrift::StopResult>& out,
                                        const ecm::thrift::StopRequest& request) {
  rpc("stopEngineConns", [&] {
    std::optional<std::string> user, type;
    if (!request.user.empty()) user = request.user;
    if (!request.engine_type.empty()) type = request.engine_type;
    for (const auto& o : s_.kill.stop_matching(user, type, request.force, "stopped by request")) {
      out.push_back(to_thrift(o));
    }
  });
}

void EcmServiceHandler::getResources(ecm::thrift::NodeResources& out) {
  rpc("getResources", [&] {
    out = to_thrift(s_.resources.snapshot());
    if (s_.cleanup) out.__set_disk(to_thrift(s_.cleanup->status()));
  });
}

void EcmServiceHandler::getEngineLog(ecm::thrift::LogPage& out,
                                     const ecm::thrift::LogRequest& request) {
  rpc("getEngineLog", [&] {
    if (request.engine_id.empty()) {
      throw core::EcmException(core::ErrorCode::kInvalidRequest, "engine_id is required");
    }
    auto e = s_.list.get(request.engine_id);
    if (!e) {
      throw core::EcmException(core::ErrorCode::kNotFound,
                               "no engine '" + request.engine_id.substr(0, 64) + "'");
    }
    out = to_thrift(logs_.read(e->log_dir, to_core(request)));
  });
}

}  // namespace ecm::host
