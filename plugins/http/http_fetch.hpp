// The HTTP(S) client the `http` and `bml` localizer plugins share (a static library linked into
// both; plugins cannot link the host). Boost.Beast over Boost.Asio, OpenSSL for https.
//
// One fetch runs on an io_context of its own, on the calling thread: nothing is shared between
// concurrent fetches but the read-only settings and TLS context. Every operation runs under a
// deadline (connect_timeout for resolve + connect + TLS handshake, idle_timeout for each read and
// write, total_timeout for the whole fetch with its retries), and the caller's FetchProgress is
// polled for cancellation while it waits.
//
// A download follows redirects, retries transient failures (network errors, timeouts, 408, 429,
// 5xx) with exponential backoff and resumes with `Range: bytes=N-` (guarded by If-Range) when the
// server supports ranges; a 200 answer to a resumed request truncates and starts over.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <ecm/sdk/sdk.hpp>

namespace ecm::plugins::http {

using Millis = std::chrono::milliseconds;

// "500ms", "10s", "2m", "1h", or a sum of such terms ("1m30s"); "0" alone. nullopt when bad.
std::optional<Millis> parse_duration(std::string_view text);
// The shortest exact form: "1500ms", "30s", "10m".
std::string format_duration(Millis d);
// A byte count: "1048576", or with a unit: "512KiB", "8GiB", "10MB" (K/M/G/T, B optional).
std::optional<std::uint64_t> parse_size(std::string_view text);

// The keys every plugin built on this client accepts (see conf/plugins/http.toml).
struct ClientSettings {
  Millis connect_timeout{std::chrono::seconds(10)};
  Millis idle_timeout{std::chrono::seconds(30)};
  Millis total_timeout{std::chrono::minutes(10)};
  unsigned retries = 3;
  Millis retry_backoff{500};
  Millis retry_backoff_max{std::chrono::seconds(30)};
  unsigned max_redirects = 5;
  std::uint64_t max_bytes = 8ull << 30;  // 0: no limit
  std::string ca_file;                   // empty: the system CA store
  bool insecure_skip_verify = false;
};

// The names of the ClientSettings keys.
const std::vector<std::string>& client_keys();
// Refuses (std::invalid_argument naming the key) a key that is neither a client key, one of `own`,
// nor under the host's own table "ecm.".
void check_known_keys(const sdk::PluginConfig& config, const std::vector<std::string>& own);
// The client keys of `config`, defaults for the absent ones. Throws std::invalid_argument naming
// the key on a bad value.
ClientSettings parse_client_settings(const sdk::PluginConfig& config);

// An absolute http or https URL.
struct Url {
  std::string scheme;  // "http" or "https"
  std::string host;    // IPv6 literals without their brackets
  std::uint16_t port = 0;
  std::string target;    // path and query, at least "/"
  std::string userinfo;  // "user:password" as written (percent-encoded), or empty

  bool ipv6() const { return host.find(':') != std::string::npos; }
  // scheme://host[:port] (the default port left out)
  std::string origin() const;
  // The URL to show in a message: no userinfo, so no password.
  std::string text() const;
};

// Parses an absolute http(s) URL; on failure, nullopt and the reason in *why.
std::optional<Url> parse_url(std::string_view text, std::string* why);
// A Location header (absolute, scheme-relative, absolute path or relative path) against `base`.
std::optional<Url> resolve_reference(const Url& base, std::string_view ref, std::string* why);
// Percent-encodes everything but RFC 3986 unreserved characters (for a query value).
std::string url_encode(std::string_view text);

// A response read into memory.
struct CapturedResponse {
  unsigned status = 0;
  std::string reason;
  std::string content_type;
  std::string body;
};

struct FetchOptions {
  // Extra request headers, sent only to the origin (scheme, host, port) of the URL fetched, never
  // to another host a redirect leads to.
  std::vector<std::pair<std::string, std::string>> headers;
  // Strings replaced with "***" in every message (tokens a server might echo back).
  std::vector<std::string> secrets;
  // How the resource is named in messages; empty: the URL (without its userinfo).
  std::string what;
  // A download may resume a partial destination file left by an earlier attempt (only sensible
  // when the caller verifies the result, e.g. against a SHA-256); otherwise it is truncated first.
  bool resume_existing = false;
  // Called for a response whose Content-Type is application/json (any status), with its body read
  // into memory (up to 1 MiB): an error to stop with (a kUnavailable one is retried), or nullopt to
  // handle the response as usual (a 200's body is then the content).
  std::function<std::optional<sdk::Error>(const CapturedResponse&)> on_json;
};

class HttpClient {
 public:
  // Builds the TLS context; throws std::invalid_argument naming ca_file when it cannot be loaded.
  explicit HttpClient(ClientSettings settings);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  const ClientSettings& settings() const;

  // GETs `url` into the file `destination` (created 0600 if missing, never through a symlink),
  // fsynced at the end. The size of the file on success.
  sdk::Result<std::uint64_t> download(const std::string& url, const FetchOptions& options,
                                      const std::string& destination,
                                      sdk::FetchProgress& progress) const;
  // GETs `url` into memory (at most `limit` bytes), with the same redirects, retries and errors.
  sdk::Result<CapturedResponse> get(const std::string& url, const FetchOptions& options,
                                    std::size_t limit, sdk::FetchProgress& progress) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ecm::plugins::http
