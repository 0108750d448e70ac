#include "services/engine_conn_cleanup_service.hpp"

#include <sys/statvfs.h>

#include <algorithm>
#include <vector>

#include <boost/asio/post.hpp>

#include "ecm/core/engine_status.hpp"
#include "ecm/core/names.hpp"
#include "util/log.hpp"

namespace ecm::host {
namespace {

namespace fs = std::filesystem;

// When an ended engine ended; a record without an end time (none should be) counts from its
// creation, so it cannot be kept forever.
core::Clock::time_point ended_time(const core::EngineConn& e) {
  return e.ended_at ? *e.ended_at : e.created_at;
}

}  // namespace

double DiskSpace::used_percent() const {
  const auto usable = used_bytes + free_bytes;
  if (usable == 0) return 0;
  return 100.0 * static_cast<double>(used_bytes) / static_cast<double>(usable);
}

std::optional<DiskSpace> statvfs_disk_space(const fs::path& path) {
  struct statvfs st {};
  if (::statvfs(path.c_str(), &st) != 0) return std::nullopt;
  const std::uint64_t unit = st.f_frsize ? st.f_frsize : st.f_bsize;
  DiskSpace d;
  d.total_bytes = static_cast<std::uint64_t>(st.f_blocks) * unit;
  d.free_bytes = static_cast<std::uint64_t>(st.f_bavail) * unit;
  d.used_bytes = static_cast<std::uint64_t>(st.f_blocks - std::min(st.f_bfree, st.f_blocks)) * unit;
  return d;
}

std::optional<fs::path> engine_work_dir(const fs::path& work_root, const core::EngineConn& e) {
  // A user name as launches accept it ("name$" included), or any safe name: one path component.
  const bool user_ok = core::is_valid_user_name(e.user) || core::is_safe_name(e.user);
  if (!user_ok || !core::is_safe_name(e.id)) return std::nullopt;
  const auto expected = (work_root / e.user / e.id).lexically_normal();
  if (fs::path(e.work_dir).lexically_normal() != expected) return std::nullopt;
  return expected;
}

EngineConnCleanupService::EngineConnCleanupService(CleanupSettings settings,
                                                   EngineConnListService& engines,
                                                   boost::asio::io_context& io)
    : settings_(std::move(settings)), engines_(engines), timer_(io) {
  if (!settings_.disk_space) settings_.disk_space = statvfs_disk_space;
  status_.path = settings_.work_root;
  status_.high_watermark_percent = settings_.high_watermark_percent;
  status_.low_watermark_percent = settings_.low_watermark_percent;
}

EngineConnCleanupService::~EngineConnCleanupService() {
  stop();
}

void EngineConnCleanupService::start() {
  measure();
  std::lock_guard lock(timer_mu_);
  if (stopped_) return;
  schedule_locked();
  log("cleanup")->info("every {}ms: ended engines kept {}ms; disk watermarks {}%/{}% of {}",
                       settings_.interval.count(), settings_.retention.count(),
                       settings_.high_watermark_percent, settings_.low_watermark_percent,
                       settings_.work_root.string());
}

void EngineConnCleanupService::schedule_locked() {
  timer_.expires_after(settings_.interval);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;  // cancelled: `this` may be on its way out
    std::lock_guard lock(timer_mu_);
    if (stopped_) return;
    boost::asio::post(pool_, [this] { periodic_pass(); });
  });
}

void EngineConnCleanupService::periodic_pass() {
  try {
    run_once();
  } catch (const std::exception& e) {
    log("cleanup")->error("clean-up pass failed: {}", e.what());
  }
  std::lock_guard lock(timer_mu_);
  if (!stopped_) schedule_locked();
}

void EngineConnCleanupService::stop() {
  {
    std::lock_guard lock(timer_mu_);
    if (stopped_) return;
    stopped_ = true;
    stopping_ = true;
    timer_.cancel();
  }
  pool_.join();
}

std::optional<DiskSpace> EngineConnCleanupService::measure() {
  auto disk = settings_.disk_space(settings_.work_root);
  std::lock_guard lock(status_mu_);
  status_.disk = disk;
  status_.over_watermark = disk && disk->used_percent() > settings_.high_watermark_percent;
  return disk;
}

EngineConnCleanupService::Removal EngineConnCleanupService::remove(const std::string& id,
                                                                   CleanupReason reason) {
  // Looked up again right before removing: only an ended record is ever removed.
  auto e = engines_.get(id);
  if (!e || !core::is_ended(e->status)) return Removal::kSkipped;
  const char* why = reason == CleanupReason::kRetention ? "retention over" : "disk over watermark";

  auto refuse = [&](const std::string& problem) {
    if (refused_ids_.insert(id).second) {
      log("cleanup")->error("[{}] not removing work dir '{}': {}", id, e->work_dir, problem);
      std::lock_guard lock(status_mu_);
      ++status_.refused;
    }
    return Removal::kRefused;
  };
  auto dir = engine_work_dir(settings_.work_root, *e);
  if (!dir) return refuse("not <work_root>/<user>/<engine-id>");

  std::error_code ec;
  const auto st = fs::symlink_status(*dir, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    log("cleanup")->warn("[{}] cannot look at '{}': {}", id, dir->string(), ec.message());
    return Removal::kFailed;
  }
  if (fs::exists(st)) {
    if (fs::is_symlink(st)) return refuse("it is a symlink");
    if (!fs::is_directory(st)) return refuse("it is not a directory");
    // No symlink on the way either (a user dir that points elsewhere).
    std::error_code ec_root;
    const auto real = fs::weakly_canonical(*dir, ec);
    const auto root = fs::weakly_canonical(settings_.work_root, ec_root);
    if (ec || ec_root) {
      log("cleanup")->warn("[{}] cannot resolve '{}': {}", id, dir->string(),
                           (ec ? ec : ec_root).message());
      return Removal::kFailed;
    }
    if (real != (root / e->user / e->id).lexically_normal()) {
      return refuse("it resolves to '" + real.string() + "', outside the work root");
    }
    // remove_all does not follow symlinks inside the tree: it removes the links themselves.
    fs::remove_all(*dir, ec);
    if (ec) {
      log("cleanup")->error("[{}] cannot remove work dir '{}': {} (tried again next pass)", id,
                            dir->string(), ec.message());
      return Removal::kFailed;
    }
  }
  try {
    if (!engines_.remove_ended(id)) return Removal::kSkipped;  // cannot happen: ended stays ended
  } catch (const std::exception& ex) {
    log("cleanup")->error("[{}] cannot forget the record: {} (tried again next pass)", id,
                          ex.what());
    return Removal::kFailed;
  }
  refused_ids_.erase(id);
  log("cleanup")->info("[{}] removed work dir '{}' and record ({})", id, dir->string(), why);
  {
    std::lock_guard lock(status_mu_);
    ++(reason == CleanupReason::kRetention ? status_.removed_by_retention
                                           : status_.removed_by_watermark);
  }
  if (settings_.on_removed) settings_.on_removed(id, reason);
  return Removal::kRemoved;
}

CleanupPassResult EngineConnCleanupService::run_once() {
  std::lock_guard pass(pass_mu_);
  CleanupPassResult result;
  auto count = [&](Removal r, std::size_t& removed) {
    if (r == Removal::kRemoved) ++removed;
    if (r == Removal::kRefused) ++result.refused;
    if (r == Removal::kFailed) ++result.failed;
  };

  // Retention.
  const auto now = core::Clock::now();
  std::set<std::string> tried;
  for (const auto& e : engines_.list({})) {
    if (stopping_) break;
    if (!core::is_ended(e.status) || ended_time(e) + settings_.retention > now) continue;
    tried.insert(e.id);
    count(remove(e.id, CleanupReason::kRetention), result.removed_by_retention);
  }

  // The watermark: oldest ended first, regardless of retention, until below the low watermark.
  auto disk = measure();
  const bool over = disk && disk->used_percent() > settings_.high_watermark_percent;
  if (over != was_over_) {  // logged when it changes, not at every pass
    was_over_ = over;
    if (over) {
      log("cleanup")->warn(
          "{} is {:.1f}% full (high watermark {}%): ended engines are removed oldest first, "
          "regardless of retention, until below {}%",
          settings_.work_root.string(), disk->used_percent(), settings_.high_watermark_percent,
          settings_.low_watermark_percent);
    } else if (disk) {
      log("cleanup")->info("{} is {:.1f}% full: below the high watermark again",
                           settings_.work_root.string(), disk->used_percent());
    }
  }
  if (over && !stopping_) {
    std::vector<core::EngineConn> ended;
    for (auto& e : engines_.list({})) {
      // Refused or failed once this pass: not again (it would be picked forever).
      if (core::is_ended(e.status) && !tried.count(e.id) && !refused_ids_.count(e.id))
        ended.push_back(std::move(e));
    }
    std::sort(ended.begin(), ended.end(), [](const auto& a, const auto& b) {
      const auto ta = ended_time(a), tb = ended_time(b);
      return ta != tb ? ta < tb : a.id < b.id;
    });
    for (const auto& e : ended) {
      if (stopping_ || !disk || disk->used_percent() < settings_.low_watermark_percent) break;
      count(remove(e.id, CleanupReason::kWatermark), result.removed_by_watermark);
      disk = measure();
    }
    if (result.removed_by_watermark > 0 && disk &&
        disk->used_percent() >= settings_.low_watermark_percent && !stopping_) {
      log("cleanup")->warn("{} is still {:.1f}% full: no ended engine left to remove",
                           settings_.work_root.string(), disk->used_percent());
    }
  }
  std::lock_guard lock(status_mu_);
  status_.last_pass = core::Clock::now();
  return result;
}

void EngineConnCleanupService::update_policy(std::chrono::milliseconds retention,
                                             std::chrono::milliseconds interval,
                                             double high_watermark_percent,
                                             double low_watermark_percent) {
  // A pass reads these under pass_mu_, the scheduling under timer_mu_, measure() under pass_mu_
  // (or in start(), before anything can call this): written under every one of them.
  std::lock_guard pass(pass_mu_);
  std::lock_guard timer(timer_mu_);
  std::lock_guard status(status_mu_);
  settings_.retention = retention;
  settings_.interval = interval;
  settings_.high_watermark_percent = high_watermark_percent;
  settings_.low_watermark_percent = low_watermark_percent;
  status_.high_watermark_percent = high_watermark_percent;
  status_.low_watermark_percent = low_watermark_percent;
}

CleanupStatus EngineConnCleanupService::status() const {
  std::lock_guard lock(status_mu_);
  return status_;
}

}  // namespace ecm::host
