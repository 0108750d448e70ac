#include "thrift/authenticating_processor.hpp"

#include <openssl/crypto.h>

#include <thrift/transport/TSocket.h>

#include "util/log.hpp"
#include "util/sha256.hpp"

namespace ecm::host {
namespace {

namespace at = ::apache::thrift;
namespace api = ::ecm::thrift;

// Digests of equal length compared in constant time: neither the token's length nor the place
// of the first difference shows in the time the answer takes.
bool same_digest(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

api::EcmError unauthenticated(const std::string& message) {
  api::EcmError e;
  e.__set_code(api::ErrorCode::UNAUTHENTICATED);
  e.__set_message(message);
  return e;
}

std::string peer_of(const at::TConnectionInfo& connection) {
  auto socket = std::dynamic_pointer_cast<at::transport::TSocket>(connection.transport);
  if (!socket) return "unknown peer";
  try {
    return socket->getPeerAddress() + ":" + std::to_string(socket->getPeerPort());
  } catch (const std::exception&) {
    return "unknown peer";
  }
}

}  // namespace

AuthenticatingProcessor::AuthenticatingProcessor(
    std::shared_ptr<api::EngineConnManagerServiceIf> handler, std::string token_digest,
    std::string peer)
    : EngineConnManagerServiceProcessor(std::move(handler)),
      token_digest_(std::move(token_digest)),
      peer_(std::move(peer)),
      authenticated_(token_digest_.empty()) {}

bool AuthenticatingProcessor::dispatchCall(at::protocol::TProtocol* in,
                                           at::protocol::TProtocol* out, const std::string& name,
                                           std::int32_t seqid, void* context) {
  if (name == "authenticate") {
    answer_authenticate(in, out, seqid);
    return true;
  }
  if (!authenticated_) {
    refuse(in, out, name, seqid);
    return true;
  }
  return EngineConnManagerServiceProcessor::dispatchCall(in, out, name, seqid, context);
}

void AuthenticatingProcessor::answer_authenticate(at::protocol::TProtocol* in,
                                                  at::protocol::TProtocol* out,
                                                  std::int32_t seqid) {
  api::EngineConnManagerService_authenticate_args args;
  args.read(in);
  in->readMessageEnd();
  in->getTransport()->readEnd();

  api::EngineConnManagerService_authenticate_result result;
  if (!token_digest_.empty()) {
    // The last authenticate decides: a wrong token after a right one unauthenticates.
    authenticated_ = same_digest(sha256_hex(args.token), token_digest_);
    if (!authenticated_) {
      log("thrift")->warn("wrong token from {}: connection not authenticated", peer_);
      result.error = unauthenticated("wrong token");
      result.__isset.error = true;
    }
  }
  out->writeMessageBegin("authenticate", at::protocol::T_REPLY, seqid);
  result.write(out);
  out->writeMessageEnd();
  out->getTransport()->writeEnd();
  out->getTransport()->flush();
}

// The call's arguments are read past, unparsed beyond their structure, and the reply is the
// method's result struct with its EcmError field (1, as every method of the service declares it)
// set: the client's generated code throws it as EcmError.
void AuthenticatingProcessor::refuse(at::protocol::TProtocol* in, at::protocol::TProtocol* out,
                                     const std::string& name, std::int32_t seqid) {
  in->skip(at::protocol::T_STRUCT);
  in->readMessageEnd();
  in->getTransport()->readEnd();
  if (!refusal_logged_) {
    refusal_logged_ = true;
    log("thrift")->warn("{} from {} refused: the connection has not authenticated",
                        name.substr(0, 64), peer_);
  }
  const auto error = unauthenticated("this ECM requires a token: call authenticate first");
  out->writeMessageBegin(name, at::protocol::T_REPLY, seqid);
  out->writeStructBegin("result");
  out->writeFieldBegin("error", at::protocol::T_STRUCT, 1);
  error.write(out);
  out->writeFieldEnd();
  out->writeFieldStop();
  out->writeStructEnd();
  out->writeMessageEnd();
  out->getTransport()->writeEnd();
  out->getTransport()->flush();
}

AuthenticatingProcessorFactory::AuthenticatingProcessorFactory(
    std::shared_ptr<api::EngineConnManagerServiceIf> handler, const std::string& token)
    : handler_(std::move(handler)), token_digest_(token.empty() ? "" : sha256_hex(token)) {}

std::shared_ptr<at::TProcessor> AuthenticatingProcessorFactory::getProcessor(
    const at::TConnectionInfo& connection) {
  return std::make_shared<AuthenticatingProcessor>(handler_, token_digest_, peer_of(connection));
}

}  // namespace ecm::host
