// Watches each starting engine's readiness rule on the event loop and reports, once per engine,
// that it became ready or that its launch timeout passed first.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <boost/asio/io_context.hpp>

#include "ecm/sdk/readiness.hpp"

namespace ecm::host {

class EngineReadinessWatcher {
 public:
  using Ready = std::function<void(const std::string& engine_id)>;
  using TimedOut = std::function<void(const std::string& engine_id)>;

  EngineReadinessWatcher(boost::asio::io_context& io, Ready ready, TimedOut timed_out);
  ~EngineReadinessWatcher();

  // Starts watching. The rule was validated (validate_readiness_rule). Polling rules (port, log
  // line) look every 100 ms, bounded by the timeout; a callback rule waits for forget().
  void watch(const std::string& engine_id, const sdk::ReadinessRule& rule,
             std::chrono::milliseconds timeout, const std::string& log_dir);
  // The engine became ready another way (its callback) or ended: no report will come for it.
  void forget(const std::string& engine_id);
  std::size_t watching() const;

 private:
  struct Watch;
  void poll(const std::shared_ptr<Watch>& w);
  bool holds(Watch& w);
  // Removes the watch; true if it was still there (so exactly one outcome is reported).
  bool finish(const std::string& engine_id);

  boost::asio::io_context& io_;
  Ready ready_;
  TimedOut timed_out_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Watch>> watches_;
};

// Throws EcmException(kPluginFailed) for a rule the host cannot watch: port out of range, stream
// other than stdout/stderr, empty or invalid pattern, negative durations.
void validate_readiness_rule(const sdk::ReadinessRule& rule);

// The last `max_lines` lines (at most 4 KiB) of a file, for failure reasons. Empty if unreadable.
std::string last_lines(const std::string& path, std::size_t max_lines);

}  // namespace ecm::host
