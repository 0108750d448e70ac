// The failures of ecmctl that are not the server's: each maps to its own exit status.
#pragma once

#include <stdexcept>

namespace ecm::ctl {

// Exit status of every outcome, part of the CLI's public interface.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;       // the ECM refused, or the command could not finish
inline constexpr int kExitUsage = 2;        // bad command line
inline constexpr int kExitUnreachable = 3;  // no connection to the ECM

// The command line is wrong: exit 2 with a hint to run --help.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The command ran but could not finish (e.g. stop --wait timed out): exit 1.
class CommandError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The ECM could not be reached or the connection broke: exit 3. what() is the reason only.
class ConnectionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace ecm::ctl
