// `rm-sim serve`: implements ResourceManagerService (what ECMs call) and RmSimAdmin (what the
// rm-sim commands call) on one port, keeps the ECMs it hears from, marks them lost after two
// report intervals without a heartbeat, prints them periodically, and places launches.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

namespace ecm::rmsim {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 9200;  // 0: any free port (see address_file)
  std::optional<std::filesystem::path> state_file;
  std::chrono::milliseconds print_interval{std::chrono::seconds(5)};  // 0: never
  std::optional<std::filesystem::path> address_file;  // gets "HOST:PORT\n" once listening
};

// Serves until SIGTERM or SIGINT. Returns the process exit code.
int serve(const ServeOptions& options);

}  // namespace ecm::rmsim
