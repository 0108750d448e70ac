#include "services/engine_readiness.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <boost/regex.hpp>

#include "ecm/core/errors.hpp"

namespace ecm::host {
namespace {

constexpr std::chrono::milliseconds kPollEvery{100};

bool port_accepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  if (!ok && errno == EINPROGRESS) {
    // Loopback answers within microseconds; wait a little, never long, on the event loop.
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof err;
    ok = ::poll(&p, 1, 20) == 1 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
         err == 0;
  }
  ::close(fd);
  return ok;
}

}  // namespace

// The cost of a search bounded by Boost.Regex grows with the square of the pattern's length.
constexpr std::size_t kMaxReadinessPattern = 256;

struct EngineReadinessWatcher::Watch {
  Watch(boost::asio::io_context& io, std::string id, sdk::ReadinessRule r, std::string log)
      : engine_id(std::move(id)),
        rule(std::move(r)),
        log_path(std::move(log)),
        deadline(io),
        poll_timer(io) {
    if (rule.kind == sdk::ReadinessRule::Kind::kLogLine) {
      pattern = boost::regex(rule.pattern, boost::regex::ECMAScript | boost::regex::optimize);
    }
  }
  std::string engine_id;
  sdk::ReadinessRule rule;
  std::string log_path;
  // Boost.Regex, not std::regex: the line is the engine's and the pattern may come from a request;
  // its matcher gives up past a bound on its steps (a line that costs that much does not match)
  // where std::regex would backtrack without end on the event loop.
  boost::regex pattern;
  std::uint64_t offset = 0;  // how far the log was read
  std::string partial;       // a line not yet ended by '\n'
  boost::asio::steady_timer deadline;
  boost::asio::steady_timer poll_timer;
};

EngineReadinessWatcher::EngineReadinessWatcher(boost::asio::io_context& io, Ready ready,
                                               TimedOut timed_out)
    : io_(io), ready_(std::move(ready)), timed_out_(std::move(timed_out)) {}

EngineReadinessWatcher::~EngineReadinessWatcher() {
  std::lock_guard lock(mu_);
  watches_.clear();
}

void EngineReadinessWatcher::watch(const std::string& engine_id, const sdk::ReadinessRule& rule,
                                   std::chrono::milliseconds timeout, const std::string& log_dir) {
  auto w = std::make_shared<Watch>(io_, engine_id, rule, log_dir + "/" + rule.stream);
  {
    std::lock_guard lock(mu_);
    watches_[engine_id] = w;
  }
  w->deadline.expires_after(timeout);
  w->deadline.async_wait([this, engine_id](const boost::system::error_code& ec) {
    if (!ec && finish(engine_id)) timed_out_(engine_id);
  });
  using K = sdk::ReadinessRule::Kind;
  if (rule.kind == K::kCallback) return;
  if (rule.kind == K::kProcessAlive) {
    w->poll_timer.expires_after(rule.alive_for);
    w->poll_timer.async_wait([this, engine_id](const boost::system::error_code& ec) {
      if (!ec && finish(engine_id)) ready_(engine_id);
    });
    return;
  }
  poll(w);
}

bool EngineReadinessWatcher::holds(Watch& w) {
  if (w.rule.kind == sdk::ReadinessRule::Kind::kPort) return port_accepts(w.rule.port);
  // Log line: read what was appended since the last look.
  std::ifstream in(w.log_path, std::ios::binary);
  if (!in) return false;
  in.seekg(static_cast<std::streamoff>(w.offset));
  std::vector<char> buf(64 * 1024);
  while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0) {
    const auto n = static_cast<std::size_t>(in.gcount());
    w.offset += n;
    w.partial.append(buf.data(), n);
    std::size_t start = 0;
    for (auto nl = w.partial.find('\n'); nl != std::string::npos;
         nl = w.partial.find('\n', start)) {
      try {
        if (boost::regex_search(w.partial.begin() + static_cast<std::ptrdiff_t>(start),
                                w.partial.begin() + static_cast<std::ptrdiff_t>(nl), w.pattern)) {
          return true;
        }
      } catch (const std::runtime_error&) {  // NOLINT(bugprone-empty-catch): too costly a line
      }
      start = nl + 1;
    }
    w.partial.erase(0, start);
    if (w.partial.size() > 64 * 1024) w.partial.clear();  // a line that long is not a marker
  }
  return false;
}

void EngineReadinessWatcher::poll(const std::shared_ptr<Watch>& w) {
  if (holds(*w)) {
    if (finish(w->engine_id)) ready_(w->engine_id);
    return;
  }
  w->poll_timer.expires_after(kPollEvery);
  std::weak_ptr<Watch> weak = w;
  w->poll_timer.async_wait([this, weak](const boost::system::error_code& ec) {
    auto w = weak.lock();
    if (ec || !w) return;
    {
      std::lock_guard lock(mu_);
      auto it = watches_.find(w->engine_id);
      if (it == watches_.end() || it->second != w) return;
    }
    poll(w);
  });
}

bool EngineReadinessWatcher::finish(const std::string& engine_id) {
  std::lock_guard lock(mu_);
  auto it = watches_.find(engine_id);
  if (it == watches_.end()) return false;
  it->second->deadline.cancel();
  it->second->poll_timer.cancel();
  watches_.erase(it);
  return true;
}

void EngineReadinessWatcher::forget(const std::string& engine_id) {
  finish(engine_id);
}

std::size_t EngineReadinessWatcher::watching() const {
  std::lock_guard lock(mu_);
  return watches_.size();
}

void validate_readiness_rule(const sdk::ReadinessRule& rule) {
  auto bad = [](const std::string& m) {
    throw core::EcmException(core::ErrorCode::kPluginFailed, "bad readiness rule: " + m);
  };
  using K = sdk::ReadinessRule::Kind;
  if (rule.timeout.count() < 0 || rule.alive_for.count() < 0) bad("negative duration");
  switch (rule.kind) {
    case K::kProcessAlive:
    case K::kCallback:
      return;
    case K::kPort:
      if (rule.port <= 0 || rule.port > 65535) bad("port " + std::to_string(rule.port));
      return;
    case K::kLogLine:
      if (rule.stream != "stdout" && rule.stream != "stderr") bad("stream '" + rule.stream + "'");
      if (rule.pattern.empty()) bad("empty pattern");
      if (rule.pattern.size() > kMaxReadinessPattern) {
        bad("pattern longer than " + std::to_string(kMaxReadinessPattern) + " bytes");
      }
      try {
        boost::regex check(rule.pattern, boost::regex::ECMAScript);
      } catch (const boost::regex_error& e) {
        bad("pattern '" + rule.pattern + "': " + e.what());
      }
      return;
  }
  bad("unknown kind");
}

std::string last_lines(const std::string& path, std::size_t max_lines) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return {};
  const std::streamoff size = in.tellg();
  const std::streamoff from = size > 4096 ? size - 4096 : 0;
  in.seekg(from);
  std::string text(static_cast<std::size_t>(size - from), '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  while (!text.empty() && text.back() == '\n')
    text.pop_back();
  std::size_t pos = text.size(), lines = 0;
  while (pos > 0 && lines < max_lines) {
    pos = text.rfind('\n', pos - 1);
    if (pos == std::string::npos) {
      pos = 0;
      break;
    }
    ++lines;
  }
  return text.substr(pos == 0 ? 0 : pos + 1);
}

}  // namespace ecm::host
