// A small HTTP/1.1 server for the tests of localizers (unit and integration): Boost.Beast, bound
// to 127.0.0.1 on a free port, one thread to accept and one per connection (blocking I/O), so hung
// connections cost nothing to the others. Header-only.
//
//   ecm::test::TestHttpServer server;                      // listening once constructed
//   server.add_file("/a.jar", bytes);                      // 200, Content-Length, ranges, ETag
//   server.add_redirect("/old", "/a.jar");                 // 302 Location: /a.jar
//   server.add_status("/gone", 410);                       // any other path: 404
//   server.drop("/a.jar", 2);                              // first 2 requests: close mid-body
//   server.stall("/a.jar", TestHttpServer::Stall::kAfterHeaders, 1000);  // hang after 1000 bytes
//   server.fail("/a.jar", 1, 503);                         // first request: 503
//   server.throttle("/a.jar", 4096, 10ms);                 // 4 KiB every 10 ms
//   fetch(server.url("/a.jar"));
//   server.request_count("/a.jar"); server.requests("/a.jar")[1].header("range");
//
// BML mode (Linkis's material library REST API, see /work/shared/BML-API.md):
//   server.enable_bml("BML-AUTH");                         // the token it accepts (Token-Code)
//   server.add_bml_resource("res-1", "v000001", bytes);    // versions in order: the last is newest
//   GET /api/rest_j/v1/bml/download?resourceId=res-1[&version=v000001]
//   GET /api/rest_j/v1/bml/getVersions?resourceId=res-1[&currentPage=1&pageSize=10]
// A wrong or missing Token-Code (or no Token-User) is HTTP 401 with the JSON envelope
// {"status": -1, "message": "..."}; an unknown resource or version is HTTP 200 with status 1 and a
// message saying it does not exist. The faults above apply to the download path too.
//
// stop() (and the destructor) closes the listener and every connection, hung or not, at once.
#pragma once

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

namespace ecm::test {

class TestHttpServer {
 public:
  enum class Stall {
    kNone,
    kBeforeHeaders,  // read the request, answer nothing
    kAfterHeaders,   // send the headers and `stall_after` bytes of the body, then nothing
  };

  // What a GET of one path answers. Faults apply to the first N requests of the path (counted
  // since the server started or reset()), or to every one when N is 0 where said.
  struct Route {
    int status = 200;
    std::shared_ptr<const std::string> body = std::make_shared<const std::string>();
    std::string content_type = "application/octet-stream";
    std::vector<std::pair<std::string, std::string>> headers;  // extra response headers
    bool accept_ranges = true;  // Accept-Ranges: bytes, and Range / If-Range honoured
    std::string etag;           // sent when not empty; If-Range must match it
    bool chunked = false;       // Transfer-Encoding: chunked instead of Content-Length
    bool no_length = false;     // neither: the body ends when the connection closes
    std::string location;       // a 3xx: Location
    // Faults.
    unsigned fail_first = 0;  // the first N requests answer fail_status
    int fail_status = 503;
    Stall stall = Stall::kNone;
    std::size_t stall_after = 0;     // kAfterHeaders: body bytes sent before hanging
    unsigned stall_first = 0;        // 0: every request stalls
    unsigned drop_first = 0;         // the first N requests: the connection closes mid-body...
    std::size_t drop_after = 0;      // ...after this many bytes of the body (0: half of it)
    std::size_t throttle_bytes = 0;  // when set: this many bytes, then a pause of...
    std::chrono::milliseconds throttle_interval{0};
  };

  // One request the server read.
  struct Request {
    std::string method;
    std::string target;  // as sent: path and query
    std::string path;
    std::map<std::string, std::string> query;    // decoded
    std::map<std::string, std::string> headers;  // names lowercased
    std::string header(const std::string& lowercase_name) const {
      auto it = headers.find(lowercase_name);
      return it == headers.end() ? std::string() : it->second;
    }
    bool has_header(const std::string& lowercase_name) const {
      return headers.count(lowercase_name) != 0;
    }
  };

  static constexpr const char* kBmlDownload = "/api/rest_j/v1/bml/download";
  static constexpr const char* kBmlVersions = "/api/rest_j/v1/bml/getVersions";

  TestHttpServer() : acceptor_(io_) {
    namespace ip = boost::asio::ip;
    const ip::tcp::endpoint endpoint(ip::make_address("127.0.0.1"), 0);
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(boost::asio::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(boost::asio::socket_base::max_listen_connections);
    port_ = acceptor_.local_endpoint().port();
    accept_thread_ = std::thread([this] { accept_loop(); });
  }
  ~TestHttpServer() { stop(); }
  TestHttpServer(const TestHttpServer&) = delete;
  TestHttpServer& operator=(const TestHttpServer&) = delete;

  std::uint16_t port() const { return port_; }
  // "http://127.0.0.1:PORT"
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string url(const std::string& path) const { return base_url() + path; }

  // ---- routes ----

  void add_route(const std::string& path, Route route) {
    std::lock_guard<std::mutex> lock(mu_);
    routes_[path] = std::move(route);
  }
  void add_file(const std::string& path, std::string bytes, bool accept_ranges = true) {
    Route r;
    r.etag = "\"" + std::to_string(bytes.size()) + "-" + std::to_string(next_etag_++) + "\"";
    r.body = std::make_shared<const std::string>(std::move(bytes));
    r.accept_ranges = accept_ranges;
    add_route(path, std::move(r));
  }
  // Answers `status` with `body` (a 404, a 500...).
  void add_status(const std::string& path, int status, std::string body = "",
                  std::string content_type = "text/plain") {
    Route r;
    r.status = status;
    r.body = std::make_shared<const std::string>(std::move(body));
    r.content_type = std::move(content_type);
    r.accept_ranges = false;
    add_route(path, std::move(r));
  }
  // `location` as given: a path ("/b"), a relative one ("b"), or a whole URL.
  void add_redirect(const std::string& path, const std::string& location, int status = 302) {
    Route r;
    r.status = status;
    r.location = location;
    r.accept_ranges = false;
    add_route(path, std::move(r));
  }
  // Changes the route of `path` (made empty first if there is none).
  template <class F>
  void modify(const std::string& path, F&& change) {
    std::lock_guard<std::mutex> lock(mu_);
    change(routes_[path]);
  }
  void fail(const std::string& path, unsigned first_n, int status = 503) {
    modify(path, [&](Route& r) {
      r.fail_first = first_n;
      r.fail_status = status;
    });
  }
  void stall(const std::string& path, Stall mode, std::size_t after_bytes = 0,
             unsigned first_n = 0) {
    modify(path, [&](Route& r) {
      r.stall = mode;
      r.stall_after = after_bytes;
      r.stall_first = first_n;
    });
  }
  void drop(const std::string& path, unsigned first_n, std::size_t after_bytes = 0) {
    modify(path, [&](Route& r) {
      r.drop_first = first_n;
      r.drop_after = after_bytes;
    });
  }
  void throttle(const std::string& path, std::size_t bytes, std::chrono::milliseconds interval) {
    modify(path, [&](Route& r) {
      r.throttle_bytes = bytes;
      r.throttle_interval = interval;
    });
  }
  void remove_route(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    routes_.erase(path);
  }

  // ---- BML ----

  // Serves the BML API under `prefix` (a gateway path such as "/linkis", or ""), accepting `token`.
  void enable_bml(std::string token, std::string prefix = "") {
    std::lock_guard<std::mutex> lock(mu_);
    bml_ = true;
    bml_token_ = std::move(token);
    bml_prefix_ = std::move(prefix);
  }
  // Adds a version of a resource; the last version added is the newest.
  void add_bml_resource(const std::string& id, const std::string& version, std::string bytes,
                        const std::string& owner = "hadoop") {
    std::lock_guard<std::mutex> lock(mu_);
    auto& res = bml_resources_[id];
    res.owner = owner;
    res.versions.emplace_back(version, std::make_shared<const std::string>(std::move(bytes)));
  }
  // Whether BML downloads honour Range (Linkis's do not: false by default).
  void set_bml_accept_ranges(bool on) {
    std::lock_guard<std::mutex> lock(mu_);
    bml_accept_ranges_ = on;
  }
  // The path the BML download endpoint is counted under (and takes faults from).
  std::string bml_download_path() const {
    std::lock_guard<std::mutex> lock(mu_);
    return bml_prefix_ + kBmlDownload;
  }
  std::string bml_versions_path() const {
    std::lock_guard<std::mutex> lock(mu_);
    return bml_prefix_ + kBmlVersions;
  }

  // ---- what it saw ----

  std::size_t request_count(const std::string& path) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = log_.find(path);
    return it == log_.end() ? 0 : it->second.size();
  }
  std::vector<Request> requests(const std::string& path) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = log_.find(path);
    return it == log_.end() ? std::vector<Request>{} : it->second;
  }
  std::size_t total_requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::size_t n = 0;
    for (const auto& entry : log_)
      n += entry.second.size();
    return n;
  }
  // Connections accepted so far.
  std::size_t connection_count() const { return accepted_.load(); }
  // Forgets the requests seen (the per-path counts that faults use start again).
  void reset_counts() {
    std::lock_guard<std::mutex> lock(mu_);
    log_.clear();
  }

  // Closes the listener and every connection (hung ones too) and joins the threads. Idempotent.
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_all();
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);  // wakes accept()
    if (accept_thread_.joinable()) accept_thread_.join();
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    std::list<Connection> connections;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& c : connections_)
        ::shutdown(c.socket->native_handle(), SHUT_RDWR);  // wakes a blocked read or write
      connections.swap(connections_);
    }
    for (auto& c : connections)
      c.thread.join();
  }

 private:
  using tcp = boost::asio::ip::tcp;

  struct Connection {
    std::shared_ptr<tcp::socket> socket;
    std::shared_ptr<std::atomic<bool>> finished;
    std::thread thread;
  };
  struct BmlResource {
    std::string owner;
    std::vector<std::pair<std::string, std::shared_ptr<const std::string>>> versions;
  };

  static std::string lower(std::string s) {
    for (auto& c : s)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }

  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  static std::string decode(const std::string& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
        out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
        i += 2;
      } else if (s[i] == '+') {
        out += ' ';
      } else {
        out += s[i];
      }
    }
    return out;
  }

  static bool parse_number(const std::string& s, std::uint64_t& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return !s.empty() && ec == std::errc{} && p == s.data() + s.size();
  }
  static std::size_t number_or(const std::string& s, std::size_t fallback) {
    std::uint64_t v = 0;
    return parse_number(s, v) ? static_cast<std::size_t>(v) : fallback;
  }

  static std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (char ch : s) {
      const auto c = static_cast<unsigned char>(ch);
      if (ch == '"' || ch == '\\') {
        out += '\\';
        out += ch;
      } else if (c < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out += buf;
      } else {
        out += ch;
      }
    }
    return out + "\"";
  }

  static std::string envelope(const std::string& method, int status, const std::string& message,
                              const std::string& data = "{}") {
    return "{\"method\":" + json_string(method) + ",\"status\":" + std::to_string(status) +
           ",\"message\":" + json_string(message) + ",\"data\":" + data + "}";
  }

  void accept_loop() {
    for (;;) {
      auto socket = std::make_shared<tcp::socket>(io_);
      boost::system::error_code ec;
      acceptor_.accept(*socket, ec);
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      if (ec) continue;
      ++accepted_;
      // Join the connections that are over.
      for (auto it = connections_.begin(); it != connections_.end();) {
        if (it->finished->load()) {
          it->thread.join();
          it = connections_.erase(it);
        } else {
          ++it;
        }
      }
      Connection c;
      c.socket = socket;
      c.finished = std::make_shared<std::atomic<bool>>(false);
      c.thread = std::thread([this, socket, finished = c.finished] {
        serve(*socket);
        finished->store(true);
      });
      connections_.push_back(std::move(c));
    }
  }

  bool stopping() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stopping_;
  }

  // Waits until stop(), or for `d` (false when stopping).
  bool pause(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lock(mu_);
    return !cv_.wait_for(lock, d, [this] { return stopping_; });
  }
  void hang() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return stopping_; });
  }

  static bool send(tcp::socket& socket, const char* data, std::size_t n) {
    boost::system::error_code ec;
    boost::asio::write(socket, boost::asio::buffer(data, n), ec);
    return !ec;
  }
  static bool send(tcp::socket& socket, const std::string& s) {
    return send(socket, s.data(), s.size());
  }

  static std::string reason(int status) {
    const auto r =
        boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(status));
    return r.empty() ? std::string("Status") : std::string(r);
  }

  void serve(tcp::socket& socket) {
    namespace http = boost::beast::http;
    boost::beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(1 << 20);
      boost::system::error_code ec;
      http::read(socket, buffer, parser, ec);
      if (ec || stopping()) break;
      const auto& req = parser.get();
      if (!handle(socket, req) || !req.keep_alive()) break;
    }
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);  // closed when joined
  }

  // Answers one request; false when the connection must close.
  bool handle(tcp::socket& socket,
              const boost::beast::http::request<boost::beast::http::string_body>& req) {
    Request r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    const auto q = r.target.find('?');
    r.path = r.target.substr(0, q);
    if (q != std::string::npos) {
      std::string query = r.target.substr(q + 1);
      std::size_t start = 0;
      while (start <= query.size()) {
        auto amp = query.find('&', start);
        if (amp == std::string::npos) amp = query.size();
        const std::string pair = query.substr(start, amp - start);
        const auto eq = pair.find('=');
        if (!pair.empty()) {
          r.query[decode(pair.substr(0, eq))] =
              eq == std::string::npos ? std::string() : decode(pair.substr(eq + 1));
        }
        start = amp + 1;
      }
    }
    for (const auto& field : req)
      r.headers[lower(std::string(field.name_string()))] = std::string(field.value());

    std::optional<Route> route;
    unsigned n = 0;
    bool bml = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto& seen = log_[r.path];
      seen.push_back(r);
      n = static_cast<unsigned>(seen.size());
      auto it = routes_.find(r.path);
      if (it != routes_.end()) route = it->second;
      bml = bml_ && (r.path == bml_prefix_ + kBmlDownload || r.path == bml_prefix_ + kBmlVersions);
    }
    const bool head = r.method == "HEAD";
    if (bml) return handle_bml(socket, r, route, n, head);
    if (!route) return simple(socket, 404, "not found\n", "text/plain", req.keep_alive(), head);
    return serve_route(socket, r, *route, n, req.keep_alive(), head);
  }

  bool simple(tcp::socket& socket, int status, const std::string& body,
              const std::string& content_type, bool keep_alive, bool head,
              const std::vector<std::pair<std::string, std::string>>& extra = {}) {
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason(status) + "\r\n";
    out += "Content-Type: " + content_type + "\r\n";
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    for (const auto& [k, v] : extra)
      out += k + ": " + v + "\r\n";
    out += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
    if (!head) out += body;
    return send(socket, out) && keep_alive;
  }

  bool serve_route(tcp::socket& socket, const Request& r, const Route& route, unsigned n,
                   bool keep_alive, bool head) {
    if (n <= route.fail_first) {
      return simple(socket, route.fail_status, "injected failure\n", "text/plain", keep_alive,
                    head);
    }
    const bool stall_now =
        route.stall != Stall::kNone && (route.stall_first == 0 || n <= route.stall_first);
    if (stall_now && route.stall == Stall::kBeforeHeaders) {
      hang();
      return false;
    }
    if (!route.location.empty()) {
      return simple(socket, route.status, "", "text/plain", keep_alive, head,
                    {{"Location", route.location}});
    }
    if (route.status != 200) {
      return simple(socket, route.status, *route.body, route.content_type, keep_alive, head,
                    route.headers);
    }
    const std::string& body = *route.body;
    std::size_t first = 0;
    std::size_t last = body.size();  // one past
    int status = 200;
    std::string content_range;
    const std::string range = r.header("range");
    const std::string if_range = r.header("if-range");
    if (route.accept_ranges && range.rfind("bytes=", 0) == 0 &&
        (if_range.empty() || if_range == route.etag)) {
      const std::string spec = range.substr(6);
      const auto dash = spec.find('-');
      std::uint64_t from = 0;
      std::uint64_t to = body.empty() ? 0 : body.size() - 1;
      bool valid = dash != std::string::npos && parse_number(spec.substr(0, dash), from);
      std::uint64_t given = 0;
      if (valid && dash + 1 < spec.size()) {
        valid = parse_number(spec.substr(dash + 1), given);
        to = std::min(to, given);
      }
      if (valid) {
        if (from >= body.size() || from > to) {
          return simple(socket, 416, "", "text/plain", keep_alive, head,
                        {{"Content-Range", "bytes */" + std::to_string(body.size())}});
        }
        status = 206;
        first = static_cast<std::size_t>(from);
        last = static_cast<std::size_t>(to) + 1;
        content_range = "bytes " + std::to_string(first) + "-" + std::to_string(last - 1) + "/" +
                        std::to_string(body.size());
      }
    }
    const bool drop_now = n <= route.drop_first;
    const bool close_after = route.no_length || drop_now || stall_now || !keep_alive;
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason(status) + "\r\n";
    out += "Content-Type: " + route.content_type + "\r\n";
    if (route.accept_ranges) out += "Accept-Ranges: bytes\r\n";
    if (!route.etag.empty()) out += "ETag: " + route.etag + "\r\n";
    if (!content_range.empty()) out += "Content-Range: " + content_range + "\r\n";
    if (route.chunked) {
      out += "Transfer-Encoding: chunked\r\n";
    } else if (!route.no_length) {
      out += "Content-Length: " + std::to_string(last - first) + "\r\n";
    }
    for (const auto& [k, v] : route.headers)
      out += k + ": " + v + "\r\n";
    out += close_after ? "Connection: close\r\n\r\n" : "Connection: keep-alive\r\n\r\n";
    if (!send(socket, out)) return false;
    if (head) return !close_after;

    std::size_t end = last;
    if (drop_now) {
      end = first +
            std::min(last - first, route.drop_after > 0 ? route.drop_after : (last - first) / 2);
    } else if (stall_now) {
      end = first + std::min(last - first, route.stall_after);
    }
    std::size_t pos = first;
    const std::size_t piece =
        route.throttle_bytes > 0 ? route.throttle_bytes : static_cast<std::size_t>(1) << 20;
    while (pos < end) {
      const std::size_t k = std::min(piece, end - pos);
      if (route.chunked) {
        char size_line[32];
        std::snprintf(size_line, sizeof size_line, "%zx\r\n", k);
        if (!send(socket, size_line, std::strlen(size_line))) return false;
      }
      if (!send(socket, body.data() + pos, k)) return false;
      if (route.chunked && !send(socket, "\r\n", 2)) return false;
      pos += k;
      if (route.throttle_bytes > 0 && pos < end && !pause(route.throttle_interval)) return false;
    }
    if (drop_now) return false;  // closes mid-body
    if (stall_now) {
      hang();
      return false;
    }
    if (route.chunked && !send(socket, "0\r\n\r\n", 5)) return false;
    return !close_after;
  }

  bool handle_bml(tcp::socket& socket, const Request& r, const std::optional<Route>& faults,
                  unsigned n, bool head) {
    std::string token;
    std::string prefix;
    bool ranges = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      token = bml_token_;
      prefix = bml_prefix_;
      ranges = bml_accept_ranges_;
    }
    const bool download = r.path == prefix + kBmlDownload;
    const std::string method = download ? kBmlDownload : kBmlVersions;
    const std::string json = "application/json; charset=UTF-8";
    const std::string code = r.header("token-code");
    const std::string user = r.header("token-user");
    if (code != token) {
      return simple(
          socket, 401,
          envelope(method, -1, "Token-Code '" + code + "' is not valid (token auth failed)"), json,
          false, head);
    }
    if (user.empty()) {
      return simple(socket, 401, envelope(method, -1, "Token-User is missing"), json, false, head);
    }
    auto q = r.query.find("resourceId");
    const std::string id = q == r.query.end() ? "" : q->second;
    std::optional<BmlResource> res;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = bml_resources_.find(id);
      if (it != bml_resources_.end()) res = it->second;
    }
    if (!res || res->versions.empty()) {
      return simple(
          socket, 200,
          envelope(method, 1,
                   "The resourceId " + id + " you submitted is invalid or does not exist"),
          json, false, head);
    }
    if (!download) {
      std::size_t page = 1;
      std::size_t size = 10;
      if (auto p = r.query.find("currentPage"); p != r.query.end()) {
        page = std::max<std::size_t>(1, number_or(p->second, 1));
      }
      if (auto p = r.query.find("pageSize"); p != r.query.end()) {
        size = std::max<std::size_t>(1, number_or(p->second, 10));
      }
      std::string versions = "[";
      for (std::size_t i = (page - 1) * size; i < res->versions.size() && i < page * size; ++i) {
        if (versions.size() > 1) versions += ",";
        versions += "{\"version\":" + json_string(res->versions[i].first) +
                    ",\"size\":" + std::to_string(res->versions[i].second->size()) +
                    ",\"resource\":" + json_string(id) + "}";
      }
      versions += "]";
      const std::string data = "{\"ResourceVersions\":{\"resourceId\":" + json_string(id) +
                               ",\"user\":" + json_string(res->owner) +
                               ",\"versions\":" + versions + "}}";
      return simple(socket, 200, envelope(method, 0, "", data), json, false, head);
    }
    std::string version;
    if (auto v = r.query.find("version"); v != r.query.end()) version = v->second;
    std::shared_ptr<const std::string> bytes;
    if (version.empty()) {
      bytes = res->versions.back().second;
      version = res->versions.back().first;
    } else {
      for (const auto& [name, b] : res->versions) {
        if (name == version) bytes = b;
      }
    }
    if (!bytes) {
      return simple(
          socket, 200,
          envelope(method, 1, "version " + version + " of resource " + id + " does not exist"),
          json, false, head);
    }
    Route route = faults.value_or(Route{});
    route.status = 200;
    route.body = bytes;
    route.location.clear();
    route.content_type = "application/x-msdownload";
    route.accept_ranges = ranges;
    route.etag = ranges ? "\"" + id + "-" + version + "\"" : "";
    route.headers = {{"Content-Disposition", "attachment; filename=" + id}};
    return serve_route(socket, r, route, n, false, head);
  }

  boost::asio::io_context io_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::thread accept_thread_;
  std::atomic<std::size_t> accepted_{0};
  std::atomic<unsigned> next_etag_{1};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::map<std::string, Route> routes_;
  std::map<std::string, std::vector<Request>> log_;
  std::list<Connection> connections_;
  bool bml_ = false;
  std::string bml_token_;
  std::string bml_prefix_;
  bool bml_accept_ranges_ = false;
  std::map<std::string, BmlResource> bml_resources_;
};

}  // namespace ecm::test
