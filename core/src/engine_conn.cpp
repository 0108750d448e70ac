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

}  // namespace ecm::core
