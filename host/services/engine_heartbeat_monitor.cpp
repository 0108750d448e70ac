#include "services/engine_heartbeat_monitor.hpp"

#include <algorithm>

#include <boost/asio/steady_timer.hpp>

namespace ecm::host {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

struct EngineHeartbeatMonitor::Watch {
  Watch(boost::asio::io_context& io, std::string id, milliseconds timeout)
      : id(std::move(id)), timeout(timeout), since(core::Clock::now()), timer(io) {}
  std::string id;
  milliseconds timeout;
  core::Clock::time_point since;  // when watching began: the silence before any heartbeat
  bool unhealthy = false;
  boost::asio::steady_timer timer;
};

EngineHeartbeatMonitor::EngineHeartbeatMonitor(boost::asio::io_context& io, LastBeat last_beat,
                                               Report unhealthy, Report healthy_again, Report lost)
    : io_(io),
      last_beat_(std::move(last_beat)),
      unhealthy_(std::move(unhealthy)),
      healthy_again_(std::move(healthy_again)),
      lost_(std::move(lost)) {}

EngineHeartbeatMonitor::~EngineHeartbeatMonitor() {
  std::lock_guard lock(mu_);
  for (auto& [id, w] : watches_)
    w->timer.cancel();
  watches_.clear();
}

void EngineHeartbeatMonitor::watch(const std::string& engine_id, milliseconds timeout) {
  auto w = std::make_shared<Watch>(io_, engine_id, timeout);
  {
    std::lock_guard lock(mu_);
    if (!watches_.emplace(engine_id, w).second) return;
  }
  arm(w, timeout);
}

void EngineHeartbeatMonitor::forget(const std::string& engine_id) {
  std::lock_guard lock(mu_);
  auto it = watches_.find(engine_id);
  if (it == watches_.end()) return;
  it->second->timer.cancel();
  watches_.erase(it);
}

std::size_t EngineHeartbeatMonitor::watching() const {
  std::lock_guard lock(mu_);
  return watches_.size();
}

void EngineHeartbeatMonitor::arm(const std::shared_ptr<Watch>& w, milliseconds after) {
  std::lock_guard lock(mu_);
  if (watches_.count(w->id) == 0) return;
  w->timer.expires_after(std::max(after, milliseconds(1)));
  w->timer.async_wait([this, w](const boost::system::error_code& ec) {
    if (!ec) check(w);
  });
}

void EngineHeartbeatMonitor::check(const std::shared_ptr<Watch>& w) {
  {
    std::lock_guard lock(mu_);
    auto it = watches_.find(w->id);
    if (it == watches_.end() || it->second != w) return;  // forgotten meanwhile
  }
  const auto last = std::max(last_beat_(w->id).value_or(w->since), w->since);
  const auto silent = duration_cast<milliseconds>(core::Clock::now() - last);
  if (silent < w->timeout) {
    if (w->unhealthy) {
      w->unhealthy = false;
      healthy_again_(w->id, silent);
    }
    return arm(w, w->timeout - silent);
  }
  if (silent < 2 * w->timeout) {
    if (!w->unhealthy) {
      w->unhealthy = true;
      unhealthy_(w->id, silent);
    }
    return arm(w, 2 * w->timeout - silent);
  }
  {
    std::lock_guard lock(mu_);
    watches_.erase(w->id);
  }
  lost_(w->id, silent);
}

}  // namespace ecm::host
