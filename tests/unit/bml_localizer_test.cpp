// The bml localizer plugin (plugins/bml), loaded straight from the build's plugin dir with
// Boost.DLL, against the test HTTP server's BML mode (Linkis's download and getVersions REST API):
// token headers, the newest version, JSON error envelopes, unknown resources, resource ids it
// refuses before any request, retries, and its config.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/dll/shared_library.hpp>

#include "ecm/sdk/sdk.hpp"
#include "plugins/plugin_config.hpp"
#include "support/plugin_fixture.hpp"
#include "support/test_http_server.hpp"

namespace fs = std::filesystem;
using namespace ecm::sdk;
using ecm::test::TestHttpServer;

namespace {

using LocalizerPtr = std::unique_ptr<ResourceLocalizer>;

constexpr const char* kToken = "BML-AUTH-7f3c";

std::string pattern(std::size_t n, std::uint32_t seed) {
  std::string out(n, '\0');
  std::uint32_t x = seed * 2654435761u + 777;
  for (std::size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    out[i] = static_cast<char>(x >> 24);
  }
  return out;
}

using ecm::test::read_file;

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class Progress final : public FetchProgress {
 public:
  void progress(std::uint64_t bytes, std::uint64_t total) override {
    last = bytes;
    last_total = total;
  }
  bool cancelled() const override { return cancel.load(); }
  std::atomic<std::uint64_t> last{0};
  std::atomic<std::uint64_t> last_total{0};
  std::atomic<bool> cancel{false};
};

class BmlLocalizer : public ecm::test::PluginFixture {
 protected:
  BmlLocalizer() : PluginFixture("bml") {}
  void SetUp() override {
    PluginFixture::SetUp();
    server_.enable_bml(kToken);
    v1_ = pattern(200 * 1024 + 1, 1);
    v2_ = pattern(300 * 1024 + 2, 2);
    v3_ = pattern(100 * 1024 + 3, 3);
    server_.add_bml_resource("a1b2c3d4-res", "v000001", v1_);
    server_.add_bml_resource("a1b2c3d4-res", "v000002", v2_);
    server_.add_bml_resource("a1b2c3d4-res", "v000003", v3_);
  }
  PluginConfig config() const {
    PluginConfig c;
    c.values["base_url"] = server_.base_url();
    c.values["token"] = kToken;
    c.values["connect_timeout"] = "2s";
    c.values["idle_timeout"] = "1s";
    c.values["retries"] = "2";
    c.values["retry_backoff"] = "10ms";
    return c;
  }

  LocalizerPtr make(const PluginConfig& c) const {
    return LocalizerPtr(descriptor_->create_localizer(c));
  }
  LocalizerPtr make() const { return make(config()); }

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
    r.engine_type = "spark";
    r.destination = (dir_ / name).string();
    return r;
  }

  std::size_t downloads() const { return server_.request_count(TestHttpServer::kBmlDownload); }
  std::size_t version_lists() const { return server_.request_count(TestHttpServer::kBmlVersions); }

  TestHttpServer server_;
  std::string v1_, v2_, v3_;
};

TEST_F(BmlLocalizer, DescriptorAndSchemes) {
  EXPECT_EQ(descriptor_->abi_major, kAbiMajor);
  EXPECT_EQ(descriptor_->abi_minor, kAbiMinor);
  EXPECT_STREQ(descriptor_->name, "bml");
  EXPECT_EQ(descriptor_->kinds, static_cast<std::uint32_t>(kLocalizerKind));
  ASSERT_NE(descriptor_->create_localizer, nullptr);
  EXPECT_EQ(make()->schemes(), std::vector<std::string>{"bml"});
}

TEST_F(BmlLocalizer, DownloadsAVersionWithTheTokenHeaders) {
  auto localizer = make();
  Progress progress;
  const auto req = request("bml://a1b2c3d4-res/v000002");
  auto r = localizer->fetch(req, progress);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().bytes, v2_.size());
  EXPECT_EQ(r.value().resolved, "v000002");
  EXPECT_EQ(read_file(req.destination), v2_);
  EXPECT_EQ(progress.last.load(), v2_.size());
  EXPECT_EQ(version_lists(), 0u);  // a version was given: nothing to resolve
  ASSERT_EQ(downloads(), 1u);
  const auto seen = server_.requests(TestHttpServer::kBmlDownload)[0];
  EXPECT_EQ(seen.method, "GET");
  EXPECT_EQ(seen.header("token-code"), kToken);
  EXPECT_EQ(seen.header("token-user"), "alice");
  EXPECT_EQ(seen.query.at("resourceId"), "a1b2c3d4-res");
  EXPECT_EQ(seen.query.at("version"), "v000002");
}

TEST_F(BmlLocalizer, NoVersionMeansTheNewest) {
  auto localizer = make();
  Progress progress;
  const auto req = request("bml://a1b2c3d4-res");
  auto r = localizer->fetch(req, progress);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().resolved, "v000003");
  EXPECT_EQ(read_file(req.destination), v3_);
  ASSERT_EQ(version_lists(), 1u);
  EXPECT_EQ(server_.requests(TestHttpServer::kBmlVersions)[0].header("token-code"), kToken);
  ASSERT_EQ(downloads(), 1u);
  // The download names the version it resolved: a retry cannot get a newer one.
  EXPECT_EQ(server_.requests(TestHttpServer::kBmlDownload)[0].query.at("version"), "v000003");
}

TEST_F(BmlLocalizer, NewestVersionAcrossPages) {
  // 150 versions: getVersions is read a page (100) at a time.
  for (int i = 1; i <= 150; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "v%06d", i);
    server_.add_bml_resource("many", name, "content of " + std::string(name));
  }
  auto localizer = make();
  Progress progress;
  const auto req = request("bml://many");
  auto r = localizer->fetch(req, progress);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().resolved, "v000150");
  EXPECT_EQ(read_file(req.destination), "content of v000150");
  EXPECT_EQ(version_lists(), 2u);
}

TEST_F(BmlLocalizer, WrongTokenFailsWithTheServersMessageAndNoToken) {
  auto config = this->config();
  config.values["token"] = "WRONG-TOKEN-123";
  auto localizer = make(config);
  Progress progress;
  auto r = localizer->fetch(request("bml://a1b2c3d4-res/v000001"), progress);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInternal);
  const auto& m = r.error().message;
  EXPECT_TRUE(contains(m, "bml://a1b2c3d4-res/v000001")) << m;
  EXPECT_TRUE(contains(m, "is not valid (token auth failed)")) << m;  // the server's message
  EXPECT_TRUE(contains(m, "status -1")) << m;
  // The server echoed the token back: it is masked in the message.
  EXPECT_FALSE(contains(m, "WRONG-TOKEN-123")) << m;
  EXPECT_EQ(downloads(), 1u);  // not retried

  // The same through getVersions (no version given).
  r = localizer->fetch(request("bml://a1b2c3d4-res"), progress);
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(contains(r.error().message, "WRONG-TOKEN-123")) << r.error().message;
  EXPECT_TRUE(contains(r.error().message, "token auth failed")) << r.error().message;
  EXPECT_EQ(version_lists(), 1u);
  EXPECT_EQ(downloads(), 1u);
}

TEST_F(BmlLocalizer, UnknownResourceOrVersionIsNotFound) {
  auto localizer = make();
  Progress progress;
  auto r = localizer->fetch(request("bml://no-such-res/v000001"), progress);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kNotFound);
  EXPECT_TRUE(contains(r.error().message, "bml://no-such-res/v000001")) << r.error().message;
  EXPECT_TRUE(contains(r.error().message, "does not exist")) << r.error().message;
  EXPECT_EQ(downloads(), 1u);

  r = localizer->fetch(request("bml://no-such-res"), progress);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(version_lists(), 1u);
  EXPECT_EQ(downloads(), 1u);

  r = localizer->fetch(request("bml://a1b2c3d4-res/v000009"), progress);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kNotFound);
  EXPECT_TRUE(contains(r.error().message, "v000009")) << r.error().message;
  EXPECT_EQ(downloads(), 2u);
}

TEST_F(BmlLocalizer, RefusesBadResourceIdsBeforeAnyRequest) {
  auto localizer = make();
  Progress progress;
  for (const std::string uri :
       {"bml://", "bml:///v000001", "bml://a/b/c", "bml://../v000001", "bml://a..b", "bml://res/..",
        "bml://res&version=x", "bml://res?version=v1", "bml://res#x", "bml://res/", "bml://re%2Fs",
        "bml://re s", "bml://res/v 1", "bml://res/v1&x=1", "http://res/v1", "bml:res"}) {
    auto r = localizer->fetch(request(uri), progress);
    ASSERT_FALSE(r.ok()) << uri;
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalidRequest) << uri << ": " << r.error().message;
    EXPECT_TRUE(contains(r.error().message, uri)) << r.error().message;
  }
  EXPECT_EQ(server_.total_requests(), 0u);

  // No user to download for.
  auto req = request("bml://a1b2c3d4-res/v000001");
  req.user = "";
  auto r = localizer->fetch(req, progress);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidRequest);
  EXPECT_EQ(server_.total_requests(), 0u);
}

TEST_F(BmlLocalizer, DroppedDownloadIsRetriedFromTheStart) {
  server_.drop(server_.bml_download_path(), 1);
  auto localizer = make();
  Progress progress;
  const auto req = request("bml://a1b2c3d4-res/v000001");
  auto r = localizer->fetch(req, progress);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(read_file(req.destination), v1_);
  const auto seen = server_.requests(TestHttpServer::kBmlDownload);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_FALSE(seen[1].has_header("range"));  // BML does not serve ranges
}

TEST_F(BmlLocalizer, DroppedDownloadResumesWhenRangesAreServed) {
  server_.set_bml_accept_ranges(true);
  server_.drop(server_.bml_download_path(), 1, 50000);
  auto localizer = make();
  Progress progress;
  const auto req = request("bml://a1b2c3d4-res/v000002");
  auto r = localizer->fetch(req, progress);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(read_file(req.destination), v2_);
  const auto seen = server_.requests(TestHttpServer::kBmlDownload);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].header("range"), "bytes=50000-");
  EXPECT_EQ(seen[1].header("token-code"), kToken);
}

TEST_F(BmlLocalizer, ServiceFailuresAreRetriedThenUnavailable) {
  server_.fail(server_.bml_download_path(), 100, 502);
  auto localizer = make();
  Progress progress;
  auto r = localizer->fetch(request("bml://a1b2c3d4-res/v000001"), progress);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  EXPECT_TRUE(contains(r.error().message, "bml://a1b2c3d4-res/v000001")) << r.error().message;
  EXPECT_TRUE(contains(r.error().message, "502")) << r.error().message;
  EXPECT_EQ(downloads(), 3u);  // retries = 2
}

TEST_F(BmlLocalizer, GatewayPathPrefixAndTrailingSlash) {
  TestHttpServer gateway;
  gateway.enable_bml(kToken, "/linkis");
  gateway.add_bml_resource("r1", "v000001", "one");
  gateway.add_bml_resource("r1", "v000002", "two");
  auto config = this->config();
  config.values["base_url"] = gateway.url("/linkis/");
  auto localizer = make(config);
  Progress progress;
  const auto req = request("bml://r1");
  auto r = localizer->fetch(req, progress);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().resolved, "v000002");
  EXPECT_EQ(read_file(req.destination), "two");
  EXPECT_EQ(gateway.request_count("/linkis/api/rest_j/v1/bml/download"), 1u);
}

TEST_F(BmlLocalizer, ConcurrentFetches) {
  auto localizer = make();
  std::vector<std::thread> threads;
  std::vector<std::string> errors(6);
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      Progress progress;
      const std::string uri = i % 3 == 0   ? "bml://a1b2c3d4-res"
                              : i % 3 == 1 ? "bml://a1b2c3d4-res/v000001"
                                           : "bml://a1b2c3d4-res/v000002";
      auto r = localizer->fetch(request(uri, "f" + std::to_string(i)), progress);
      if (!r.ok()) errors[static_cast<std::size_t>(i)] = r.error().message;
    });
  }
  for (auto& t : threads)
    t.join();
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(errors[static_cast<std::size_t>(i)], "");
    const std::string& expected = i % 3 == 0 ? v3_ : i % 3 == 1 ? v1_ : v2_;
    EXPECT_TRUE(read_file(dir_ / ("f" + std::to_string(i))) == expected) << i;
  }
}

TEST_F(BmlLocalizer, RefusesBadConfig) {
  auto without = [&](const std::string& key) {
    auto c = config();
    c.values.erase(key);
    return c;
  };
  auto with = [&](const std::string& key, const std::string& value) {
    auto c = config();
    c.values[key] = value;
    return c;
  };
  EXPECT_TRUE(contains(refusal(without("base_url")), "'base_url' is required"));
  EXPECT_TRUE(contains(refusal(without("token")), "'token' is required"));
  EXPECT_TRUE(contains(refusal(with("base_url", "ftp://gateway:9001")), "'base_url'"));
  EXPECT_TRUE(contains(refusal(with("base_url", "gateway:9001")), "'base_url'"));
  EXPECT_TRUE(contains(refusal(with("base_url", "http://gw:9001/?x=1")), "'base_url'"));
  EXPECT_TRUE(contains(refusal(with("base_url", "http://u:p@gw:9001")), "'base_url'"));
  EXPECT_TRUE(contains(refusal(with("colour", "blue")), "unknown key 'colour'"));
  EXPECT_TRUE(contains(refusal(with("idle_timeout", "soon")), "'idle_timeout'"));
  EXPECT_TRUE(contains(refusal(with("retries", "x")), "'retries'"));
  const auto why = refusal(with("token", "SECRET\r\nX-Evil: 1"));
  EXPECT_TRUE(contains(why, "'token'")) << why;
  EXPECT_FALSE(contains(why, "SECRET")) << why;
  PluginConfig array = config();
  array.lists["base_url"] = {"http://a", "http://b"};
  EXPECT_TRUE(contains(refusal(array), "'base_url' must be a single value"));
  EXPECT_EQ(refusal(with("ecm.launch_timeout", "30s")), "");
  EXPECT_EQ(refusal(with("base_url", "https://gateway.example:8443/linkis")), "");
}

TEST_F(BmlLocalizer, ShippedConfigIsAccepted) {
  const auto shipped =
      ecm::host::load_plugin_config(fs::path(ECM_SOURCE_DIR) / "conf/plugins/bml.toml");
  EXPECT_FALSE(shipped.values.empty());
  EXPECT_EQ(refusal(shipped), "");
}

}  // namespace
