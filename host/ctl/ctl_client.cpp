#include "ctl_client.hpp"

#include <thrift/TOutput.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TSocket.h>

#include "ctl_errors.hpp"

namespace ecm::ctl {

using ::apache::thrift::protocol::TBinaryProtocol;
using ::apache::thrift::transport::TBufferedTransport;
using ::apache::thrift::transport::TSocket;
using ::apache::thrift::transport::TTransportException;

Client::Client(const Address& address) {
  auto socket = std::make_shared<TSocket>(address.host, address.port);
  socket->setConnTimeout(kConnectTimeoutMs);
  socket->setRecvTimeout(kIoTimeoutMs);
  socket->setSendTimeout(kIoTimeoutMs);
  transport_ = std::make_shared<TBufferedTransport>(socket);
  try {
    transport_->open();
  } catch (const TTransportException& e) {
    throw ConnectionError(describe_transport_error(e));
  }
  auto protocol = std::make_shared<TBinaryProtocol>(transport_);
  client_ = std::make_unique<::ecm::thrift::EngineConnManagerServiceClient>(protocol);
  callback_ = std::make_unique<::ecm::thrift::EngineConnCallbackServiceClient>(protocol);
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
