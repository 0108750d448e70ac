#include "services/engine_log_rotation.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include <boost/asio/post.hpp>

#include "ecm/core/engine_status.hpp"
#include "ecm/core/log_rotation.hpp"
#include "services/engine_conn_cleanup_service.hpp"
#include "util/log.hpp"

namespace ecm::host {
namespace {

namespace fs = std::filesystem;

constexpr std::array<const char*, 2> kStreams = {"stdout", "stderr"};

// Where the directory open as `fd` really is (the kernel's answer: no race with a rename).
std::string real_path_of(int fd) {
  std::array<char, 4096> buf{};
  const auto link = "/proc/self/fd/" + std::to_string(fd);
  const auto n = ::readlink(link.c_str(), buf.data(), buf.size() - 1);
  return n > 0 ? std::string(buf.data(), static_cast<std::size_t>(n)) : std::string();
}

}  // namespace

EngineLogRotation::EngineLogRotation(LogRotationSettings settings, EngineConnListService& engines,
                                     boost::asio::io_context& io, boost::asio::any_io_executor pool)
    : settings_(std::move(settings)), engines_(engines), timer_(io), pool_(std::move(pool)) {}

EngineLogRotation::~EngineLogRotation() {
  stop();
}

void EngineLogRotation::start() {
  std::lock_guard lock(mu_);
  if (stopped_) return;
  schedule_locked();
  log("logs")->info("engine logs rotated past {} bytes, {} file(s) kept, checked every {}ms",
                    settings_.max_bytes, settings_.keep, settings_.interval.count());
}

void EngineLogRotation::schedule_locked() {
  timer_.expires_after(settings_.interval);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;  // cancelled: `this` may be on its way out
    std::lock_guard lock(mu_);
    if (stopped_) return;
    ++posted_;
    boost::asio::post(pool_, [this] {
      try {
        run_once();
      } catch (const std::exception& e) {
        log("logs")->error("log rotation pass failed: {}", e.what());
      }
      std::lock_guard lock(mu_);
      --posted_;
      if (!stopped_) schedule_locked();
      idle_.notify_all();
    });
  });
}

void EngineLogRotation::stop() {
  std::unique_lock lock(mu_);
  if (stopped_) return;
  stopped_ = true;
  timer_.cancel();
  idle_.wait(lock, [this] { return posted_ == 0; });
}

std::uint64_t EngineLogRotation::rotations() const {
  std::lock_guard lock(mu_);
  return rotations_;
}

void EngineLogRotation::warn_once(const std::string& key, const std::string& engine_id,
                                  const std::string& what) {
  if (warned_.insert(key).second) log("logs")->warn("[{}] not rotating: {}", engine_id, what);
}

void EngineLogRotation::rotate_engine(const core::EngineConn& e, std::size_t& rotated) {
  const auto work_dir = engine_work_dir(settings_.work_root, e);
  if (!work_dir || fs::path(e.log_dir).lexically_normal() != *work_dir / "logs") {
    return warn_once(e.id + "/", e.id, "log dir '" + e.log_dir + "' is not in its work dir");
  }
  const int dir = ::open(e.log_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dir < 0) {
    if (errno == ENOENT) return;  // not made yet
    return warn_once(e.id + "/", e.id,
                     "cannot open log dir '" + e.log_dir + "': " + std::strerror(errno));
  }
  // The dir opened must be the one under the work root, not one a symlink on the way points to.
  std::error_code ec;
  const auto expected =
      (fs::weakly_canonical(settings_.work_root, ec) / e.user / e.id / "logs").lexically_normal();
  if (ec || real_path_of(dir) != expected.string()) {
    ::close(dir);
    return warn_once(e.id + "/", e.id, "log dir '" + e.log_dir + "' leads outside the work root");
  }
  for (const char* stream : kStreams) {
    try {
      if (core::rotate_if_larger_at(dir, stream, settings_.max_bytes, settings_.keep)) {
        ++rotated;
        log("logs")->info("[{}] rotated {}", e.id, stream);
        if (observer_) observer_(e, stream);
      }
    } catch (const std::exception& ex) {
      warn_once(e.id + "/" + stream, e.id, ex.what());
    }
  }
  ::close(dir);
}

std::size_t EngineLogRotation::run_once() {
  std::lock_guard pass(pass_mu_);
  std::size_t rotated = 0;
  std::set<std::string> live;
  for (const auto& e : engines_.list({})) {
    if (core::is_ended(e.status)) continue;
    live.insert(e.id);
    rotate_engine(e, rotated);
  }
  // Forget the warnings of engines that ended.
  for (auto it = warned_.begin(); it != warned_.end();) {
    it = live.count(it->substr(0, it->find('/'))) ? std::next(it) : warned_.erase(it);
  }
  std::lock_guard lock(mu_);
  rotations_ += rotated;
  return rotated;
}

}  // namespace ecm::host
