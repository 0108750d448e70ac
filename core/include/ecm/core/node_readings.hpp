// Readings of the node the ECM runs on, parsed from the text of /proc/meminfo, /proc/stat and
// /proc/loadavg. Pure functions over text: the health service reads the files (wherever the
// config points) and hands the text here, so tests can give any reading.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace ecm::core {

struct MemoryReading {
  std::uint64_t total_bytes = 0;
  std::uint64_t available_bytes = 0;  // MemAvailable: what new processes can get without swapping
  double available_percent() const;   // 0..100; 0 when total is 0
};

// The first "cpu" line of /proc/stat, in clock ticks since boot: all of it, and the idle part
// (idle + iowait).
struct CpuTimes {
  std::uint64_t total = 0;
  std::uint64_t idle = 0;
};

struct LoadAverage {
  double load1 = 0;
  double load5 = 0;
  double load15 = 0;
};

// Each throws std::invalid_argument naming what is missing or malformed.
MemoryReading parse_meminfo(std::string_view text);  // MemTotal and MemAvailable (kB)
CpuTimes parse_proc_stat(std::string_view text);
LoadAverage parse_loadavg(std::string_view text);

// The busy share of all CPUs between two samples, 0..100; nullopt when no tick passed between
// them (or the counters went backwards).
std::optional<double> cpu_busy_percent(const CpuTimes& before, const CpuTimes& after);

}  // namespace ecm::core
