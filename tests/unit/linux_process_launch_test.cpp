// Real processes: spawn, exit codes and signals, stop with grace and escalation, group kill.
#include "ecm/core/linux_process_launch.hpp"

#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>

#include "ecm/core/errors.hpp"
#include "support/process_probe.hpp"

using namespace ecm::core;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

class LinuxProcessLaunchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ecm-launch-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
    io_thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    // The event loop first: a process that ended at the end of a test (a stop) makes its exit
    // handler ready, and it must not run on a launcher already destroyed.
    io_.stop();
    io_thread_.join();
    launcher_.reset();
    guard_.reset();
    fs::remove_all(dir_);
  }

  ProcessSpec shell(const std::string& command) {
    ProcessSpec s;
    s.executable = "/bin/sh";
    s.argv = {"/bin/sh", "-c", command};
    s.env = {"PATH=/usr/bin:/bin", "GREETING=hello"};
    s.working_dir = dir_;
    s.stdout_path = dir_ + "/stdout";
    s.stderr_path = dir_ + "/stderr";
    return s;
  }

  // Starts and returns the pid; the exit lands in exits_.
  int start(const ProcessSpec& spec) {
    return launcher_
        ->start(spec,
                [this](int pid, const ExitStatus& e) {
                  std::lock_guard lock(mu_);
                  exits_[pid] = e;
                  cv_.notify_all();
                })
        .pid;
  }

  std::optional<ExitStatus> wait_exit(int pid, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return exits_.count(pid) != 0; })) return std::nullopt;
    return exits_[pid];
  }

  std::string read(const std::string& name) {
    std::ifstream in(dir_ + "/" + name);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  std::string dir_;
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard_{
      io_.get_executor()};
  std::thread io_thread_;
  std::unique_ptr<LinuxProcessEngineConnLaunch> launcher_ =
      std::make_unique<LinuxProcessEngineConnLaunch>(io_);
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int, ExitStatus> exits_;
};

}  // namespace

TEST_F(LinuxProcessLaunchTest, ExitCodeIsReported) {
  int pid = start(shell("echo out; echo err >&2; exit 7"));
  auto e = wait_exit(pid);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, 7);
  EXPECT_FALSE(e->signal);
  EXPECT_EQ(read("stdout"), "out\n");
  EXPECT_EQ(read("stderr"), "err\n");
  EXPECT_EQ(launcher_->running_count(), 0u);
}

TEST_F(LinuxProcessLaunchTest, ChildGetsOwnSessionEnvWorkDirAndDevNullStdin) {
  int pid =
      start(shell("ps -o pid=,pgid=,sid= -p $$; echo \"$GREETING\"; pwd; cat; ls /proc/self/fd"));
  ASSERT_TRUE(wait_exit(pid));
  std::istringstream out(read("stdout"));
  int p, pg, sid;
  out >> p >> pg >> sid;
  EXPECT_EQ(p, pid);
  EXPECT_EQ(pg, pid) << "leader of its own process group";
  EXPECT_EQ(sid, pid) << "leader of its own session";
  std::string greeting, cwd;
  out >> greeting >> cwd;
  EXPECT_EQ(greeting, "hello");
  EXPECT_EQ(fs::canonical(cwd), fs::canonical(dir_));
  // `cat` read /dev/null: nothing. `ls /proc/self/fd` lists 0 1 2 and its own directory fd (3).
  std::string fd;
  std::vector<std::string> fds;
  while (out >> fd)
    fds.push_back(fd);
  EXPECT_EQ(fds, (std::vector<std::string>{"0", "1", "2", "3"})) << "an ECM descriptor leaked";
}

TEST_F(LinuxProcessLaunchTest, NoDescriptorOfTheParentLeaks) {
  // A descriptor without O_CLOEXEC in the parent must still not reach the child.
  int leaky = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(leaky, 3);
  int pid = start(shell("ls /proc/$$/fd"));
  ASSERT_TRUE(wait_exit(pid));
  ::close(leaky);
  EXPECT_EQ(read("stdout"), "0\n1\n2\n");
}

TEST_F(LinuxProcessLaunchTest, ExecFailureNamesTheStep) {
  auto spec = shell("true");
  spec.executable = "/nonexistent/engine";
  try {
    launcher_->start(spec, [](int, const ExitStatus&) {});
    FAIL() << "no error";
  } catch (const EcmException& e) {
    EXPECT_EQ(e.code(), ErrorCode::kLaunchFailed);
    EXPECT_NE(std::string(e.what()).find("execve"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("No such file"), std::string::npos) << e.what();
  }
  EXPECT_EQ(launcher_->running_count(), 0u);
}

TEST_F(LinuxProcessLaunchTest, BadWorkingDirFailsTheLaunch) {
  auto spec = shell("true");
  spec.working_dir = dir_ + "/missing";
  EXPECT_THROW(launcher_->start(spec, [](int, const ExitStatus&) {}), EcmException);
}

TEST_F(LinuxProcessLaunchTest, StopSendsSignalToGroupIncludingGrandchildren) {
  int pid = start(shell("sleep 600 & sleep 600 & wait"));
  std::this_thread::sleep_for(200ms);
  ASSERT_TRUE(launcher_->stop(pid, SIGTERM, 10s));
  auto e = wait_exit(pid);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->signal, SIGTERM);
  EXPECT_TRUE(ecm::test::group_gone(pid)) << "a grandchild survived";
}

TEST_F(LinuxProcessLaunchTest, IgnoringSigtermGetsSigkillAfterGrace) {
  int pid = start(shell("trap '' TERM; echo ready; while :; do sleep 0.05; done"));
  while (read("stdout").empty())
    std::this_thread::sleep_for(10ms);
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(launcher_->stop(pid, SIGTERM, 500ms));
  auto e = wait_exit(pid);
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(e);
  EXPECT_EQ(e->signal, SIGKILL);
  EXPECT_GE(took, 450ms);
  EXPECT_TRUE(ecm::test::group_gone(pid));
}

TEST_F(LinuxProcessLaunchTest, ZeroGraceKillsAtOnce) {
  int pid = start(shell("trap '' TERM; sleep 600"));
  ASSERT_TRUE(launcher_->stop(pid, SIGTERM, 0ms));
  auto e = wait_exit(pid, 5s);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->signal, SIGKILL);
}

TEST_F(LinuxProcessLaunchTest, LeftoversInTheGroupDieWithTheLeader) {
  int pid = start(shell("sleep 600 & echo started"));
  auto e = wait_exit(pid);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, 0);
  EXPECT_TRUE(ecm::test::group_gone(pid)) << "the background sleep outlived its engine";
}

TEST_F(LinuxProcessLaunchTest, StopOfAnUnknownOrReapedPidSignalsNothing) {
  EXPECT_FALSE(launcher_->stop(getpid(), SIGTERM, 1s)) << "must never signal its own group";
  int pid = start(shell("exit 0"));
  ASSERT_TRUE(wait_exit(pid));
  EXPECT_FALSE(launcher_->stop(pid, SIGKILL, 0ms));
}

TEST_F(LinuxProcessLaunchTest, ManyConcurrentSpawnsAreAllReaped) {
  std::vector<std::thread> threads;
  std::mutex pids_mu;
  std::vector<int> pids;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        int pid = start(shell("exit " + std::to_string((t * 25 + i) % 5)));
        std::lock_guard lock(pids_mu);
        pids.push_back(pid);
      }
    });
  }
  for (auto& th : threads)
    th.join();
  for (int pid : pids)
    ASSERT_TRUE(wait_exit(pid)) << pid;
  EXPECT_EQ(launcher_->running_count(), 0u);
}

TEST_F(LinuxProcessLaunchTest, StartTimeIdentifiesTheProcess) {
  auto started = launcher_->start(shell("sleep 600"), [](int, const ExitStatus&) {});
  auto again = read_process_start_time(started.pid);
  ASSERT_TRUE(again);
  EXPECT_GT(started.start_time, 0u);
  EXPECT_EQ(*again, started.start_time);
  launcher_->stop(started.pid, SIGKILL, 0ms);
  EXPECT_FALSE(read_process_start_time(999'999'999));
}

// Field 22 of /proc/PID/stat, counted past a command name holding spaces and parentheses (the name
// of the executable: here a link named like the rest of the line), is the start in clock ticks
// since boot: now, give or take the time the test took.
TEST_F(LinuxProcessLaunchTest, StartTimeIsReadPastACommandNameWithSpacesAndParentheses) {
  const std::string link = dir_ + "/x) 1 2 (y";
  std::filesystem::create_symlink("/bin/sleep", link);
  ProcessSpec spec = shell("");
  spec.executable = link;
  spec.argv = {link, "600"};
  std::ifstream uptime_file("/proc/uptime");
  double uptime = 0;
  uptime_file >> uptime;
  auto started = launcher_->start(spec, [](int, const ExitStatus&) {});
  std::ifstream comm("/proc/" + std::to_string(started.pid) + "/comm");
  std::string name;
  std::getline(comm, name);
  EXPECT_EQ(name, "x) 1 2 (y") << "the test needs the odd name in field 2";
  const double started_s =
      static_cast<double>(started.start_time) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  EXPECT_NEAR(started_s, uptime, 5.0);
  EXPECT_FALSE(is_zombie(started.pid));
  launcher_->stop(started.pid, SIGKILL, 0ms);
}
