#include "services/engine_conn_callback_service.hpp"

#include <openssl/crypto.h>

#include "ecm/core/engine_status.hpp"
#include "ecm/core/errors.hpp"
#include "ecm/core/linux_process_launch.hpp"
#include "ecm/core/names.hpp"
#include "util/log.hpp"

namespace ecm::host {
namespace {

using core::EcmException;
using core::ErrorCode;

constexpr std::size_t kMaxMessage = 4096;
constexpr std::size_t kMaxAddress = 256;

}  // namespace

EngineConnCallbackService::EngineConnCallbackService(EngineConnListService& engines,
                                                     EngineConnLaunchService& launch)
    : engines_(engines), launch_(launch) {}

core::EngineConn EngineConnCallbackService::authenticate(const std::string& engine_id,
                                                         const std::string& token) const {
  auto record = engines_.get(engine_id);
  if (!record)
    throw EcmException(ErrorCode::kNotFound, "no engine '" + engine_id.substr(0, 64) + "'");
  // Constant time: the comparison does not tell how much of a guessed token was right.
  if (token.size() != record->token.size() || record->token.empty() ||
      CRYPTO_memcmp(token.data(), record->token.data(), token.size()) != 0) {
    log("callback")->warn("[{}] callback with a wrong token refused", engine_id);
    throw EcmException(ErrorCode::kPermissionDenied, "wrong token for engine '" + engine_id + "'");
  }
  return *record;
}

void EngineConnCallbackService::report(const EngineReport& r) {
  auto record = authenticate(r.engine_id, r.token);
  if (r.message && (r.message->size() > kMaxMessage || !core::has_no_nul(*r.message))) {
    throw EcmException(ErrorCode::kInvalidRequest, "message longer than 4096 bytes or has NUL");
  }
  if (r.address && (r.address->size() > kMaxAddress || !core::has_no_nul(*r.address))) {
    throw EcmException(ErrorCode::kInvalidRequest, "address longer than 256 bytes or has NUL");
  }
  if (r.status && !core::is_available(*r.status)) {
    throw EcmException(ErrorCode::kInvalidRequest,
                       std::string("an engine may report only Unlock, Locked, Idle, Busy or "
                                   "Running, not ") +
                           std::string(core::to_string(*r.status)));
  }
  if (r.pid) {
    // The reported process must belong to the engine's own process group: an engine cannot make
    // the ECM watch (or later signal) a process it did not start.
    auto group = core::read_process_group(*r.pid);
    if (!group || *group != record.pid) {
      throw EcmException(ErrorCode::kInvalidRequest,
                         "pid " + std::to_string(*r.pid) + " is not in the engine's process group");
    }
  }
  if (core::is_ended(record.status)) {
    throw EcmException(ErrorCode::kInvalidRequest, "engine '" + r.engine_id + "' has ended");
  }
  const bool moves = r.status && *r.status != record.status;
  auto refuse_move = [&] {
    return EcmException(ErrorCode::kInvalidRequest,
                        std::string("engine cannot move from ") +
                            std::string(core::to_string(record.status)) + " to " +
                            std::string(core::to_string(*r.status)));
  };
  if (moves && !core::can_transition(record.status, *r.status)) throw refuse_move();
  // Fields first, status last: whoever sees the new status also sees the address and message the
  // engine sent with it.
  engines_.update(r.engine_id, [&](core::EngineConn& e) {
    if (r.pid) e.reported_pid = *r.pid;
    if (r.address) e.service_address = *r.address;
    if (r.message) e.last_message = *r.message;
    e.last_heartbeat = core::Clock::now();
  });
  if (moves && !launch_.mark_ready(r.engine_id, *r.status)) throw refuse_move();
}

void EngineConnCallbackService::heartbeat(const std::string& engine_id, const std::string& token) {
  authenticate(engine_id, token);
  engines_.update(engine_id, [](core::EngineConn& e) { e.last_heartbeat = core::Clock::now(); });
}

}  // namespace ecm::host
