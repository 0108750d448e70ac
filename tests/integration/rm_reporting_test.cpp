// Reporting to an RM, end to end: the real `ecm` (ECMRegisterService) and the real `rm-sim`
// (the project's reference RM) over Thrift on loopback, each in its own temp dir.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <regex>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "ecm/core/engine_status.hpp"
#include "integration/ecm_harness.hpp"

extern char** environ;

namespace ecm::itest {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

constexpr auto kInterval = 300ms;  // report_interval of every ECM here

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// `rm-sim serve` in a temp dir of its own, with a journal (--state) there.
class RmSimProcess {
 public:
  RmSimProcess() {
    std::string templ = (fs::temp_directory_path() / "rm-sim-itest-XXXXXX").string();
    if (mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = templ;
  }
  ~RmSimProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      wait_child(pid_, 10s);
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Port 0: any; else that port (a restart on the port the ECMs know).
  void start(int port = 0) {
    const auto address_file = dir_ / "rm.address";
    fs::remove(address_file);
    pid_ = spawn({bin(), "serve", "--listen", "127.0.0.1:" + std::to_string(port), "--state",
                  (dir_ / "journal").string(), "--print-interval", "1s", "--address-file",
                  address_file.string()},
                 dir_ / "rm.stdout", dir_ / "rm.stderr", /*append=*/true);
    if (!eventually([&] { return fs::exists(address_file); }, 10s)) {
      throw std::runtime_error("rm-sim did not come up: " + read_file(dir_ / "rm.stderr"));
    }
    address_ = read_file(address_file);
    address_.pop_back();
    port_ = std::stoi(address_.substr(address_.rfind(':') + 1));
  }
  void kill9() {
    kill(pid_, SIGKILL);
    wait_child(pid_, 10s);
    pid_ = -1;
  }

  // rm-sim CMD ARGS... --rm <this>: exit code and stdout.
  std::pair<int, std::string> run(std::vector<std::string> args) const {
    args.insert(args.begin(), bin());
    args.push_back("--rm");
    args.push_back(address_);
    const auto n = std::to_string(runs_++);
    const auto out = dir_ / ("run-" + n + ".out");
    int code = wait_child(spawn(args, out, dir_ / ("run-" + n + ".err")), 60s);
    return {code, read_file(out)};
  }
  json::array json_of(const std::string& command) const {
    auto [code, out] = run({command, "--json"});
    if (code != 0) return {};
    return json::parse(out).as_array();
  }
  // The RM's view of one ECM; an empty object when it does not know it.
  json::object ecm(const std::string& id) const {
    for (const auto& e : json_of("ecms")) {
      if (e.at("ecm_id").as_string() == id) return e.as_object();
    }
    return {};
  }
  std::string state_of(const std::string& id) const {
    auto e = ecm(id);
    return e.empty() ? "" : std::string(e.at("state").as_string());
  }

  const std::string& address() const { return address_; }
  int port() const { return port_; }
  std::string log() const { return read_file(dir_ / "rm.stdout") + read_file(dir_ / "rm.stderr"); }

 private:
  static std::string bin() { return (fs::path(ECM_BIN_DIR) / "rm-sim").string(); }

  fs::path dir_;
  pid_t pid_ = -1;
  std::string address_;
  int port_ = 0;
  mutable int runs_ = 0;
};

EcmOptions reporting_to(const std::string& rm_address) {
  EcmOptions o;
  o.stop_grace = "2s";
  o.extra_toml = "[rm]\naddress = \"" + rm_address + "\"\nreport_interval = \"300ms\"\n" +
                 "labels = [\"zone=test\"]\n";
  return o;
}

std::string ecm_id_of(const EcmProcess& ecm) {
  auto id = read_file(ecm.state_dir() / "ecm.id");
  while (!id.empty() && id.back() == '\n')
    id.pop_back();
  return id;
}

api::StopResult stop(EcmProcess& ecm, const std::string& id) {
  api::StopRequest r;
  r.__set_engine_id(id);
  api::StopResult out;
  ecm.client().stopEngineConn(out, r);
  return out;
}

// As rm-sim prints it: the ECM's (Linkis's) name, "ShuttingDown" for SHUTTING_DOWN.
std::string status_name(api::EngineStatus::type s) {
  std::string name = api::to_string(s);
  std::erase(name, '_');
  return std::string(ecm::core::to_string(*ecm::core::engine_status_from_string(name)));
}

std::int64_t int_at(const json::object& o, std::initializer_list<const char*> path) {
  const json::value* v = nullptr;
  const json::object* cur = &o;
  for (const char* key : path) {
    v = cur->if_contains(key);
    if (!v) return -1;
    if (v->is_object()) cur = &v->as_object();
  }
  return v->to_number<std::int64_t>();
}

TEST(RmReporting, RegistersAndHeartbeatsCarryLaunchesAndStopsThenUnregisters) {
  RmSimProcess rm;
  rm.start();
  EcmProcess ecm(reporting_to(rm.address()));
  const auto id = ecm_id_of(ecm);
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(eventually([&] { return rm.state_of(id) == "alive"; }, 10s)) << rm.log();
  auto view = rm.ecm(id);
  EXPECT_EQ(view.at("address").as_string(), ecm.address());
  EXPECT_EQ(view.at("labels").at("zone").as_string(), "test");
  EXPECT_EQ(view.at("report_interval_ms").as_int64(), 300);

  std::vector<api::EngineConn> engines;
  for (int i = 0; i < 3; ++i)
    engines.push_back(ecm.launch(shell_request("alice", "sleep 60")));
  for (const auto& e : engines)
    ecm.wait_for_status(e.id, api::EngineStatus::RUNNING);
  stop(ecm, engines[0].id);
  auto ended = ecm.wait_for_status(engines[0].id, [](const api::EngineConn& e) {
    return e.status == api::EngineStatus::SUCCESS || e.status == api::EngineStatus::FAILED;
  });

  // The RM's view: the engines as the changes describe them, and the heartbeat's metrics.
  json::object seen;
  const bool right = eventually(
      [&] {
        seen = rm.ecm(id);
        if (seen.empty()) return false;
        const auto& en = seen.at("engines").as_object();
        return en.size() == 3 && en.at(engines[0].id).as_string() == status_name(ended.status) &&
               en.at(engines[1].id).as_string() == "Running" &&
               en.at(engines[2].id).as_string() == "Running" &&
               int_at(seen, {"metrics", "engines_by_status", "Running"}) == 2 &&
               int_at(seen, {"metrics", "used", "instances"}) == 2 &&
               int_at(seen, {"metrics", "launches_started"}) == 3;
      },
      10s);
  EXPECT_TRUE(right) << json::serialize(seen);
  // The node's health as the ECM judges it (a busy test machine may well be WARN).
  EXPECT_NE(seen.at("health").as_string(), "") << json::serialize(seen);

  // A clean shutdown stops the two running engines (stop_on_shutdown), tells the RM how they
  // ended, then unregisters: the RM is never left holding engines that are gone.
  EXPECT_EQ(ecm.terminate_and_wait(), 0);
  EXPECT_EQ(rm.state_of(id), "unregistered") << rm.log();
  const auto after = rm.ecm(id);
  for (int i : {1, 2}) {
    const auto status = after.at("engines").at(engines[i].id).as_string();
    EXPECT_TRUE(status == "Success" || status == "Failed") << json::serialize(after);
  }
}

TEST(RmReporting, ServesWhileTheRmIsDownAndRegistersWhenItComesUp) {
  RmSimProcess rm;
  const int port = free_port();
  EcmOptions o = reporting_to("127.0.0.1:" + std::to_string(port));
  EcmProcess ecm(o);
  // No RM: the ECM serves anyway.
  auto e = ecm.launch(shell_request("alice", "sleep 60"));
  ecm.wait_for_status(e.id, api::EngineStatus::RUNNING);
  std::this_thread::sleep_for(3 * kInterval);  // several failed tries, logged once
  const auto err = ecm.daemon_stderr();
  EXPECT_NE(err.find("unreachable"), std::string::npos) << err;
  EXPECT_EQ(err.find("unreachable"), err.rfind("unreachable")) << "logged per try:\n" << err;

  rm.start(port);
  const auto id = ecm_id_of(ecm);
  ASSERT_TRUE(eventually([&] { return rm.state_of(id) == "alive"; }, 10s)) << rm.log();
  // What happened while the RM was away is delivered.
  ASSERT_TRUE(eventually(
      [&] {
        auto v = rm.ecm(id);
        return !v.empty() && v.at("engines").as_object().contains(e.id) &&
               v.at("engines").at(e.id).as_string() == "Running";
      },
      10s))
      << rm.log();
}

// The transitions of one engine as the RM's journal has them, in order.
struct Journaled {
  std::vector<std::int64_t> seqs;
  std::vector<std::pair<std::string, std::string>> steps;  // (from, to)
};

TEST(RmReporting, EngineTransitionsReachTheRmExactlyOnceAcrossAnRmRestart) {
  RmSimProcess rm;
  rm.start();
  EcmProcess ecm(reporting_to(rm.address()));
  const auto id = ecm_id_of(ecm);
  ASSERT_TRUE(eventually([&] { return rm.state_of(id) == "alive"; }, 10s)) << rm.log();

  std::vector<std::string> ids;
  auto launch_some = [&](int n) {
    for (int i = 0; i < n; ++i) {
      auto e = ecm.launch(shell_request("alice", "sleep 60"));
      ids.push_back(e.id);
    }
  };
  auto stop_some = [&](std::size_t from, std::size_t n) {
    for (std::size_t i = from; i < from + n && i < ids.size(); ++i) {
      ecm.wait_for_status(ids[i], api::EngineStatus::RUNNING);
      stop(ecm, ids[i]);
    }
  };
  launch_some(4);
  stop_some(0, 2);
  // The RM dies in the middle of the traffic (no chance to say anything), and more happens.
  rm.kill9();
  launch_some(3);
  stop_some(2, 3);
  std::this_thread::sleep_for(2 * kInterval);  // heartbeats fail meanwhile
  rm.start(rm.port());
  launch_some(2);
  stop_some(5, 2);

  // The ECM's final records: every engine settled (ended, or running).
  std::map<std::string, std::string> final_status;
  for (const auto& e_id : ids) {
    auto e = ecm.wait_for_status(e_id, [](const api::EngineConn& e) {
      return e.status == api::EngineStatus::RUNNING || e.status == api::EngineStatus::SUCCESS ||
             e.status == api::EngineStatus::FAILED;
    });
    final_status[e_id] = status_name(e.status);
  }

  std::map<std::string, Journaled> journal;
  std::vector<std::int64_t> all_seqs;
  auto read_journal = [&] {
    journal.clear();
    all_seqs.clear();
    for (const auto& v : rm.json_of("changes")) {
      const auto& c = v.as_object();
      if (c.at("ecm_id").as_string() != id) continue;
      auto& j = journal[std::string(c.at("engine_id").as_string())];
      j.seqs.push_back(c.at("seq").as_int64());
      j.steps.emplace_back(c.at("from").as_string(), c.at("to").as_string());
      all_seqs.push_back(c.at("seq").as_int64());
    }
  };
  // Delivered when the RM's last step of each engine is the ECM's final status.
  const bool delivered = eventually(
      [&] {
        read_journal();
        for (const auto& [e_id, status] : final_status) {
          auto it = journal.find(e_id);
          if (it == journal.end() || it->second.steps.back().second != status) return false;
        }
        return true;
      },
      15s);
  ASSERT_TRUE(delivered) << rm.log() << ecm.daemon_stderr();

  // Exactly once: one incarnation, seqs 1..N each once, in order.
  for (std::size_t i = 0; i < all_seqs.size(); ++i)
    EXPECT_EQ(all_seqs[i], static_cast<std::int64_t>(i + 1));
  // Each engine's steps chain from its creation to its final status, no step twice.
  for (const auto& [e_id, status] : final_status) {
    SCOPED_TRACE(e_id);
    const auto& steps = journal[e_id].steps;
    ASSERT_FALSE(steps.empty());
    EXPECT_EQ(steps.front(), (std::pair<std::string, std::string>{"Starting", "Starting"}));
    for (std::size_t i = 1; i < steps.size(); ++i) {
      EXPECT_EQ(steps[i].first, steps[i - 1].second) << "a step lost or repeated at " << i;
    }
    std::set<std::pair<std::string, std::string>> distinct(steps.begin(), steps.end());
    EXPECT_EQ(distinct.size(), steps.size()) << "a step delivered twice";
    EXPECT_EQ(steps.back().second, status);
  }
  // The restarted RM reloaded its journal and told the re-registering ECM (same incarnation)
  // what it already had: only the rest was sent again.
  EXPECT_NE(rm.log().find("reloaded"), std::string::npos) << rm.log();
  EXPECT_TRUE(std::regex_search(rm.log(), std::regex("registered " + id + " .* acked seq [1-9]")))
      << rm.log();
}

TEST(RmReporting, ThreeEcmsUnderOneRmLaunchesSpreadByLoadAndStopsShowWithinTwoIntervals) {
  RmSimProcess rm;
  rm.start();
  std::vector<std::unique_ptr<EcmProcess>> ecms;
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    ecms.push_back(std::make_unique<EcmProcess>(reporting_to(rm.address())));
    ids.push_back(ecm_id_of(*ecms.back()));
  }
  ASSERT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 3u);
  ASSERT_TRUE(eventually(
      [&] {
        for (const auto& id : ids) {
          if (rm.state_of(id) != "alive") return false;
        }
        return true;
      },
      10s))
      << rm.log();

  auto [code, out] = rm.run({"launch", "shell", "--user", "alice", "--property", "command=sleep 60",
                             "--count", "30", "--json"});
  ASSERT_EQ(code, 0) << out;
  std::map<std::string, int> per_ecm;
  const auto placed = json::parse(out);
  for (const auto& p : placed.as_array()) {
    EXPECT_EQ(p.at("error").as_string(), "");
    per_ecm[std::string(p.at("ecm_id").as_string())]++;
  }
  for (const auto& id : ids) {
    EXPECT_GE(per_ecm[id], 8) << id << "\n" << out;
    EXPECT_LE(per_ecm[id], 12) << id << "\n" << out;
  }
  // Each ECM really has them, and says so to the RM.
  for (std::size_t i = 0; i < 3; ++i) {
    std::vector<api::EngineConn> all;
    ecms[i]->client().listEngineConns(all, api::EngineConnFilter{});
    EXPECT_EQ(static_cast<int>(all.size()), per_ecm[ids[i]]);
    for (const auto& e : all)
      ecms[i]->track(e.pid);
    EXPECT_TRUE(eventually(
        [&] {
          return int_at(rm.ecm(ids[i]), {"metrics", "launches_started"}) == per_ecm[ids[i]];
        },
        10s));
  }

  // SIGKILL: no goodbye; lost after two intervals without a heartbeat.
  auto t0 = std::chrono::steady_clock::now();
  kill(ecms[0]->pid(), SIGKILL);
  ASSERT_TRUE(eventually([&] { return rm.state_of(ids[0]) == "lost"; }, 5s)) << rm.log();
  auto took = std::chrono::steady_clock::now() - t0;
  // Two intervals, plus the RM's 50ms check and this test's own polling (a process per poll).
  EXPECT_LE(took, 2 * kInterval + 400ms)
      << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << "ms";
  EXPECT_EQ(rm.state_of(ids[1]), "alive");

  // SIGTERM: unregistered at once.
  t0 = std::chrono::steady_clock::now();
  ecms[1]->terminate_and_wait();
  EXPECT_EQ(rm.state_of(ids[1]), "unregistered");
  took = std::chrono::steady_clock::now() - t0;
  EXPECT_LE(took, 2 * kInterval + 5s);  // the ECM's own shutdown stops its 10 engines too
  EXPECT_EQ(rm.state_of(ids[2]), "alive");
}

}  // namespace
}  // namespace ecm::itest

namespace ecm::itest {

TEST(RmReporting, AfterAnEcmCrashTheRmHearsWhichEnginesDiedAndWhichLiveOn) {
  RmSimProcess rm;
  rm.start();
  EcmOptions o = reporting_to(rm.address());
  o.stop_on_shutdown.reset();
  EcmProcess ecm(o);
  const auto id = ecm_id_of(ecm);
  auto lives = ecm.launch(shell_request("alice", "sleep 600"));
  auto dies = ecm.launch(shell_request("alice", "sleep 600"));
  auto status_at_rm = [&](const std::string& engine) -> std::string {
    auto v = rm.ecm(id);
    if (v.empty() || !v.at("engines").as_object().contains(engine)) return "";
    return std::string(v.at("engines").at(engine).as_string());
  };
  ASSERT_TRUE(eventually([&] { return status_at_rm(dies.id) == "Running"; }, 10s)) << rm.log();
  ecm.kill_hard();
  kill(-dies.pid, SIGKILL);
  ASSERT_TRUE(wait_group_gone(dies.pid));
  ecm.start();
  // The restarted ECM reports as the same node: the dead engine ended, the live one still there.
  EXPECT_EQ(ecm_id_of(ecm), id);
  ASSERT_TRUE(eventually([&] { return status_at_rm(dies.id) == "Failed"; }, 10s)) << rm.log();
  EXPECT_EQ(status_at_rm(lives.id), "Running") << rm.log();
  EXPECT_TRUE(eventually([&] { return rm.state_of(id) == "alive"; }, 10s)) << rm.log();
}

}  // namespace ecm::itest
