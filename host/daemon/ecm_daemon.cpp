#include "daemon/ecm_daemon.hpp"

#include <fstream>
#include <future>

#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/server/TThreadedServer.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TServerSocket.h>

#include "thrift/ecm_service_handler.hpp"
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

}  // namespace

EcmDaemon::EcmDaemon(EcmConfig config)
    : config_(std::move(config)),
      processes_(io_),
      registry_(config_.plugin_dir, config_.plugin_conf_dir, config_.state_dir / "plugins"),
      resources_(config_.capacity, config_.protected_),
      launch_({config_.work_root, config_.stop_grace, config_.engine_default}, registry_, engines_,
              resources_, processes_),
      kill_(engines_, processes_) {}

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

  auto socket =
      std::make_shared<at::transport::TServerSocket>(config_.listen_host, config_.listen_port);
  auto handler =
      std::make_shared<EcmServiceHandler>(EcmServices{launch_, engines_, kill_, resources_});
  server_ = std::make_shared<at::server::TThreadedServer>(
      std::make_shared<ecm::thrift::EngineConnManagerServiceProcessor>(handler), socket,
      std::make_shared<at::transport::TBufferedTransportFactory>(),
      std::make_shared<at::protocol::TBinaryProtocolFactory>());
  std::promise<int> listening;
  auto port = listening.get_future();
  server_->setServerEventHandler(std::make_shared<ListenSignal>(socket, std::move(listening)));
  std::promise<std::string> failed;
  auto failure = failed.get_future();
  server_thread_ = std::thread([this, f = std::move(failed)]() mutable {
    try {
      server_->serve();
      f.set_value("");
    } catch (const std::exception& e) {
      f.set_value(e.what());
    }
  });
  started_ = true;
  // Either the server listens, or serve() returned with the reason (address in use...).
  while (port.wait_for(std::chrono::milliseconds(10)) != std::future_status::ready) {
    if (failure.wait_for(std::chrono::milliseconds(0)) == std::future_status::ready) {
      auto reason = failure.get();
      shutdown();
      throw std::runtime_error("cannot listen on " + config_.listen_host + ":" +
                               std::to_string(config_.listen_port) + ": " + reason);
    }
  }
  port_ = static_cast<std::uint16_t>(port.get());
  log("daemon")->info("capacity: {}; protected: {}", core::describe(config_.capacity),
                      core::describe(config_.protected_));
  write_address_file();
  log("daemon")->info("ECM serving on {}:{} ({} plugin(s), work root {})", config_.listen_host,
                      port_, config_.enabled_plugins.size(), config_.work_root.string());
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
  if (server_) server_->stop();
  if (server_thread_.joinable()) server_thread_.join();
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
