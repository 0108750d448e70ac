#include "ecm/core/engine_log_reader.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ecm/core/errors.hpp"

using namespace ecm::core;
namespace fs = std::filesystem;

namespace {

class LogReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ecm-log-reader-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }
  // "prefix a..b", one line each, newline-terminated.
  static std::string numbered(int a, int b, const std::string& prefix = "line ") {
    std::string s;
    for (int i = a; i <= b; ++i)
      s += prefix + std::to_string(i) + "\n";
    return s;
  }
  static std::vector<std::string> numbered_lines(int a, int b) {
    std::vector<std::string> v;
    for (int i = a; i <= b; ++i)
      v.push_back("line " + std::to_string(i));
    return v;
  }

  ErrorCode code_of(const LogQuery& q, const EngineLogReader& r = EngineLogReader()) {
    try {
      r.read(dir_, q);
    } catch (const EcmException& e) {
      return e.code();
    }
    ADD_FAILURE() << "no error";
    return ErrorCode::kInternal;
  }

  fs::path dir_;
};

TEST_F(LogReaderTest, ReadsRotatedFilesAsOneStreamOldestFirst) {
  write("stdout.2", numbered(1, 3));
  write("stdout.1", numbered(4, 6));
  write("stdout", numbered(7, 10));
  LogQuery q;
  auto page = EngineLogReader().read(dir_, q);
  EXPECT_EQ(page.lines, numbered_lines(1, 10));
  EXPECT_EQ(page.first_line, 1);
  EXPECT_FALSE(page.next_from_line);
  EXPECT_EQ(page.end_line, 10);
  EXPECT_FALSE(page.truncated);
}

TEST_F(LogReaderTest, PagesAcrossRotatedFiles) {
  write("stdout.2", numbered(1, 3));
  write("stdout.1", numbered(4, 6));
  write("stdout", numbered(7, 10));
  EngineLogReader reader;
  LogQuery q;
  q.page_size = 4;
  std::vector<std::string> all;
  std::vector<std::int64_t> firsts;
  q.from_line = 1;
  for (int i = 0; i < 10; ++i) {
    auto page = reader.read(dir_, q);
    firsts.push_back(page.first_line);
    all.insert(all.end(), page.lines.begin(), page.lines.end());
    if (!page.next_from_line) break;
    q.from_line = *page.next_from_line;
  }
  EXPECT_EQ(all, numbered_lines(1, 10));
  EXPECT_EQ(firsts, (std::vector<std::int64_t>{1, 5, 9}));

  q.from_line = 6;
  q.page_size = 2;
  auto page = reader.read(dir_, q);
  EXPECT_EQ(page.lines, numbered_lines(6, 7));
  EXPECT_EQ(page.next_from_line, 8);

  q.from_line = 11;  // past the end: empty, at the end
  page = reader.read(dir_, q);
  EXPECT_TRUE(page.lines.empty());
  EXPECT_FALSE(page.next_from_line);
  EXPECT_EQ(page.end_line, 10);
}

TEST_F(LogReaderTest, AGapEndsTheRotatedFiles) {
  write("stdout.3", "ignored\n");
  write("stdout.1", numbered(1, 2));
  write("stdout", numbered(3, 3));
  EXPECT_EQ(EngineLogReader().read(dir_, {}).lines, numbered_lines(1, 3));
}

TEST_F(LogReaderTest, UnterminatedLastLineCounts) {
  write("stdout", "a\nb\npartial");
  auto page = EngineLogReader().read(dir_, {});
  EXPECT_EQ(page.lines, (std::vector<std::string>{"a", "b", "partial"}));
  EXPECT_EQ(page.end_line, 3);
  LogQuery q;
  q.tail = 1;
  page = EngineLogReader().read(dir_, q);
  EXPECT_EQ(page.lines, (std::vector<std::string>{"partial"}));
  EXPECT_EQ(page.first_line, 3);
}

TEST_F(LogReaderTest, TailAcrossRotatedFiles) {
  write("stderr.1", numbered(1, 5));
  write("stderr", numbered(6, 8));
  LogQuery q;
  q.stream = "stderr";
  q.tail = 5;
  auto page = EngineLogReader().read(dir_, q);
  EXPECT_EQ(page.lines, numbered_lines(4, 8));
  EXPECT_EQ(page.first_line, 4);
  EXPECT_FALSE(page.next_from_line);
  EXPECT_EQ(page.end_line, 8);
  q.tail = 100;
  page = EngineLogReader().read(dir_, q);
  EXPECT_EQ(page.lines, numbered_lines(1, 8));
  EXPECT_EQ(page.first_line, 1);
}

TEST_F(LogReaderTest, EmptyLinesAndEmptyFiles) {
  write("stdout.1", "");
  write("stdout", "\nx\n\n");
  auto page = EngineLogReader().read(dir_, {});
  EXPECT_EQ(page.lines, (std::vector<std::string>{"", "x", ""}));
  LogQuery q;
  q.tail = 2;
  page = EngineLogReader().read(dir_, q);
  EXPECT_EQ(page.lines, (std::vector<std::string>{"x", ""}));
  EXPECT_EQ(page.first_line, 2);
}

TEST_F(LogReaderTest, IncludeIsAnyOfExcludeIsNoneOf) {
  write("stdout", "INFO start\nWARN disk\nERROR boom\nINFO done\nDEBUG noise ERROR\n");
  LogQuery q;
  q.include = {"ERROR", "WARN"};
  auto page = EngineLogReader().read(dir_, q);
  EXPECT_EQ(page.lines, (std::vector<std::string>{"WARN disk", "ERROR boom", "DEBUG noise ERROR"}));
  EXPECT_EQ(page.first_line, 2);
  q.exclude = {"DEBUG"};
  page = EngineLogReader().read(dir_, q);
  EXPECT_EQ(page.lines, (std::vector<std::string>{"WARN disk", "ERROR boom"}));
  q.include.clear();
  q.tail = 2;
  page = EngineLogReader().read(dir_, q);
  EXPECT_EQ(page.lines, (std::vector<std::string>{"ERROR boom", "INFO done"}));
  EXPECT_EQ(page.first_line, 3);
}

TEST_F(LogReaderTest, FilteredPagingResumesAtTheNextMatch) {
  write("stdout", numbered(1, 30));
  LogQuery q;
  q.include = {"line 1"};  // 1, 10..19
  q.page_size = 5;
  auto page = EngineLogReader().read(dir_, q);
  EXPECT_EQ(page.lines,
            (std::vector<std::string>{"line 1", "line 10", "line 11", "line 12", "line 13"}));
  ASSERT_TRUE(page.next_from_line);
  EXPECT_EQ(*page.next_from_line, 14);
  q.from_line = 14;
  page = EngineLogReader().read(dir_, q);
  EXPECT_EQ(page.lines.size(), 5u);
  EXPECT_EQ(page.lines.back(), "line 18");
  q.from_line = *page.next_from_line;
  page = EngineLogReader().read(dir_, q);
  EXPECT_EQ(page.lines, (std::vector<std::string>{"line 19"}));
  EXPECT_FALSE(page.next_from_line);
}

TEST_F(LogReaderTest, MultiLineRecords) {
  write("stdout",
        "orphan continuation\n"
        "2024-01-01 INFO ok\n"
        "2024-01-01 ERROR failed\n"
        "  at frame one\n"
        "  at frame two\n"
        "2024-01-02 INFO later\n"
        "  detail\n");
  LogQuery q;
  q.record_pattern = "^\\d{4}-\\d{2}-\\d{2} ";
  q.include = {"ERROR"};
  auto page = EngineLogReader().read(dir_, q);
  EXPECT_EQ(page.lines, (std::vector<std::string>{"2024-01-01 ERROR failed", "  at frame one",
                                                  "  at frame two"}));
  EXPECT_EQ(page.first_line, 3);

  q.include = {"frame two"};  // a word in a continuation line selects the whole record
  page = EngineLogReader().read(dir_, q);
  EXPECT_EQ(page.lines.size(), 3u);

  q.include.clear();
  q.tail = 2;
  page = EngineLogReader().read(dir_, q);
  EXPECT_EQ(page.lines,
            (std::vector<std::string>{"2024-01-01 ERROR failed", "  at frame one", "  at frame two",
                                      "2024-01-02 INFO later", "  detail"}));
  EXPECT_EQ(page.first_line, 3);

  q.tail = 10;  // lines before the first start form a record of their own
  page = EngineLogReader().read(dir_, q);
  EXPECT_EQ(page.lines.size(), 7u);
  EXPECT_EQ(page.first_line, 1);

  q.tail = 0;
  q.exclude = {"ERROR"};
  page = EngineLogReader().read(dir_, q);
  EXPECT_EQ(page.lines, (std::vector<std::string>{"orphan continuation", "2024-01-01 INFO ok",
                                                  "2024-01-02 INFO later", "  detail"}));

  q.exclude.clear();  // pages hold whole records
  q.page_size = 3;
  q.from_line = 2;
  page = EngineLogReader().read(dir_, q);
  EXPECT_EQ(page.lines, (std::vector<std::string>{"2024-01-01 INFO ok"}));
  EXPECT_EQ(page.next_from_line, 3);
}

TEST_F(LogReaderTest, BoundsLinesAndSetsTruncated) {
  write("stdout", numbered(1, 100));
  EngineLogReader reader(10);
  EXPECT_EQ(reader.max_lines(), 10);
  LogQuery q;
  auto page = reader.read(dir_, q);  // no page size: the bound, pages on
  EXPECT_EQ(page.lines, numbered_lines(1, 10));
  EXPECT_EQ(page.next_from_line, 11);
  EXPECT_FALSE(page.truncated);

  q.page_size = 50;  // more than the bound: the bound, and said so
  page = reader.read(dir_, q);
  EXPECT_EQ(page.lines.size(), 10u);
  EXPECT_TRUE(page.truncated);

  q.page_size = 0;
  q.tail = 50;
  page = reader.read(dir_, q);
  EXPECT_EQ(page.lines, numbered_lines(91, 100));
  EXPECT_TRUE(page.truncated);

  q.tail = 5;
  page = reader.read(dir_, q);
  EXPECT_EQ(page.lines, numbered_lines(96, 100));
  EXPECT_FALSE(page.truncated);
}

TEST_F(LogReaderTest, RecordLongerThanTheBoundIsCut) {
  std::string text = "START\n";
  for (int i = 0; i < 20; ++i)
    text += "  more\n";
  text += "START two\n";
  write("stdout", text);
  EngineLogReader reader(5);
  LogQuery q;
  q.record_pattern = "^START";
  auto page = reader.read(dir_, q);
  EXPECT_EQ(page.lines.size(), 5u);
  EXPECT_EQ(page.lines[0], "START");
  EXPECT_TRUE(page.truncated);
  EXPECT_EQ(page.next_from_line, 22);
}

TEST_F(LogReaderTest, LongLinesAreCut) {
  write("stdout", std::string(kMaxLogLineBytes + 100, 'x') + "\nshort\n");
  auto page = EngineLogReader().read(dir_, {});
  ASSERT_EQ(page.lines.size(), 2u);
  EXPECT_EQ(page.lines[0].size(), kMaxLogLineBytes);
  EXPECT_EQ(page.lines[1], "short");
  EXPECT_TRUE(page.truncated);
  LogQuery q;
  q.tail = 2;
  page = EngineLogReader().read(dir_, q);
  ASSERT_EQ(page.lines.size(), 2u);
  EXPECT_EQ(page.lines[0].size(), kMaxLogLineBytes);
  EXPECT_TRUE(page.truncated);
}

TEST_F(LogReaderTest, StreamNamesStayInsideTheLogDir) {
  write("stdout", "x\n");
  fs::create_directories(dir_ / "app");
  write("app/engine.log", "y\n");
  LogQuery q;
  q.stream = "app/engine.log";
  EXPECT_EQ(EngineLogReader().read(dir_, q).lines, (std::vector<std::string>{"y"}));
  for (const char* bad : {"../x", "/etc/passwd", "../../etc/passwd", "a/../../x", "", "./stdout"}) {
    q.stream = bad;
    EXPECT_EQ(code_of(q), ErrorCode::kInvalidRequest) << bad;
  }
  fs::create_symlink("/etc/passwd", dir_ / "link");
  q.stream = "link";
  EXPECT_EQ(code_of(q), ErrorCode::kInvalidRequest);
  q.stream = "app";
  EXPECT_EQ(code_of(q), ErrorCode::kInvalidRequest);
}

TEST_F(LogReaderTest, MissingStreamIsNotFound) {
  LogQuery q;
  q.stream = "stderr";
  EXPECT_EQ(code_of(q), ErrorCode::kNotFound);
}

TEST_F(LogReaderTest, BadQueriesAreInvalid) {
  write("stdout", "x\n");
  LogQuery q;
  q.record_pattern = "([unclosed";
  EXPECT_EQ(code_of(q), ErrorCode::kInvalidRequest);
  q = {};
  q.tail = 3;
  q.from_line = 2;
  EXPECT_EQ(code_of(q), ErrorCode::kInvalidRequest);
  for (auto set :
       {+[](LogQuery& x) { x.tail = -1; }, +[](LogQuery& x) { x.from_line = -1; },
        +[](LogQuery& x) { x.page_size = -1; }, +[](LogQuery& x) { x.include = {""}; }}) {
    q = {};
    set(q);
    EXPECT_EQ(code_of(q), ErrorCode::kInvalidRequest);
  }
}

// Found by tests/fuzz/fuzz_launch_request: with std::regex this read backtracked without end (a
// Thrift thread spinning for good on one getEngineLog).
TEST_F(LogReaderTest, BacktrackingRecordPatternIsRefusedNotRunForever) {
  write("stdout", "start\n" + std::string(1500, 'a') + "\nend\n");
  LogQuery q;
  for (const char* pattern : {"(a*)*b", "(a|aa)*c", "^(a|a)*$x"}) {
    q.record_pattern = pattern;
    const auto began = std::chrono::steady_clock::now();
    EXPECT_EQ(code_of(q), ErrorCode::kInvalidRequest) << pattern;
    EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(10)) << pattern;
    q.tail = 2;
    EXPECT_EQ(code_of(q), ErrorCode::kInvalidRequest) << pattern;
    q.tail = 0;
  }
  q.record_pattern = std::string(kMaxLogPatternBytes + 1, 'a');
  EXPECT_EQ(code_of(q), ErrorCode::kInvalidRequest);
  q.record_pattern = "^(start|end)$";
  EXPECT_EQ(EngineLogReader().read(dir_, q).lines.size(), 3u);
}

TEST_F(LogReaderTest, TailOfALargeFileIsFast) {
  {
    std::ofstream out(dir_ / "stdout", std::ios::binary);
    std::string line(99, 'x');
    line += '\n';
    std::string block;
    for (int i = 0; i < 10000; ++i)
      block += line;
    for (int i = 0; i < 100; ++i)  // 1,000,000 lines, 100 MB
      out << block;
    out << "the very last line\n";
  }
  EngineLogReader reader;
  LogQuery q;
  q.tail = 3;
  auto t0 = std::chrono::steady_clock::now();
  auto page = reader.read(dir_, q);
  auto first = std::chrono::steady_clock::now() - t0;
  ASSERT_EQ(page.lines.size(), 3u);
  EXPECT_EQ(page.lines.back(), "the very last line");
  EXPECT_EQ(page.first_line, 999999);
  EXPECT_EQ(page.end_line, 1000001);
  // The line count is kept: the next tail (and a follower's page) reads only the end.
  t0 = std::chrono::steady_clock::now();
  page = reader.read(dir_, q);
  auto second = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(page.first_line, 999999);
  EXPECT_LT(second, std::chrono::milliseconds(50));
  EXPECT_LT(first, std::chrono::seconds(5));
  q.tail = 0;
  q.from_line = 1000001;
  t0 = std::chrono::steady_clock::now();
  page = reader.read(dir_, q);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(50));
  EXPECT_EQ(page.lines, (std::vector<std::string>{"the very last line"}));
}

}  // namespace

// Copy-truncate rotation keeps the live file's inode; line counts cached for it before the
// rotation must not be reused even when the new content has a newline at the old offset.
TEST_F(LogReaderTest, CountsCachedBeforeACopyTruncateRotationAreNotReused) {
  write("stdout", "aaaa\nb\n");  // 2 lines; its byte 6 is a newline
  LogQuery all;
  all.tail = 100;
  EngineLogReader reader;
  EXPECT_EQ(reader.read(dir_, all).end_line, 2);
  // Rotate as the ECM does: the content to stdout.1 (a new file), then truncate stdout in place.
  write("stdout.1", "aaaa\nb\n");
  {
    std::ofstream live(dir_ / "stdout", std::ios::binary | std::ios::trunc);
    live << std::string(7, '\n') << "z\n";  // 8 lines; byte 6 is a newline too
  }
  auto page = reader.read(dir_, all);
  EXPECT_EQ(page.end_line, 10);
  ASSERT_FALSE(page.lines.empty());
  EXPECT_EQ(page.lines.back(), "z");
  EXPECT_EQ(page.first_line, 1);
}
