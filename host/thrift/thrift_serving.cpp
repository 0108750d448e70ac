#include "thrift/thrift_serving.hpp"

#include <cstring>

#include <thrift/TOutput.h>
#include <thrift/transport/TSSLServerSocket.h>

#include "util/log.hpp"

namespace ecm::host {

namespace at = ::apache::thrift;

std::shared_ptr<at::transport::TServerSocket> ThriftServing::server_socket(const std::string& host,
                                                                           int port) const {
  if (tls) return std::make_shared<at::transport::TSSLServerSocket>(host, port, tls);
  return std::make_shared<at::transport::TServerSocket>(host, port);
}

std::shared_ptr<at::transport::TTransportFactory> ThriftServing::transports() const {
  return std::make_shared<MessageBoundedTransportFactory>(limits);
}

std::shared_ptr<at::protocol::TProtocolFactory> ThriftServing::protocols() const {
  return bounded_protocol_factory(limits);
}

ThriftLimits thrift_limits(const EcmConfig& config) {
  ThriftLimits limits;
  limits.max_message_bytes = static_cast<std::int32_t>(config.max_message_bytes);
  return limits;
}

namespace {

// Thrift reports connection trouble through GlobalOutput, to stderr by default: into the "thrift"
// log instead. What every TLS connection may leave behind (a peer gone before the close_notify
// exchange: "SSL_shutdown: Broken pipe", the close after a failed handshake) and socket errors go
// to debug; the rest (a plain client on the TLS port, a malformed message) is a warning.
// (With an RM, ECMRegisterService's client installs its own routing later.)
void route_thrift_output() {
  at::GlobalOutput.setOutputFunction([](const char* message) {
    for (const char* routine : {"SSL_shutdown", "close failed", "TSocket::"}) {
      if (std::strstr(message, routine) != nullptr) {
        log("thrift")->debug("{}", message);
        return;
      }
    }
    log("thrift")->warn("{}", message);
  });
}

}  // namespace

ThriftServing main_port_serving(const EcmConfig& config) {
  route_thrift_output();
  ThriftServing serving;
  serving.limits = thrift_limits(config);
  if (!config.token.empty()) {
    log("daemon")->info("main port: every connection must authenticate with the token of {}",
                        config.token_file.string());
  }
  if (config.tls_cert.empty()) return serving;
  auto tls = std::make_shared<TlsSocketFactory>();
  tls->server(true);
  tls->use_certificate(config.tls_cert, "[server] tls_cert", config.tls_key, "[server] tls_key");
  if (!config.tls_client_ca.empty()) {
    tls->require_peer_signed_by(config.tls_client_ca, "[server] tls_client_ca");
  }
  serving.tls = std::move(tls);
  log("daemon")->info("main port: TLS with {}; client certificates {}", config.tls_cert.string(),
                      config.tls_client_ca.empty()
                          ? std::string("not asked for")
                          : "required, signed by " + config.tls_client_ca.string());
  return serving;
}

}  // namespace ecm::host
