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

}  // namespace

EcmDaemon::EcmDaemon(EcmConfig config)
    : config_(std::move(config)),
      processes_(io_),
      registry_(config_.plugin_dir, config_.plugin_conf_dir, config_.state_dir / "plugins"),
      resources_(config_.capacity, config_.protected_),
      launch_({config_.work_root, config_.stop_grace, config_.engine_default,
               config_.launch_timeout, sibling_ecmctl()},
              registry_, engines_, resources_, processes_, io_),
      kill_(engines_, processes_),
      callbacks_(engines_, launch_) {}

EcmDaemon::~EcmDaemon() {
  shutdown();
}

void EcmDaemon::start() {
  std::filesystem::create_directories(config_.state_dir);
  std::filesystem::create_directories(config_.work_root);
  for (const auto& name : config_.enabled_plugins)
    registry_.load(name);

  guard_.emplace(io_.get_executor());
  for (unsigned i = 0; i < config_.io_threads; ++i) {
    io_threads_.emplace_back([this] { io_.run(); });
  }

  started_ = true;
  // Engines call back on their own port, so the RM-facing one can be secured on its own.
  callback_server_ = serve_thrift(std::make_shared<ecm::thrift::EngineConnCallbackServiceProcessor>(
                                      std::make_shared<EngineCallbackHandler>(callbacks_)),
                                  config_.callback_host, config_.callback_port, callback_thread_);
  launch_.set_callback_address(config_.callback_host + ":" + std::to_string(callback_server_.port));
  main_server_ = serve_thrift(
      std::make_shared<ecm::thrift::EngineConnManagerServiceProcessor>(
          std::make_shared<EcmServiceHandler>(EcmServices{launch_, engines_, kill_, resources_})),
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
