// A small HTTP/1.1 server (Boost.Beast) for scrapers and load balancers:
//   GET /metrics  the Prometheus text format (text/plain; version=0.0.4)
//   GET /healthz  200 when the node's health is Healthy or WARN, 503 otherwise; body: the health
// 404 for any other path, 405 for any other method. It runs on an io_context and thread of its
// own, so a slow client never holds up the daemon's event loop.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>

namespace ecm::host {

struct MetricsHttpHandlers {
  std::function<std::string()> metrics;  // the /metrics body
  // The /healthz answer: whether the node takes engines, and the health's name.
  std::function<std::pair<bool, std::string>()> healthz;
};

class MetricsHttpServer {
 public:
  explicit MetricsHttpServer(MetricsHttpHandlers handlers);
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // Binds host:port (port 0: any free one) and starts serving; returns the bound port. Throws
  // std::runtime_error when it cannot listen.
  std::uint16_t start(const std::string& host, std::uint16_t port);
  // Closes the listener and every connection, and joins the thread. Idempotent.
  void stop();

 private:
  class Session;
  void accept();

  MetricsHttpHandlers handlers_;
  boost::asio::io_context io_{1};
  struct Acceptor;
  std::unique_ptr<Acceptor> acceptor_;
  std::thread thread_;
};

}  // namespace ecm::host
