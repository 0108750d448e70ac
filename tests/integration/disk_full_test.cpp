// The work root's disk fills up (a 4 MiB tmpfs the test mounts there): the engine that filled it
// and the ECM go on, the condition shows in the node's health, and clears when space comes back.
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include <gtest/gtest.h>

#include "ecm_harness.hpp"

namespace ecm::itest {
namespace {

namespace fs = std::filesystem;

// A small file system of its own at `at`, detached (lazily: engines may still have their cwd in
// it) when the test ends.
class SmallFileSystem {
 public:
  SmallFileSystem(const fs::path& at, const std::string& size) : at_(at) {
    fs::create_directories(at);
    mounted_ = ::mount("tmpfs", at.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
  }
  ~SmallFileSystem() {
    if (mounted_) ::umount2(at_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }

 private:
  fs::path at_;
  bool mounted_ = false;
};

api::HealthReport health_of(EcmProcess& ecm) {
  api::HealthReport r;
  ecm.client().getHealthReport(r);
  return r;
}

}  // namespace

TEST(DiskFull, TheEngineAndTheEcmGoOnAndHealthShowsItUntilSpaceIsBack) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting the small file system needs root";
  EcmOptions o;
  o.stop_grace = "2s";
  o.extra_toml =
      "[cleanup]\ninterval = \"200ms\"\n"
      // Readings of a quiet machine: the CPU of the machine running the tests plays no part.
      "[health]\n" +
      std::string(kFakeProcHealthKeys) +
      // Rotation of the engine's 4 MiB log cannot copy it on a full disk: it must fail quietly.
      "[logs]\nrotate_size = \"1MiB\"\nrotate_check_interval = \"200ms\"\n";
  EcmProcess ecm(o, false);
  write_fake_proc(ecm, 50);
  SmallFileSystem small(ecm.work_root(), "4m");
  ASSERT_TRUE(small.mounted()) << "mount tmpfs: " << std::strerror(errno);
  ecm.start();
  ASSERT_TRUE(eventually([&] { return health_of(ecm).health == api::NodeHealth::HEALTHY; }));

  // Writes 6 MiB of log into 4: the writes past the end fail with ENOSPC, and it goes on.
  auto filler =
      ecm.launch(shell_request("alice", "head -c 6291456 /dev/zero | tr '\\0' x; exec sleep 600"));
  ASSERT_TRUE(eventually(
      [&] {
        auto h = health_of(ecm);
        return h.health == api::NodeHealth::WARN;
      },
      15s))
      << "the full disk never showed in health";
  auto h = health_of(ecm);
  bool named = false;
  for (const auto& reason : h.reasons)
    named = named || reason.find("work disk") != std::string::npos;
  EXPECT_TRUE(named) << "no reason names the work disk";
  api::NodeResources res;
  ecm.client().getResources(res);
  ASSERT_TRUE(res.__isset.disk);
  EXPECT_TRUE(res.disk.over_watermark);

  // The engine is alive and went on with its script after the failed writes (it is `sleep` now).
  EXPECT_TRUE(eventually([&] {
    return read_file("/proc/" + std::to_string(filler.pid) + "/cmdline") == std::string(
                                                                                "sleep\0"
                                                                                "600\0",
                                                                                10);
  }));
  api::EngineConn e;
  ecm.client().getEngineConn(e, filler.id);
  EXPECT_EQ(e.status, api::EngineStatus::RUNNING);
  EXPECT_TRUE(group_alive(filler.pid));

  // The ECM serves: lists, reads the log, and a launch either runs or fails with a typed error
  // that says why, never a crash.
  std::vector<api::EngineConn> all;
  ecm.client().listEngineConns(all, api::EngineConnFilter{});
  EXPECT_EQ(all.size(), 1u);
  api::LogRequest log;
  log.__set_engine_id(filler.id);
  log.__set_stream("stderr");
  api::LogPage page;
  ecm.client().getEngineLog(page, log);
  auto error = ecm_error_of([&] { ecm.launch(shell_request("bob", "sleep 600")); });
  if (error) {
    EXPECT_EQ(error->code, api::ErrorCode::LAUNCH_FAILED) << error->message;
    EXPECT_NE(error->message.find("No space left"), std::string::npos) << error->message;
  }

  // Space comes back (the log is emptied): health is good again, launches work.
  fs::resize_file(fs::path(filler.work_dir) / "logs" / "stdout", 0);
  for (const auto& p : fs::directory_iterator(fs::path(filler.work_dir) / "logs")) {
    if (p.path().filename() != "stdout" && p.path().filename() != "stderr") fs::remove(p.path());
  }
  EXPECT_TRUE(eventually([&] { return health_of(ecm).health == api::NodeHealth::HEALTHY; }, 15s));
  EXPECT_EQ(ecm.launch(shell_request("bob", "sleep 600")).status, api::EngineStatus::RUNNING);
  EXPECT_EQ(ecm.terminate_and_wait(), 0);
}

}  // namespace ecm::itest
