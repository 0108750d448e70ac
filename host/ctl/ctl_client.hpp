// One Thrift connection to the ECM: TSocket (TSSLSocket with --tls-ca) + a buffered transport +
// TBinaryProtocol, authenticated with --token-file's token when given.
#pragma once

#include <memory>
#include <string>

#include <thrift/transport/TSSLSocket.h>
#include <thrift/transport/TTransportException.h>

#include "EngineConnCallbackService.h"
#include "EngineConnManagerService.h"
#include "ctl_args.hpp"

namespace ecm::ctl {

inline constexpr int kConnectTimeoutMs = 10'000;
inline constexpr int kIoTimeoutMs = 10'000;

class Client {
 public:
  // Connects at once, with TLS when security.tls_ca is set, and gives the token of
  // security.token_file to authenticate(). Throws ConnectionError with the reason, UsageError
  // when a file of `security` cannot be used, EcmError when the ECM refuses the token.
  explicit Client(const Address& address, const Security& security = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  ::ecm::thrift::EngineConnManagerServiceClient& service() { return *client_; }
  // The same connection spoken to as the engine callback service (ECM_CALLBACK_ADDRESS).
  ::ecm::thrift::EngineConnCallbackServiceClient& callback_service() { return *callback_; }

 private:
  // Outlives the socket it made (Thrift requires it).
  std::shared_ptr<::apache::thrift::transport::TSSLSocketFactory> tls_;
  std::shared_ptr<::apache::thrift::transport::TTransport> transport_;
  std::unique_ptr<::ecm::thrift::EngineConnManagerServiceClient> client_;
  std::unique_ptr<::ecm::thrift::EngineConnCallbackServiceClient> callback_;
};

// Thrift prints its own diagnostics to stderr; ecmctl reports errors itself, once.
void silence_thrift_logging();

// The token in `file` (trailing white space dropped). Throws UsageError when it cannot be read or
// holds none.
std::string read_token(const std::string& file);

// A short human reason for a transport failure ("connection refused", "no reply within 10s").
std::string describe_transport_error(const ::apache::thrift::transport::TTransportException& e);

}  // namespace ecm::ctl
