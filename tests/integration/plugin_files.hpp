// Plugin files for the hot-swap and event tests: the builds of the test launcher "swap" and
// installing a file into a daemon's plugin dir the way SDK.md tells administrators to (a copy in
// the same dir, then an atomic rename over the old file).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

namespace ecm::itest {

// tests/plugins/versioned/swap.cpp built as "v1", "v2", "throws" (create_launcher throws) or
// "wrong-abi" (declares the next ABI major).
inline std::filesystem::path swap_build(const std::string& variant) {
  return std::filesystem::path(ECM_TEST_PLUGIN_DIR) / ("swap-" + variant) / "swap.so";
}

// Copies `source` to `<dir>/.NAME.so.new`, then renames it to `<dir>/NAME.so`: a reader of
// NAME.so (the daemon, its inotify watch) sees the old file or the new one, never half of one.
inline void install_plugin_file(const std::filesystem::path& source,
                                const std::filesystem::path& dir, const std::string& name) {
  const auto staged = dir / ("." + name + ".so.new");
  std::filesystem::copy_file(source, staged, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::rename(staged, dir / (name + ".so"));
}

// Whether `pid` has a file whose path contains `needle` mapped (/proc/PID/maps).
inline bool maps_contain(pid_t pid, const std::string& needle) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.find(needle) != std::string::npos) return true;
  }
  return false;
}

// The distinct files under `dir` that `pid` has mapped.
inline std::set<std::string> mapped_under(pid_t pid, const std::filesystem::path& dir) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::set<std::string> files;
  std::string line;
  const std::string prefix = dir.string() + "/";
  while (std::getline(maps, line)) {
    const auto at = line.find(prefix);
    if (at != std::string::npos) files.insert(line.substr(at));
  }
  return files;
}

}  // namespace ecm::itest
