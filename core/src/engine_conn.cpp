#include "ecm/core/engine_conn.hpp"

#include <sys/random.h>

#include <cerrno>
#include <cstdio>
#include <iterator>
#include <random>
#include <system_error>

#include <boost/algorithm/hex.hpp>

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
  // The kernel's CSPRNG: not predictable from another engine's token. One call for 16 bytes.
  unsigned char bytes[16];
  std::size_t got = 0;
  while (got < sizeof bytes) {
    const ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::system_error(errno, std::generic_category(), "getrandom");
    got += static_cast<std::size_t>(n);
  }
  std::string out;
  boost::algorithm::hex_lower(std::begin(bytes), std::end(bytes), std::back_inserter(out));
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
