// How the daemon serves a Thrift port: plain TCP or TLS, and the limits on what one message may
// make it read and allocate. The main (RM/admin) port gets both from [server]; the engine
// callback port gets the limits only.
#pragma once

#include <memory>
#include <string>

#include <thrift/protocol/TProtocol.h>
#include <thrift/transport/TServerSocket.h>
#include <thrift/transport/TTransport.h>

#include "config/ecm_config.hpp"
#include "thrift/message_limits.hpp"
#include "thrift/tls_socket_factory.hpp"

namespace ecm::host {

struct ThriftServing {
  std::shared_ptr<TlsSocketFactory> tls;  // null: plain TCP
  ThriftLimits limits;

  // TSSLServerSocket with `tls`, else TServerSocket; not listening yet.
  std::shared_ptr<::apache::thrift::transport::TServerSocket> server_socket(const std::string& host,
                                                                            int port) const;
  std::shared_ptr<::apache::thrift::transport::TTransportFactory> transports() const;
  std::shared_ptr<::apache::thrift::protocol::TProtocolFactory> protocols() const;
};

ThriftLimits thrift_limits(const EcmConfig& config);

// The main port's: TLS from tls_cert / tls_key / tls_client_ca when set. Throws
// std::runtime_error naming the [server] key and the file that cannot be used.
ThriftServing main_port_serving(const EcmConfig& config);

}  // namespace ecm::host
