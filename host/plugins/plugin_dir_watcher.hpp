// Watches the plugin dir with inotify and asks for a reload of a plugin whose NAME.so was
// replaced, once the file has been quiet for the debounce time (an atomic rename gives one event;
// a copy in place gives many, and the reload waits for the last). Only names `wanted` accepts are
// reloaded (the ones loaded); hidden files and other extensions are ignored.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

namespace ecm::host {

class PluginDirWatcher {
 public:
  using Wanted = std::function<bool(const std::string& name)>;
  // Runs off the event loop, one at a time (a reload reads and loads a library).
  using Reload = std::function<void(const std::string& name)>;

  PluginDirWatcher(std::filesystem::path dir, std::chrono::milliseconds debounce,
                   boost::asio::io_context& io, Wanted wanted, Reload reload);
  ~PluginDirWatcher();
  PluginDirWatcher(const PluginDirWatcher&) = delete;
  PluginDirWatcher& operator=(const PluginDirWatcher&) = delete;

  // Throws std::runtime_error when the dir cannot be watched.
  void start();
  // Cancels pending reloads and waits for one in progress. Call while the loop still runs.
  // Idempotent.
  void stop();

 private:
  void read_events();
  void on_file(const std::string& file);
  void on_quiet(const std::string& name);

  std::filesystem::path dir_;
  std::chrono::milliseconds debounce_;
  boost::asio::io_context& io_;
  Wanted wanted_;
  Reload reload_;
  boost::asio::posix::stream_descriptor inotify_;
  boost::asio::thread_pool worker_{1};
  std::mutex mu_;  // below
  bool started_ = false;
  bool stopped_ = false;
  std::map<std::string, std::unique_ptr<boost::asio::steady_timer>> timers_;  // by plugin name
  alignas(8) char buffer_[16 * 1024];
};

}  // namespace ecm::host
