#include "ecm/core/engine_conn.hpp"

#include <cstdio>
#include <random>

namespace ecm::core {

std::string new_engine_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[32];
  std::snprintf(buf, sizeof buf, "ec-%012llx%012llx",
                static_cast<unsigned long long>(rng() & 0xffffffffffffull),
                static_cast<unsigned long long>(rng() & 0xffffffffffffull));
  return buf;
}

std::string new_engine_token() {
  std::random_device rd;  // /dev/urandom: not predictable from another engine's token
  std::string out;
  char buf[9];
  for (int i = 0; i < 4; ++i) {
    std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(rd()));
    out += buf;
  }
  return out;
}

sdk::Event engine_event(sdk::EventKind kind, const EngineConn& e) {
  sdk::Event event;
  event.kind = kind;
  event.engine_id = e.id;
  event.user = e.user;
  event.engine_type = e.engine_type;
  return event;
}

}  // namespace ecm::core
