// The http localizer plugin (plugins/http), loaded straight from the build's plugin dir with
// Boost.DLL, against the test HTTP server (tests/support/test_http_server.hpp) on loopback:
// downloads, redirects, 404s, stalls, dropped connections resumed with Range, cancellation, size
// limits, the config it refuses, and https against `openssl s_server` with a self-signed
// certificate.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/dll/shared_library.hpp>

#include "ecm/sdk/sdk.hpp"
#include "plugins/plugin_config.hpp"
#include "support/plugin_fixture.hpp"
#include "support/test_http_server.hpp"
#include "util/sha256.hpp"

namespace fs = std::filesystem;
using namespace ecm::sdk;
using namespace std::chrono_literals;
using ecm::test::TestHttpServer;
using Clock = std::chrono::steady_clock;

namespace {

using LocalizerPtr = std::unique_ptr<ResourceLocalizer>;

// Bytes that differ at every offset (a resumption at the wrong place shows).
std::string pattern(std::size_t n, std::uint32_t seed = 1) {
  std::string out(n, '\0');
  std::uint32_t x = seed * 2654435761u + 12345;
  for (std::size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    out[i] = static_cast<char>(x >> 24);
  }
  return out;
}

using ecm::test::read_file;

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class Progress final : public FetchProgress {
 public:
  void progress(std::uint64_t bytes, std::uint64_t total) override {
    ++calls;
    last = bytes;
    last_total = total;
    if (cancel_after > 0 && bytes >= cancel_after) cancel = true;
  }
  bool cancelled() const override { return cancel.load(); }

  std::atomic<std::uint64_t> calls{0};
  std::atomic<std::uint64_t> last{0};
  std::atomic<std::uint64_t> last_total{0};
  std::atomic<std::uint64_t> cancel_after{0};
  std::atomic<bool> cancel{false};
};

// A port nothing listens on (bound, then closed).
std::uint16_t closed_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(
      io, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

class HttpLocalizer : public ecm::test::PluginFixture {
 protected:
  HttpLocalizer() : PluginFixture("http") {}
  // Short limits, so that failures show in well under a second or two.
  static PluginConfig fast_config() {
    PluginConfig c;
    c.values["connect_timeout"] = "2s";
    c.values["idle_timeout"] = "1s";
    c.values["total_timeout"] = "30s";
    c.values["retries"] = "3";
    c.values["retry_backoff"] = "10ms";
    return c;
  }

  LocalizerPtr make(const PluginConfig& c) const {
    return LocalizerPtr(descriptor_->create_localizer(c));
  }
  LocalizerPtr make() const { return make(fast_config()); }

  std::string refusal(const PluginConfig& c) const {
    try {
      make(c);
    } catch (const std::invalid_argument& e) {
      return e.what();
    } catch (const std::exception& e) {
      return std::string("not invalid_argument: ") + e.what();
    }
    return "";
  }

  FetchRequest request(const std::string& uri, const std::string& name = "staged") const {
    FetchRequest r;
    r.uri = uri;
    r.user = "alice";
    r.engine_type = "shell";
    r.destination = (dir_ / name).string();
    return r;
  }

  TestHttpServer server_;
};

TEST_F(HttpLocalizer, DescriptorAndSchemes) {
  EXPECT_EQ(descriptor_->abi_major, kAbiMajor);
  EXPECT_EQ(descriptor_->abi_minor, kAbiMinor);
  EXPECT_STREQ(descriptor_->name, "http");
  EXPECT_EQ(descriptor_->kinds, static_cast<std::uint32_t>(kLocalizerKind));
  EXPECT_EQ(descriptor_->create_launcher, nullptr);
  ASSERT_NE(descriptor_->create_localizer, nullptr);
  auto localizer = make(PluginConfig{});  // every key has a default
  EXPECT_EQ(localizer->schemes(), (std::vector<std::string>{"http", "https"}));
  EXPECT_TRUE(localizer->engine_types().empty());
}

TEST_F(HttpLocalizer, DownloadsTheBytesAndReportsProgress) {
  const std::string bytes = pattern(3 * 1024 * 1024 + 17);
  server_.add_file("/lib/a.jar", bytes);
  auto localizer = make();
  Progress progress;
  const auto req = request(server_.url("/lib/a.jar"));
  auto r = localizer->fetch(req, progress);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().bytes, bytes.size());
  EXPECT_EQ(read_file(req.destination), bytes);
  EXPECT_EQ(progress.last.load(), bytes.size());
  EXPECT_EQ(progress.last_total.load(), bytes.size());
  EXPECT_GE(progress.calls.load(), 2u);
  struct stat st {};
  ASSERT_EQ(::stat(req.destination.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Nothing else was written in the staging dir.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);

  ASSERT_EQ(server_.request_count("/lib/a.jar"), 1u);
  const auto seen = server_.requests("/lib/a.jar")[0];
  EXPECT_EQ(seen.method, "GET");
  EXPECT_EQ(seen.header("host"), "127.0.0.1:" + std::to_string(server_.port()));
  EXPECT_EQ(seen.header("accept-encoding"), "identity");
  EXPECT_FALSE(seen.has_header("range"));
}

TEST_F(HttpLocalizer, EmptyChunkedAndUnknownLengthBodies) {
  const std::string bytes = pattern(700 * 1024 + 3, 2);
  server_.add_file("/empty", "");
  server_.add_file("/chunked", bytes);
  server_.modify("/chunked", [](TestHttpServer::Route& r) {
    r.chunked = true;
    r.throttle_bytes = 100 * 1024;  // several chunks
    r.throttle_interval = 1ms;
  });
  server_.add_file("/until-close", bytes);
  server_.modify("/until-close", [](TestHttpServer::Route& r) { r.no_length = true; });
  auto localizer = make();
  for (const std::string path : {"/empty", "/chunked", "/until-close"}) {
    Progress progress;
    const auto req = request(server_.url(path), path.substr(1));
    auto r = localizer->fetch(req, progress);
    ASSERT_TRUE(r.ok()) << path << ": " << r.error().message;
    const std::string expected = path == "/empty" ? "" : bytes;
    EXPECT_EQ(r.value().bytes, expected.size()) << path;
    EXPECT_EQ(read_file(req.destination), expected) << path;
  }
}

TEST_F(HttpLocalizer, FollowsRelativeRedirects) {
  const std::string bytes = pattern(100 * 1000, 3);
  server_.add_redirect("/dir/start", "next?x=1", 301);  // relative to /dir/
  server_.add_redirect("/dir/next", "../other/./final", 307);
  server_.add_redirect("/other/final", "/files/data.bin", 308);  // absolute path
  server_.add_file("/files/data.bin", bytes);
  auto localizer = make();
  Progress progress;
  const auto req = request(server_.url("/dir/start"));
  auto r = localizer->fetch(req, progress);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(read_file(req.destination), bytes);
  EXPECT_EQ(server_.request_count("/dir/start"), 1u);
  ASSERT_EQ(server_.request_count("/dir/next"), 1u);
  EXPECT_EQ(server_.requests("/dir/next")[0].target, "/dir/next?x=1");
  EXPECT_EQ(server_.request_count("/other/final"), 1u);
  EXPECT_EQ(server_.request_count("/files/data.bin"), 1u);
}

TEST_F(HttpLocalizer, FollowsAbsoluteRedirectsWithoutForwardingCredentials) {
  TestHttpServer other;
  const std::string bytes = pattern(64 * 1024, 4);
  other.add_file("/real.tar.gz", bytes);
  server_.add_redirect("/moved", other.url("/real.tar.gz"), 302);
  server_.add_redirect("/see-other", "//127.0.0.1:" + std::to_string(server_.port()) + "/moved",
                       303);  // scheme-relative
  auto localizer = make();
  Progress progress;
  const std::string uri =
      "http://bob:s3cret@127.0.0.1:" + std::to_string(server_.port()) + "/see-other";
  const auto req = request(uri);
  auto r = localizer->fetch(req, progress);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(read_file(req.destination), bytes);
  ASSERT_EQ(server_.request_count("/moved"), 1u);
  // Basic credentials from the URI go to its own origin, never to the host a redirect leads to.
  EXPECT_EQ(server_.requests("/see-other")[0].header("authorization"), "Basic Ym9iOnMzY3JldA==");
  EXPECT_EQ(server_.requests("/moved")[0].header("authorization"), "Basic Ym9iOnMzY3JldA==");
  ASSERT_EQ(other.request_count("/real.tar.gz"), 1u);
  EXPECT_FALSE(other.requests("/real.tar.gz")[0].has_header("authorization"));
}

TEST_F(HttpLocalizer, ErrorsNameTheRedirectTargetWithoutItsQuery) {
  // A presigned URL's signature is a credential: not repeated in a message.
  server_.add_redirect("/presign", "/bucket/obj.jar?X-Amz-Signature=SIGNATURE42");
  auto localizer = make();
  Progress progress;
  auto r = localizer->fetch(request(server_.url("/presign")), progress);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kNotFound);
  EXPECT_TRUE(contains(r.error().message, server_.url("/presign") + " (redirected to " +
                                              server_.url("/bucket/obj.jar") + "?...)"))
      << r.error().message;
  EXPECT_FALSE(contains(r.error().message, "SIGNATURE42")) << r.error().message;
}

TEST_F(HttpLocalizer, TooManyRedirectsFailWithoutRetry) {
  server_.add_redirect("/loop", "/loop");
  auto config = fast_config();
  config.values["max_redirects"] = "3";
  auto localizer = make(config);
  Progress progress;
  auto r = localizer->fetch(request(server_.url("/loop")), progress);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInternal);
  EXPECT_TRUE(contains(r.error().message, "more than 3 redirects")) << r.error().message;
  EXPECT_TRUE(contains(r.error().message, server_.url("/loop"))) << r.error().message;
  EXPECT_EQ(server_.request_count("/loop"), 4u);  // the first request and 3 redirects followed

  // max_redirects = 0: no redirect followed at all.
  server_.reset_counts();
  config.values["max_redirects"] = "0";
  r = make(config)->fetch(request(server_.url("/loop")), progress);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(server_.request_count("/loop"), 1u);
}

TEST_F(HttpLocalizer, NotFoundAndGoneAreNotRetried) {
  server_.add_status("/gone", 410);
  auto localizer = make();
  Progress progress;
  auto r = localizer->fetch(request(server_.url("/missing.jar")), progress);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kNotFound);
  EXPECT_TRUE(contains(r.error().message, server_.url("/missing.jar"))) << r.error().message;
  EXPECT_TRUE(contains(r.error().message, "404")) << r.error().message;
  EXPECT_EQ(server_.request_count("/missing.jar"), 1u);

  r = localizer->fetch(request(server_.url("/gone")), progress);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(server_.request_count("/gone"), 1u);

  // Other 4xx answers are not retried either.
  server_.add_status("/forbidden", 403);
  r = localizer->fetch(request(server_.url("/forbidden")), progress);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInternal);
  EXPECT_TRUE(contains(r.error().message, "403 Forbidden")) << r.error().message;
  EXPECT_EQ(server_.request_count("/forbidden"), 1u);
}

TEST_F(HttpLocalizer, ServerErrorsAreRetriedThenUnavailable) {
  const std::string bytes = pattern(10000, 5);
  server_.add_file("/flaky", bytes);
  server_.fail("/flaky", 2, 503);
  auto localizer = make();
  Progress progress;
  const auto req = request(server_.url("/flaky"));
  auto r = localizer->fetch(req, progress);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(read_file(req.destination), bytes);
  EXPECT_EQ(server_.request_count("/flaky"), 3u);

  // Always failing: retries + 1 attempts, with the backoff between them (10, 20, 40 ms).
  server_.add_status("/broken", 500, "boom");
  const auto start = Clock::now();
  r = localizer->fetch(request(server_.url("/broken"), "b"), progress);
  ASSERT_FALSE(r.ok());
  EXPECT_GE(Clock::now() - start, 70ms);
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  EXPECT_TRUE(contains(r.error().message, "500 Internal Server Error")) << r.error().message;
  EXPECT_TRUE(contains(r.error().message, "gave up after 4 attempts")) << r.error().message;
  EXPECT_EQ(server_.request_count("/broken"), 4u);

  // 429 is retried too; retries = 0 means one attempt.
  server_.add_status("/busy", 429);
  auto config = fast_config();
  config.values["retries"] = "0";
  r = make(config)->fetch(request(server_.url("/busy"), "c"), progress);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  EXPECT_EQ(server_.request_count("/busy"), 1u);
}

TEST_F(HttpLocalizer, StallBeforeHeadersFailsWithinTheIdleTimeout) {
  server_.add_file("/stuck", pattern(1000));
  server_.stall("/stuck", TestHttpServer::Stall::kBeforeHeaders);
  auto config = fast_config();
  config.values["idle_timeout"] = "300ms";
  config.values["retries"] = "1";
  auto localizer = make(config);
  Progress progress;
  const auto start = Clock::now();
  auto r = localizer->fetch(request(server_.url("/stuck")), progress);
  const auto took = Clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  EXPECT_TRUE(contains(r.error().message, "no response within idle_timeout 300ms"))
      << r.error().message;
  EXPECT_GE(took, 600ms);
  EXPECT_LT(took, 3s);
  EXPECT_EQ(server_.request_count("/stuck"), 2u);
}

TEST_F(HttpLocalizer, StallMidBodyFailsWithinTheIdleTimeout) {
  server_.add_file("/half", pattern(100000));
  server_.stall("/half", TestHttpServer::Stall::kAfterHeaders, 5000);
  auto config = fast_config();
  config.values["idle_timeout"] = "300ms";
  config.values["retries"] = "0";
  auto localizer = make(config);
  Progress progress;
  const auto start = Clock::now();
  auto r = localizer->fetch(request(server_.url("/half")), progress);
  const auto took = Clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  EXPECT_TRUE(contains(r.error().message, "no data for idle_timeout 300ms after 5000 of 100000"))
      << r.error().message;
  EXPECT_LT(took, 2s);
  EXPECT_EQ(progress.last.load(), 5000u);
}

TEST_F(HttpLocalizer, StallThenServeIsRetried) {
  const std::string bytes = pattern(200000, 6);
  server_.add_file("/once", bytes);
  server_.stall("/once", TestHttpServer::Stall::kAfterHeaders, 1000, 1);  // the first request only
  auto config = fast_config();
  config.values["idle_timeout"] = "300ms";
  auto localizer = make(config);
  Progress progress;
  const auto req = request(server_.url("/once"));
  auto r = localizer->fetch(req, progress);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(read_file(req.destination), bytes);
  ASSERT_EQ(server_.request_count("/once"), 2u);
  EXPECT_EQ(server_.requests("/once")[1].header("range"), "bytes=1000-");
}

TEST_F(HttpLocalizer, TotalTimeoutBoundsASlowTrickle) {
  server_.add_file("/trickle", pattern(1 << 20));
  server_.throttle("/trickle", 512, 20ms);  // never idle, never done
  auto config = fast_config();
  config.values["total_timeout"] = "600ms";
  auto localizer = make(config);
  Progress progress;
  const auto start = Clock::now();
  auto r = localizer->fetch(request(server_.url("/trickle")), progress);
  const auto took = Clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  EXPECT_TRUE(contains(r.error().message, "total_timeout 600ms reached")) << r.error().message;
  EXPECT_GE(took, 550ms);
  EXPECT_LT(took, 2s);
  EXPECT_EQ(server_.request_count("/trickle"), 1u);  // no retry past the total timeout
}

TEST_F(HttpLocalizer, DroppedConnectionsAreResumedWithRange) {
  const std::string bytes = pattern(1 << 20, 7);
  server_.add_file("/big.bin", bytes);
  server_.drop("/big.bin", 2);  // each of the first two closes after half of what it sends
  auto localizer = make();
  Progress progress;
  const auto req = request(server_.url("/big.bin"));
  auto r = localizer->fetch(req, progress);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().bytes, bytes.size());
  EXPECT_EQ(read_file(req.destination), bytes);
  const auto seen = server_.requests("/big.bin");
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_FALSE(seen[0].has_header("range"));
  EXPECT_EQ(seen[1].header("range"), "bytes=524288-");
  EXPECT_EQ(seen[2].header("range"), "bytes=786432-");
  // Guarded by the ETag the first answer carried: a changed file would come back whole.
  EXPECT_FALSE(seen[1].header("if-range").empty());
  EXPECT_EQ(progress.last.load(), bytes.size());
  EXPECT_EQ(progress.last_total.load(), bytes.size());
}

TEST_F(HttpLocalizer, ServerWithoutRangesRestartsFromZero) {
  const std::string bytes = pattern(600000, 8);
  server_.add_file("/plain.bin", bytes, /*accept_ranges=*/false);
  server_.drop("/plain.bin", 1, 250000);
  auto localizer = make();
  Progress progress;
  const auto req = request(server_.url("/plain.bin"));
  auto r = localizer->fetch(req, progress);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(read_file(req.destination), bytes);
  const auto seen = server_.requests("/plain.bin");
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_FALSE(seen[1].has_header("range"));
}

TEST_F(HttpLocalizer, IgnoredRangeIsTruncatedAndRestarted) {
  // The server says it takes ranges but answers the resumed request with a whole 200: the partial
  // bytes are dropped, not appended to.
  const std::string bytes = pattern(400000, 9);
  server_.add_file("/liar.bin", bytes);
  server_.modify("/liar.bin", [](TestHttpServer::Route& r) {
    r.accept_ranges = false;                   // Range ignored...
    r.headers = {{"Accept-Ranges", "bytes"}};  // ...though advertised
  });
  server_.drop("/liar.bin", 1, 100000);
  auto localizer = make();
  Progress progress;
  const auto req = request(server_.url("/liar.bin"));
  auto r = localizer->fetch(req, progress);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(read_file(req.destination), bytes);
  const auto seen = server_.requests("/liar.bin");
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].header("range"), "bytes=100000-");
}

TEST_F(HttpLocalizer, ChangedResourceComesBackWhole) {
  // The resource changes between the dropped attempt and the retry: If-Range carries the old
  // ETag, the server answers the new whole file, and the partial bytes are dropped.
  const std::string before = pattern(400000, 20);
  const std::string after = pattern(300000, 21);
  server_.add_file("/moving", before);
  server_.drop("/moving", 1, 100000);
  auto config = fast_config();
  config.values["retry_backoff"] = "500ms";
  auto localizer = make(config);
  std::thread changer([&] {
    while (server_.request_count("/moving") == 0)
      std::this_thread::sleep_for(1ms);
    server_.modify("/moving", [&](TestHttpServer::Route& r) {
      r.body = std::make_shared<const std::string>(after);
      r.etag = "\"changed\"";
    });
  });
  Progress progress;
  const auto req = request(server_.url("/moving"));
  auto r = localizer->fetch(req, progress);
  changer.join();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(read_file(req.destination) == after);
  const auto seen = server_.requests("/moving");
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].header("range"), "bytes=100000-");
  EXPECT_FALSE(seen[1].header("if-range").empty());
  EXPECT_NE(seen[1].header("if-range"), "\"changed\"");
}

TEST_F(HttpLocalizer, PartialFileOfAnEarlierAttempt) {
  const std::string bytes = pattern(500000, 10);
  server_.add_file("/r.bin", bytes);
  auto localizer = make();
  Progress progress;

  // With a SHA-256 to check it against, the host's partial file is resumed.
  auto req = request(server_.url("/r.bin"), "with-sha");
  req.sha256 = ecm::host::sha256_hex(bytes);
  write_file(req.destination, bytes.substr(0, 123456));
  auto r = localizer->fetch(req, progress);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(read_file(req.destination), bytes);
  ASSERT_EQ(server_.request_count("/r.bin"), 1u);
  EXPECT_EQ(server_.requests("/r.bin")[0].header("range"), "bytes=123456-");

  // Without one, it is truncated: a stale prefix could not be told apart.
  server_.reset_counts();
  req = request(server_.url("/r.bin"), "without-sha");
  write_file(req.destination, std::string(2000, 'x'));
  r = localizer->fetch(req, progress);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(read_file(req.destination), bytes);
  ASSERT_EQ(server_.request_count("/r.bin"), 1u);
  EXPECT_FALSE(server_.requests("/r.bin")[0].has_header("range"));

  // Longer than the resource: 416, then the whole file.
  server_.reset_counts();
  req = request(server_.url("/r.bin"), "too-long");
  req.sha256 = ecm::host::sha256_hex(bytes);
  write_file(req.destination, std::string(600000, 'y'));
  r = localizer->fetch(req, progress);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(read_file(req.destination), bytes);
  EXPECT_EQ(server_.request_count("/r.bin"), 2u);

  // Already whole: one request, answered 416 with the same total, and nothing more to fetch.
  server_.reset_counts();
  req = request(server_.url("/r.bin"), "whole");
  req.sha256 = ecm::host::sha256_hex(bytes);
  write_file(req.destination, bytes);
  r = localizer->fetch(req, progress);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().bytes, bytes.size());
  EXPECT_EQ(read_file(req.destination), bytes);
  EXPECT_EQ(server_.request_count("/r.bin"), 1u);
}

TEST_F(HttpLocalizer, CancelledStopsTheFetch) {
  server_.add_file("/slow", pattern(8 << 20));
  server_.throttle("/slow", 64 * 1024, 20ms);  // about 3 MiB/s: seconds for the whole
  auto localizer = make();
  Progress progress;
  progress.cancel_after = 256 * 1024;
  const auto start = Clock::now();
  auto r = localizer->fetch(request(server_.url("/slow")), progress);
  ASSERT_FALSE(r.ok());
  EXPECT_LT(Clock::now() - start, 1500ms);
  EXPECT_TRUE(contains(r.error().message, "cancelled")) << r.error().message;
  EXPECT_EQ(server_.request_count("/slow"), 1u);

  // Cancelled while waiting for a server that says nothing: noticed within the poll interval.
  server_.add_file("/silent", pattern(10));
  server_.stall("/silent", TestHttpServer::Stall::kBeforeHeaders);
  auto config = fast_config();
  config.values["idle_timeout"] = "30s";
  auto patient = make(config);
  Progress later;
  std::thread canceller([&] {
    std::this_thread::sleep_for(300ms);
    later.cancel = true;
  });
  const auto t0 = Clock::now();
  r = patient->fetch(request(server_.url("/silent"), "silent"), later);
  canceller.join();
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "cancelled")) << r.error().message;
  EXPECT_LT(Clock::now() - t0, 2s);
  EXPECT_EQ(server_.request_count("/silent"), 1u);

  // Cancelled before it starts: no request at all.
  Progress already;
  already.cancel = true;
  r = localizer->fetch(request(server_.url("/slow"), "never"), already);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(server_.request_count("/slow"), 1u);
}

TEST_F(HttpLocalizer, MaxBytesRefusesLargerResources) {
  server_.add_file("/big", pattern(5000));
  server_.add_file("/big-unknown-length", pattern(5000));
  server_.modify("/big-unknown-length", [](TestHttpServer::Route& r) { r.no_length = true; });
  auto config = fast_config();
  config.values["max_bytes"] = "4KiB";
  auto localizer = make(config);
  Progress progress;
  auto r = localizer->fetch(request(server_.url("/big")), progress);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInternal);
  EXPECT_TRUE(contains(r.error().message, "5000 bytes, more than max_bytes 4096"))
      << r.error().message;
  EXPECT_EQ(server_.request_count("/big"), 1u);

  r = localizer->fetch(request(server_.url("/big-unknown-length"), "u"), progress);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "more than max_bytes 4096")) << r.error().message;
  EXPECT_EQ(server_.request_count("/big-unknown-length"), 1u);

  server_.add_file("/small", pattern(4096));
  r = localizer->fetch(request(server_.url("/small"), "s"), progress);
  EXPECT_TRUE(r.ok()) << r.error().message;
}

TEST_F(HttpLocalizer, ConnectionRefusedIsUnavailable) {
  auto config = fast_config();
  config.values["retries"] = "1";
  auto localizer = make(config);
  Progress progress;
  const std::string uri = "http://127.0.0.1:" + std::to_string(closed_port()) + "/x.jar";
  auto r = localizer->fetch(request(uri), progress);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  EXPECT_TRUE(contains(r.error().message, uri)) << r.error().message;
  EXPECT_TRUE(contains(r.error().message, "cannot connect")) << r.error().message;
  EXPECT_TRUE(contains(r.error().message, "gave up after 2 attempts")) << r.error().message;
}

TEST_F(HttpLocalizer, ResolvesHostNames) {
  const std::string bytes = pattern(1000, 11);
  server_.add_file("/named", bytes);
  auto localizer = make();
  Progress progress;
  const auto req = request("http://localhost:" + std::to_string(server_.port()) + "/named");
  auto r = localizer->fetch(req, progress);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(read_file(req.destination), bytes);
  EXPECT_EQ(server_.requests("/named")[0].header("host"),
            "localhost:" + std::to_string(server_.port()));
}

TEST_F(HttpLocalizer, RefusesBadUris) {
  auto localizer = make();
  Progress progress;
  for (const std::string uri :
       {"http://", "ftp://host/x", "http://host:99999/x", "http://ho st/x", "http://host:0/",
        "not a url", "http://[::1/x", "http://bad_host!/x", "http://x/a b"}) {
    auto r = localizer->fetch(request(uri), progress);
    ASSERT_FALSE(r.ok()) << uri;
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalidRequest) << uri << ": " << r.error().message;
  }
  // A password in a bad URI is not repeated.
  auto r = localizer->fetch(request("http://user:hunter2@host:99999/x"), progress);
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(contains(r.error().message, "hunter2")) << r.error().message;
  EXPECT_EQ(server_.total_requests(), 0u);
}

TEST_F(HttpLocalizer, RefusesBadConfig) {
  auto with = [](const std::string& key, const std::string& value) {
    PluginConfig c;
    c.values[key] = value;
    return c;
  };
  EXPECT_TRUE(contains(refusal(with("colour", "blue")), "unknown key 'colour'"));
  for (const char* key : {"connect_timeout", "idle_timeout", "total_timeout"}) {
    for (const char* bad : {"10", "0s", "ten seconds", "5x", "-1s", ""}) {
      const auto why = refusal(with(key, bad));
      EXPECT_TRUE(contains(why, std::string("'") + key + "'")) << key << "=" << bad << ": " << why;
    }
  }
  EXPECT_TRUE(contains(refusal(with("retry_backoff", "soon")), "'retry_backoff'"));
  EXPECT_TRUE(contains(refusal(with("retries", "-1")), "'retries'"));
  EXPECT_TRUE(contains(refusal(with("retries", "three")), "'retries'"));
  EXPECT_TRUE(contains(refusal(with("retries", "101")), "'retries'"));
  EXPECT_TRUE(contains(refusal(with("max_redirects", "51")), "'max_redirects'"));
  EXPECT_TRUE(contains(refusal(with("max_bytes", "lots")), "'max_bytes'"));
  EXPECT_TRUE(contains(refusal(with("max_bytes", "-5")), "'max_bytes'"));
  EXPECT_TRUE(contains(refusal(with("insecure_skip_verify", "yes")), "'insecure_skip_verify'"));
  EXPECT_TRUE(contains(refusal(with("ca_file", "certs/ca.pem")), "'ca_file'"));
  EXPECT_TRUE(contains(refusal(with("ca_file", (dir_ / "missing.pem").string())), "'ca_file'"));
  write_file(dir_ / "junk.pem", "not a certificate\n");
  EXPECT_TRUE(contains(refusal(with("ca_file", (dir_ / "junk.pem").string())), "'ca_file'"));
  auto backoff = with("retry_backoff", "2s");
  backoff.values["retry_backoff_max"] = "1s";
  EXPECT_TRUE(contains(refusal(backoff), "'retry_backoff_max'"));
  PluginConfig array;
  array.lists["retries"] = {"1", "2"};
  EXPECT_TRUE(contains(refusal(array), "'retries' must be a single value"));

  // Every key, well formed; and the host's own [ecm] table passes through.
  PluginConfig good;
  good.values = {{"connect_timeout", "5s"},
                 {"idle_timeout", "1m30s"},
                 {"total_timeout", "1h"},
                 {"retries", "0"},
                 {"retry_backoff", "0"},
                 {"retry_backoff_max", "2m"},
                 {"max_redirects", "10"},
                 {"max_bytes", "0"},
                 {"insecure_skip_verify", "false"},
                 {"ecm.launch_timeout", "60s"}};
  EXPECT_EQ(refusal(good), "");
  good.values["max_bytes"] = "512MiB";
  EXPECT_EQ(refusal(good), "");
}

TEST_F(HttpLocalizer, ConcurrentFetchesDoNotMix) {
  constexpr int kFetches = 8;
  std::vector<std::string> bytes;
  for (int i = 0; i < kFetches; ++i) {
    bytes.push_back(pattern(static_cast<std::size_t>(1 << 20) + static_cast<std::size_t>(i) * 777,
                            100 + static_cast<std::uint32_t>(i)));
    const std::string path = "/c" + std::to_string(i);
    server_.add_file(path, bytes.back(), i % 2 == 0);
    server_.drop(path, 1);  // half of them resume, half restart
  }
  auto localizer = make();
  std::vector<std::thread> threads;
  std::vector<std::string> errors(kFetches);
  for (int i = 0; i < kFetches; ++i) {
    threads.emplace_back([&, i] {
      Progress progress;
      auto r = localizer->fetch(
          request(server_.url("/c" + std::to_string(i)), "c" + std::to_string(i)), progress);
      if (!r.ok()) errors[static_cast<std::size_t>(i)] = r.error().message;
    });
  }
  for (auto& t : threads)
    t.join();
  for (int i = 0; i < kFetches; ++i) {
    const auto idx = static_cast<std::size_t>(i);
    EXPECT_EQ(errors[idx], "") << i;
    EXPECT_TRUE(read_file(dir_ / ("c" + std::to_string(i))) == bytes[idx]) << i;
    EXPECT_EQ(server_.request_count("/c" + std::to_string(i)), 2u) << i;
  }
}

TEST_F(HttpLocalizer, Downloads50MiB) {
  const std::string bytes = pattern(50u << 20, 12);
  const std::string expected = ecm::host::sha256_hex(bytes);
  server_.add_file("/fifty.bin", bytes);
  auto localizer = make();
  Progress progress;
  const auto req = request(server_.url("/fifty.bin"));
  const auto start = Clock::now();
  auto r = localizer->fetch(req, progress);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().bytes, bytes.size());
  EXPECT_EQ(fs::file_size(req.destination), bytes.size());
  EXPECT_EQ(ecm::host::sha256_file(req.destination), expected);
  EXPECT_EQ(progress.last.load(), bytes.size());
  std::printf("50 MiB in %lld ms\n", static_cast<long long>(took.count()));
}

// ---- https, against `openssl s_server -WWW` (skipped when openssl is not installed)
// ---------------

class OpenSslServer {
 public:
  // Serves the files of `root` over TLS with `cert` and `key`; false when it could not start.
  bool start(const fs::path& root, const fs::path& cert, const fs::path& key) {
    const fs::path log = root / "s_server.log";
    pid_ = ::fork();
    if (pid_ == 0) {
      const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      const int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 0);
      ::dup2(out, 1);
      ::dup2(null, 2);
      if (::chdir(root.c_str()) != 0) ::_exit(126);
      ::execlp("openssl", "openssl", "s_server", "-accept", "0", "-cert", cert.c_str(), "-key",
               key.c_str(), "-WWW", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 100 && pid_ > 0; ++i) {
      std::this_thread::sleep_for(50ms);
      const std::string text = read_file(log);
      const auto accept = text.find("ACCEPT");
      const auto nl = text.find('\n', accept == std::string::npos ? 0 : accept);
      if (accept != std::string::npos && nl != std::string::npos) {
        const auto line = text.substr(accept, nl - accept);
        port_ = std::stoi(line.substr(line.rfind(':') + 1));
        return true;
      }
    }
    return false;
  }
  ~OpenSslServer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  int port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

class HttpsLocalizer : public HttpLocalizer {
 protected:
  void SetUp() override {
    HttpLocalizer::SetUp();
    if (std::system("command -v openssl >/dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl";
    cert_ = dir_ / "cert.pem";
    key_ = dir_ / "key.pem";
    const std::string cmd =
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost"
        " -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout " +
        key_.string() + " -out " + cert_.string() + " >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    www_ = dir_ / "www";
    fs::create_directories(www_);
    bytes_ = pattern(300 * 1024, 13);
    write_file(www_ / "res.bin", bytes_);
    ASSERT_TRUE(tls_.start(www_, cert_, key_)) << "openssl s_server did not start";
  }

  std::string url(const std::string& host) const {
    return "https://" + host + ":" + std::to_string(tls_.port()) + "/res.bin";
  }

  fs::path cert_, key_, www_;
  std::string bytes_;
  OpenSslServer tls_;
};

TEST_F(HttpsLocalizer, VerifiesThePeerWithCaFile) {
  auto config = fast_config();
  config.values["ca_file"] = cert_.string();
  auto localizer = make(config);
  for (const std::string host : {"127.0.0.1", "localhost"}) {  // an IP SAN, and SNI + a DNS SAN
    Progress progress;
    const auto req = request(url(host), "via-" + host);
    auto r = localizer->fetch(req, progress);
    ASSERT_TRUE(r.ok()) << host << ": " << r.error().message;
    EXPECT_EQ(read_file(req.destination), bytes_) << host;
  }
}

TEST_F(HttpsLocalizer, RefusesAnUntrustedCertificateWithoutRetrying) {
  auto localizer = make();  // the system CA store does not know the self-signed certificate
  Progress progress;
  const auto start = Clock::now();
  auto r = localizer->fetch(request(url("127.0.0.1")), progress);
  ASSERT_FALSE(r.ok());
  EXPECT_LT(Clock::now() - start, 1s);
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  EXPECT_TRUE(contains(r.error().message, "is not trusted")) << r.error().message;
  EXPECT_FALSE(contains(r.error().message, "gave up")) << r.error().message;

  // Trusted certificate, wrong name: 127.0.0.2 is not among its names.
  auto config = fast_config();
  config.values["ca_file"] = cert_.string();
  r = make(config)->fetch(request(url("127.0.0.2"), "other-ip"), progress);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "is not trusted")) << r.error().message;
  EXPECT_TRUE(contains(r.error().message, "mismatch")) << r.error().message;
}

TEST_F(HttpsLocalizer, InsecureSkipVerify) {
  auto config = fast_config();
  config.values["insecure_skip_verify"] = "true";
  auto localizer = make(config);
  Progress progress;
  const auto req = request(url("127.0.0.1"));
  auto r = localizer->fetch(req, progress);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(read_file(req.destination), bytes_);
}

TEST_F(HttpsLocalizer, PlainHttpServerAnsweringTlsIsUnavailable) {
  auto config = fast_config();
  config.values["retries"] = "0";
  auto localizer = make(config);
  Progress progress;
  auto r = localizer->fetch(request("https://127.0.0.1:" + std::to_string(server_.port()) + "/x"),
                            progress);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  EXPECT_TRUE(contains(r.error().message, "TLS handshake")) << r.error().message;
}

TEST_F(HttpLocalizer, ShippedConfigIsAccepted) {
  const auto shipped =
      ecm::host::load_plugin_config(fs::path(ECM_SOURCE_DIR) / "conf/plugins/http.toml");
  EXPECT_FALSE(shipped.values.empty());
  EXPECT_EQ(refusal(shipped), "");
}

}  // namespace
