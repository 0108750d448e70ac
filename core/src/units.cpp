#include "ecm/core/units.hpp"

#include <charconv>
#include <utility>

namespace ecm::core {
namespace {

// Splits "512MiB" into 512 and "MiB". The number is a non-negative integer.
std::optional<std::pair<std::uint64_t, std::string_view>> split_number(std::string_view text) {
  std::uint64_t n = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc{} || ptr == text.data()) return std::nullopt;
  return std::pair{n, text.substr(static_cast<std::size_t>(ptr - text.data()))};
}

bool mul_overflows(std::uint64_t a, std::uint64_t b, std::uint64_t& out) {
  return __builtin_mul_overflow(a, b, &out);
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  auto parts = split_number(text);
  if (!parts) return std::nullopt;
  auto [n, unit] = *parts;
  std::uint64_t factor = 0;
  if (unit == "ms")
    factor = 1;
  else if (unit == "s")
    factor = 1000;
  else if (unit == "m")
    factor = 60'000;
  else if (unit == "h")
    factor = 3'600'000;
  else if (unit == "d")
    factor = 86'400'000;
  else
    return std::nullopt;
  std::uint64_t ms = 0;
  if (mul_overflows(n, factor, ms) || ms > static_cast<std::uint64_t>(INT64_MAX)) {
    return std::nullopt;
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(ms));
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  auto parts = split_number(text);
  if (!parts) return std::nullopt;
  auto [n, unit] = *parts;
  static constexpr std::pair<std::string_view, std::uint64_t> kUnits[] = {
      {"B", 1},
      {"KiB", 1ull << 10},
      {"MiB", 1ull << 20},
      {"GiB", 1ull << 30},
      {"TiB", 1ull << 40},
      {"KB", 1'000},
      {"MB", 1'000'000},
      {"GB", 1'000'000'000},
      {"TB", 1'000'000'000'000},
  };
  for (const auto& [name, factor] : kUnits) {
    if (unit == name) {
      std::uint64_t bytes = 0;
      if (mul_overflows(n, factor, bytes)) return std::nullopt;
      return bytes;
    }
  }
  return std::nullopt;
}

std::string format_duration(std::chrono::milliseconds d) {
  auto ms = d.count();
  if (ms % 1000 != 0) return std::to_string(ms) + "ms";
  return std::to_string(ms / 1000) + "s";
}

}  // namespace ecm::core
