// Launch, observe and stop real `shell` engines through the real daemon.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "ecm_harness.hpp"

namespace ecm::itest {
namespace {

namespace fs = std::filesystem;

bool is_ended(const api::EngineConn& e) {
  return e.__isset.status &&
         (e.status == api::EngineStatus::SUCCESS || e.status == api::EngineStatus::FAILED);
}

std::string stdout_of(const api::EngineConn& e) {
  return read_file(fs::path(e.log_dir) / "stdout");
}

// Waits until the engine's stdout holds `marker`; returns the stdout then.
std::string wait_stdout(const api::EngineConn& e, const std::string& marker) {
  std::string out;
  eventually([&] {
    out = stdout_of(e);
    return out.find(marker) != std::string::npos;
  });
  return out;
}

// The value of `KEY=` lines in `text`, as `env` prints them.
std::map<std::string, std::string> env_lines(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq != std::string::npos && eq > 0) out.emplace(line.substr(0, eq), line.substr(eq + 1));
  }
  return out;
}

// The signals a process ignores (SigIgn of /proc/PID/status).
unsigned long long ignored_signals(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("SigIgn:", 0) == 0) return std::stoull(line.substr(7), nullptr, 16);
  }
  return 0;
}

TEST(EngineLifecycle, Launch_ShellEngineRunsIsListedAndStopsBySigterm) {
  EcmProcess ecm;
  auto req = shell_request("alice", "echo hello-from-engine; sleep 600");
  req.__set_ticket_id("ticket-lifecycle-1");
  req.__set_labels({{"team", "blue"}});
  const auto e = ecm.launch(req);

  EXPECT_EQ(e.status, api::EngineStatus::RUNNING);
  ASSERT_TRUE(e.__isset.pid);
  ASSERT_GT(e.pid, 1);
  EXPECT_EQ(e.user, "alice");
  EXPECT_EQ(e.engine_type, "shell");
  EXPECT_EQ(e.ticket_id, "ticket-lifecycle-1");
  EXPECT_EQ(e.labels.at("team"), "blue");
  EXPECT_EQ(e.properties.at("command"), "echo hello-from-engine; sleep 600");
  EXPECT_EQ(e.plugin_name, "shell");
  EXPECT_FALSE(e.id.empty());
  EXPECT_TRUE(group_alive(e.pid));
  // The engine leads its own process group (and session).
  EXPECT_EQ(getpgid(e.pid), e.pid);

  // Work dir: <work_root>/<user>/<engine-id>, made by the daemon.
  EXPECT_EQ(fs::path(e.work_dir), ecm.work_root() / "alice" / e.id);
  EXPECT_TRUE(fs::is_directory(e.work_dir));
  EXPECT_EQ(fs::status(e.work_dir).permissions() & fs::perms::all, fs::perms::owner_all);

  api::EngineConn got;
  ecm.client().getEngineConn(got, e.id);
  EXPECT_EQ(got.id, e.id);
  EXPECT_EQ(got.status, api::EngineStatus::RUNNING);
  EXPECT_EQ(got.pid, e.pid);

  std::vector<api::EngineConn> all;
  ecm.client().listEngineConns(all, api::EngineConnFilter{});
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].id, e.id);

  EXPECT_NE(wait_stdout(e, "hello-from-engine\n").find("hello-from-engine\n"), std::string::npos);

  api::StopRequest stop;
  stop.__set_engine_id(e.id);
  api::StopResult result;
  ecm.client().stopEngineConn(result, stop);
  EXPECT_FALSE(result.already_ended);
  EXPECT_EQ(result.engine.id, e.id);
  EXPECT_TRUE(result.engine.status == api::EngineStatus::SHUTTING_DOWN ||
              result.engine.status == api::EngineStatus::SUCCESS)
      << result.engine.status;

  const auto ended = ecm.wait_for_status(e.id, is_ended);
  EXPECT_EQ(ended.status, api::EngineStatus::SUCCESS);
  EXPECT_TRUE(ended.__isset.exit_signal);
  EXPECT_EQ(ended.exit_signal, SIGTERM);
  EXPECT_FALSE(ended.__isset.exit_code);
  EXPECT_EQ(ended.stop_reason, "stopped by request");
  EXPECT_TRUE(ended.__isset.ended_at_ms);
  EXPECT_GE(ended.ended_at_ms, ended.created_at_ms);
  EXPECT_TRUE(wait_group_gone(e.pid));
}

TEST(EngineLifecycle, Launch_EngineSeesItsIdWorkDirAndOnlyItsOwnEnvironment) {
  // A variable of the daemon's environment must not reach the engine.
  setenv("ECM_ITEST_DAEMON_ONLY", "leaked", 1);
  EcmProcess ecm;
  unsetenv("ECM_ITEST_DAEMON_ONLY");
  auto req = shell_request("bob", "env; echo PWD_IS=$(pwd -P); echo END_OF_ENV; sleep 600");
  req.__set_env({{"MY_SETTING", "a value with spaces"}});
  const auto e = ecm.launch(req);
  ASSERT_EQ(e.status, api::EngineStatus::RUNNING);

  const auto out = wait_stdout(e, "END_OF_ENV");
  ASSERT_NE(out.find("END_OF_ENV"), std::string::npos) << out;
  const auto env = env_lines(out);
  EXPECT_EQ(env.count("ECM_ENGINE_ID") ? env.at("ECM_ENGINE_ID") : "<unset>", e.id);
  EXPECT_EQ(env.count("ECM_WORK_DIR") ? env.at("ECM_WORK_DIR") : "<unset>", e.work_dir);
  EXPECT_EQ(env.count("ECM_USER") ? env.at("ECM_USER") : "<unset>", "bob");
  EXPECT_EQ(env.count("ECM_ENGINE_TYPE") ? env.at("ECM_ENGINE_TYPE") : "<unset>", "shell");
  EXPECT_EQ(env.count("MY_SETTING") ? env.at("MY_SETTING") : "<unset>", "a value with spaces");
  EXPECT_EQ(env.count("ECM_ITEST_DAEMON_ONLY"), 0u) << out;
  // The engine runs in its work dir.
  EXPECT_EQ(env.count("PWD_IS") ? env.at("PWD_IS") : "<unset>", fs::canonical(e.work_dir).string());
  EXPECT_EQ(fs::path(e.work_dir), ecm.work_root() / "bob" / e.id);
}

TEST(EngineLifecycle, Launch_EngineStdinIsDevNullAndNoDaemonDescriptorLeaks) {
  EcmProcess ecm;
  // ls lists its own descriptors: 0, 1, 2 and the one it reads /proc/self/fd through (3). A
  // descriptor inherited from the daemon would push that one up and add to the list.
  const auto e = ecm.launch(
      shell_request("alice",
                    "echo STDIN=$(readlink /proc/$$/fd/0); echo STDOUT=$(readlink /proc/$$/fd/1);"
                    " echo STDERR=$(readlink /proc/$$/fd/2);"
                    " echo FDS_BEGIN; ls /proc/self/fd; echo FDS_END; sleep 600"));
  ASSERT_EQ(e.status, api::EngineStatus::RUNNING);
  const auto out = wait_stdout(e, "FDS_END");
  ASSERT_NE(out.find("FDS_END"), std::string::npos) << out;

  const auto env = env_lines(out);
  EXPECT_EQ(env.at("STDIN"), "/dev/null");
  EXPECT_EQ(fs::path(env.at("STDOUT")), fs::path(e.log_dir) / "stdout");
  EXPECT_EQ(fs::path(env.at("STDERR")), fs::path(e.log_dir) / "stderr");

  const auto begin = out.find("FDS_BEGIN\n") + std::string("FDS_BEGIN\n").size();
  const auto end = out.find("FDS_END");
  std::istringstream fds(out.substr(begin, end - begin));
  std::set<std::string> listed;
  for (std::string fd; fds >> fd;)
    listed.insert(fd);
  EXPECT_EQ(listed, (std::set<std::string>{"0", "1", "2", "3"})) << out;
}

TEST(EngineLifecycle, Launch_TwentyEnginesListedFilteredAndStoppedLeaveNoProcess) {
  EcmProcess ecm;
  std::vector<api::EngineConn> engines;
  for (int i = 0; i < 20; ++i) {
    const std::string user = i % 2 == 0 ? "alice" : "bob";
    engines.push_back(ecm.launch(shell_request(user, "sleep 600 & sleep 600")));
    ASSERT_EQ(engines.back().status, api::EngineStatus::RUNNING);
  }
  // Every group holds the shell's (or its exec'd sleep's) process and a grandchild sleep.
  for (const auto& e : engines) {
    EXPECT_TRUE(eventually([&] { return group_members(e.pid).size() >= 2; }))
        << "group " << e.pid << " has " << group_members(e.pid).size() << " live process(es)";
  }

  auto count = [&](const api::EngineConnFilter& f) {
    std::vector<api::EngineConn> out;
    ecm.client().listEngineConns(out, f);
    return out.size();
  };
  api::EngineConnFilter all;
  EXPECT_EQ(count(all), 20u);
  api::EngineConnFilter alice;
  alice.__set_user("alice");
  EXPECT_EQ(count(alice), 10u);
  api::EngineConnFilter carol;
  carol.__set_user("carol");
  EXPECT_EQ(count(carol), 0u);
  api::EngineConnFilter shell_type;
  shell_type.__set_engine_type("shell");
  EXPECT_EQ(count(shell_type), 20u);
  api::EngineConnFilter other_type;
  other_type.__set_engine_type("spark");
  EXPECT_EQ(count(other_type), 0u);
  api::EngineConnFilter running;
  running.__set_status(api::EngineStatus::RUNNING);
  EXPECT_EQ(count(running), 20u);
  api::EngineConnFilter bob_running = running;
  bob_running.__set_user("bob");
  EXPECT_EQ(count(bob_running), 10u);
  api::EngineConnFilter success;
  success.__set_status(api::EngineStatus::SUCCESS);
  EXPECT_EQ(count(success), 0u);

  for (const auto& e : engines) {
    api::StopRequest stop;
    stop.__set_engine_id(e.id);
    api::StopResult r;
    ecm.client().stopEngineConn(r, stop);
    EXPECT_FALSE(r.already_ended);
  }
  for (const auto& e : engines) {
    const auto ended = ecm.wait_for_status(e.id, is_ended);
    EXPECT_EQ(ended.status, api::EngineStatus::SUCCESS) << e.id;
    EXPECT_EQ(ended.stop_reason, "stopped by request") << e.id;
    EXPECT_TRUE(ended.__isset.exit_signal) << e.id;
  }
  for (const auto& e : engines) {
    EXPECT_TRUE(wait_group_gone(e.pid)) << "group " << e.pid << " still has processes";
  }
  EXPECT_EQ(count(success), 20u);
  EXPECT_EQ(count(running), 0u);
}

// "Max open files" of /proc/PID/limits: the soft limit (-1 when unreadable).
long long soft_open_files_limit(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/limits");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Max open files", 0) == 0) {
      std::istringstream rest(line.substr(std::string("Max open files").size()));
      std::string soft;
      rest >> soft;
      return soft == "unlimited" ? -2 : std::stoll(soft);
    }
  }
  return -1;
}

// Started with a soft limit of 64 open files, the daemon raises its own to the hard limit (it
// holds a pidfd per engine: 80 engines would not fit in 64) and gives its engines the 64 it got.
TEST(EngineLifecycle, Launch_TheDaemonRaisesItsOpenFilesLimitAndEnginesKeepTheOneItGot) {
  rlimit original{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &original), 0);
  if (original.rlim_max != RLIM_INFINITY && original.rlim_max < 1024) {
    GTEST_SKIP() << "hard limit of open files too low to show anything";
  }
  rlimit low = original;
  low.rlim_cur = 64;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);  // the daemon is spawned with it
  std::unique_ptr<EcmProcess> ecm;
  try {
    ecm = std::make_unique<EcmProcess>();
  } catch (...) {
    ::setrlimit(RLIMIT_NOFILE, &original);
    throw;
  }
  ::setrlimit(RLIMIT_NOFILE, &original);
  const auto hard =
      original.rlim_max == RLIM_INFINITY ? -2 : static_cast<long long>(original.rlim_max);
  EXPECT_EQ(soft_open_files_limit(ecm->pid()), hard);

  api::EngineConn last;
  for (int i = 0; i < 80; ++i) {
    last = ecm->launch(shell_request("alice", "exec sleep 600"));
    ASSERT_EQ(last.status, api::EngineStatus::RUNNING)
        << "engine " << i << ": " << last.failure_reason;
  }
  EXPECT_EQ(soft_open_files_limit(last.pid), 64);
}

TEST(EngineLifecycle, Launch_EightThreadsLaunchingAtOnceGetDistinctRunningEngines) {
  EcmProcess ecm;
  constexpr int kThreads = 8;
  constexpr int kEach = 4;
  std::vector<std::unique_ptr<EcmClient>> clients;
  for (int i = 0; i < kThreads; ++i)
    clients.push_back(ecm.connect());
  std::mutex mu;
  std::vector<api::EngineConn> launched;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < kEach; ++k) {
        try {
          api::EngineConn e;
          (*clients[i])->launchEngineConn(e, shell_request("alice", "sleep 600 & sleep 600"));
          std::lock_guard lock(mu);
          if (e.__isset.pid && e.pid > 0) ecm.track(e.pid);
          launched.push_back(e);
        } catch (const std::exception& ex) {
          std::lock_guard lock(mu);
          errors.push_back(ex.what());
        }
      }
    });
  }
  for (auto& t : threads)
    t.join();
  ASSERT_TRUE(errors.empty()) << errors.front();
  ASSERT_EQ(launched.size(), static_cast<std::size_t>(kThreads * kEach));
  std::set<std::string> ids;
  std::set<int> pids;
  for (const auto& e : launched) {
    EXPECT_EQ(e.status, api::EngineStatus::RUNNING) << e.id;
    ids.insert(e.id);
    pids.insert(e.pid);
    EXPECT_TRUE(group_alive(e.pid)) << e.id;
  }
  EXPECT_EQ(ids.size(), launched.size());
  EXPECT_EQ(pids.size(), launched.size());
  for (const auto& e : launched) {
    api::StopRequest stop;
    stop.__set_engine_id(e.id);
    api::StopResult r;
    ecm.client().stopEngineConn(r, stop);
  }
  for (const auto& e : launched) {
    EXPECT_EQ(ecm.wait_for_status(e.id, is_ended).status, api::EngineStatus::SUCCESS) << e.id;
    EXPECT_TRUE(wait_group_gone(e.pid)) << e.id;
  }
}

TEST(EngineLifecycle, Stop_EngineIgnoringSigtermIsKilledAfterTheGrace) {
  EcmOptions o;
  o.stop_grace = "1s";
  EcmProcess ecm(o);
  const auto e =
      ecm.launch(shell_request("alice", "trap '' TERM; echo TRAPPED; sleep 600 & wait; exit 7"));
  ASSERT_EQ(e.status, api::EngineStatus::RUNNING);
  ASSERT_NE(wait_stdout(e, "TRAPPED").find("TRAPPED"), std::string::npos);
  // Precondition: the shell really ignores SIGTERM now.
  ASSERT_TRUE(ignored_signals(e.pid) & (1ull << (SIGTERM - 1))) << "the shell does not ignore TERM";

  const auto t0 = std::chrono::steady_clock::now();
  api::StopRequest stop;
  stop.__set_engine_id(e.id);
  api::StopResult r;
  ecm.client().stopEngineConn(r, stop);
  // Still there after the SIGTERM.
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  api::EngineConn mid;
  ecm.client().getEngineConn(mid, e.id);
  EXPECT_EQ(mid.status, api::EngineStatus::SHUTTING_DOWN);
  EXPECT_TRUE(group_alive(e.pid));

  const auto ended = ecm.wait_for_status(e.id, is_ended, std::chrono::seconds(20));
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(ended.status, api::EngineStatus::SUCCESS);
  EXPECT_TRUE(ended.__isset.exit_signal);
  EXPECT_EQ(ended.exit_signal, SIGKILL);
  EXPECT_GE(elapsed, std::chrono::milliseconds(950));
  EXPECT_LT(elapsed, std::chrono::seconds(5));
  EXPECT_TRUE(wait_group_gone(e.pid));
}

TEST(EngineLifecycle, Exit_ZeroIsSuccessWithCodeZero) {
  EcmProcess ecm;
  const auto e = ecm.launch(shell_request("alice", "exit 0"));
  const auto ended = ecm.wait_for_status(e.id, is_ended);
  EXPECT_EQ(ended.status, api::EngineStatus::SUCCESS);
  EXPECT_TRUE(ended.__isset.exit_code);
  EXPECT_EQ(ended.exit_code, 0);
  EXPECT_FALSE(ended.__isset.exit_signal);
  EXPECT_FALSE(ended.__isset.failure_reason);
  EXPECT_EQ(ended.stop_reason, "exited on its own");
}

TEST(EngineLifecycle, Exit_NonZeroCodeIsFailedWithTheCode) {
  EcmProcess ecm;
  const auto e = ecm.launch(shell_request("alice", "exit 3"));
  const auto ended = ecm.wait_for_status(e.id, is_ended);
  EXPECT_EQ(ended.status, api::EngineStatus::FAILED);
  EXPECT_TRUE(ended.__isset.exit_code);
  EXPECT_EQ(ended.exit_code, 3);
  EXPECT_FALSE(ended.__isset.exit_signal);
  EXPECT_NE(ended.failure_reason.find("code 3"), std::string::npos) << ended.failure_reason;
}

TEST(EngineLifecycle, Exit_KilledBySignalIsFailedWithTheSignal) {
  EcmProcess ecm;
  const auto e = ecm.launch(shell_request("alice", "kill -9 $$"));
  const auto ended = ecm.wait_for_status(e.id, is_ended);
  EXPECT_EQ(ended.status, api::EngineStatus::FAILED);
  EXPECT_TRUE(ended.__isset.exit_signal);
  EXPECT_EQ(ended.exit_signal, SIGKILL);
  EXPECT_FALSE(ended.__isset.exit_code);
  EXPECT_NE(ended.failure_reason.find("signal 9"), std::string::npos) << ended.failure_reason;
}

TEST(EngineLifecycle, Exit_LeaderExitKillsWhatItLeftInItsGroup) {
  EcmProcess ecm;
  const auto e = ecm.launch(shell_request("alice", "sleep 600 & echo BG=$!; sleep 1; exit 0"));
  const auto out = wait_stdout(e, "BG=");
  const auto env = env_lines(out);
  ASSERT_TRUE(env.count("BG")) << out;
  const pid_t bg = std::stoi(env.at("BG"));
  const auto ended = ecm.wait_for_status(e.id, is_ended);
  EXPECT_EQ(ended.status, api::EngineStatus::SUCCESS);
  EXPECT_EQ(ended.exit_code, 0);
  EXPECT_TRUE(wait_group_gone(e.pid));
  // The orphaned background sleep is dead too (at most a zombie nobody reaped).
  const auto members = group_members(e.pid);
  EXPECT_EQ(std::count(members.begin(), members.end(), bg), 0);
}

TEST(EngineLifecycle, Stop_AlreadyEndedEngineSaysSoAndChangesNothing) {
  EcmProcess ecm;
  const auto e = ecm.launch(shell_request("alice", "exit 0"));
  const auto ended = ecm.wait_for_status(e.id, is_ended);
  ASSERT_EQ(ended.status, api::EngineStatus::SUCCESS);

  api::StopRequest stop;
  stop.__set_engine_id(e.id);
  api::StopResult r;
  ecm.client().stopEngineConn(r, stop);
  EXPECT_TRUE(r.__isset.already_ended);
  EXPECT_TRUE(r.already_ended);
  EXPECT_EQ(r.engine.status, api::EngineStatus::SUCCESS);
  EXPECT_EQ(r.engine.stop_reason, "exited on its own");

  api::EngineConn after;
  ecm.client().getEngineConn(after, e.id);
  EXPECT_EQ(after, ended);

  // A forced stop of an ended engine is no different.
  stop.__set_force(true);
  ecm.client().stopEngineConn(r, stop);
  EXPECT_TRUE(r.already_ended);
  ecm.client().getEngineConn(after, e.id);
  EXPECT_EQ(after, ended);
}

TEST(EngineLifecycle, Stop_ForceKillsWithSigkillAtOnce) {
  EcmProcess ecm;  // stop_grace 10s: only a forced stop ends it quickly
  const auto e = ecm.launch(shell_request("alice", "trap '' TERM; echo TRAPPED; sleep 600 & wait"));
  ASSERT_NE(wait_stdout(e, "TRAPPED").find("TRAPPED"), std::string::npos);
  const auto t0 = std::chrono::steady_clock::now();
  api::StopRequest stop;
  stop.__set_engine_id(e.id);
  stop.__set_force(true);
  api::StopResult r;
  ecm.client().stopEngineConn(r, stop);
  EXPECT_FALSE(r.already_ended);
  const auto ended = ecm.wait_for_status(e.id, is_ended);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(4));
  EXPECT_EQ(ended.status, api::EngineStatus::SUCCESS);
  EXPECT_EQ(ended.exit_signal, SIGKILL);
  EXPECT_TRUE(wait_group_gone(e.pid));
}

TEST(EngineLifecycle, Shutdown_SigtermToDaemonStopsItsRunningEngines) {
  EcmOptions o;
  o.stop_grace = "1s";
  EcmProcess ecm(o);
  std::vector<pid_t> groups;
  for (int i = 0; i < 3; ++i) {
    groups.push_back(ecm.launch(shell_request("alice", "sleep 600 & sleep 600")).pid);
  }
  // One that ignores SIGTERM: the daemon must SIGKILL it after the grace.
  const auto stubborn =
      ecm.launch(shell_request("alice", "trap '' TERM; echo TRAPPED; sleep 600 & wait"));
  ASSERT_NE(wait_stdout(stubborn, "TRAPPED").find("TRAPPED"), std::string::npos);
  groups.push_back(stubborn.pid);
  for (pid_t g : groups)
    ASSERT_TRUE(group_alive(g));

  const int code = ecm.terminate_and_wait(std::chrono::seconds(30));
  EXPECT_EQ(code, 0) << ecm.daemon_stderr();
  for (pid_t g : groups) {
    EXPECT_TRUE(wait_group_gone(g, std::chrono::seconds(3))) << "group " << g << " survived";
  }
  EXPECT_FALSE(fs::exists(ecm.state_dir() / "ecm.address"));
}

TEST(EngineLifecycle, Shutdown_WithStopOnShutdownFalseEnginesOutliveTheDaemon) {
  EcmOptions o;
  o.stop_on_shutdown = false;
  EcmProcess ecm(o);
  const auto e = ecm.launch(shell_request("alice", "sleep 600"));
  ASSERT_TRUE(group_alive(e.pid));
  EXPECT_EQ(ecm.terminate_and_wait(std::chrono::seconds(30)), 0) << ecm.daemon_stderr();
  // The control of the test above: without stop_on_shutdown the engine is left running (the
  // harness kills it on the way out).
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(group_alive(e.pid));
}

}  // namespace
}  // namespace ecm::itest
