// What the first byte of a fuzz_launch_request input chooses: the request struct the rest of the
// bytes are decoded as (TBinaryProtocol), or a whole call message through the generated processor.
// Shared by the target and fuzz_seed_gen, which writes the seeds of corpus/launch_request/.
#pragma once

#include <cstdint>

namespace ecm::fuzz {

enum class Kind : std::uint8_t {
  kLaunchRequest,        // launchEngineConn
  kStopRequest,          // stopEngineConn, stopEngineConns
  kEngineConnFilter,     // listEngineConns
  kLogRequest,           // getEngineLog
  kSetHealthRequest,     // setHealth
  kUnloadPluginRequest,  // unloadPlugin
  kPruneCacheRequest,    // pruneCache
  kEngineReport,         // EngineConnCallbackService.report (an engine calling back)
  kMessage,              // a whole EngineConnManagerService call: header, method, arguments
  kCount,
};

inline Kind kind_of(std::uint8_t first) {
  return static_cast<Kind>(first % static_cast<std::uint8_t>(Kind::kCount));
}

// The decoding limits the fuzz target uses for every input.
inline constexpr int kMaxMessageBytes = 1 << 20;

}  // namespace ecm::fuzz
