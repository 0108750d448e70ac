#include "ecm/core/node_readings.hpp"

#include <algorithm>
#include <charconv>
#include <stdexcept>
#include <string>
#include <vector>

namespace ecm::core {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t'))
      ++i;
    std::size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t')
      ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

std::optional<std::uint64_t> to_u64(std::string_view s) {
  std::uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<double> to_double(std::string_view s) {
  double v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v, std::chars_format::fixed);
  if (ec != std::errc() || ptr != s.data() + s.size() || v < 0) return std::nullopt;
  return v;
}

template <class Fn>
void for_each_line(std::string_view text, Fn&& fn) {
  while (!text.empty()) {
    auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    if (fn(line)) return;
    if (nl == std::string_view::npos) return;
    text.remove_prefix(nl + 1);
  }
}

}  // namespace

double MemoryReading::available_percent() const {
  if (total_bytes == 0) return 0;
  return 100.0 * static_cast<double>(available_bytes) / static_cast<double>(total_bytes);
}

MemoryReading parse_meminfo(std::string_view text) {
  std::optional<std::uint64_t> total, available;
  for_each_line(text, [&](std::string_view line) {
    auto colon = line.find(':');
    if (colon == std::string_view::npos) return false;
    auto key = trim(line.substr(0, colon));
    if (key != "MemTotal" && key != "MemAvailable") return false;
    auto f = fields(line.substr(colon + 1));
    // "MemTotal:       16316412 kB"
    if (f.empty() || f.size() > 2 || (f.size() == 2 && f[1] != "kB")) {
      throw std::invalid_argument(std::string(key) + " is malformed");
    }
    auto kb = to_u64(f[0]);
    if (!kb) throw std::invalid_argument(std::string(key) + " is not a number");
    (key == "MemTotal" ? total : available) = *kb * 1024;
    return total && available;
  });
  if (!total) throw std::invalid_argument("no MemTotal line");
  if (!available) throw std::invalid_argument("no MemAvailable line");
  if (*total == 0) throw std::invalid_argument("MemTotal is 0");
  return {*total, std::min(*available, *total)};
}

CpuTimes parse_proc_stat(std::string_view text) {
  std::optional<CpuTimes> out;
  for_each_line(text, [&](std::string_view line) {
    auto f = fields(line);
    if (f.empty() || f[0] != "cpu") return false;
    // user nice system idle iowait irq softirq steal [guest guest_nice]: guest time is already
    // counted in user and nice, so only the first eight are summed.
    if (f.size() < 5) throw std::invalid_argument("the cpu line has fewer than 4 counters");
    CpuTimes t;
    for (std::size_t i = 1; i < f.size() && i <= 8; ++i) {
      auto v = to_u64(f[i]);
      if (!v) throw std::invalid_argument("the cpu line has a counter that is not a number");
      t.total += *v;
      if (i == 4 || i == 5) t.idle += *v;
    }
    out = t;
    return true;
  });
  if (!out) throw std::invalid_argument("no \"cpu\" line");
  return *out;
}

LoadAverage parse_loadavg(std::string_view text) {
  auto first_line = text.substr(0, text.find('\n'));
  auto f = fields(first_line);
  if (f.size() < 3) throw std::invalid_argument("fewer than 3 load averages");
  auto l1 = to_double(f[0]), l5 = to_double(f[1]), l15 = to_double(f[2]);
  if (!l1 || !l5 || !l15) throw std::invalid_argument("a load average is not a number");
  return {*l1, *l5, *l15};
}

std::optional<double> cpu_busy_percent(const CpuTimes& before, const CpuTimes& after) {
  if (after.total <= before.total || after.idle < before.idle) return std::nullopt;
  const auto total = after.total - before.total;
  const auto idle = after.idle - before.idle;
  if (idle > total) return std::nullopt;
  return 100.0 * static_cast<double>(total - idle) / static_cast<double>(total);
}

}  // namespace ecm::core
