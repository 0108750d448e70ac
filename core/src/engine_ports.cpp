#include "ecm/core/engine_ports.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>

#include "ecm/core/errors.hpp"

namespace ecm::core {
namespace {

int parse_port(std::string_view text) {
  int v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) {
    throw std::invalid_argument("'" + std::string(text) + "' is not a port number");
  }
  return v;
}

// An IPv4 socket address for `host` (a dotted quad; "localhost" is 127.0.0.1).
sockaddr_in address_of(const std::string& host, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  const std::string h = host == "localhost" ? "127.0.0.1" : host;
  if (inet_pton(AF_INET, h.c_str(), &a.sin_addr) != 1) {
    throw EcmException(ErrorCode::kLaunchFailed, "port host '" + host + "' is not an IPv4 address");
  }
  return a;
}

std::string sys_error(const std::string& step) {
  return step + ": " + std::strerror(errno);
}

// True when `port` can be bound on `host` at this moment (then released at once). Used only for
// ports of our own range, to skip one another program took; between engines of this ECM the
// reservation table, not this check, prevents sharing.
bool bindable(const std::string& host, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  auto a = address_of(host, port);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

PortRange parse_port_range(std::string_view text) {
  if (text.empty()) return {};
  auto dash = text.find('-');
  if (dash == std::string_view::npos) {
    throw std::invalid_argument("expected FIRST-LAST, like \"31000-31999\"");
  }
  PortRange r{parse_port(text.substr(0, dash)), parse_port(text.substr(dash + 1))};
  if (r.first < 1024 || r.last > 65535 || r.first > r.last) {
    throw std::invalid_argument("expected 1024 <= FIRST <= LAST <= 65535");
  }
  return r;
}

ListeningSocket ListeningSocket::open(const std::string& host) {
  auto a = address_of(host, 0);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw EcmException(ErrorCode::kLaunchFailed, sys_error("socket"));
  ListeningSocket s(fd, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) {
    throw EcmException(ErrorCode::kLaunchFailed, sys_error("bind " + host + ":0"));
  }
  if (::listen(fd, SOMAXCONN) < 0)
    throw EcmException(ErrorCode::kLaunchFailed, sys_error("listen"));
  socklen_t len = sizeof a;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) < 0) {
    throw EcmException(ErrorCode::kLaunchFailed, sys_error("getsockname"));
  }
  s.port_ = ntohs(a.sin_port);
  return s;
}

ListeningSocket::ListeningSocket(ListeningSocket&& other) noexcept
    : fd_(other.fd_), port_(other.port_) {
  other.fd_ = -1;
}

ListeningSocket& ListeningSocket::operator=(ListeningSocket&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    port_ = other.port_;
    other.fd_ = -1;
  }
  return *this;
}

ListeningSocket::~ListeningSocket() {
  if (fd_ >= 0) ::close(fd_);
}

std::vector<int> PortReservations::reserve(const std::string& engine_id, std::size_t count,
                                           const std::string& host) {
  if (count == 0) return {};
  if (range_.empty()) {
    throw EcmException(ErrorCode::kLaunchFailed,
                       "the engine asks for a reserved port but no [ports] range is configured");
  }
  std::lock_guard lock(mu_);
  std::vector<int> got;
  const std::size_t n = range_.size();
  for (std::size_t tried = 0; tried < n && got.size() < count; ++tried) {
    const int port = range_.first + static_cast<int>((static_cast<std::size_t>(next_) + tried) % n);
    if (held_.count(port) != 0 || !bindable(host, port)) continue;
    got.push_back(port);
  }
  if (got.size() < count) {
    throw EcmException(ErrorCode::kInsufficientResources,
                       "ports: " + std::to_string(count) + " wanted, " +
                           std::to_string(got.size()) + " free in " + std::to_string(range_.first) +
                           "-" + std::to_string(range_.last) + " (" + std::to_string(held_.size()) +
                           " held by engines)");
  }
  next_ = (got.back() - range_.first + 1) % static_cast<int>(n);
  held_.insert(got.begin(), got.end());
  auto& mine = by_engine_[engine_id];
  mine.insert(mine.end(), got.begin(), got.end());
  return got;
}

void PortReservations::adopt(const std::string& engine_id, const std::vector<int>& ports) {
  std::lock_guard lock(mu_);
  for (int p : ports) {
    if (p < range_.first || p > range_.last) continue;
    if (held_.insert(p).second) by_engine_[engine_id].push_back(p);
  }
}

void PortReservations::release(const std::string& engine_id) {
  std::lock_guard lock(mu_);
  auto it = by_engine_.find(engine_id);
  if (it == by_engine_.end()) return;
  for (int p : it->second)
    held_.erase(p);
  by_engine_.erase(it);
}

std::size_t PortReservations::in_use() const {
  std::lock_guard lock(mu_);
  return held_.size();
}

}  // namespace ecm::core
