#include "ctl_client.hpp"

#include <cctype>
#include <csignal>
#include <fstream>
#include <iterator>
#include <limits>

#include <thrift/TOutput.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TSocket.h>

#include "ctl_errors.hpp"
#include "thrift/message_limits.hpp"
#include "thrift/tls_socket_factory.hpp"

namespace ecm::ctl {

using ::apache::thrift::protocol::TBinaryProtocol;
using ::apache::thrift::transport::TSocket;
using ::apache::thrift::transport::TTransportException;

Client::Client(const Address& address, const Security& security) {
  std::string token;
  if (!security.token_file.empty()) token = read_token(security.token_file);
  std::shared_ptr<TSocket> socket;
  if (!security.tls_ca.empty()) {
    // OpenSSL writes to the socket with write(2): an ECM that has closed the connection (it
    // refused our certificate) would raise SIGPIPE and end ecmctl without a word.
    std::signal(SIGPIPE, SIG_IGN);
    auto tls = std::make_shared<host::TlsSocketFactory>();
    try {
      // Verifies the ECM's certificate chain and that it names address.host (DNS or IP).
      tls->require_peer_signed_by(security.tls_ca, "--tls-ca");
      if (!security.tls_cert.empty()) {
        tls->use_certificate(security.tls_cert, "--tls-cert", security.tls_key, "--tls-key");
      }
    } catch (const std::runtime_error& e) {
      throw UsageError(e.what());
    }
    socket = tls->createSocket(address.host, address.port);
    tls_ = std::move(tls);
  } else {
    socket = std::make_shared<TSocket>(address.host, address.port);
  }
  socket->setConnTimeout(kConnectTimeoutMs);
  socket->setRecvTimeout(kIoTimeoutMs);
  socket->setSendTimeout(kIoTimeoutMs);
  // Each reply counts afresh against the max message size (TBufferedTransport never resets its
  // count: a long `logs -f` would be cut once its replies added up to it). The ECM's replies are
  // trusted in size: a page of long log lines may be large.
  auto config = std::make_shared<::apache::thrift::TConfiguration>();
  config->setMaxMessageSize(std::numeric_limits<int>::max());
  transport_ = std::make_shared<host::MessageBoundedTransport>(socket, std::move(config));
  try {
    transport_->open();
  } catch (const TTransportException& e) {
    throw ConnectionError(describe_transport_error(e));
  }
  auto protocol = std::make_shared<TBinaryProtocol>(transport_);
  client_ = std::make_unique<::ecm::thrift::EngineConnManagerServiceClient>(protocol);
  callback_ = std::make_unique<::ecm::thrift::EngineConnCallbackServiceClient>(protocol);
  if (!token.empty()) client_->authenticate(token);
}

std::string read_token(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw UsageError("--token-file " + file + ": cannot read it");
  std::string token((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back())))
    token.pop_back();
  if (token.empty()) throw UsageError("--token-file " + file + ": empty");
  return token;
}

Client::~Client() {
  try {
    transport_->close();
  } catch (...) {  // NOLINT(bugprone-empty-catch): nothing useful to do on the way out
  }
}

void silence_thrift_logging() {
  ::apache::thrift::GlobalOutput.setOutputFunction([](const char*) {});
}

std::string describe_transport_error(const TTransportException& e) {
  switch (e.getType()) {
    case TTransportException::TIMED_OUT:
      return "no reply within " + std::to_string(kIoTimeoutMs / 1000) + "s";
    case TTransportException::END_OF_FILE:
      return "connection closed by the server";
    default:
      return e.what();
  }
}

}  // namespace ecm::ctl
