#include "http_fetch.hpp"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace ecm::plugins::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using error_code = boost::system::error_code;

// How often a wait wakes up to look at cancelled() and the deadlines.
constexpr Millis kPoll{50};
// The body is streamed through a buffer of this size: memory stays bounded whatever the size.
constexpr std::size_t kChunk = 256 * 1024;
constexpr std::size_t kReadBuffer = 128 * 1024;
// A JSON answer (an error envelope) is read into memory up to this size.
constexpr std::size_t kJsonLimit = 1 << 20;
// Quick retries (no backoff, not counted) after the server refused or garbled a resume.
constexpr unsigned kMaxQuickRetries = 3;
constexpr const char* kUserAgent = "ecm-localizer/1.0";

[[noreturn]] void refuse(const std::string& message) {
  throw std::invalid_argument(message);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool iequals_prefix(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && lower(s.substr(0, prefix.size())) == lower(prefix);
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  for (auto pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const auto n = (static_cast<unsigned char>(in[i]) << 16) |
                   (static_cast<unsigned char>(in[i + 1]) << 8) |
                   static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (i + 1 == in.size()) {
    const auto n = static_cast<unsigned char>(in[i]) << 16;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const auto n =
        (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

// "http://user:pw@host/x" -> "http://host/x", for a URL that did not parse.
std::string without_userinfo(std::string_view url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return std::string(url);
  const auto auth_begin = scheme_end + 3;
  const auto auth_end = url.find_first_of("/?#", auth_begin);
  const auto at = url.substr(auth_begin, auth_end == std::string_view::npos ? std::string_view::npos
                                                                            : auth_end - auth_begin)
                      .rfind('@');
  if (at == std::string_view::npos) return std::string(url);
  return std::string(url.substr(0, auth_begin)) + std::string(url.substr(auth_begin + at + 1));
}

std::uint16_t default_port(const std::string& scheme) {
  return scheme == "https" ? 443 : 80;
}

bool url_char_ok(char ch) {
  const auto c = static_cast<unsigned char>(ch);
  return c > 0x20 && c < 0x7f;
}

// RFC 3986 5.2.4.
std::string remove_dot_segments(std::string in) {
  std::string out;
  while (!in.empty()) {
    if (in.rfind("../", 0) == 0) {
      in.erase(0, 3);
    } else if (in.rfind("./", 0) == 0) {
      in.erase(0, 2);
    } else if (in.rfind("/./", 0) == 0) {
      in.erase(0, 2);
    } else if (in == "/.") {
      in = "/";
    } else if (in.rfind("/../", 0) == 0 || in == "/..") {
      in = in.size() == 3 ? std::string("/") : in.substr(3);
      const auto slash = out.rfind('/');
      out.erase(slash == std::string::npos ? 0 : slash);
    } else if (in == "." || in == "..") {
      in.clear();
    } else {
      const auto next = in.find('/', in[0] == '/' ? 1 : 0);
      out += in.substr(0, next);
      in.erase(0, next == std::string::npos ? in.size() : next);
    }
  }
  return out;
}

// ---- where the bytes go ----------------------------------------------------------------------

class Sink {
 public:
  virtual ~Sink() = default;
  virtual std::uint64_t size() const = 0;
  // "" or an error.
  virtual std::string truncate() = 0;
  virtual std::string append(const char* data, std::size_t n) = 0;
};

class FileSink final : public Sink {
 public:
  FileSink(int fd, std::string path, std::uint64_t size)
      : fd_(fd), path_(std::move(path)), size_(size), flushed_(size) {}
  std::uint64_t size() const override { return size_; }
  std::string truncate() override {
    if (::ftruncate(fd_, 0) != 0) return "truncate " + path_ + ": " + std::strerror(errno);
    size_ = 0;
    flushed_ = 0;
    return "";
  }
  std::string append(const char* data, std::size_t n) override {
    while (n > 0) {
      const ssize_t w = ::pwrite(fd_, data, n, static_cast<off_t>(size_));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return "write " + path_ + ": " + std::strerror(errno);
      data += w;
      n -= static_cast<std::size_t>(w);
      size_ += static_cast<std::uint64_t>(w);
    }
    if (size_ - flushed_ >= (8u << 20)) {
      ::sync_file_range(fd_, static_cast<off_t>(flushed_), static_cast<off_t>(size_ - flushed_),
                        SYNC_FILE_RANGE_WRITE);
      flushed_ = size_;
    }
    return "";
  }

 private:
  int fd_;
  std::string path_;
  std::uint64_t size_;
  std::uint64_t flushed_;
};

class MemorySink final : public Sink {
 public:
  explicit MemorySink(std::size_t limit) : limit_(limit) {}
  std::uint64_t size() const override { return body_.size(); }
  std::string truncate() override {
    body_.clear();
    return "";
  }
  std::string append(const char* data, std::size_t n) override {
    if (body_.size() + n > limit_) {
      return "the response is larger than " + std::to_string(limit_) + " bytes";
    }
    body_.append(data, n);
    return "";
  }
  std::string& body() { return body_; }

 private:
  std::size_t limit_;
  std::string body_;
};

// ---- running one asynchronous operation under deadlines --------------------------------------

enum class Stop { kNone, kDeadline, kTotal, kCancelled };

class Runner {
 public:
  Runner(asio::io_context& ioc, sdk::FetchProgress& progress, Clock::time_point total)
      : ioc_(ioc), progress_(progress), total_(total) {}

  asio::io_context& ioc() { return ioc_; }

  // `start(done)` starts one asynchronous operation whose handler sets `done`. Runs the io_context
  // until then, or until `deadline`, the total deadline or a cancellation: `abort()` is then called
  // (it closes the socket) and the aborted operation's handler awaited.
  template <class Start, class Abort>
  Stop run(Start&& start, Abort&& abort, Clock::time_point deadline) {
    bool done = false;
    ioc_.restart();
    start(done);
    Stop why = Stop::kNone;
    while (!done) {
      const auto now = Clock::now();
      if (why == Stop::kNone) {
        if (progress_.cancelled()) {
          why = Stop::kCancelled;
        } else if (now >= total_) {
          why = Stop::kTotal;
        } else if (now >= deadline) {
          why = Stop::kDeadline;
        }
        if (why != Stop::kNone) {
          abort();
          continue;
        }
        const auto wait = std::min({Clock::duration(kPoll), deadline - now, total_ - now});
        ioc_.run_one_for(wait);
        if (ioc_.stopped()) ioc_.restart();
      } else {
        // The aborted operation completes soon (operation_aborted); stop waiting if no work is
        // left.
        if (ioc_.run_one_for(std::chrono::seconds(1)) == 0 && ioc_.stopped()) break;
        if (ioc_.stopped()) ioc_.restart();
      }
    }
    return why;
  }

 private:
  asio::io_context& ioc_;
  sdk::FetchProgress& progress_;
  Clock::time_point total_;
};

// ---- one fetch: attempts, redirects, resumption ----------------------------------------------

enum class Next { kDone, kRedirect, kRetry, kRetryNow, kFail };

struct Outcome {
  Next next = Next::kDone;
  sdk::Error error;
};

Outcome done() {
  return Outcome{Next::kDone, {}};
}
Outcome fail(sdk::Error e) {
  return Outcome{Next::kFail, std::move(e)};
}
Outcome retry(std::string message) {
  return Outcome{Next::kRetry, sdk::unavailable(std::move(message))};
}

bool is_redirect(unsigned status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

std::optional<std::uint64_t> to_u64(std::string_view s) {
  std::uint64_t v = 0;
  const char* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, v);
  if (s.empty() || ec != std::errc{} || p != end) return std::nullopt;
  return v;
}

// "bytes 100-199/200" (or "/*"); "bytes */200" for a 416.
struct ContentRange {
  std::optional<std::uint64_t> first;
  std::optional<std::uint64_t> total;
};
std::optional<ContentRange> parse_content_range(std::string_view v) {
  if (!iequals_prefix(v, "bytes ")) return std::nullopt;
  v.remove_prefix(6);
  const auto slash = v.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  ContentRange r;
  const auto range = v.substr(0, slash);
  const auto total = v.substr(slash + 1);
  if (total != "*") {
    r.total = to_u64(total);
    if (!r.total) return std::nullopt;
  }
  if (range != "*") {
    const auto dash = range.find('-');
    if (dash == std::string_view::npos) return std::nullopt;
    r.first = to_u64(range.substr(0, dash));
    if (!r.first || !to_u64(range.substr(dash + 1))) return std::nullopt;
  }
  return r;
}

class Transfer {
 public:
  Transfer(const ClientSettings& settings, ssl::context& tls, Url start,
           const FetchOptions& options, Sink& sink, sdk::FetchProgress& progress)
      : cfg_(settings),
        tls_(tls),
        start_(std::move(start)),
        options_(options),
        sink_(sink),
        progress_(progress),
        what_(options.what.empty() ? start_.text() : options.what) {}

  // The first request may ask for the rest of a file an earlier fetch left.
  void try_range_first() { try_range_ = true; }

  sdk::Status run() {
    deadline_ = Clock::now() + cfg_.total_timeout;
    unsigned retried = 0;
    unsigned quick = 0;
    Millis backoff = cfg_.retry_backoff;
    for (;;) {
      if (progress_.cancelled()) return cancelled();
      Outcome o = attempt();
      if (o.next == Next::kDone) return {};
      if (o.next == Next::kFail) return redact(std::move(o.error));
      if (o.next == Next::kRetryNow && ++quick <= kMaxQuickRetries) continue;
      if (retried >= cfg_.retries) {
        o.error.message += " (gave up after " + std::to_string(retried + 1) +
                           (retried == 0 ? " attempt)" : " attempts)");
        return redact(std::move(o.error));
      }
      ++retried;
      const auto until = Clock::now() + backoff;
      if (until >= deadline_) {
        o.error.message += "; total_timeout " + format_duration(cfg_.total_timeout) +
                           " reached before retry " + std::to_string(retried);
        return redact(std::move(o.error));
      }
      while (Clock::now() < until) {
        if (progress_.cancelled()) return cancelled();
        std::this_thread::sleep_for(
            std::min(Clock::duration(kPoll), Clock::duration(until - Clock::now())));
      }
      backoff = std::min(backoff * 2, std::max(cfg_.retry_backoff_max, cfg_.retry_backoff));
    }
  }

  const CapturedResponse& response() const { return response_; }

 private:
  sdk::Error cancelled() const { return sdk::internal_error(what_ + ": cancelled"); }

  sdk::Error redact(sdk::Error e) const {
    for (const auto& s : options_.secrets)
      e.message = replace_all(std::move(e.message), s, "***");
    return e;
  }

  // A URL a redirect led to, without its query: it may hold a signature (a presigned URL).
  static std::string shown(const Url& url) {
    const auto q = url.target.find('?');
    return url.origin() + url.target.substr(0, q) + (q == std::string::npos ? "" : "?...");
  }

  std::string where(const Url& url) const {
    return url.text() == start_.text() ? what_ : what_ + " (redirected to " + shown(url) + ")";
  }

  std::string bytes_so_far() const {
    return std::to_string(sink_.size()) +
           (total_ > 0 ? " of " + std::to_string(total_) : std::string()) + " bytes";
  }

  // The outcome of an operation stopped by a limit; `limit` describes the deadline that expired.
  Outcome stopped(Stop why, const Url& url, const std::string& limit) const {
    switch (why) {
      case Stop::kCancelled:
        return fail(cancelled());
      case Stop::kTotal:
        return fail(sdk::unavailable(where(url) + ": total_timeout " +
                                     format_duration(cfg_.total_timeout) + " reached after " +
                                     bytes_so_far()));
      default:
        return retry(where(url) + ": " + limit);
    }
  }

  Outcome attempt() {
    Url url = start_;
    for (unsigned hops = 0;; ++hops) {
      std::optional<Url> next;
      Outcome o = hop(url, next);
      if (o.next != Next::kRedirect) return o;
      if (hops >= cfg_.max_redirects) {
        return fail(sdk::internal_error(what_ + ": more than " +
                                        std::to_string(cfg_.max_redirects) +
                                        " redirects (max_redirects), the last to " + shown(*next)));
      }
      url = std::move(*next);
    }
  }

  Outcome hop(const Url& url, std::optional<Url>& next) {
    asio::io_context ioc{1};
    Runner runner(ioc, progress_, deadline_);
    const auto connect_deadline = Clock::now() + cfg_.connect_timeout;
    if (url.scheme == "https") {
      beast::ssl_stream<beast::tcp_stream> stream(ioc, tls_);
      auto& tcp_layer = beast::get_lowest_layer(stream);
      if (auto o = connect(runner, tcp_layer, url, connect_deadline)) return *o;
      SSL* ssl_handle = stream.native_handle();
      error_code ip_ec;
      asio::ip::make_address(url.host, ip_ec);
      if (ip_ec) {
        // SNI, and the name the certificate must carry.
        SSL_set_tlsext_host_name(ssl_handle, url.host.c_str());
        X509_VERIFY_PARAM_set_hostflags(SSL_get0_param(ssl_handle),
                                        X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        SSL_set1_host(ssl_handle, url.host.c_str());
      } else {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_handle), url.host.c_str());
      }
      error_code ec;
      const Stop why = runner.run(
          [&](bool& fin) {
            stream.async_handshake(ssl::stream_base::client, [&](error_code e) {
              ec = e;
              fin = true;
            });
          },
          [&] { tcp_layer.close(); }, connect_deadline);
      if (why != Stop::kNone) {
        return stopped(why, url,
                       "no TLS handshake with " + url.origin() + " within connect_timeout " +
                           format_duration(cfg_.connect_timeout));
      }
      if (ec) {
        if (ec.category() == asio::error::get_ssl_category() &&
            ERR_GET_REASON(static_cast<unsigned long>(ec.value())) ==
                SSL_R_CERTIFICATE_VERIFY_FAILED) {
          const long v = SSL_get_verify_result(ssl_handle);
          // Retrying cannot fix a certificate: no retry.
          return fail(sdk::unavailable(where(url) + ": the TLS certificate of " + url.origin() +
                                       " is not trusted: " + X509_verify_cert_error_string(v) +
                                       " (see ca_file)"));
        }
        return retry(where(url) + ": TLS handshake with " + url.origin() +
                     " failed: " + ec.message());
      }
      return exchange(stream, tcp_layer, runner, url, next);
    }
    beast::tcp_stream stream(ioc);
    if (auto o = connect(runner, stream, url, connect_deadline)) return *o;
    return exchange(stream, stream, runner, url, next);
  }

  std::optional<Outcome> connect(Runner& runner, beast::tcp_stream& stream, const Url& url,
                                 Clock::time_point deadline) {
    const std::string limit = "cannot connect to " + url.origin() + " within connect_timeout " +
                              format_duration(cfg_.connect_timeout);
    std::vector<tcp::endpoint> endpoints;
    error_code ec;
    const auto address = asio::ip::make_address(url.host, ec);
    if (!ec) {
      endpoints.emplace_back(address, url.port);
    } else {
      tcp::resolver resolver(runner.ioc());
      tcp::resolver::results_type results;
      const Stop why = runner.run(
          [&](bool& fin) {
            resolver.async_resolve(url.host, std::to_string(url.port),
                                   [&](error_code e, tcp::resolver::results_type r) {
                                     ec = e;
                                     results = std::move(r);
                                     fin = true;
                                   });
          },
          [&] { resolver.cancel(); }, deadline);
      if (why != Stop::kNone) return stopped(why, url, limit);
      if (ec) return retry(where(url) + ": cannot resolve " + url.host + ": " + ec.message());
      for (const auto& entry : results)
        endpoints.push_back(entry.endpoint());
    }
    const Stop why = runner.run(
        [&](bool& fin) {
          stream.async_connect(endpoints, [&](error_code e, const tcp::endpoint&) {
            ec = e;
            fin = true;
          });
        },
        [&] { stream.close(); }, deadline);
    if (why != Stop::kNone) return stopped(why, url, limit);
    if (ec) return retry(where(url) + ": cannot connect to " + url.origin() + ": " + ec.message());
    return std::nullopt;
  }

  std::string host_header(const Url& url) const {
    std::string h = url.ipv6() ? "[" + url.host + "]" : url.host;
    if (url.port != default_port(url.scheme)) h += ":" + std::to_string(url.port);
    return h;
  }

  template <class Stream>
  Outcome exchange(Stream& stream, beast::tcp_stream& tcp_layer, Runner& runner, const Url& url,
                   std::optional<Url>& next) {
    bhttp::request<bhttp::empty_body> req{bhttp::verb::get, url.target, 11};
    req.set(bhttp::field::host, host_header(url));
    req.set(bhttp::field::user_agent, kUserAgent);
    req.set(bhttp::field::accept, "*/*");
    req.set(bhttp::field::accept_encoding, "identity");
    req.set(bhttp::field::connection, "close");
    if (url.origin() == start_.origin()) {
      // Credentials go to the origin they were configured for, never to a redirect's other host.
      if (!start_.userinfo.empty()) {
        req.set(bhttp::field::authorization, "Basic " + base64(percent_decode(start_.userinfo)));
      }
      for (const auto& [name, value] : options_.headers)
        req.set(name, value);
    }
    const std::uint64_t offset = sink_.size();
    if (offset > 0 && (range_ok_ || try_range_)) {
      req.set(bhttp::field::range, "bytes=" + std::to_string(offset) + "-");
      if (!validator_.empty()) req.set(bhttp::field::if_range, validator_);
    }
    auto abort = [&] { tcp_layer.close(); };
    const std::string idle = format_duration(cfg_.idle_timeout);

    error_code ec;
    Stop why = runner.run(
        [&](bool& fin) {
          bhttp::async_write(stream, req, [&](error_code e, std::size_t) {
            ec = e;
            fin = true;
          });
        },
        abort, Clock::now() + cfg_.idle_timeout);
    if (why != Stop::kNone) {
      return stopped(why, url, "could not send the request within idle_timeout " + idle);
    }
    if (ec) return retry(where(url) + ": sending the request failed: " + ec.message());

    beast::flat_buffer buffer;
    // Beast sizes each read by the buffer's spare capacity (at least 512 bytes, at most 64 KiB):
    // without room reserved, a body would arrive 512 bytes per system call.
    buffer.reserve(kReadBuffer);
    bhttp::response_parser<bhttp::buffer_body> parser;
    parser.header_limit(64 * 1024);
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    why = runner.run(
        [&](bool& fin) {
          bhttp::async_read_header(stream, buffer, parser, [&](error_code e, std::size_t) {
            ec = e;
            fin = true;
          });
        },
        abort, Clock::now() + cfg_.idle_timeout);
    if (why != Stop::kNone) {
      return stopped(why, url, "no response within idle_timeout " + idle);
    }
    if (ec) return retry(where(url) + ": no response: " + ec.message());

    const auto& res = parser.get();
    const unsigned status = res.result_int();
    const std::string status_text =
        "HTTP " + std::to_string(status) + " " + std::string(res.reason());
    response_.status = status;
    response_.reason = std::string(res.reason());
    response_.content_type = std::string(res[bhttp::field::content_type]);

    // A JSON answer may be an error envelope: read it and let the caller judge.
    bool body_consumed = false;
    if (options_.on_json && iequals_prefix(response_.content_type, "application/json")) {
      MemorySink json(kJsonLimit);
      if (auto o = read_body(stream, runner, abort, url, parser, buffer, json, false)) return *o;
      body_consumed = true;
      response_.body = std::move(json.body());
      if (auto e = options_.on_json(response_)) {
        return Outcome{e->kind == sdk::ErrorKind::kUnavailable ? Next::kRetry : Next::kFail,
                       std::move(*e)};
      }
      if (status == 200) {
        if (auto err = sink_.truncate(); !err.empty()) return fail(sdk::internal_error(err));
        if (auto err = sink_.append(response_.body.data(), response_.body.size()); !err.empty()) {
          return fail(sdk::internal_error(where(url) + ": " + err));
        }
        range_ok_ = false;
        total_ = sink_.size();
        progress_.progress(sink_.size(), total_);
        return done();
      }
    }

    if (is_redirect(status)) {
      const auto location = res[bhttp::field::location];
      if (location.empty()) {
        return fail(sdk::internal_error(where(url) + ": " + status_text + " without a Location"));
      }
      std::string why_not;
      next = resolve_reference(url, std::string_view(location.data(), location.size()), &why_not);
      if (!next) {
        return fail(sdk::internal_error(where(url) + ": " + status_text +
                                        " to a bad Location: " + why_not));
      }
      return Outcome{Next::kRedirect, {}};
    }
    const bool resuming = try_range_;
    try_range_ = false;

    if (status == 200 || status == 206) {
      if (body_consumed) {
        return fail(sdk::internal_error(where(url) + ": " + status_text + " with a JSON body"));
      }
      const auto length = parser.content_length();
      if (status == 200) {
        if (sink_.size() > 0) {
          // The whole resource again: start over.
          if (auto err = sink_.truncate(); !err.empty()) return fail(sdk::internal_error(err));
        }
        range_ok_ = iequals_prefix(lower(std::string(res[bhttp::field::accept_ranges])), "bytes");
        total_ = length.value_or(0);
      } else {
        const auto range = parse_content_range(std::string(res[bhttp::field::content_range]));
        if (!range || !range->first || *range->first != sink_.size()) {
          const std::string got(res[bhttp::field::content_range]);
          range_ok_ = false;
          if (auto err = sink_.truncate(); !err.empty()) return fail(sdk::internal_error(err));
          return Outcome{
              Next::kRetryNow,
              sdk::unavailable(where(url) + ": asked for bytes from " + std::to_string(offset) +
                               ", the server answered Content-Range '" + got + "'")};
        }
        range_ok_ = true;
        total_ = range->total ? *range->total : (length ? sink_.size() + *length : 0);
      }
      // A strong validator makes the next resumption safe (If-Range: a changed resource comes
      // back whole, as a 200).
      const std::string etag(res[bhttp::field::etag]);
      const std::string modified(res[bhttp::field::last_modified]);
      if (!etag.empty() && etag.rfind("W/", 0) != 0) {
        validator_ = etag;
      } else if (!modified.empty()) {
        validator_ = modified;
      }
      if (cfg_.max_bytes > 0 && total_ > cfg_.max_bytes) {
        return fail(sdk::internal_error(where(url) + ": the resource is " + std::to_string(total_) +
                                        " bytes, more than max_bytes " +
                                        std::to_string(cfg_.max_bytes)));
      }
      progress_.progress(sink_.size(), total_);
      if (auto o = read_body(stream, runner, abort, url, parser, buffer, sink_, true)) return *o;
      return done();
    }
    if (status == 416 && offset > 0) {
      const auto range = parse_content_range(std::string(res[bhttp::field::content_range]));
      if (resuming && range && range->total && *range->total == offset) {
        total_ = offset;  // the file an earlier fetch left is already whole
        progress_.progress(offset, total_);
        return done();
      }
      range_ok_ = false;
      if (auto err = sink_.truncate(); !err.empty()) return fail(sdk::internal_error(err));
      return Outcome{Next::kRetryNow,
                     sdk::unavailable(where(url) + ": " + status_text + " for bytes from " +
                                      std::to_string(offset))};
    }
    if (status == 404 || status == 410)
      return fail(sdk::not_found(where(url) + ": " + status_text));
    if (status == 408 || status == 429 || status >= 500)
      return retry(where(url) + ": " + status_text);
    return fail(sdk::internal_error(where(url) + ": " + status_text));
  }

  // Streams the body into `sink`; nullopt when it is all there. `content`: the resource itself
  // (progress, max_bytes), not an error envelope.
  template <class Stream, class Abort>
  std::optional<Outcome> read_body(Stream& stream, Runner& runner, Abort& abort, const Url& url,
                                   bhttp::response_parser<bhttp::buffer_body>& parser,
                                   beast::flat_buffer& buffer, Sink& sink, bool content) {
    std::vector<char> chunk(kChunk);
    while (!parser.is_done()) {
      auto& body = parser.get().body();
      body.data = chunk.data();
      body.size = chunk.size();
      error_code ec;
      const Stop why = runner.run(
          [&](bool& fin) {
            bhttp::async_read_some(stream, buffer, parser, [&](error_code e, std::size_t) {
              ec = e;
              fin = true;
            });
          },
          abort, Clock::now() + cfg_.idle_timeout);
      const std::size_t n = chunk.size() - body.size;
      if (n > 0) {
        if (auto err = sink.append(chunk.data(), n); !err.empty()) {
          return fail(sdk::internal_error(where(url) + ": " + err));
        }
        if (content) {
          if (cfg_.max_bytes > 0 && sink.size() > cfg_.max_bytes) {
            return fail(sdk::internal_error(where(url) + ": more than max_bytes " +
                                            std::to_string(cfg_.max_bytes) + " bytes"));
          }
          progress_.progress(sink.size(), total_);
        }
      }
      if (why != Stop::kNone) {
        return stopped(why, url,
                       "no data for idle_timeout " + format_duration(cfg_.idle_timeout) +
                           " after " + bytes_so_far());
      }
      if (ec == bhttp::error::need_buffer) ec = {};
      if (ec == ssl::error::stream_truncated && parser.need_eof()) {
        // A body that ends with the connection, closed without a TLS close_notify.
        ec = {};
        parser.put_eof(ec);
      }
      if (ec) {
        return retry(where(url) + ": the connection broke after " + bytes_so_far() + ": " +
                     ec.message());
      }
      if (progress_.cancelled()) return fail(cancelled());
    }
    return std::nullopt;
  }

  const ClientSettings& cfg_;
  ssl::context& tls_;
  const Url start_;
  const FetchOptions& options_;
  Sink& sink_;
  sdk::FetchProgress& progress_;
  const std::string what_;
  Clock::time_point deadline_{};
  bool try_range_ = false;  // send Range on the first request (a file left by an earlier fetch)
  bool range_ok_ = false;   // the server advertised or honoured byte ranges
  std::string validator_;   // ETag or Last-Modified, for If-Range
  std::uint64_t total_ = 0;
  CapturedResponse response_;
};

}  // namespace

// ---- config values -----------------------------------------------------------------------------

std::optional<Millis> parse_duration(std::string_view text) {
  if (text == "0") return Millis{0};
  if (text.empty()) return std::nullopt;
  constexpr std::uint64_t kMax = 1ull << 50;
  std::uint64_t total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t j = i;
    std::uint64_t n = 0;
    while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) {
      n = n * 10 + static_cast<std::uint64_t>(text[j] - '0');
      if (n > kMax) return std::nullopt;
      ++j;
    }
    if (j == i) return std::nullopt;
    std::size_t k = j;
    while (k < text.size() && std::isalpha(static_cast<unsigned char>(text[k])))
      ++k;
    const auto unit = text.substr(j, k - j);
    std::uint64_t ms = 0;
    if (unit == "ms") {
      ms = 1;
    } else if (unit == "s") {
      ms = 1000;
    } else if (unit == "m" || unit == "min") {
      ms = 60 * 1000;
    } else if (unit == "h") {
      ms = 3600 * 1000;
    } else {
      return std::nullopt;
    }
    total += n * ms;
    if (total > kMax) return std::nullopt;
    i = k;
  }
  return Millis(static_cast<Millis::rep>(total));
}

std::string format_duration(Millis d) {
  const auto ms = d.count();
  if (ms == 0) return "0s";
  if (ms % (3600 * 1000) == 0) return std::to_string(ms / (3600 * 1000)) + "h";
  if (ms % (60 * 1000) == 0) return std::to_string(ms / (60 * 1000)) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::size_t j = 0;
  while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j])))
    ++j;
  const auto number = to_u64(text.substr(0, j));
  if (!number) return std::nullopt;
  const auto unit = text.substr(j);
  std::uint64_t mult = 0;
  if (unit.empty() || unit == "B") {
    mult = 1;
  } else if (unit == "K" || unit == "KiB") {
    mult = 1ull << 10;
  } else if (unit == "M" || unit == "MiB") {
    mult = 1ull << 20;
  } else if (unit == "G" || unit == "GiB") {
    mult = 1ull << 30;
  } else if (unit == "T" || unit == "TiB") {
    mult = 1ull << 40;
  } else if (unit == "KB") {
    mult = 1000;
  } else if (unit == "MB") {
    mult = 1000 * 1000;
  } else if (unit == "GB") {
    mult = 1000ull * 1000 * 1000;
  } else if (unit == "TB") {
    mult = 1000ull * 1000 * 1000 * 1000;
  } else {
    return std::nullopt;
  }
  if (*number > std::numeric_limits<std::uint64_t>::max() / mult) return std::nullopt;
  return *number * mult;
}

const std::vector<std::string>& client_keys() {
  static const std::vector<std::string> keys{
      "connect_timeout",   "idle_timeout",  "total_timeout", "retries", "retry_backoff",
      "retry_backoff_max", "max_redirects", "max_bytes",     "ca_file", "insecure_skip_verify"};
  return keys;
}

void check_known_keys(const sdk::PluginConfig& config, const std::vector<std::string>& own) {
  std::vector<std::string> known = own;
  known.insert(known.end(), client_keys().begin(), client_keys().end());
  auto check = [&](const std::string& key) {
    if (key.rfind("ecm.", 0) == 0) return;  // the host's own table
    if (std::find(known.begin(), known.end(), key) != known.end()) return;
    std::string list;
    for (const auto& k : known)
      list += (list.empty() ? "" : ", ") + k;
    refuse("unknown key '" + key + "' (known: " + list + ")");
  };
  for (const auto& entry : config.values)
    check(entry.first);
  for (const auto& entry : config.lists)
    check(entry.first);
}

ClientSettings parse_client_settings(const sdk::PluginConfig& config) {
  auto scalar = [&](const std::string& key) -> std::optional<std::string> {
    if (config.lists.count(key) != 0) refuse("'" + key + "' must be a single value, not an array");
    return config.get(key);
  };
  auto duration = [&](const std::string& key, Millis& out, bool zero_ok) {
    const auto v = scalar(key);
    if (!v) return;
    const auto d = parse_duration(*v);
    if (!d || (!zero_ok && d->count() == 0)) {
      refuse("'" + key + "' = '" + *v + "' is not a duration" + (zero_ok ? "" : " above zero") +
             " such as \"500ms\", \"10s\", \"2m\" or \"1h\"");
    }
    out = *d;
  };
  auto count = [&](const std::string& key, unsigned& out, unsigned max) {
    const auto v = scalar(key);
    if (!v) return;
    const auto n = to_u64(*v);
    if (!n || *n > max) {
      refuse("'" + key + "' = '" + *v + "' is not an integer from 0 to " + std::to_string(max));
    }
    out = static_cast<unsigned>(*n);
  };

  ClientSettings s;
  duration("connect_timeout", s.connect_timeout, false);
  duration("idle_timeout", s.idle_timeout, false);
  duration("total_timeout", s.total_timeout, false);
  duration("retry_backoff", s.retry_backoff, true);
  const bool backoff_max_given = config.get("retry_backoff_max").has_value();
  duration("retry_backoff_max", s.retry_backoff_max, true);
  if (s.retry_backoff_max < s.retry_backoff) {
    if (backoff_max_given) {
      refuse("'retry_backoff_max' = '" + format_duration(s.retry_backoff_max) +
             "' is less than 'retry_backoff' = '" + format_duration(s.retry_backoff) + "'");
    }
    s.retry_backoff_max = s.retry_backoff;
  }
  count("retries", s.retries, 100);
  count("max_redirects", s.max_redirects, 50);
  if (const auto v = scalar("max_bytes")) {
    const auto n = parse_size(*v);
    if (!n) {
      refuse("'max_bytes' = '" + *v +
             "' is not a size such as 1048576, \"512MiB\" or \"8GiB\" (0: no limit)");
    }
    s.max_bytes = *n;
  }
  if (const auto v = scalar("ca_file"); v && !v->empty()) {  // "": the system store
    if ((*v)[0] != '/') {
      refuse("'ca_file' = '" + *v + "' is not an absolute path to a PEM file");
    }
    s.ca_file = *v;
  }
  if (const auto v = scalar("insecure_skip_verify")) {
    if (*v != "true" && *v != "false") {
      refuse("'insecure_skip_verify' = '" + *v + "' is not true or false");
    }
    s.insecure_skip_verify = *v == "true";
  }
  return s;
}

// ---- URLs --------------------------------------------------------------------------------------

std::string Url::origin() const {
  std::string out = scheme + "://" + (ipv6() ? "[" + host + "]" : host);
  if (port != default_port(scheme)) out += ":" + std::to_string(port);
  return out;
}

std::string Url::text() const {
  return origin() + target;
}

std::optional<Url> parse_url(std::string_view text, std::string* why) {
  auto bad = [&](std::string reason) -> std::optional<Url> {
    if (why != nullptr) *why = std::move(reason);
    return std::nullopt;
  };
  if (!std::all_of(text.begin(), text.end(), url_char_ok)) {
    return bad("the URL holds a space, a control or a non-ASCII character (percent-encode it)");
  }
  const auto scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos) return bad("not an absolute URL (no scheme://)");
  Url url;
  url.scheme = lower(text.substr(0, scheme_end));
  if (url.scheme != "http" && url.scheme != "https") {
    return bad("the scheme '" + url.scheme + "' is not http or https");
  }
  auto rest = text.substr(scheme_end + 3);
  const auto auth_end = rest.find_first_of("/?#");
  auto authority = rest.substr(0, auth_end);
  std::string_view tail = auth_end == std::string_view::npos ? "" : rest.substr(auth_end);
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    url.userinfo = std::string(authority.substr(0, at));
    authority.remove_prefix(at + 1);
  }
  std::string_view port_text;
  if (!authority.empty() && authority[0] == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return bad("an IPv6 host without its closing ']'");
    url.host = lower(authority.substr(1, close - 1));
    const auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return bad("junk after the IPv6 host");
      port_text = after.substr(1);
    }
    if (url.host.empty() || url.host.find_first_not_of("0123456789abcdef:.") != std::string::npos) {
      return bad("a bad IPv6 host");
    }
  } else {
    const auto colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      authority = authority.substr(0, colon);
    }
    url.host = lower(authority);
    if (url.host.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-_") !=
        std::string::npos) {
      return bad("a bad host name '" + url.host + "'");
    }
  }
  if (url.host.empty()) return bad("no host");
  url.port = default_port(url.scheme);
  if (!port_text.empty()) {
    const auto p = to_u64(port_text);
    if (!p || *p == 0 || *p > 65535) return bad("a bad port '" + std::string(port_text) + "'");
    url.port = static_cast<std::uint16_t>(*p);
  }
  if (const auto hash = tail.find('#'); hash != std::string_view::npos) tail = tail.substr(0, hash);
  if (tail.empty() || tail[0] == '?') {
    url.target = "/" + std::string(tail);
  } else {
    url.target = std::string(tail);
  }
  return url;
}

std::optional<Url> resolve_reference(const Url& base, std::string_view ref, std::string* why) {
  if (const auto hash = ref.find('#'); hash != std::string_view::npos) ref = ref.substr(0, hash);
  // An absolute URL: a scheme first.
  std::size_t i = 0;
  while (i < ref.size() && (std::isalnum(static_cast<unsigned char>(ref[i])) || ref[i] == '+' ||
                            ref[i] == '-' || ref[i] == '.')) {
    ++i;
  }
  if (i > 0 && i < ref.size() && ref[i] == ':' &&
      std::isalpha(static_cast<unsigned char>(ref[0]))) {
    return parse_url(ref, why);
  }
  if (ref.rfind("//", 0) == 0) return parse_url(base.scheme + ":" + std::string(ref), why);
  if (!std::all_of(ref.begin(), ref.end(), url_char_ok)) {
    if (why != nullptr)
      *why = "a space, a control or a non-ASCII character in '" + std::string(ref) + "'";
    return std::nullopt;
  }
  Url out = base;
  out.userinfo.clear();
  const auto base_query = base.target.find('?');
  const std::string base_path = base.target.substr(0, base_query);
  if (ref.empty()) return out;
  if (ref[0] == '?') {
    out.target = base_path + std::string(ref);
    return out;
  }
  const auto q = ref.find('?');
  const std::string path(ref.substr(0, q));
  const std::string query = q == std::string_view::npos ? "" : std::string(ref.substr(q));
  std::string merged;
  if (!path.empty() && path[0] == '/') {
    merged = path;
  } else {
    merged = base_path.substr(0, base_path.rfind('/') + 1) + path;
  }
  merged = remove_dot_segments(merged);
  if (merged.empty() || merged[0] != '/') merged = "/" + merged;
  out.target = merged + query;
  return out;
}

std::string url_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// ---- the client --------------------------------------------------------------------------------

struct HttpClient::Impl {
  ClientSettings settings;
  ssl::context tls{ssl::context::tls_client};
};

HttpClient::HttpClient(ClientSettings settings) : impl_(std::make_unique<Impl>()) {
  impl_->settings = std::move(settings);
  const auto& s = impl_->settings;
  auto& ctx = impl_->tls;
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  if (!s.ca_file.empty()) {
    error_code ec;
    ctx.load_verify_file(s.ca_file, ec);
    if (ec) {
      refuse("'ca_file' = '" + s.ca_file +
             "': cannot load CA certificates from it: " + ec.message());
    }
  } else {
    error_code ec;
    ctx.set_default_verify_paths(ec);  // the system CA store; without it, nothing verifies
  }
  ctx.set_verify_mode(s.insecure_skip_verify ? ssl::verify_none : ssl::verify_peer);
}

HttpClient::~HttpClient() = default;

const ClientSettings& HttpClient::settings() const {
  return impl_->settings;
}

sdk::Result<std::uint64_t> HttpClient::download(const std::string& url, const FetchOptions& options,
                                                const std::string& destination,
                                                sdk::FetchProgress& progress) const {
  const std::string what = options.what.empty() ? without_userinfo(url) : options.what;
  std::string why;
  auto parsed = parse_url(url, &why);
  if (!parsed) return sdk::invalid_request(what + ": " + why);
  if (destination.empty() || destination[0] != '/') {
    return sdk::internal_error(what + ": the destination '" + destination +
                               "' is not an absolute path");
  }
  const int fd = ::open(destination.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    return sdk::internal_error(what + ": cannot open the staging file " + destination + ": " +
                               std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return sdk::internal_error(what + ": the staging file " + destination +
                               " is not a regular file");
  }
  FileSink sink(fd, destination, static_cast<std::uint64_t>(st.st_size));
  if (!options.resume_existing && sink.size() > 0) {
    if (auto err = sink.truncate(); !err.empty()) {
      ::close(fd);
      return sdk::internal_error(what + ": " + err);
    }
  }
  Transfer transfer(impl_->settings, impl_->tls, std::move(*parsed), options, sink, progress);
  if (sink.size() > 0) transfer.try_range_first();
  sdk::Status status = transfer.run();
  if (status.ok() && ::fsync(fd) != 0) {
    status = sdk::internal_error(what + ": fsync " + destination + ": " + std::strerror(errno));
  }
  if (::close(fd) != 0 && status.ok()) {
    status = sdk::internal_error(what + ": close " + destination + ": " + std::strerror(errno));
  }
  if (!status.ok()) return status.error();
  return sink.size();
}

sdk::Result<CapturedResponse> HttpClient::get(const std::string& url, const FetchOptions& options,
                                              std::size_t limit,
                                              sdk::FetchProgress& progress) const {
  const std::string what = options.what.empty() ? without_userinfo(url) : options.what;
  std::string why;
  auto parsed = parse_url(url, &why);
  if (!parsed) return sdk::invalid_request(what + ": " + why);
  MemorySink sink(limit);
  Transfer transfer(impl_->settings, impl_->tls, std::move(*parsed), options, sink, progress);
  const sdk::Status status = transfer.run();
  if (!status.ok()) return status.error();
  CapturedResponse out = transfer.response();
  out.body = std::move(sink.body());
  return out;
}

}  // namespace ecm::plugins::http
