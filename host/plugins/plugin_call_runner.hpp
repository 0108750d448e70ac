// PluginCallRunner: runs plugin calls that could hang (a launcher's validate, build, readiness...)
// on worker threads, and gives up waiting after a deadline. A thread cannot be stopped safely, so
// a call that never returns keeps its worker: the worker is counted stuck and another takes its
// place. Past `max_stuck` stuck calls new calls are refused at once: a plugin that hangs on every
// call cannot make the ECM grow threads without bound.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

namespace ecm::host {

class PluginCallRunner {
 public:
  PluginCallRunner(std::chrono::milliseconds default_timeout, std::size_t max_stuck = 16);
  // Idle workers end; stuck ones are left to the process (they hold what their call uses).
  ~PluginCallRunner();
  PluginCallRunner(const PluginCallRunner&) = delete;
  PluginCallRunner& operator=(const PluginCallRunner&) = delete;

  enum class Outcome { kFinished, kTimedOut, kRefused };
  // Runs `job` on a worker and waits for it at most `timeout`. `job` must own everything it uses:
  // after kTimedOut it may still run, long after the caller has returned.
  Outcome run(std::function<void()> job, std::chrono::milliseconds timeout);

  std::chrono::milliseconds default_timeout() const { return default_timeout_; }
  std::size_t stuck() const;
  std::size_t max_stuck() const { return max_stuck_; }

 private:
  struct Call;
  struct Shared;
  std::chrono::milliseconds default_timeout_;
  std::size_t max_stuck_;
  std::shared_ptr<Shared> shared_;  // also held by every worker, which may outlive this
};

}  // namespace ecm::host
