// What one Thrift message may make its reader read and allocate ([server] max_message_size).
//
// Thrift 0.17 has the pieces but does not put them together for a buffered transport: the
// binary protocol sizes a string by the length the peer declares (std::string::resize before a
// byte of it arrives) unless its factory has a string limit; it sizes a list of structs by the
// declared count unless it has a container limit; and TBufferedTransport counts only the bytes a
// string borrows from its buffer against TConfiguration's max message size, and never resets the
// count, so a long-lived connection would end up refused after max_message_size bytes of strings
// in all. MessageBoundedTransport counts every byte read and starts afresh at each message's
// end; bounded_protocol_factory() puts the string and container limits on the protocol.
#pragma once

#include <cstdint>
#include <memory>

#include <thrift/TConfiguration.h>
#include <thrift/protocol/TProtocol.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TVirtualTransport.h>

namespace ecm::host {

struct ThriftLimits {
  // The most bytes one message may take on the wire; also the longest string it may declare.
  std::int32_t max_message_bytes = 16 << 20;
  // The most elements one list, set or map may declare. The ECM refuses far fewer in every request
  // it reads (256 map entries, 1000 resources, 64 log keywords): this only bounds what a forged
  // count makes the decoder allocate before the elements arrive.
  std::int32_t max_container_elements = 1 << 16;
};

// TBufferedTransport whose reads all count against TConfiguration's max message size; the
// count starts afresh when a message has been read (readEnd(), which the generated processors and
// clients call after each message). Past the size: TTransportException END_OF_FILE
// ("MaxMessageSize reached"), and the server closes the connection.
class MessageBoundedTransport : public ::apache::thrift::transport::TBufferedTransport {
 public:
  // 64 KiB buffers, not TBufferedTransport's default 512 bytes: a listEngineConns of 1,000
  // engines (about 500 KB) would otherwise take a thousand send()s, and as many recv()s in ecmctl.
  static constexpr std::uint32_t kBufferBytes = 64 * 1024;

  MessageBoundedTransport(std::shared_ptr<::apache::thrift::transport::TTransport> transport,
                          std::shared_ptr<::apache::thrift::TConfiguration> config)
      : TBufferedTransport(std::move(transport), kBufferBytes, kBufferBytes, std::move(config)) {}

  // What every protocol read goes through (TTransport's virtual entry points).
  std::uint32_t read_virt(std::uint8_t* buf, std::uint32_t len) override {
    const std::uint32_t got = TBufferedTransport::read(buf, len);  // checks len is left
    countConsumedMessageBytes(got);
    return got;
  }
  std::uint32_t readAll_virt(std::uint8_t* buf, std::uint32_t len) override {
    checkReadBytesAvailable(len);
    const std::uint32_t got = TBufferedTransport::readAll(buf, len);
    countConsumedMessageBytes(got);
    return got;
  }
  std::uint32_t readEnd() override {
    resetConsumedMessageSize();
    return 0;
  }
};

// Wraps each connection's socket in a MessageBoundedTransport sharing one TConfiguration.
class MessageBoundedTransportFactory : public ::apache::thrift::transport::TTransportFactory {
 public:
  explicit MessageBoundedTransportFactory(const ThriftLimits& limits);
  std::shared_ptr<::apache::thrift::transport::TTransport> getTransport(
      std::shared_ptr<::apache::thrift::transport::TTransport> transport) override;
  const std::shared_ptr<::apache::thrift::TConfiguration>& configuration() const { return config_; }

 private:
  std::shared_ptr<::apache::thrift::TConfiguration> config_;
};

// TBinaryProtocol with the string and container limits, reading strictly (a message must start
// with the protocol's version word, as every Thrift binary client since 0.2 sends by default:
// anything else is refused before its first "string" is sized).
std::shared_ptr<::apache::thrift::protocol::TProtocolFactory> bounded_protocol_factory(
    const ThriftLimits& limits);

}  // namespace ecm::host
