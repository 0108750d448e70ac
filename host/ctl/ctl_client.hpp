// One Thrift connection to the ECM: TSocket + TBufferedTransport + TBinaryProtocol.
#pragma once

#include <memory>
#include <string>

#include <thrift/transport/TTransportException.h>

#include "EngineConnCallbackService.h"
#include "EngineConnManagerService.h"
#include "ctl_args.hpp"

namespace ecm::ctl {

inline constexpr int kConnectTimeoutMs = 10'000;
inline constexpr int kIoTimeoutMs = 10'000;

class Client {
 public:
  // Connects at once. Throws ConnectionError with the reason.
  explicit Client(const Address& address);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  ::ecm::thrift::EngineConnManagerServiceClient& service() { return *client_; }
  // The same connection spoken to as the engine callback service (ECM_CALLBACK_ADDRESS).
  ::ecm::thrift::EngineConnCallbackServiceClient& callback_service() { return *callback_; }

 private:
  std::shared_ptr<::apache::thrift::transport::TTransport> transport_;
  std::unique_ptr<::ecm::thrift::EngineConnManagerServiceClient> client_;
  std::unique_ptr<::ecm::thrift::EngineConnCallbackServiceClient> callback_;
};

// Thrift prints its own diagnostics to stderr; ecmctl reports errors itself, once.
void silence_thrift_logging();

// A short human reason for a transport failure ("connection refused", "no reply within 10s").
std::string describe_transport_error(const ::apache::thrift::transport::TTransportException& e);

}  // namespace ecm::ctl
