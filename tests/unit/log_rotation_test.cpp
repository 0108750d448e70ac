#include "ecm/core/log_rotation.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

using namespace ecm::core;
namespace fs = std::filesystem;

namespace {

class LogRotationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ecm-log-rotation-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    live_ = dir_ / "stdout";
  }
  void TearDown() override { fs::remove_all(dir_); }

  void append(const fs::path& p, const std::string& text) {
    std::ofstream(p, std::ios::binary | std::ios::app) << text;
  }
  static std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }
  fs::path rotated(int k) const { return dir_ / ("stdout." + std::to_string(k)); }
  // The names in the dir, sorted.
  std::vector<std::string> names() const {
    std::vector<std::string> v;
    for (const auto& e : fs::directory_iterator(dir_))
      v.push_back(e.path().filename().string());
    std::sort(v.begin(), v.end());
    return v;
  }

  fs::path dir_;
  fs::path live_;
};

TEST_F(LogRotationTest, RotatesOnlyPastTheSizeAndEmptiesTheLiveFile) {
  EXPECT_FALSE(rotate_if_larger(live_, 10, 3)) << "a missing file is not rotated";
  append(live_, std::string(10, 'a'));
  EXPECT_FALSE(rotate_if_larger(live_, 10, 3)) << "not larger than the bound";
  EXPECT_EQ(fs::file_size(live_), 10u);
  append(live_, "b");
  ASSERT_TRUE(rotate_if_larger(live_, 10, 3));
  EXPECT_EQ(fs::file_size(live_), 0u) << "truncated in place";
  EXPECT_EQ(read(rotated(1)), std::string(10, 'a') + "b");
  EXPECT_EQ(names(), (std::vector<std::string>{"stdout", "stdout.1"})) << "no temp file left";
}

TEST_F(LogRotationTest, AnUnfinishedLastLineIsLostWholeNotCutAcrossTheFiles) {
  // The copy ends inside a line (the engine is half-way through writing it, or the copy saw a
  // write half done): NAME.1 ends at the last whole line, and the rest goes with the truncate.
  append(live_, "first line\nsecond line\nthird, still being writ");
  ASSERT_TRUE(rotate_if_larger(live_, 8, 2));
  EXPECT_EQ(read(rotated(1)), "first line\nsecond line\n");
  EXPECT_EQ(fs::file_size(live_), 0u);
  // Output with no line end near its end is not line-oriented: kept as it is.
  append(live_, "no newline at all, " + std::string(100 * 1024, 'b'));
  ASSERT_TRUE(rotate_if_larger(live_, 8, 2));
  EXPECT_EQ(fs::file_size(rotated(1)), 19u + 100 * 1024);
  append(live_, "x\n" + std::string(100 * 1024, 'c'));
  ASSERT_TRUE(rotate_if_larger(live_, 8, 2));
  EXPECT_EQ(fs::file_size(rotated(1)), 2u + 100 * 1024) << "the last line end is 100 KiB back";
}

TEST_F(LogRotationTest, ShiftsOlderFilesAndKeepsAtMostKeep) {
  // Rotation i holds "rotation i" padded past the bound.
  for (int i = 1; i <= 6; ++i) {
    append(live_, "rotation " + std::to_string(i) + std::string(20, '.') + "\n");
    ASSERT_TRUE(rotate_if_larger(live_, 16, 3)) << i;
    EXPECT_FALSE(fs::exists(rotated(4))) << "after rotation " << i;
  }
  EXPECT_EQ(names(), (std::vector<std::string>{"stdout", "stdout.1", "stdout.2", "stdout.3"}));
  EXPECT_EQ(read(rotated(1)).substr(0, 10), "rotation 6") << "NAME.1 is the most recent";
  EXPECT_EQ(read(rotated(2)).substr(0, 10), "rotation 5");
  EXPECT_EQ(read(rotated(3)).substr(0, 10), "rotation 4");
}

TEST_F(LogRotationTest, LoweredKeepDropsTheFilesBeyondIt) {
  for (int k = 1; k <= 6; ++k)
    append(rotated(k), "old " + std::to_string(k) + "\n");
  append(live_, "live, long enough\n");
  ASSERT_TRUE(rotate_if_larger(live_, 1, 2));
  EXPECT_EQ(names(), (std::vector<std::string>{"stdout", "stdout.1", "stdout.2"}));
  EXPECT_EQ(read(rotated(1)), "live, long enough\n");
  EXPECT_EQ(read(rotated(2)), "old 1\n");
}

TEST_F(LogRotationTest, KeepZeroOnlyTruncates) {
  append(live_, "some output\n");
  ASSERT_TRUE(rotate_if_larger(live_, 1, 0));
  EXPECT_EQ(names(), (std::vector<std::string>{"stdout"}));
  EXPECT_EQ(fs::file_size(live_), 0u);
  EXPECT_THROW(rotate_if_larger(live_, 1, -1), std::invalid_argument);
  EXPECT_THROW(rotate_if_larger(live_, 1, kMaxRotatedLogFiles + 1), std::invalid_argument);
}

TEST_F(LogRotationTest, RotatedFilesKeepTheOwnerAndModeOfTheLiveFile) {
  append(live_, "secret-ish output\n");
  ASSERT_EQ(::chmod(live_.c_str(), 0640), 0);
  const bool root = ::geteuid() == 0;
  // Engines may run as another user: as root, give the live file to nobody.
  if (root) {
    ASSERT_EQ(::chown(live_.c_str(), 65534, 65534), 0) << std::strerror(errno);
  }
  struct stat want {};
  ASSERT_EQ(::stat(live_.c_str(), &want), 0);
  ASSERT_TRUE(rotate_if_larger(live_, 1, 2));
  struct stat got {};
  ASSERT_EQ(::stat(rotated(1).c_str(), &got), 0);
  EXPECT_EQ(got.st_mode & 07777, 0640u);
  EXPECT_EQ(got.st_uid, want.st_uid);
  EXPECT_EQ(got.st_gid, want.st_gid);
  // Shifted files keep theirs too (a rename).
  append(live_, "more output\n");
  ASSERT_TRUE(rotate_if_larger(live_, 1, 2));
  ASSERT_EQ(::stat(rotated(2).c_str(), &got), 0);
  EXPECT_EQ(got.st_uid, want.st_uid);
  EXPECT_EQ(got.st_mode & 07777, 0640u);
}

TEST_F(LogRotationTest, NeverFollowsSymlinksNorTruncatesAHardLinkedFile) {
  const auto outside = dir_ / "outside";
  fs::create_directories(outside);
  const auto precious = outside / "precious";
  append(precious, "do not touch\n");

  // The live file a symlink: refused, the target untouched.
  fs::create_symlink(precious, live_);
  EXPECT_ANY_THROW(rotate_if_larger(live_, 1, 2));
  EXPECT_EQ(read(precious), "do not touch\n");
  fs::remove(live_);

  // The live file a hard link to another file: truncating it would truncate that one.
  fs::create_hard_link(precious, live_);
  EXPECT_ANY_THROW(rotate_if_larger(live_, 1, 2));
  EXPECT_EQ(read(precious), "do not touch\n");
  fs::remove(live_);

  // A rotated name that is a symlink is renamed or dropped as a link, never written through.
  fs::create_symlink(precious, rotated(1));
  fs::create_symlink(precious, dir_ / ".stdout.rotating");
  append(live_, "real output\n");
  ASSERT_TRUE(rotate_if_larger(live_, 1, 2));
  EXPECT_EQ(read(precious), "do not touch\n");
  EXPECT_TRUE(fs::is_symlink(rotated(2))) << "shifted as a link";
  EXPECT_FALSE(fs::is_symlink(rotated(1)));
  EXPECT_EQ(read(rotated(1)), "real output\n");
}

// "L000000123:xxxx...\n": fixed-size, numbered lines.
constexpr int kLineDigits = 9;
constexpr std::size_t kLineBytes = 1 + kLineDigits + 1 + 40 + 1;

// A separate process appending numbered lines to `path` with O_APPEND, one write() per line, as an
// engine writes its stdout. Only raw syscalls in the child.
pid_t spawn_writer(const fs::path& path, int lines) {
  const std::string p = path.string();
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) ::_exit(2);
  char line[kLineBytes];
  std::memset(line, 'x', sizeof line);
  line[0] = 'L';
  line[1 + kLineDigits] = ':';
  line[kLineBytes - 1] = '\n';
  for (int i = 0; i < lines; ++i) {
    int v = i;
    for (int d = kLineDigits; d >= 1; --d) {
      line[d] = static_cast<char>('0' + v % 10);
      v /= 10;
    }
    if (::write(fd, line, sizeof line) != static_cast<ssize_t>(sizeof line)) ::_exit(3);
  }
  ::_exit(0);
}

TEST_F(LogRotationTest, AConcurrentAppendingWriterLosesNoLineHalfWayAndKeepsOrder) {
  constexpr int kLines = 300000;
  constexpr int kKeep = 4;
  constexpr std::uint64_t kMax = 64 * 1024;
  append(live_, "");
  const pid_t writer = spawn_writer(live_, kLines);
  ASSERT_GT(writer, 0);
  int rotations = 0;
  int status = 0;
  for (;;) {
    const pid_t done = ::waitpid(writer, &status, WNOHANG);
    ASSERT_GE(done, 0);
    if (rotate_if_larger(live_, kMax, kKeep)) ++rotations;
    ASSERT_FALSE(fs::exists(rotated(kKeep + 1))) << "more than keep rotated files";
    if (done == writer) break;
  }
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_GE(rotations, 10) << "the writer was not rotated under often enough to mean anything";

  // The stream: NAME.k .. NAME.1, NAME. Every line in it is whole, and the numbers only go up.
  std::string stream;
  int files = 0;
  for (int k = kKeep; k >= 1; --k) {
    if (!fs::exists(rotated(k))) continue;
    ++files;
    stream += read(rotated(k));
  }
  stream += read(live_);
  EXPECT_LE(files, kKeep);
  ASSERT_FALSE(stream.empty());
  ASSERT_EQ(stream.size() % kLineBytes, 0u) << "a line was cut";
  long previous = -1;
  std::size_t present = 0;
  for (std::size_t at = 0; at < stream.size(); at += kLineBytes, ++present) {
    const std::string line = stream.substr(at, kLineBytes);
    ASSERT_EQ(line[0], 'L') << "at byte " << at << ": " << line;
    ASSERT_EQ(line[1 + kLineDigits], ':') << line;
    ASSERT_EQ(line.back(), '\n') << line;
    ASSERT_EQ(line.find_first_not_of('x', 2 + kLineDigits), kLineBytes - 1) << line;
    const long n = std::stol(line.substr(1, kLineDigits));
    ASSERT_GT(n, previous) << "out of order at byte " << at;
    previous = n;
  }
  // The end of the stream is there (the very last line may fall in a loss window).
  EXPECT_GE(previous, kLines - 1000);
  const long first = std::stol(stream.substr(1, kLineDigits));
  std::cout << rotations << " rotations; lines " << first << ".." << previous << " kept but "
            << (previous - first + 1 - static_cast<long>(present))
            << " of them lost in copy-truncate windows\n";
}

}  // namespace
