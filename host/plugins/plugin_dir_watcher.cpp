#include "plugins/plugin_dir_watcher.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <future>
#include <stdexcept>

#include <boost/asio/post.hpp>

#include "util/log.hpp"

namespace ecm::host {

PluginDirWatcher::PluginDirWatcher(std::filesystem::path dir, std::chrono::milliseconds debounce,
                                   boost::asio::io_context& io, Wanted wanted, Reload reload)
    : dir_(std::move(dir)),
      debounce_(debounce),
      io_(io),
      wanted_(std::move(wanted)),
      reload_(std::move(reload)),
      inotify_(io) {}

PluginDirWatcher::~PluginDirWatcher() {
  stop();
}

void PluginDirWatcher::start() {
  const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) throw std::runtime_error(std::string("inotify_init1: ") + std::strerror(errno));
  // A finished write (copy in place) or a file moved in (the atomic install); not IN_CREATE or
  // IN_MODIFY: a file being written is not ready.
  if (::inotify_add_watch(fd, dir_.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
    const int err = errno;
    ::close(fd);
    throw std::runtime_error("cannot watch plugin dir " + dir_.string() + ": " +
                             std::strerror(err));
  }
  inotify_.assign(fd);
  {
    std::lock_guard lock(mu_);
    started_ = true;
  }
  log("registry")
      ->info("watching {} for plugin updates (debounce {}ms)", dir_.string(), debounce_.count());
  read_events();
}

void PluginDirWatcher::stop() {
  bool started;
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    started = started_;
  }
  if (started) {
    // The descriptor and timers are used by the loop's threads: close them on the loop, and wait.
    std::promise<void> closed;
    boost::asio::post(io_, [this, &closed] {
      {
        std::lock_guard lock(mu_);
        for (auto& [_, timer] : timers_)
          timer->cancel();
      }
      boost::system::error_code ec;
      inotify_.cancel(ec);
      inotify_.close(ec);
      closed.set_value();
    });
    closed.get_future().wait();
  }
  worker_.join();
}

void PluginDirWatcher::read_events() {
  inotify_.async_read_some(
      boost::asio::buffer(buffer_), [this](boost::system::error_code ec, std::size_t n) {
        if (ec) {
          if (ec != boost::asio::error::operation_aborted)
            log("registry")->error("plugin dir watch ended: {}", ec.message());
          return;
        }
        for (std::size_t off = 0; off + sizeof(inotify_event) <= n;) {
          const auto* e = reinterpret_cast<const inotify_event*>(buffer_ + off);
          if (e->mask & IN_Q_OVERFLOW) {
            log("registry")->warn("plugin dir watch overflowed: some updates may be missed");
          } else if (e->len > 0) {
            on_file(e->name);
          }
          off += sizeof(inotify_event) + e->len;
        }
        read_events();
      });
}

void PluginDirWatcher::on_file(const std::string& file) {
  const std::filesystem::path p(file);
  if (file.empty() || file[0] == '.' || p.extension() != ".so") return;
  const auto name = p.stem().string();
  if (!wanted_(name)) {
    log("registry")->debug("{} changed, but no plugin '{}' is loaded: ignored", file, name);
    return;
  }
  std::lock_guard lock(mu_);
  if (stopped_) return;
  auto& timer = timers_[name];
  if (!timer) timer = std::make_unique<boost::asio::steady_timer>(io_);
  timer->expires_after(debounce_);  // cancels a wait already pending: the quiet period restarts
  timer->async_wait([this, name](boost::system::error_code ec) {
    if (!ec) on_quiet(name);
  });
}

void PluginDirWatcher::on_quiet(const std::string& name) {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
  }
  boost::asio::post(worker_, [this, name] {
    log("registry")->info("plugin file {}.so replaced: reloading", name);
    try {
      reload_(name);
    } catch (const std::exception& e) {
      log("registry")->error("reload of plugin '{}' refused: {}", name, e.what());
    }
  });
}

}  // namespace ecm::host
