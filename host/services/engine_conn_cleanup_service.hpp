// EngineConnCleanupService: removes ended engines' work dirs and records once their retention is
// over, and earlier (oldest ended first) while the file system holding the work root is above its
// high watermark. Never touches a live engine, nor anything that is not exactly
// <work_root>/<user>/<engine-id> of a known ended record.
//
// A steady_timer on the daemon's io_context schedules the passes; the passes themselves (statvfs,
// remove_all) run on a one-thread pool of this service's own, never on the io_context threads.
// Other blocking disk jobs (log rotation) share that pool through executor().
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "ecm/core/engine_conn.hpp"
#include "services/engine_conn_list_service.hpp"

namespace ecm::host {

// How full a file system is, as df counts it: used / (used + available to users).
struct DiskSpace {
  std::uint64_t total_bytes = 0;
  std::uint64_t free_bytes = 0;  // available to unprivileged users
  std::uint64_t used_bytes = 0;
  double used_percent() const;
};

// statvfs of `path`; nullopt when it cannot be read.
std::optional<DiskSpace> statvfs_disk_space(const std::filesystem::path& path);

// The directory an engine record may own under the work root: <work_root>/<user>/<id>, when the
// record's user and id are safe names and its work_dir is exactly that path; nullopt otherwise.
std::optional<std::filesystem::path> engine_work_dir(const std::filesystem::path& work_root,
                                                     const core::EngineConn& engine);

enum class CleanupReason { kRetention, kWatermark };

struct CleanupSettings {
  std::filesystem::path work_root;
  std::chrono::milliseconds retention{std::chrono::hours(24)};
  std::chrono::milliseconds interval{std::chrono::seconds(60)};
  double high_watermark_percent = 90;  // over this: remove ended engines regardless of retention
  double low_watermark_percent = 80;   // ... until below this
  // How full the file system holding `path` is: statvfs_disk_space unless set (a test may give
  // a file system of its own size).
  std::function<std::optional<DiskSpace>(const std::filesystem::path&)> disk_space;
  // Told of each removal, on the clean-up thread, after the record is gone.
  std::function<void(const std::string& engine_id, CleanupReason)> on_removed;
};

struct CleanupStatus {
  std::filesystem::path path;     // the work root
  std::optional<DiskSpace> disk;  // at the last measure; nullopt if statvfs failed
  double high_watermark_percent = 0;
  double low_watermark_percent = 0;
  bool over_watermark = false;  // at the last measure
  std::uint64_t removed_by_retention = 0;
  std::uint64_t removed_by_watermark = 0;
  std::uint64_t refused = 0;  // dirs left alone: not where they belong, or a symlink
  std::optional<core::Clock::time_point> last_pass;
};

struct CleanupPassResult {
  std::size_t removed_by_retention = 0;
  std::size_t removed_by_watermark = 0;
  std::size_t refused = 0;
  std::size_t failed = 0;  // remove_all failed: kept, tried again next pass
};

class EngineConnCleanupService {
 public:
  // `io` must outlive this service; stop() it before the io_context stops.
  EngineConnCleanupService(CleanupSettings settings, EngineConnListService& engines,
                           boost::asio::io_context& io);
  ~EngineConnCleanupService();
  EngineConnCleanupService(const EngineConnCleanupService&) = delete;
  EngineConnCleanupService& operator=(const EngineConnCleanupService&) = delete;

  // Measures the disk now (so status() has it from the start), then runs a pass every interval.
  void start();
  // Cancels the timer, lets a pass in progress stop between two removals, and joins the pool
  // (jobs others posted to executor() run or are dropped first). Idempotent.
  void stop();

  // One pass, now, on the calling thread (tests; the timer's passes go through here too).
  // Passes never overlap.
  CleanupPassResult run_once();

  CleanupStatus status() const;

  // New retention, interval and watermarks (a config reload): the next pass uses them, the
  // interval from the next scheduling on. Waits for a pass under way to end. Thread-safe.
  void update_policy(std::chrono::milliseconds retention, std::chrono::milliseconds interval,
                     double high_watermark_percent, double low_watermark_percent);

  // The clean-up pool, for other blocking disk jobs; valid until stop().
  boost::asio::any_io_executor executor() { return pool_.get_executor(); }

 private:
  enum class Removal { kRemoved, kSkipped, kRefused, kFailed };
  Removal remove(const std::string& id, CleanupReason reason);
  std::optional<DiskSpace> measure();
  void schedule_locked();
  void periodic_pass();

  CleanupSettings settings_;
  EngineConnListService& engines_;
  boost::asio::steady_timer timer_;
  boost::asio::thread_pool pool_{1};

  std::mutex timer_mu_;  // timer_ and stopped_
  bool stopped_ = false;
  std::atomic<bool> stopping_{false};  // read between removals

  std::mutex pass_mu_;                 // one pass at a time
  std::set<std::string> refused_ids_;  // warned once each; under pass_mu_
  bool was_over_ = false;              // at the last pass; under pass_mu_

  mutable std::mutex status_mu_;
  CleanupStatus status_;
};

}  // namespace ecm::host
