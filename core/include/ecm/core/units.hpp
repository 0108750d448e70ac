// Durations and sizes as people write them in config and on the command line: "30s", "512MiB".
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ecm::core {

// "250ms", "30s", "5m", "2h", "1d". A bare number has no unit and is refused.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
// "512B", "64KiB", "512MiB", "2GiB", "1TiB" (also KB/MB/GB/TB as powers of 1000).
std::optional<std::uint64_t> parse_size(std::string_view text);

std::string format_duration(std::chrono::milliseconds d);

}  // namespace ecm::core
