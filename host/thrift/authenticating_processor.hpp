// The shared-token check of the ECM's main Thrift port ([server] token_file), per connection.
//
// TThreadedServer asks its TProcessorFactory for a processor per connection: each gets an
// AuthenticatingProcessor, which holds that connection's `authenticated` flag. It answers
// authenticate() itself (the token compared in constant time) and refuses every other call
// before a successful one with EcmError UNAUTHENTICATED, reading the call's arguments without
// handing them to the handler. Without a token every connection starts authenticated and
// authenticate() accepts anything, so clients may always call it.
#pragma once

#include <memory>
#include <string>

#include <thrift/TProcessor.h>

#include "EngineConnManagerService.h"

namespace ecm::host {

class AuthenticatingProcessor : public ecm::thrift::EngineConnManagerServiceProcessor {
 public:
  // `token_digest`: SHA-256 (hex) of the token; empty: no token required. `peer`: the
  // connection's address, for the log.
  AuthenticatingProcessor(std::shared_ptr<ecm::thrift::EngineConnManagerServiceIf> handler,
                          std::string token_digest, std::string peer);

 protected:
  bool dispatchCall(::apache::thrift::protocol::TProtocol* in,
                    ::apache::thrift::protocol::TProtocol* out, const std::string& name,
                    std::int32_t seqid, void* context) override;

 private:
  void answer_authenticate(::apache::thrift::protocol::TProtocol* in,
                           ::apache::thrift::protocol::TProtocol* out, std::int32_t seqid);
  void refuse(::apache::thrift::protocol::TProtocol* in, ::apache::thrift::protocol::TProtocol* out,
              const std::string& name, std::int32_t seqid);

  std::string token_digest_;
  std::string peer_;
  bool authenticated_;
  bool refusal_logged_ = false;
};

class AuthenticatingProcessorFactory : public ::apache::thrift::TProcessorFactory {
 public:
  // `token`: the shared token; empty: none required.
  AuthenticatingProcessorFactory(std::shared_ptr<ecm::thrift::EngineConnManagerServiceIf> handler,
                                 const std::string& token);
  std::shared_ptr<::apache::thrift::TProcessor> getProcessor(
      const ::apache::thrift::TConnectionInfo& connection) override;

 private:
  std::shared_ptr<ecm::thrift::EngineConnManagerServiceIf> handler_;
  std::string token_digest_;
};

}  // namespace ecm::host
