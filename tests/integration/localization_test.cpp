// Resource localization on the real daemon through the `file` localizer: verified, cached,
// linked read-only into the work dir, shared by public visibility and kept apart by private,
// unpacked safely, evicted under the bound but never while in use, kept across a restart, fetched
// once for many concurrent launches; failures typed, naming the resource, leaving nothing behind.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "ecm_harness.hpp"
#include "util/sha256.hpp"

namespace ecm::itest {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

// A daemon with the file localizer serving `<its dir>/res`.
struct Node {
  explicit Node(const std::string& extra_toml = "", std::vector<std::string> test_plugins = {}) {
    EcmOptions o;
    o.plugins = {"shell", "file"};
    o.extra_toml = extra_toml;
    o.test_plugins = std::move(test_plugins);
    ecm = std::make_unique<EcmProcess>(o, /*start=*/false);
    res = ecm->dir() / "res";
    fs::create_directories(res);
    std::ofstream(ecm->dir() / "plugin-conf" / "file.toml")
        << "roots = [\"" << res.string() << "\"]\n";
    ecm->start();
  }
  // Writes `content` to res/NAME; its sha256.
  std::string put(const std::string& name, const std::string& content) const {
    std::ofstream(res / name, std::ios::binary) << content;
    return host::sha256_file(res / name);
  }
  std::string uri(const std::string& name) const { return "file://" + (res / name).string(); }
  api::CacheReport cache() const {
    api::CacheReport r;
    ecm->client().listCache(r);
    return r;
  }
  std::unique_ptr<EcmProcess> ecm;
  fs::path res;
};

api::ResourceSpec resource(const std::string& uri, const std::string& sha = "",
                           const std::string& name = "") {
  api::ResourceSpec r;
  r.__set_uri(uri);
  if (!sha.empty()) r.__set_sha256(sha);
  if (!name.empty()) r.__set_name(name);
  return r;
}

api::LaunchRequest with(api::LaunchRequest req, std::vector<api::ResourceSpec> resources) {
  req.__set_resources(std::move(resources));
  return req;
}

std::string stdout_of(const api::EngineConn& e, const std::string& until) {
  std::string out;
  eventually(
      [&] { return (out = read_file(e.log_dir + "/stdout")).find(until) != std::string::npos; });
  return out;
}

bool nothing_locked(EcmProcess& ecm) {
  api::NodeResources r;
  ecm.client().getResources(r);
  return r.locked.instances == 0 && r.used.instances == 0;
}

TEST(Localization, AFileResourceIsVerifiedLinkedReadOnlyAndServedFromTheCacheNextTime) {
  Node node;
  const std::string sha = node.put("a.txt", "hello resource\n");
  const auto first =
      node.ecm->launch(with(shell_request("alice", "cat a.txt; echo done; sleep 600"),
                            {resource(node.uri("a.txt"), sha)}));
  EXPECT_EQ(first.status, api::EngineStatus::RUNNING);
  EXPECT_NE(stdout_of(first, "done").find("hello resource"), std::string::npos);

  // A link into the cache, whose content nobody may write.
  const fs::path link = fs::path(first.work_dir) / "a.txt";
  ASSERT_TRUE(fs::is_symlink(link));
  const fs::path target = fs::read_symlink(link);
  struct stat st {};
  ASSERT_EQ(::stat(target.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
  auto cache = node.cache();
  ASSERT_EQ(cache.entries.size(), 1u);
  EXPECT_EQ(cache.entries[0].sha256, sha);
  EXPECT_EQ(cache.entries[0].owner, "alice");
  EXPECT_EQ(cache.entries[0].in_use, 1);
  EXPECT_EQ(cache.entries[0].bytes, 15);

  // The source gone, the next launch is served by the cache (the checksum names the content).
  fs::remove(node.res / "a.txt");
  const auto second =
      node.ecm->launch(with(shell_request("alice", "cat b.txt; echo done; sleep 600"),
                            {resource(node.uri("a.txt"), sha, "b.txt")}));
  EXPECT_NE(stdout_of(second, "done").find("hello resource"), std::string::npos);
  cache = node.cache();
  ASSERT_EQ(cache.entries.size(), 1u);
  EXPECT_EQ(cache.entries[0].in_use, 2);
  EXPECT_EQ(fs::read_symlink(fs::path(second.work_dir) / "b.txt"), target);
  EXPECT_NE(node.ecm->daemon_stderr().find("from the cache"), std::string::npos);

  // Engines that end give their hold back.
  api::StopRequest stop;
  stop.__set_user("alice");
  std::vector<api::StopResult> stopped;
  node.ecm->client().stopEngineConns(stopped, stop);
  EXPECT_TRUE(eventually([&] { return node.cache().entries.at(0).in_use == 0; }));
}

TEST(Localization, FailuresAreTypedNameTheResourceAndLeaveNothingBehind) {
  Node node;
  const std::string sha = node.put("a.txt", "content\n");
  const std::string wrong(64, 'a');
  struct Case {
    std::string what;
    std::vector<api::ResourceSpec> resources;
    api::ErrorCode::type code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"checksum mismatch",
       {resource(node.uri("a.txt"), wrong)},
       api::ErrorCode::LOCALIZATION_FAILED,
       "checksum mismatch"},
      {"missing file",
       {resource(node.uri("nope.txt"))},
       api::ErrorCode::LOCALIZATION_FAILED,
       "not found"},
      {"outside the roots",
       {resource("file:///etc/hostname")},
       api::ErrorCode::LOCALIZATION_FAILED,
       "not found"},
      {"through a symlink out",
       {resource(node.uri("escape"))},
       api::ErrorCode::LOCALIZATION_FAILED,
       "not found"},
      {"no scheme", {resource("a.txt")}, api::ErrorCode::INVALID_REQUEST, "no scheme"},
      {"unknown scheme",
       {resource("gopher://x/y", wrong)},
       api::ErrorCode::INVALID_REQUEST,
       "no localizer serves 'gopher'"},
      {"bad sha", {resource(node.uri("a.txt"), "xyz")}, api::ErrorCode::INVALID_REQUEST, "64 hex"},
      {"bad name",
       {resource(node.uri("a.txt"), sha, "../x")},
       api::ErrorCode::INVALID_REQUEST,
       "not a safe file name"},
      {"duplicate name",
       {resource(node.uri("a.txt"), sha, "x"), resource(node.uri("a.txt"), sha, "x")},
       api::ErrorCode::INVALID_REQUEST,
       "two resources are named 'x'"},
      {"a good one, then a bad one",
       {resource(node.uri("a.txt"), sha, "good"), resource(node.uri("a.txt"), wrong, "bad")},
       api::ErrorCode::LOCALIZATION_FAILED,
       "resource 'bad'"},
  };
  fs::create_symlink("/etc/hostname", node.res / "escape");
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    const auto error = ecm_error_of(
        [&] { node.ecm->launch(with(shell_request("alice", "sleep 600"), c.resources)); });
    ASSERT_TRUE(error) << "accepted";
    EXPECT_EQ(error->code, c.code) << error->message;
    EXPECT_NE(error->message.find(c.message), std::string::npos) << error->message;
    EXPECT_TRUE(nothing_locked(*node.ecm));
  }
  // A launch refused before anything was locked made no engine; a failed localization left a
  // Failed engine with the reason, and no file in its work dir.
  std::vector<api::EngineConn> all;
  node.ecm->client().listEngineConns(all, api::EngineConnFilter{});
  ASSERT_EQ(all.size(), 5u);
  for (const auto& e : all) {
    EXPECT_EQ(e.status, api::EngineStatus::FAILED);
    EXPECT_FALSE(e.failure_reason.empty());
    EXPECT_FALSE(fs::exists(fs::path(e.work_dir) / "good")) << e.work_dir;
  }
  // Nothing half-fetched stays in the cache: only the verified good one of the last case.
  const auto cache = node.cache();
  ASSERT_EQ(cache.entries.size(), 1u);
  EXPECT_EQ(cache.entries[0].sha256, sha);
  EXPECT_EQ(cache.entries[0].in_use, 0);
  EXPECT_TRUE(fs::is_empty(node.ecm->state_dir() / "cache" / "staging"));
}

// python3 builds the archives (tarfile, zipfile: no tools of ours involved).
void python(const std::string& script) {
  const fs::path file =
      fs::temp_directory_path() / ("ecm-archive-" + std::to_string(getpid()) + ".py");
  std::ofstream(file) << script;
  ASSERT_EQ(std::system(("python3 " + file.string()).c_str()), 0);
  fs::remove(file);
}

TEST(Localization, ArchivesAreUnpackedAndOnesThatEscapeAreRefused) {
  Node node;
  python(
      "import tarfile, io, zipfile\n"
      "def add(t, name, data):\n"
      "    i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))\n"
      "with tarfile.open('" +
      (node.res / "env.tar.gz").string() +
      "', 'w:gz') as t:\n"
      "    add(t, 'bin/run.sh', b'echo from the archive\\n'); add(t, 'conf/a.conf', b'x=1\\n')\n"
      "with zipfile.ZipFile('" +
      (node.res / "slip.zip").string() +
      "', 'w') as z:\n"
      "    z.writestr('ok.txt', 'fine'); z.writestr('../../evil.txt', 'pwned')\n"
      "with tarfile.open('" +
      (node.res / "link.tar").string() +
      "', 'w') as t:\n"
      "    i = tarfile.TarInfo('up'); i.type = tarfile.SYMTYPE; i.linkname = '/etc'; t.addfile(i)\n"
      "    add(t, 'up/passwd', b'root::0:0::/:/bin/sh\\n')\n");
  auto unpacked =
      resource(node.uri("env.tar.gz"), host::sha256_file(node.res / "env.tar.gz"), "env");
  unpacked.__set_unpack(true);
  const auto e = node.ecm->launch(with(
      shell_request("alice", "sh env/bin/run.sh; cat env/conf/a.conf; sleep 600"), {unpacked}));
  const auto out = stdout_of(e, "x=1");
  EXPECT_NE(out.find("from the archive"), std::string::npos) << out;
  EXPECT_TRUE(fs::is_directory(fs::path(e.work_dir) / "env"));
  ASSERT_EQ(node.cache().entries.size(), 1u);
  EXPECT_TRUE(node.cache().entries[0].unpacked);

  for (const auto& [file, why] : std::vector<std::pair<std::string, std::string>>{
           {"slip.zip", ".."}, {"link.tar", "symlink"}}) {
    SCOPED_TRACE(file);
    auto bad = resource(node.uri(file), host::sha256_file(node.res / file), "bad");
    bad.__set_unpack(true);
    const auto error =
        ecm_error_of([&] { node.ecm->launch(with(shell_request("alice", "sleep 600"), {bad})); });
    ASSERT_TRUE(error);
    EXPECT_EQ(error->code, api::ErrorCode::LOCALIZATION_FAILED);
    EXPECT_NE(error->message.find("cannot unpack"), std::string::npos) << error->message;
    EXPECT_NE(error->message.find(why), std::string::npos) << error->message;
  }
  EXPECT_EQ(node.cache().entries.size(), 1u);
  EXPECT_FALSE(fs::exists(node.ecm->dir() / "evil.txt"));
  EXPECT_FALSE(fs::exists(node.ecm->state_dir() / "evil.txt"));
  EXPECT_TRUE(fs::is_empty(node.ecm->state_dir() / "cache" / "staging"));
}

TEST(Localization, PrivateResourcesAreCachedPerUserAndPublicOnesShared) {
  Node node;
  const std::string sha = node.put("lib.jar", "jar bytes");
  for (const std::string user : {"alice", "bob"}) {
    node.ecm->launch(with(shell_request(user, "sleep 600"), {resource(node.uri("lib.jar"), sha)}));
  }
  auto cache = node.cache();
  ASSERT_EQ(cache.entries.size(), 2u);
  EXPECT_NE(cache.entries[0].owner, cache.entries[1].owner);
  for (const auto& entry : cache.entries) {
    // The private entry's dir cannot be listed: its content's name (128 random bits) is known
    // only to the engines it is linked into.
    struct stat st {};
    ASSERT_EQ(::stat(fs::path(entry.path).parent_path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0711u);
    const auto name = fs::path(entry.path).filename().string();
    EXPECT_EQ(name.size(), std::string("content-").size() + 32) << name;
  }

  auto shared = resource(node.uri("lib.jar"), sha, "shared.jar");
  shared.__set_visibility("public");
  for (const std::string user : {"alice", "bob", "carol"}) {
    node.ecm->launch(with(shell_request(user, "sleep 600"), {shared}));
  }
  cache = node.cache();
  ASSERT_EQ(cache.entries.size(), 3u);
  int public_holders = -1;
  for (const auto& entry : cache.entries) {
    if (entry.owner.empty()) public_holders = entry.in_use;
  }
  EXPECT_EQ(public_holders, 3);

  auto odd = shared;
  odd.__set_visibility("everyone");
  const auto error =
      ecm_error_of([&] { node.ecm->launch(with(shell_request("alice", "sleep 600"), {odd})); });
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, api::ErrorCode::INVALID_REQUEST);
}

TEST(Localization, OverTheBoundUnusedEntriesAreEvictedOldestFirstAndInUseOnesNever) {
  Node node("[cache]\nmax_size = \"3MiB\"\n");
  const std::string mib(1 << 20, 'x');
  std::vector<std::string> shas;
  for (int i = 0; i < 5; ++i)
    shas.push_back(node.put("r" + std::to_string(i), mib + std::to_string(i)));

  // r0 stays in use the whole test; r1..r4 are used by engines that end at once.
  const auto holder = node.ecm->launch(
      with(shell_request("alice", "sleep 600"), {resource(node.uri("r0"), shas[0])}));
  for (int i = 1; i < 5; ++i) {
    const auto e = node.ecm->launch(with(shell_request("alice", "exit 0"),
                                         {resource(node.uri("r" + std::to_string(i)), shas[i])}));
    node.ecm->wait_for_status(e.id, [](const api::EngineConn& x) {
      return x.status == api::EngineStatus::SUCCESS || x.status == api::EngineStatus::FAILED;
    });
  }
  // Under the bound (3 MiB holds two of these), r0 kept although it is the oldest.
  ASSERT_TRUE(eventually([&] { return node.cache().bytes <= 3 << 20; })) << node.cache().bytes;
  std::vector<std::string> kept;
  for (const auto& entry : node.cache().entries)
    kept.push_back(entry.sha256);
  EXPECT_NE(std::find(kept.begin(), kept.end(), shas[0]), kept.end());
  EXPECT_NE(std::find(kept.begin(), kept.end(), shas[4]), kept.end()) << "the newest was evicted";
  EXPECT_EQ(std::find(kept.begin(), kept.end(), shas[1]), kept.end()) << "the oldest unused stayed";

  // prune --all: every unused entry; r0 still in use.
  auto pruned = node.ecm->run_ecmctl({"--json", "cache", "prune", "--all"});
  ASSERT_EQ(pruned.exit_code, 0) << pruned.err;
  EXPECT_EQ(json::parse(pruned.out).at("kept_in_use").as_int64(), 1);
  auto listed = node.ecm->run_ecmctl({"--json", "cache", "list"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  const auto entries = json::parse(listed.out).at("entries").as_array();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].at("sha256").as_string(), shas[0]);
  EXPECT_EQ(entries[0].at("in_use").as_int64(), 1);
  EXPECT_TRUE(group_alive(static_cast<pid_t>(holder.pid)));
  auto table = node.ecm->run_ecmctl({"cache"});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find(shas[0].substr(0, 12)), std::string::npos) << table.out;
  // ecmctl launch --resource: options after the URI.
  const std::string sha = node.put("via-ctl.txt", "through ecmctl\n");
  auto launched = node.ecm->run_ecmctl(
      {"--json", "launch", "shell", "--user", "bob", "--property", "command=cat t.txt; sleep 600",
       "--resource", node.uri("via-ctl.txt") + ",sha256=" + sha + ",name=t.txt,public"});
  ASSERT_EQ(launched.exit_code, 0) << launched.err;
  const auto engine = json::parse(launched.out);
  node.ecm->track(static_cast<int>(engine.at("pid").as_int64()));
  EXPECT_EQ(read_file(fs::path(engine.at("work_dir").as_string().c_str()) / "t.txt"),
            "through ecmctl\n");
  auto bad_option = node.ecm->run_ecmctl({"launch", "shell", "--user", "bob", "--property",
                                          "command=true", "--resource", node.uri("x") + ",zip"});
  EXPECT_NE(bad_option.exit_code, 0);
  EXPECT_NE(bad_option.err.find("unknown option 'zip'"), std::string::npos) << bad_option.err;

  auto usage = node.ecm->run_ecmctl({"cache", "list", "--all"});
  EXPECT_NE(usage.exit_code, 0);
  EXPECT_FALSE(usage.err.empty());
}

TEST(Localization, APluginNamesResourcesAndAnEngineTypesOwnLocalizerWinsOverTheSchemes) {
  // swap (v1) asks for the request's `resource` property itself; bound_localizer serves file://
  // for swap engines only.
  Node node("", {"bound_localizer"});
  ASSERT_EQ(node.ecm->terminate_and_wait(), 0);
  fs::copy_file(fs::path(ECM_TEST_PLUGIN_DIR) / "swap-v1" / "swap.so",
                node.ecm->dir() / "plugins" / "swap.so");
  std::string config = read_file(node.ecm->config_path());
  const auto at = config.find("enabled = [");
  config.insert(at + 11, "\"swap\", ");
  node.ecm->write_config(config);
  node.ecm->start();
  node.put("a.txt", "served by the file plugin\n");

  api::LaunchRequest swap;
  swap.__set_user("alice");
  swap.__set_engine_type("swap");
  swap.__set_properties({{"resource", node.uri("a.txt")}});
  const auto e = node.ecm->launch(swap);
  EXPECT_EQ(e.status, api::EngineStatus::RUNNING);
  EXPECT_EQ(read_file(fs::path(e.work_dir) / "from-plugin"),
            "served by bound_localizer for swap\n");

  const auto shell = node.ecm->launch(
      with(shell_request("alice", "sleep 600"), {resource(node.uri("a.txt"), "", "a.txt")}));
  EXPECT_EQ(read_file(fs::path(shell.work_dir) / "a.txt"), "served by the file plugin\n");

  // `ecmctl plugins` shows the localizer kind.
  auto list = node.ecm->run_ecmctl({"--json", "plugins"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("\"localizer\""), std::string::npos) << list.out;
}

TEST(Localization, ARestartKeepsTheCache) {
  Node node;
  const std::string sha = node.put("a.txt", "kept\n");
  node.ecm->launch(with(shell_request("alice", "sleep 600"), {resource(node.uri("a.txt"), sha)}));
  ASSERT_EQ(node.ecm->terminate_and_wait(), 0);
  fs::remove(node.res / "a.txt");
  node.ecm->start();
  ASSERT_EQ(node.cache().entries.size(), 1u);
  const auto e = node.ecm->launch(
      with(shell_request("alice", "cat a.txt; sleep 600"), {resource(node.uri("a.txt"), sha)}));
  EXPECT_NE(stdout_of(e, "kept").find("kept"), std::string::npos);
}

TEST(Localization, ManyConcurrentLaunchesOfOneResourceFetchItOnce) {
  Node node;
  const std::string sha = node.put("big.bin", std::string(8 << 20, 'b'));
  const auto errors = launch_concurrently(*node.ecm, 50, [&](int) {
    return with(shell_request("alice", "exit 0"), {resource(node.uri("big.bin"), sha)});
  });
  ASSERT_EQ(errors.size(), 50u);
  for (const auto& e : errors)
    EXPECT_TRUE(e.empty()) << e;
  // One fetch; the others waited for it or found it cached.
  const std::string log = node.ecm->daemon_stderr();
  std::size_t fetches = 0;
  for (auto at = log.find("fetched by file"); at != std::string::npos;
       at = log.find("fetched by file", at + 1))
    ++fetches;
  EXPECT_EQ(fetches, 1u) << log;
  EXPECT_EQ(node.cache().entries.size(), 1u);
}

}  // namespace
}  // namespace ecm::itest

namespace ecm::itest {

TEST(Localization, AReadoptedEngineStillHoldsItsCacheEntriesAfterAnEcmCrash) {
  Node node;
  const auto sha = node.put("lib.jar", std::string(4096, 'j'));
  const auto used = node.ecm->launch(
      with(shell_request("alice", "sleep 600"), {resource(node.uri("lib.jar"), sha)}));
  const auto ended = node.put("other", "x");
  const auto e = node.ecm->launch(
      with(shell_request("alice", "exit 0"), {resource(node.uri("other"), ended)}));
  node.ecm->wait_for_status(e.id, api::EngineStatus::SUCCESS);
  node.ecm->kill_hard();
  node.ecm->start();
  // The entry the live engine links to is held again: a prune of everything unused spares it.
  auto pruned = node.ecm->run_ecmctl({"--json", "cache", "prune", "--all"});
  ASSERT_EQ(pruned.exit_code, 0) << pruned.err;
  EXPECT_EQ(json::parse(pruned.out).at("kept_in_use").as_int64(), 1);
  EXPECT_EQ(json::parse(pruned.out).at("removed").as_int64(), 1);
  const auto cache = node.cache();
  ASSERT_EQ(cache.entries.size(), 1u);
  EXPECT_EQ(cache.entries[0].sha256, sha);
  EXPECT_EQ(cache.entries[0].in_use, 1);
  EXPECT_EQ(read_file(fs::path(used.work_dir) / "lib.jar"), std::string(4096, 'j'));
  // When the engine ends, the entry is released like any other.
  api::StopRequest stop;
  stop.__set_engine_id(used.id);
  api::StopResult result;
  node.ecm->client().stopEngineConn(result, stop);
  node.ecm->wait_for_status(used.id, api::EngineStatus::SUCCESS);
  EXPECT_TRUE(eventually([&] {
    auto c = node.cache();
    return c.entries.size() == 1 && c.entries[0].in_use == 0;
  }));
}

}  // namespace ecm::itest
