// EngineLogRotation: every check interval, rotates the stdout and stderr of every live engine
// that grew past the rotation size (core::rotate_if_larger_at: copy-truncate, at most `keep`
// rotated files; see log_rotation.hpp for the loss window). A steady_timer on the daemon's
// io_context schedules; the file work runs on the executor it is given (the clean-up pool),
// never on the io_context threads. Ended engines are left as they are.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <set>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "services/engine_conn_list_service.hpp"

namespace ecm::host {

struct LogRotationSettings {
  std::filesystem::path work_root;
  std::uint64_t max_bytes = 64ull << 20;  // a stream larger than this is rotated
  int keep = 5;                           // rotated files kept besides the live one
  std::chrono::milliseconds interval{std::chrono::seconds(5)};
};

class EngineLogRotation {
 public:
  // `io` and the executor's pool must outlive this object; stop() it before either stops.
  EngineLogRotation(LogRotationSettings settings, EngineConnListService& engines,
                    boost::asio::io_context& io, boost::asio::any_io_executor pool);
  ~EngineLogRotation();
  EngineLogRotation(const EngineLogRotation&) = delete;
  EngineLogRotation& operator=(const EngineLogRotation&) = delete;

  void start();
  // Cancels the timer and waits for the job it posted, if any. Idempotent.
  void stop();

  // One check of every live engine, now, on the calling thread; returns the files rotated.
  std::size_t run_once();

  std::uint64_t rotations() const;

  // Told of each stream rotated ("stdout", "stderr"), on the pass's thread. Set before start().
  using RotationObserver =
      std::function<void(const core::EngineConn& engine, const std::string& stream)>;
  void set_rotation_observer(RotationObserver observer) { observer_ = std::move(observer); }

 private:
  void schedule_locked();
  void rotate_engine(const core::EngineConn& engine, std::size_t& rotated);
  void warn_once(const std::string& key, const std::string& engine_id, const std::string& what);

  LogRotationSettings settings_;
  EngineConnListService& engines_;
  boost::asio::steady_timer timer_;
  boost::asio::any_io_executor pool_;
  RotationObserver observer_;

  mutable std::mutex mu_;  // everything below
  std::condition_variable idle_;
  bool stopped_ = false;
  int posted_ = 0;  // jobs posted to the pool and not finished
  std::uint64_t rotations_ = 0;

  std::mutex pass_mu_;            // one pass at a time
  std::set<std::string> warned_;  // "<engine-id>/<stream>": each problem logged once; pass_mu_
};

}  // namespace ecm::host
