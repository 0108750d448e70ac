// The Thrift face of EngineConnCallbackService: converts and delegates, nothing more.
#pragma once

#include "EngineConnCallbackService.h"
#include "services/engine_conn_callback_service.hpp"

namespace ecm::host {

class EngineCallbackHandler : public ecm::thrift::EngineConnCallbackServiceIf {
 public:
  explicit EngineCallbackHandler(EngineConnCallbackService& service) : service_(service) {}

  void report(const ecm::thrift::EngineReport& report) override;
  void heartbeat(const std::string& engine_id, const std::string& token) override;

 private:
  EngineConnCallbackService& service_;
};

}  // namespace ecm::host
