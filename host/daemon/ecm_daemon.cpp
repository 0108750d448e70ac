#include "daemon/ecm_daemon.hpp"

#include <fstream>
#include <future>

#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/server/TThreadedServer.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TServerSocket.h>

#include "thrift/ecm_service_handler.hpp"
#include "thrift/engine_callback_handler.hpp"
#include "util/log.hpp"

namespace ecm::host {
namespace {

namespace at = apache::thrift;

// Tells start() the port once the server socket listens (port 0 picks a free one).
class ListenSignal : public at::server::TServerEventHandler {
 public:
  ListenSignal(std::shared_ptr<at::transport::TServerSocket> socket, std::promise<int> promise)
      : socket_(std::move(socket)), promise_(std::move(promise)) {}
  void preServe() override { promise_.set_value(socket_->getPort()); }

 private:
  std::shared_ptr<at::transport::TServerSocket> socket_;
  std::promise<int> promise_;
};

// ecmctl as installed beside this ecm binary; empty when it is not there.
std::filesystem::path sibling_ecmctl() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  auto ctl = self.parent_path() / "ecmctl";
  return std::filesystem::is_regular_file(ctl, ec) ? ctl : std::filesystem::path{};
}

// The user policy when engines run as the requested user; nullopt when they run as the ECM's.
// Throws std::runtime_error when the config asks for switching and the ECM cannot switch.
std::optional<core::UserPolicy> run_as_user(const EcmConfig& c) {
  if (c.run_as == "ecm") return std::nullopt;
  if (core::running_as_root()) return c.user_policy;
  if (c.run_as == "requested") {
    throw std::runtime_error("[users] run_as = \"requested\" needs the ECM to run as root");
  }
  return std::nullopt;  // "auto" without root: the request's user is recorded only
}

CleanupSettings cleanup_settings(const EcmConfig& c) {
  CleanupSettings s;
  s.work_root = c.work_root;
  s.retention = c.retention;
  s.interval = c.cleanup_interval;
  s.high_watermark_percent = c.disk_high_watermark;
  s.low_watermark_percent = c.disk_low_watermark;
  return s;
}

LogRotationSettings log_rotation_settings(const EcmConfig& c) {
  return {c.work_root, c.log_rotate_size, c.log_rotate_keep, c.log_rotate_check_interval};
}

}  // namespace

EcmDaemon::EcmDaemon(EcmConfig config)
    : config_(std::move(config)),
      processes_(io_),
      registry_(config_.plugin_dir, config_.plugin_conf_dir, config_.state_dir / "plugins"),
      resources_(config_.capacity, config_.protected_),
      ports_(config_.port_range),
      launch_({config_.work_root, config_.stop_grace, config_.engine_default,
               config_.launch_timeout, sibling_ecmctl(), run_as_user(config_), config_.port_host},
              registry_, engines_, resources_, processes_, ports_, io_),
      kill_(engines_, processes_),
      callbacks_(engines_, launch_),
      cleanup_(cleanup_settings(config_), engines_, io_),
      log_rotation_(log_rotation_settings(config_), engines_, io_, cleanup_.executor()) {}

EcmDaemon::~EcmDaemon() {
  shutdown();
}

void EcmDaemon::start() {
  std::filesystem::create_directories(config_.state_dir);
  std::filesystem::create_directories(config_.work_root);
  // Before anything can add an engine: every record is written to the store before it is seen.
  store_.emplace(config_.state_dir / "ecm.db");
  engines_.set_store(&*store_);
  for (const auto& name : config_.enabled_plugins)
    registry_.load(name);

  guard_.emplace(io_.get_executor());
  for (unsigned i = 0; i < config_.io_threads; ++i) {
    io_threads_.emplace_back([this] { io_.run(); });
  }
  cleanup_.start();
  log_rotation_.start();

  started_ = true;
  // Engines call back on their own port, so the RM-facing one can be secured on its own.
  callback_server_ = serve_thrift(std::make_shared<ecm::thrift::EngineConnCallbackServiceProcessor>(
                                      std::make_shared<EngineCallbackHandler>(callbacks_)),
                                  config_.callback_host, config_.callback_port, callback_thread_);
  launch_.set_callback_address(config_.callback_host + ":" + std::to_string(callback_server_.port));
  main_server_ = serve_thrift(std::make_shared<ecm::thrift::EngineConnManagerServiceProcessor>(
                                  std::make_shared<EcmServiceHandler>(
                                      EcmServices{launch_, engines_, kill_, resources_, &cleanup_},
                                      config_.log_max_read_lines)),
                              config_.listen_host, config_.listen_port, server_thread_);
  port_ = main_server_.port;
  log("daemon")->info("capacity: {}; protected: {}", core::describe(config_.capacity),
                      core::describe(config_.protected_));
  write_address_file();
  log("daemon")->info("ECM serving on {}:{} ({} plugin(s), work root {})", config_.listen_host,
                      port_, config_.enabled_plugins.size(), config_.work_root.string());
}

EcmDaemon::ThriftServer EcmDaemon::serve_thrift(
    std::shared_ptr<apache::thrift::TProcessor> processor, const std::string& host,
    std::uint16_t port, std::thread& thread) {
  auto socket = std::make_shared<at::transport::TServerSocket>(host, port);
  auto server = std::make_shared<at::server::TThreadedServer>(
      std::move(processor), socket, std::make_shared<at::transport::TBufferedTransportFactory>(),
      std::make_shared<at::protocol::TBinaryProtocolFactory>());
  std::promise<int> listening;
  auto bound = listening.get_future();
  server->setServerEventHandler(std::make_shared<ListenSignal>(socket, std::move(listening)));
  std::promise<std::string> failed;
  auto failure = failed.get_future();
  thread = std::thread([server, f = std::move(failed)]() mutable {
    try {
      server->serve();
      f.set_value("");
    } catch (const std::exception& e) {
      f.set_value(e.what());
    }
  });
  // Either the server listens, or serve() returned with the reason (address in use...).
  while (bound.wait_for(std::chrono::milliseconds(10)) != std::future_status::ready) {
    if (failure.wait_for(std::chrono::milliseconds(0)) == std::future_status::ready) {
      auto reason = failure.get();
      thread.join();
      shutdown();
      throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port) + ": " +
                               reason);
    }
  }
  return {server, static_cast<std::uint16_t>(bound.get())};
}

void EcmDaemon::write_address_file() const {
  auto tmp = config_.state_dir / "ecm.address.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << config_.listen_host << ":" << port_ << "\n";
  }
  std::filesystem::rename(tmp, config_.state_dir / "ecm.address");
}

void EcmDaemon::shutdown() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  log("daemon")->info("shutting down");
  launch_.refuse_new_launches();
  // Disk jobs first: nothing is rotated or removed while engines are being stopped.
  log_rotation_.stop();
  cleanup_.stop();
  for (auto* s : {&main_server_, &callback_server_}) {
    if (s->server) s->server->stop();
  }
  if (server_thread_.joinable()) server_thread_.join();
  if (callback_thread_.joinable()) callback_thread_.join();
  if (config_.stop_on_shutdown) {
    // Each engine's grace, plus a margin for the SIGKILL to land and the exit to be reaped.
    auto left = kill_.stop_all("ECM shutdown", std::chrono::seconds(5));
    if (left > 0) log("daemon")->error("{} engine(s) still running at exit", left);
  }
  guard_.reset();
  io_.stop();
  for (auto& t : io_threads_)
    t.join();
  std::error_code ec;
  std::filesystem::remove(config_.state_dir / "ecm.address", ec);
}

}  // namespace ecm::host
