// getEngineLog and `ecmctl logs` on the real daemon.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <string>
#include <thread>
#include <vector>

#include "ecm_harness.hpp"

namespace ecm::itest {
namespace {

std::vector<std::string> numbered(int a, int b) {
  std::vector<std::string> v;
  for (int i = a; i <= b; ++i)
    v.push_back("line " + std::to_string(i));
  return v;
}

class LogsTest : public ::testing::Test {
 protected:
  // An engine that prints "line 1".."line 100" to stdout and three lines to stderr, then waits.
  void SetUp() override {
    ecm_ = std::make_unique<EcmProcess>();
    api::LaunchRequest req;
    req.__set_user("alice");
    req.__set_engine_type("shell");
    req.__set_properties(
        {{"command",
          "i=1; while [ $i -le 100 ]; do echo \"line $i\"; i=$((i+1)); done; "
          "echo 'warn: disk' >&2; echo 'error: boom' >&2; echo 'warn: cpu' >&2; sleep 600"}});
    api::EngineConn e;
    ecm_->client().launchEngineConn(e, req);
    id_ = e.id;
    // Wait until every line is there.
    for (int i = 0; i < 200; ++i) {
      api::LogPage p;
      try {
        ecm_->client().getEngineLog(p, request("stderr"));
        if (p.lines.size() == 3) return;
      } catch (const api::EcmError&) {
      }
      std::this_thread::sleep_for(50ms);
    }
    FAIL() << "engine did not write its lines";
  }
  void TearDown() override { ecm_.reset(); }

  api::LogRequest request(const std::string& stream = "") {
    api::LogRequest r;
    r.__set_engine_id(id_);
    if (!stream.empty()) r.__set_stream(stream);
    return r;
  }
  api::LogPage read(const api::LogRequest& r) {
    api::LogPage p;
    ecm_->client().getEngineLog(p, r);
    return p;
  }
  api::ErrorCode::type error_of(const api::LogRequest& r) {
    try {
      read(r);
    } catch (const api::EcmError& e) {
      return e.code;
    }
    ADD_FAILURE() << "no error";
    return api::ErrorCode::INTERNAL;
  }

  std::unique_ptr<EcmProcess> ecm_;
  std::string id_;
};

TEST_F(LogsTest, PagesThroughStdout) {
  auto r = request();
  r.__set_page_size(30);
  std::vector<std::string> all;
  std::vector<std::int64_t> firsts;
  for (int i = 0; i < 10; ++i) {
    auto p = read(r);
    firsts.push_back(p.first_line);
    all.insert(all.end(), p.lines.begin(), p.lines.end());
    if (p.next_from_line == 0) {
      EXPECT_EQ(p.end_line, 100);
      break;
    }
    r.__set_from_line(p.next_from_line);
  }
  EXPECT_EQ(all, numbered(1, 100));
  EXPECT_EQ(firsts, (std::vector<std::int64_t>{1, 31, 61, 91}));
}

TEST_F(LogsTest, TailGrepExclude) {
  auto r = request();
  r.__set_tail(5);
  auto p = read(r);
  EXPECT_EQ(p.lines, numbered(96, 100));
  EXPECT_EQ(p.first_line, 96);
  EXPECT_EQ(p.next_from_line, 0);

  r = request("stderr");
  r.__set_include_words({"warn"});
  p = read(r);
  EXPECT_EQ(p.lines, (std::vector<std::string>{"warn: disk", "warn: cpu"}));
  r.__set_exclude_words({"cpu"});
  p = read(r);
  EXPECT_EQ(p.lines, (std::vector<std::string>{"warn: disk"}));

  r = request();
  r.__set_include_words({"line 5"});
  r.__set_exclude_words({"line 50"});
  p = read(r);
  EXPECT_EQ(p.lines,
            (std::vector<std::string>{"line 5", "line 51", "line 52", "line 53", "line 54",
                                      "line 55", "line 56", "line 57", "line 58", "line 59"}));
}

TEST_F(LogsTest, RefusesUnknownEngineBadStreamAndBadPattern) {
  auto r = request();
  r.__set_engine_id("ec-000000000000000000000000");
  EXPECT_EQ(error_of(r), api::ErrorCode::NOT_FOUND);
  EXPECT_EQ(error_of(request("../../etc/passwd")), api::ErrorCode::INVALID_REQUEST);
  EXPECT_EQ(error_of(request("/etc/passwd")), api::ErrorCode::INVALID_REQUEST);
  EXPECT_EQ(error_of(request("nosuchfile")), api::ErrorCode::NOT_FOUND);
  r = request();
  r.__set_record_pattern("([bad");
  EXPECT_EQ(error_of(r), api::ErrorCode::INVALID_REQUEST);

  auto res = ecm_->run_ecmctl({"logs", id_, "--stream", "../../etc/passwd"});
  EXPECT_EQ(res.exit_code, 1);
  EXPECT_NE(res.err.find("INVALID_REQUEST"), std::string::npos) << res.err;
  EXPECT_EQ(res.out, "");
  res = ecm_->run_ecmctl({"logs", "ec-000000000000000000000000"});
  EXPECT_EQ(res.exit_code, 1);
  EXPECT_NE(res.err.find("NOT_FOUND"), std::string::npos) << res.err;
  res = ecm_->run_ecmctl({"logs", id_, "--tail", "5", "--from", "3"});
  EXPECT_EQ(res.exit_code, 2) << res.err;
}

TEST_F(LogsTest, EcmctlTailJsonAndGrep) {
  auto res = ecm_->run_ecmctl({"logs", id_, "--tail", "5", "--json"});
  ASSERT_EQ(res.exit_code, 0) << res.err;
  auto v = boost::json::parse(res.out).as_object();
  std::vector<std::string> lines;
  for (const auto& l : v.at("lines").as_array())
    lines.emplace_back(l.as_string());
  EXPECT_EQ(lines, numbered(96, 100));
  EXPECT_EQ(v.at("first_line").as_int64(), 96);
  EXPECT_EQ(v.at("next_from_line").as_int64(), 0);
  EXPECT_FALSE(v.at("truncated").as_bool());

  res = ecm_->run_ecmctl({"logs", id_, "--stream", "stderr", "--grep", "boom", "--grep", "cpu"});
  ASSERT_EQ(res.exit_code, 0) << res.err;
  EXPECT_EQ(res.out, "error: boom\nwarn: cpu\n");
  res = ecm_->run_ecmctl({"logs", id_, "--from", "10", "--page", "2"});
  ASSERT_EQ(res.exit_code, 0) << res.err;
  EXPECT_EQ(res.out, "line 10\nline 11\n");
}

TEST(LogsFollow, FollowReturnsWithEveryLineOnceTheEngineEnds) {
  EcmProcess ecm;
  api::LaunchRequest req;
  req.__set_user("alice");
  req.__set_engine_type("shell");
  req.__set_properties({{"command",
                         "i=1; while [ $i -le 30 ]; do echo \"line $i\"; i=$((i+1)); "
                         "[ $i -eq 15 ] && sleep 1; done"}});
  api::EngineConn e;
  ecm.client().launchEngineConn(e, req);
  auto res = ecm.run_ecmctl({"logs", e.id, "-f", "--from", "1"}, 30s);
  ASSERT_EQ(res.exit_code, 0) << res.err;
  std::string expected;
  for (const auto& l : numbered(1, 30))
    expected += l + "\n";
  EXPECT_EQ(res.out, expected);
}

}  // namespace
}  // namespace ecm::itest
