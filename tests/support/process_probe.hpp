// Test support: what is really still running in a process group. Orphans of a killed group are
// reparented to PID 1; where PID 1 does not reap (this sandbox's init does not), they linger as
// zombies, which kill(-pgid, 0) still counts. A zombie runs nothing: count the live ones.
#pragma once

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace ecm::test {

// The pids of the live (not zombie) processes whose process group is `pgid`.
inline std::vector<int> live_group_members(int pgid) {
  std::vector<int> live;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const auto name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "stat");
    std::string line;
    if (!std::getline(in, line)) continue;
    auto close = line.rfind(')');
    if (close == std::string::npos || close + 2 >= line.size()) continue;
    // After ")": state ppid pgrp ...
    char state = line[close + 2];
    int ppid = 0, pgrp = 0;
    if (std::sscanf(line.c_str() + close + 3, "%d %d", &ppid, &pgrp) != 2) continue;
    if (pgrp == pgid && state != 'Z' && state != 'X') live.push_back(std::stoi(name));
  }
  return live;
}

// Whether `pid` is alive (not a zombie) and leads its own process group.
inline bool leads_live_group(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  auto close = line.rfind(')');
  if (close == std::string::npos || close + 2 >= line.size()) return false;
  char state = line[close + 2];
  int ppid = 0, pgrp = 0;
  if (std::sscanf(line.c_str() + close + 3, "%d %d", &ppid, &pgrp) != 2) return false;
  return pgrp == pid && state != 'Z' && state != 'X';
}

inline int live_processes_in_group(int pgid) {
  return static_cast<int>(live_group_members(pgid).size());
}

// Waits (SIGKILL lands asynchronously) until nothing live is left in the group.
inline bool group_gone(int pgid, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (live_processes_in_group(pgid) > 0) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace ecm::test
