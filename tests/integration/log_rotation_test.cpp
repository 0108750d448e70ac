// Engine log rotation on the real daemon: a shell engine writing a lot gets stdout.1.. files, never
// more than rotate_keep, and getEngineLog / `ecmctl logs` still read the stream to its latest line.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "ecm_harness.hpp"

namespace ecm::itest {
namespace {

namespace fs = std::filesystem;

// Bursts of ~100 KiB (each past the 64 KiB rotation size), a pause between them for the rotation
// check to see each, then a last line, then waits.
constexpr int kBursts = 12;
const std::string kCommand =
    "b=1; while [ $b -le 12 ]; do i=1; while [ $i -le 1500 ]; do "
    "echo \"burst $b line $i ................................................\"; i=$((i+1)); "
    "done; b=$((b+1)); sleep 0.3; done; echo 'the last line'; sleep 600";

TEST(LogRotation, AChattyEngineIsRotatedWithinKeepAndItsTailIsStillTheLatest) {
  EcmOptions o;
  o.extra_toml =
      "[logs]\nrotate_size = \"64KiB\"\nrotate_keep = 3\nrotate_check_interval = \"100ms\"\n"
      "max_read_lines = 1000\n";
  EcmProcess ecm(o);
  const auto e = ecm.launch(shell_request("alice", kCommand));
  const fs::path logs = e.log_dir;

  // Watch the log dir the whole time: never a 4th rotated file.
  std::atomic<bool> watching{true};
  std::atomic<int> most_rotated{0};
  std::thread watcher([&] {
    while (watching) {
      for (int k = 1; k <= 5; ++k) {
        std::error_code ec;
        if (fs::exists(logs / ("stdout." + std::to_string(k)), ec) && k > most_rotated)
          most_rotated = k;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  api::LogRequest tail;
  tail.__set_engine_id(e.id);
  tail.__set_tail(1);
  const bool finished = eventually(
      [&] {
        api::LogPage p;
        try {
          ecm.client().getEngineLog(p, tail);
        } catch (const api::EcmError&) {
          return false;
        }
        return p.lines == std::vector<std::string>{"the last line"};
      },
      60s);
  // Give the check a few more rounds after the last burst.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  watching = false;
  watcher.join();
  ASSERT_TRUE(finished) << "the tail never showed the last line";

  EXPECT_EQ(most_rotated, 3) << "rotate_keep = 3: stdout.1..3, and never stdout.4";
  EXPECT_TRUE(fs::exists(logs / "stdout.3"));
  EXPECT_FALSE(fs::exists(logs / "stdout.4"));
  EXPECT_LT(fs::file_size(logs / "stdout"), 64u * 1024) << "the live file was emptied";

  // The tail across the rotated files: whole lines, in the order written, the last one last.
  tail.__set_tail(800);
  api::LogPage page;
  ecm.client().getEngineLog(page, tail);
  ASSERT_EQ(page.lines.size(), 800u);
  EXPECT_EQ(page.lines.back(), "the last line");
  const std::regex shape(R"(burst (\d+) line (\d+) \.{48})");
  std::pair<int, int> previous{0, 0};
  for (std::size_t i = 0; i + 1 < page.lines.size(); ++i) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(page.lines[i], m, shape)) << i << ": " << page.lines[i];
    const std::pair<int, int> at{std::stoi(m[1]), std::stoi(m[2])};
    EXPECT_GT(at, previous) << page.lines[i];
    previous = at;
  }
  EXPECT_EQ(previous, (std::pair<int, int>{kBursts, 1500}));

  // [logs] max_read_lines bounds a read.
  api::LogRequest big;
  big.__set_engine_id(e.id);
  big.__set_page_size(5000);
  ecm.client().getEngineLog(page, big);
  EXPECT_EQ(page.lines.size(), 1000u);
  EXPECT_TRUE(page.truncated);

  // ecmctl logs reads the same stream.
  const auto r = ecm.run_ecmctl({"logs", e.id, "--tail", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("burst 12 line 1500 "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("the last line"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace ecm::itest
