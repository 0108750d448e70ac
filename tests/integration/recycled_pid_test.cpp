// The ECM never signals a process it did not start: once an engine has ended, its pid (and the
// process group id it led) may be given to an unrelated process, and no stop, however asked for,
// may reach that process.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>

#include "ecm_harness.hpp"

namespace ecm::itest {
namespace {

// Starts `sleep 600` as the leader of its own session with exactly pid `wanted`, by setting the
// kernel's last-pid counter (root only) just before forking. Returns 0 when the pid could not be
// had (another process took it first) after a few tries.
pid_t spawn_with_pid(pid_t wanted) {
  for (int attempt = 0; attempt < 20; ++attempt) {
    {
      std::ofstream last("/proc/sys/kernel/ns_last_pid");
      if (!last) return 0;
      last << (wanted - 1) << std::flush;
      if (!last) return 0;
    }
    pid_t pid = fork();
    if (pid == 0) {
      setsid();
      execl("/bin/sleep", "sleep", "600", static_cast<char*>(nullptr));
      _exit(127);
    }
    if (pid == wanted) return pid;
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  return 0;
}

bool alive(pid_t pid) {
  return group_alive(pid);  // the victim leads its own group: alive and not a zombie
}

}  // namespace

TEST(RecycledPid, AStopOfAnEndedEngineNeverReachesTheProcessThatGotItsPid) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to choose the next pid";
  EcmOptions options;
  options.stop_on_shutdown = true;
  EcmProcess ecm(options);
  auto e = ecm.launch(shell_request("alice", "exit 0"));
  ecm.wait_for_status(e.id, api::EngineStatus::SUCCESS);
  const pid_t recycled = spawn_with_pid(e.pid);
  if (recycled == 0) GTEST_SKIP() << "could not obtain pid " << e.pid << " for the victim";
  ASSERT_TRUE(eventually([&] { return alive(recycled); })) << "the victim did not start";

  api::StopRequest by_id;
  by_id.__set_engine_id(e.id);
  by_id.__set_force(true);
  api::StopResult result;
  ecm.client().stopEngineConn(result, by_id);
  EXPECT_TRUE(result.already_ended);
  const auto by_user = ecm.run_ecmctl({"stop", "--user", "alice", "--force", "--json"});
  EXPECT_EQ(by_user.exit_code, 0) << by_user.err;
  const auto by_type = ecm.run_ecmctl({"stop", "--type", "shell", "--force"});
  EXPECT_EQ(by_type.exit_code, 0) << by_type.err;
  // And the daemon's own shutdown, which stops every engine it still runs.
  EXPECT_EQ(ecm.terminate_and_wait(), 0);

  std::this_thread::sleep_for(200ms);
  EXPECT_TRUE(alive(recycled)) << "the process that got the ended engine's pid was signalled";
  kill(recycled, SIGKILL);
  waitpid(recycled, nullptr, 0);
}

}  // namespace ecm::itest
