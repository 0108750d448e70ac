// TCP ports for engines, without the probe-then-close race: either a socket the ECM has bound and
// listens on, handed to the engine open (ListeningSocket), or a port of the node's configured
// range reserved for one engine until it ends (PortReservations).
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace ecm::core {

struct PortRange {
  int first = 0;  // 0: no range configured
  int last = 0;
  bool empty() const { return first == 0; }
  std::size_t size() const { return empty() ? 0 : static_cast<std::size_t>(last - first + 1); }
  bool operator==(const PortRange&) const = default;
};

// "31000-31999" (1024 <= first <= last <= 65535) or "" (none). Throws std::invalid_argument.
PortRange parse_port_range(std::string_view text);

// A listening TCP socket (close-on-exec) bound to `host` on a port the kernel picked. Owns the fd.
class ListeningSocket {
 public:
  // Throws EcmException(kLaunchFailed) naming the step that failed.
  static ListeningSocket open(const std::string& host);
  ListeningSocket(ListeningSocket&& other) noexcept;
  ListeningSocket& operator=(ListeningSocket&& other) noexcept;
  ListeningSocket(const ListeningSocket&) = delete;
  ListeningSocket& operator=(const ListeningSocket&) = delete;
  ~ListeningSocket();

  int fd() const { return fd_; }
  int port() const { return port_; }

 private:
  ListeningSocket(int fd, int port) : fd_(fd), port_(port) {}
  int fd_ = -1;
  int port_ = 0;
};

// Ports of the range held by engines. Thread-safe.
class PortReservations {
 public:
  explicit PortReservations(PortRange range) : range_(range) {}

  // `count` free ports for `engine_id`, each one bindable on `host` right now (a port some other
  // program holds is skipped). All or nothing: throws EcmException(kInsufficientResources) when
  // the range has too few, kLaunchFailed when no range is configured.
  std::vector<int> reserve(const std::string& engine_id, std::size_t count,
                           const std::string& host);
  // Marks the ports of a re-adopted engine that lie in the range as its own again (the engine
  // holds them); ports outside the range (sockets the ECM bound for it) are not reservations.
  void adopt(const std::string& engine_id, const std::vector<int>& ports);
  // Frees the engine's ports; a second call is a no-op.
  void release(const std::string& engine_id);
  std::size_t in_use() const;
  const PortRange& range() const { return range_; }

 private:
  PortRange range_;
  mutable std::mutex mu_;
  int next_ = 0;  // where the next search starts: spreads reuse of a just-freed port
  std::set<int> held_;
  std::map<std::string, std::vector<int>> by_engine_;
};

}  // namespace ecm::core
