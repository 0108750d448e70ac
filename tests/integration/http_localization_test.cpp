// Resources over HTTP on the real daemon: the `http` and `bml` localizers against a real server on
// loopback (tests/support/test_http_server.hpp, run in this process). Downloads once (a cache hit
// sends nothing; 50 concurrent launches make one request), survives a dropped connection by
// resuming, fails typed on a bad checksum, a 404 and a stalled server, keeps its cache across a
// restart, and reports progress as events.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "ecm_harness.hpp"
#include "support/test_http_server.hpp"
#include "util/sha256.hpp"

namespace ecm::itest {
namespace {

namespace fs = std::filesystem;
using ecm::test::TestHttpServer;

// Bytes that differ along their length, so a resumed download that joined wrongly shows.
std::string payload(std::size_t size) {
  std::string s(size, '\0');
  for (std::size_t i = 0; i < size; ++i)
    s[i] = static_cast<char>((i * 2654435761u) >> 13);
  return s;
}

std::unique_ptr<EcmProcess> start_node(const std::string& http_toml = "",
                                       const std::string& bml_toml = "",
                                       std::vector<std::string> test_plugins = {},
                                       std::map<std::string, std::string> more_toml = {}) {
  EcmOptions o;
  o.plugins = {"shell", "http"};
  o.plugin_toml["http"] = http_toml.empty() ? "idle_timeout = \"2s\"\nretries = 2\n"
                                              "retry_backoff = \"50ms\"\n"
                                            : http_toml;
  if (!bml_toml.empty()) {
    o.plugins.push_back("bml");
    o.plugin_toml["bml"] = bml_toml;
  }
  o.test_plugins = std::move(test_plugins);
  for (auto& [k, v] : more_toml)
    o.plugin_toml[k] = v;
  return std::make_unique<EcmProcess>(o);
}

api::LaunchRequest fetching(const std::string& user, const std::string& command,
                            const std::string& uri, const std::string& sha,
                            const std::string& name = "res.bin") {
  api::ResourceSpec r;
  r.__set_uri(uri);
  if (!sha.empty()) r.__set_sha256(sha);
  r.__set_name(name);
  auto req = shell_request(user, command);
  req.__set_resources({r});
  return req;
}

std::size_t cached_entries(EcmProcess& ecm) {
  api::CacheReport r;
  ecm.client().listCache(r);
  return r.entries.size();
}

TEST(HttpLocalization, DownloadsOnceAndTheNextLaunchIsACacheHitWithoutARequest) {
  TestHttpServer server;
  const std::string bytes = payload(3 << 20);
  server.add_file("/jars/a.jar", bytes);
  auto ecm = start_node();
  const auto sha = host::sha256_hex(bytes);
  const auto first = ecm->launch(fetching("alice", "sleep 600", server.url("/jars/a.jar"), sha));
  EXPECT_EQ(first.status, api::EngineStatus::RUNNING);
  EXPECT_EQ(read_file(fs::path(first.work_dir) / "res.bin"), bytes);
  EXPECT_EQ(server.request_count("/jars/a.jar"), 1u);

  const auto second = ecm->launch(fetching("alice", "sleep 600", server.url("/jars/a.jar"), sha));
  EXPECT_EQ(read_file(fs::path(second.work_dir) / "res.bin"), bytes);
  EXPECT_EQ(server.request_count("/jars/a.jar"), 1u) << "the cache hit went to the server";

  // A restart keeps the cache: still no second request.
  ASSERT_EQ(ecm->terminate_and_wait(), 0);
  ecm->start();
  const auto third = ecm->launch(fetching("alice", "sleep 600", server.url("/jars/a.jar"), sha));
  EXPECT_EQ(third.status, api::EngineStatus::RUNNING);
  EXPECT_EQ(server.request_count("/jars/a.jar"), 1u);
}

TEST(HttpLocalization, FiftyConcurrentLaunchesOfOneResourceMakeOneDownload) {
  TestHttpServer server;
  const std::string bytes = payload(4 << 20);
  server.add_file("/big.bin", bytes);
  // Slow enough that the launches overlap the download.
  server.throttle("/big.bin", 1 << 20, std::chrono::milliseconds(50));
  auto ecm = start_node();
  const auto sha = host::sha256_hex(bytes);
  const auto errors = launch_concurrently(
      *ecm, 50, [&](int) { return fetching("alice", "exit 0", server.url("/big.bin"), sha); });
  for (const auto& e : errors)
    EXPECT_TRUE(e.empty()) << e;
  EXPECT_EQ(server.request_count("/big.bin"), 1u);
  EXPECT_EQ(cached_entries(*ecm), 1u);
}

TEST(HttpLocalization, ChecksumMismatch404AndAStalledServerFailTypedAndCacheNothing) {
  TestHttpServer server;
  server.add_file("/ok.bin", "the real bytes");
  server.add_status("/missing.bin", 404, "no such thing");
  server.add_file("/stalls.bin", payload(1 << 20));
  server.stall("/stalls.bin", TestHttpServer::Stall::kAfterHeaders, 1000);
  auto ecm = start_node(
      "idle_timeout = \"300ms\"\ntotal_timeout = \"5s\"\nretries = 1\nretry_backoff = \"50ms\"\n");
  struct Case {
    std::string path, sha, message;
  };
  const std::vector<Case> cases = {
      {"/ok.bin", std::string(64, 'c'), "checksum mismatch"},
      {"/missing.bin", std::string(64, 'c'), "not found"},
      {"/stalls.bin", host::sha256_hex(payload(1 << 20)), "unavailable"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.path);
    const auto began = std::chrono::steady_clock::now();
    const auto error = ecm_error_of(
        [&] { ecm->launch(fetching("alice", "sleep 600", server.url(c.path), c.sha)); });
    ASSERT_TRUE(error) << "accepted";
    EXPECT_EQ(error->code, api::ErrorCode::LOCALIZATION_FAILED);
    EXPECT_NE(error->message.find(c.message), std::string::npos) << error->message;
    EXPECT_NE(error->message.find("resource 'res.bin'"), std::string::npos) << error->message;
    EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(10));
  }
  EXPECT_EQ(server.request_count("/missing.bin"), 1u) << "a 404 is not retried";
  EXPECT_EQ(server.request_count("/stalls.bin"), 2u) << "a stall is retried as configured";
  EXPECT_EQ(cached_entries(*ecm), 0u);
  EXPECT_TRUE(fs::is_empty(ecm->state_dir() / "cache" / "staging"));
  api::NodeResources r;
  ecm->client().getResources(r);
  EXPECT_EQ(r.locked.instances, 0);
}

TEST(HttpLocalization, AConnectionDroppedMidBodyIsRetriedAndResumed) {
  TestHttpServer server;
  const std::string bytes = payload(2 << 20);
  server.add_file("/drops.bin", bytes);
  server.drop("/drops.bin", 1, 700000);
  auto ecm = start_node();
  const auto e = ecm->launch(
      fetching("alice", "sleep 600", server.url("/drops.bin"), host::sha256_hex(bytes)));
  EXPECT_EQ(e.status, api::EngineStatus::RUNNING);
  EXPECT_EQ(read_file(fs::path(e.work_dir) / "res.bin"), bytes);
  const auto requests = server.requests("/drops.bin");
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1].header("range"), "bytes=700000-");
}

TEST(HttpLocalization, ABmlResourceIsFetchedWithTheServiceTokenForTheEnginesUser) {
  TestHttpServer server;
  server.enable_bml("BML-AUTH");
  server.add_bml_resource("r-1", "v000001", "old config");
  server.add_bml_resource("r-1", "v000002", "new config");
  auto ecm = start_node("", "base_url = \"" + server.base_url() + "\"\ntoken = \"BML-AUTH\"\n");
  const auto e = ecm->launch(fetching("alice", "sleep 600", "bml://r-1/v000001",
                                      host::sha256_hex("old config"), "conf.txt"));
  EXPECT_EQ(read_file(fs::path(e.work_dir) / "conf.txt"), "old config");
  const auto requests = server.requests(server.bml_download_path());
  ASSERT_FALSE(requests.empty());
  EXPECT_EQ(requests.back().header("token-user"), "alice");
  EXPECT_EQ(requests.back().header("token-code"), "BML-AUTH");
  EXPECT_EQ(requests.back().query.at("version"), "v000001");

  // No version: the newest.
  const auto latest = ecm->launch(
      fetching("bob", "sleep 600", "bml://r-1", host::sha256_hex("new config"), "conf.txt"));
  EXPECT_EQ(read_file(fs::path(latest.work_dir) / "conf.txt"), "new config");
  // An unknown resource id.
  const auto error = ecm_error_of([&] {
    ecm->launch(fetching("bob", "sleep 600", "bml://nope/v000001", std::string(64, 'a')));
  });
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, api::ErrorCode::LOCALIZATION_FAILED);
}

TEST(HttpLocalization, AResourceWithoutAChecksumNeedsTheConfigToAllowIt) {
  TestHttpServer server;
  server.add_file("/a.txt", "unverified");
  auto ecm = start_node();
  const auto error =
      ecm_error_of([&] { ecm->launch(fetching("alice", "sleep 600", server.url("/a.txt"), "")); });
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, api::ErrorCode::INVALID_REQUEST);
  EXPECT_NE(error->message.find("allow_unverified"), std::string::npos) << error->message;
  EXPECT_EQ(server.request_count("/a.txt"), 0u);

  EcmOptions o;
  o.plugins = {"shell", "http"};
  o.extra_toml = "[localization]\nallow_unverified = true\n";
  EcmProcess allowing(o);
  const auto e = allowing.launch(fetching("alice", "sleep 600", server.url("/a.txt"), ""));
  EXPECT_EQ(read_file(fs::path(e.work_dir) / "res.bin"), "unverified");
}

// Bytes of an archive python3 builds (tarfile/zipfile) with `script`, which writes to OUT.
std::string python_archive(const std::string& script) {
  const fs::path dir = fs::temp_directory_path() / ("ecm-http-archive-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const fs::path out = dir / "out";
  const fs::path py = dir / "make.py";
  std::ofstream(py) << "import tarfile, zipfile, io\nOUT = '" << out.string() << "'\n" << script;
  EXPECT_EQ(std::system(("python3 " + py.string()).c_str()), 0);
  const std::string bytes = read_file(out);
  fs::remove_all(dir);
  return bytes;
}

TEST(HttpLocalization, ArchivesAreUnpackedOrRefusedAndEvictionSparesHeldEntries) {
  TestHttpServer server;
  const std::string good = python_archive(
      "with tarfile.open(OUT, 'w:gz') as t:\n"
      "    d = b'echo unpacked from http\\n'; i = tarfile.TarInfo('bin/run.sh'); i.size = len(d)\n"
      "    t.addfile(i, io.BytesIO(d))\n");
  const std::string slip = python_archive(
      "with zipfile.ZipFile(OUT, 'w') as z:\n"
      "    z.writestr('ok.txt', 'fine'); z.writestr('../../evil.txt', 'pwned')\n");
  const std::string link = python_archive(
      "with tarfile.open(OUT, 'w') as t:\n"
      "    i = tarfile.TarInfo('up'); i.type = tarfile.SYMTYPE; i.linkname = '/etc'; t.addfile(i)\n"
      "    d = b'x'; i = tarfile.TarInfo('up/passwd'); i.size = 1; t.addfile(i, io.BytesIO(d))\n");
  server.add_file("/good.tar.gz", good);
  server.add_file("/slip.zip", slip);
  server.add_file("/link.tar", link);
  const std::string mib(1 << 20, 'm');
  std::vector<std::string> shas;
  for (int i = 0; i < 4; ++i) {
    server.add_file("/r" + std::to_string(i), mib + std::to_string(i));
    shas.push_back(host::sha256_hex(mib + std::to_string(i)));
  }
  EcmOptions o;
  o.plugins = {"shell", "http"};
  o.extra_toml = "[cache]\nmax_size = \"3MiB\"\n";
  EcmProcess ecm(o);

  auto archive = [&](const std::string& path, const std::string& bytes) {
    auto req = fetching("alice", "sh env/bin/run.sh; sleep 600", server.url(path),
                        host::sha256_hex(bytes), "env");
    req.resources[0].__set_unpack(true);
    return req;
  };
  const auto e = ecm.launch(archive("/good.tar.gz", good));
  std::string out;
  EXPECT_TRUE(eventually([&] {
    return (out = read_file(e.log_dir + "/stdout")).find("unpacked from http") != std::string::npos;
  })) << out;
  for (const auto& [path, bytes, why] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"/slip.zip", slip, ".."}, {"/link.tar", link, "symlink"}}) {
    const auto error = ecm_error_of([&] { ecm.launch(archive(path, bytes)); });
    ASSERT_TRUE(error) << path;
    EXPECT_EQ(error->code, api::ErrorCode::LOCALIZATION_FAILED);
    EXPECT_NE(error->message.find(why), std::string::npos) << error->message;
  }
  EXPECT_FALSE(fs::exists(ecm.dir() / "evil.txt"));
  EXPECT_FALSE(fs::exists(ecm.state_dir() / "evil.txt"));

  // r0 held by a running engine; r1..r3 by engines that end at once. Over 3 MiB the oldest unused
  // go; r0, the oldest of all, stays.
  ecm.launch(fetching("alice", "sleep 600", server.url("/r0"), shas[0], "r"));
  for (int i = 1; i < 4; ++i) {
    const auto done =
        ecm.launch(fetching("alice", "exit 0", server.url("/r" + std::to_string(i)), shas[i], "r"));
    ecm.wait_for_status(done.id, [](const api::EngineConn& x) {
      return x.status == api::EngineStatus::SUCCESS || x.status == api::EngineStatus::FAILED;
    });
  }
  api::CacheReport cache;
  ASSERT_TRUE(eventually([&] {
    ecm.client().listCache(cache);
    return cache.bytes <= 3 << 20;
  })) << cache.bytes;
  bool r0_kept = false, r1_kept = false;
  for (const auto& entry : cache.entries) {
    r0_kept = r0_kept || entry.sha256 == shas[0];
    r1_kept = r1_kept || entry.sha256 == shas[1];
  }
  EXPECT_TRUE(r0_kept) << "an entry in use was evicted";
  EXPECT_FALSE(r1_kept) << "the least recently used unused entry stayed";
  // Evicted means fetched again; held means not.
  ecm.launch(fetching("alice", "sleep 600", server.url("/r1"), shas[1], "r"));
  ecm.launch(fetching("alice", "sleep 600", server.url("/r0"), shas[0], "r"));
  EXPECT_EQ(server.request_count("/r1"), 2u);
  EXPECT_EQ(server.request_count("/r0"), 1u);
}

TEST(HttpLocalization, ASlowDownloadReportsItsProgressAsEvents) {
  TestHttpServer server;
  const std::string bytes = payload(1 << 20);
  server.add_file("/slow.bin", bytes);
  server.throttle("/slow.bin", 128 << 10, std::chrono::milliseconds(300));  // ~2.4 s
  const fs::path out = fs::temp_directory_path() / ("ecm-progress-" + std::to_string(getpid()));
  fs::remove(out);
  auto ecm = start_node("", "", {"recorder"}, {{"recorder", "path = \"" + out.string() + "\"\n"}});
  const auto e =
      ecm->launch(fetching("alice", "sleep 600", server.url("/slow.bin"), host::sha256_hex(bytes)));
  EXPECT_EQ(e.status, api::EngineStatus::RUNNING);
  // Progress (at most one a second) and the end: two at least, all before the launch event.
  std::size_t localized = 0;
  ASSERT_TRUE(eventually([&] {
    localized = 0;
    std::istringstream in(read_file(out));
    std::string seq, kind, id;
    std::string line;
    bool launched = false;
    while (std::getline(in, line)) {
      std::istringstream f(line);
      f >> seq >> kind >> id;
      if (id != e.id) continue;
      if (kind == "engine_launched") launched = true;
      if (kind == "resource_localized" && !launched) ++localized;
    }
    return launched && localized >= 2;
  })) << localized
      << " resource_localized events: " << read_file(out);
  ecm.reset();
  fs::remove(out);
}

}  // namespace
}  // namespace ecm::itest
