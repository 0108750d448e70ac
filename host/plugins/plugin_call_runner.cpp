#include "plugins/plugin_call_runner.hpp"

#include <thread>

namespace ecm::host {

// One call: the job, and whether it finished (or was given up on), under Shared::mu.
struct PluginCallRunner::Call {
  std::function<void()> job;
  bool done = false;
  bool abandoned = false;
};

struct PluginCallRunner::Shared {
  std::mutex mu;
  std::condition_variable work;  // a call queued, or closing
  std::condition_variable done;  // a call finished
  std::deque<std::shared_ptr<Call>> queue;
  std::size_t idle = 0;
  std::size_t stuck = 0;
  bool closing = false;
};

namespace {

// Idle workers beyond this many end after a while without work.
constexpr std::size_t kKeptIdle = 4;
constexpr auto kIdleLinger = std::chrono::seconds(30);

}  // namespace

PluginCallRunner::PluginCallRunner(std::chrono::milliseconds default_timeout, std::size_t max_stuck)
    : default_timeout_(default_timeout),
      max_stuck_(max_stuck),
      shared_(std::make_shared<Shared>()) {}

PluginCallRunner::~PluginCallRunner() {
  std::lock_guard lock(shared_->mu);
  shared_->closing = true;
  shared_->work.notify_all();
}

std::size_t PluginCallRunner::stuck() const {
  std::lock_guard lock(shared_->mu);
  return shared_->stuck;
}

PluginCallRunner::Outcome PluginCallRunner::run(std::function<void()> job,
                                                std::chrono::milliseconds timeout) {
  auto call = std::make_shared<Call>();
  call->job = std::move(job);
  std::unique_lock lock(shared_->mu);
  if (shared_->stuck >= max_stuck_) return Outcome::kRefused;
  shared_->queue.push_back(call);
  if (shared_->idle < shared_->queue.size()) {
    // Detached: a worker stuck in a plugin cannot be joined. It holds `shared`, not `this`.
    std::thread([shared = shared_] {
      std::unique_lock l(shared->mu);
      for (;;) {
        ++shared->idle;
        const bool woke = shared->work.wait_for(
            l, kIdleLinger, [&] { return shared->closing || !shared->queue.empty(); });
        --shared->idle;
        if (shared->closing) return;
        if (!woke) {
          if (shared->idle >= kKeptIdle) return;
          continue;
        }
        auto next = std::move(shared->queue.front());
        shared->queue.pop_front();
        l.unlock();
        try {
          next->job();
        } catch (...) {  // NOLINT(bugprone-empty-catch): jobs report through what they own
        }
        next->job = nullptr;  // what the job owns goes now, on this thread
        l.lock();
        next->done = true;
        if (next->abandoned) --shared->stuck;
        shared->done.notify_all();
      }
    }).detach();
  } else {
    shared_->work.notify_one();
  }
  if (shared_->done.wait_for(lock, timeout, [&] { return call->done; })) return Outcome::kFinished;
  call->abandoned = true;
  // Still queued (every worker busy): taken out, it never runs.
  for (auto it = shared_->queue.begin(); it != shared_->queue.end(); ++it) {
    if (*it == call) {
      shared_->queue.erase(it);
      return Outcome::kTimedOut;
    }
  }
  ++shared_->stuck;
  return Outcome::kTimedOut;
}

}  // namespace ecm::host
