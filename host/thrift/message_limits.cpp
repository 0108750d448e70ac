#include "thrift/message_limits.hpp"

#include <thrift/protocol/TBinaryProtocol.h>

namespace ecm::host {

namespace at = ::apache::thrift;

MessageBoundedTransportFactory::MessageBoundedTransportFactory(const ThriftLimits& limits)
    : config_(std::make_shared<at::TConfiguration>(limits.max_message_bytes,
                                                   // Only framed transports read frames; the
                                                   // ECM's are buffered. Kept consistent anyway.
                                                   limits.max_message_bytes)) {}

std::shared_ptr<at::transport::TTransport> MessageBoundedTransportFactory::getTransport(
    std::shared_ptr<at::transport::TTransport> transport) {
  return std::make_shared<MessageBoundedTransport>(std::move(transport), config_);
}

std::shared_ptr<at::protocol::TProtocolFactory> bounded_protocol_factory(
    const ThriftLimits& limits) {
  return std::make_shared<at::protocol::TBinaryProtocolFactory>(
      limits.max_message_bytes, limits.max_container_elements, /*strict_read=*/true,
      /*strict_write=*/true);
}

}  // namespace ecm::host
