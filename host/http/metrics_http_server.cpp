#include "http/metrics_http_server.hpp"

#include <chrono>
#include <optional>
#include <stdexcept>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "http/prometheus_text.hpp"
#include "util/log.hpp"

namespace ecm::host {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// A client that sends nothing (or reads nothing) for this long is dropped.
constexpr auto kIdleTimeout = std::chrono::seconds(30);
constexpr std::size_t kMaxRequestBytes = 16 * 1024;

}  // namespace

struct MetricsHttpServer::Acceptor {
  explicit Acceptor(asio::io_context& io) : acceptor(io) {}
  tcp::acceptor acceptor;
};

// One connection: requests answered one after the other while the client keeps it alive.
class MetricsHttpServer::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const MetricsHttpHandlers& handlers)
      : stream_(std::move(socket)), handlers_(handlers) {}

  void read() {
    parser_.emplace();
    parser_->header_limit(kMaxRequestBytes);
    parser_->body_limit(kMaxRequestBytes);
    stream_.expires_after(kIdleTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       if (ec) return self->close();
                       self->respond(self->parser_->release());
                     });
  }

 private:
  void respond(http::request<http::string_body> req) {
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(req.version());
    res->keep_alive(req.keep_alive());
    res->set(http::field::server, "ecm");
    const auto target = std::string(req.target().substr(0, req.target().find('?')));
    const bool known = target == "/metrics" || target == "/healthz";
    try {
      if (!known) {
        res->result(http::status::not_found);
        res->set(http::field::content_type, "text/plain; charset=utf-8");
        res->body() = "not found: GET /metrics or /healthz\n";
      } else if (req.method() != http::verb::get && req.method() != http::verb::head) {
        res->result(http::status::method_not_allowed);
        res->set(http::field::allow, "GET, HEAD");
        res->set(http::field::content_type, "text/plain; charset=utf-8");
        res->body() = "method not allowed: use GET\n";
      } else if (target == "/metrics") {
        res->result(http::status::ok);
        res->set(http::field::content_type, kPrometheusContentType);
        res->body() = handlers_.metrics();
      } else {
        auto [takes, name] = handlers_.healthz();
        res->result(takes ? http::status::ok : http::status::service_unavailable);
        res->set(http::field::content_type, "text/plain; charset=utf-8");
        res->body() = name + "\n";
      }
    } catch (const std::exception& e) {
      log("http")->error("{} failed: {}", target, e.what());
      res->result(http::status::internal_server_error);
      res->set(http::field::content_type, "text/plain; charset=utf-8");
      res->body() = "internal error\n";
    }
    res->prepare_payload();
    if (req.method() == http::verb::head) res->body().clear();
    stream_.expires_after(kIdleTimeout);
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
                        if (ec || !res->keep_alive()) return self->close();
                        self->read();
                      });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  const MetricsHttpHandlers& handlers_;
};

MetricsHttpServer::MetricsHttpServer(MetricsHttpHandlers handlers)
    : handlers_(std::move(handlers)), acceptor_(std::make_unique<Acceptor>(io_)) {}

MetricsHttpServer::~MetricsHttpServer() {
  stop();
}

std::uint16_t MetricsHttpServer::start(const std::string& host, std::uint16_t port) {
  try {
    tcp::endpoint endpoint(asio::ip::make_address(host), port);
    auto& a = acceptor_->acceptor;
    a.open(endpoint.protocol());
    a.set_option(asio::socket_base::reuse_address(true));
    a.bind(endpoint);
    a.listen();
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port) +
                             " for metrics: " + e.what());
  }
  const auto bound = acceptor_->acceptor.local_endpoint().port();
  accept();
  thread_ = std::thread([this] {
    try {
      io_.run();
    } catch (const std::exception& e) {
      log("http")->error("metrics server stopped: {}", e.what());
    }
  });
  return bound;
}

void MetricsHttpServer::accept() {
  acceptor_->acceptor.async_accept(
      asio::make_strand(io_), [this](beast::error_code ec, tcp::socket socket) {
        if (ec == asio::error::operation_aborted || !acceptor_->acceptor.is_open()) return;
        if (!ec) std::make_shared<Session>(std::move(socket), handlers_)->read();
        accept();
      });
}

void MetricsHttpServer::stop() {
  if (!thread_.joinable()) return;
  asio::post(io_, [this] {
    beast::error_code ignored;
    acceptor_->acceptor.close(ignored);
  });
  io_.stop();  // drops open connections with the io_context's pending work
  thread_.join();
}

}  // namespace ecm::host
