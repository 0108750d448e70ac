#include "localization/archive_unpacker.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

using namespace ecm::host;
namespace fs = std::filesystem;

namespace {

// One entry of an archive the test builds with libarchive's writer (so no tool is needed, and
// the writer stores hostile names as given: it does not sanitize like bsdtar does).
struct Entry {
  std::string path;
  mode_t type = AE_IFREG;
  mode_t perm = 0644;
  std::string data;
  std::uint64_t zeros = 0;  // when set, the file is this many zero bytes, written in blocks
  std::string symlink;
  std::string hardlink;
};

Entry file(const std::string& path, const std::string& data, mode_t perm = 0644) {
  Entry e;
  e.path = path;
  e.data = data;
  e.perm = perm;
  return e;
}
Entry zeros(const std::string& path, std::uint64_t n) {
  Entry e;
  e.path = path;
  e.zeros = n;
  return e;
}
Entry dir(const std::string& path) {
  Entry e;
  e.path = path;
  e.type = AE_IFDIR;
  e.perm = 0755;
  return e;
}
Entry symlink(const std::string& path, const std::string& target) {
  Entry e;
  e.path = path;
  e.type = AE_IFLNK;
  e.perm = 0777;
  e.symlink = target;
  return e;
}
Entry hardlink(const std::string& path, const std::string& target) {
  Entry e;
  e.path = path;
  e.hardlink = target;
  return e;
}
Entry special(const std::string& path, mode_t type) {
  Entry e;
  e.path = path;
  e.type = type;
  return e;
}

enum class Kind { kTar, kTarGz, kZip };

void write_archive(const fs::path& out, Kind kind, const std::vector<Entry>& entries) {
  archive* a = archive_write_new();
  ASSERT_NE(a, nullptr);
  if (kind == Kind::kZip) {
    ASSERT_EQ(archive_write_set_format_zip(a), ARCHIVE_OK);
  } else {
    ASSERT_EQ(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
    if (kind == Kind::kTarGz) {
      ASSERT_EQ(archive_write_add_filter_gzip(a), ARCHIVE_OK);
    }
  }
  ASSERT_EQ(archive_write_open_filename(a, out.c_str()), ARCHIVE_OK) << archive_error_string(a);
  const std::string block(1 << 16, '\0');
  for (const auto& spec : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, spec.path.c_str());
    archive_entry_set_filetype(e, spec.type);
    archive_entry_set_perm(e, spec.perm);
    archive_entry_set_mtime(e, 1700000000, 0);
    std::uint64_t size = spec.zeros ? spec.zeros : spec.data.size();
    if (!spec.symlink.empty()) archive_entry_set_symlink(e, spec.symlink.c_str());
    if (!spec.hardlink.empty()) archive_entry_set_hardlink(e, spec.hardlink.c_str());
    if (spec.type == AE_IFCHR || spec.type == AE_IFBLK) archive_entry_set_rdev(e, makedev(1, 3));
    bool has_data = spec.type == AE_IFREG && spec.hardlink.empty();
    archive_entry_set_size(e, has_data ? static_cast<la_int64_t>(size) : 0);
    ASSERT_EQ(archive_write_header(a, e), ARCHIVE_OK)
        << spec.path << ": " << archive_error_string(a);
    if (has_data && spec.zeros) {
      for (std::uint64_t left = spec.zeros; left > 0;) {
        std::size_t n = left < block.size() ? static_cast<std::size_t>(left) : block.size();
        ASSERT_EQ(archive_write_data(a, block.data(), n), static_cast<la_ssize_t>(n));
        left -= n;
      }
    } else if (has_data && !spec.data.empty()) {
      ASSERT_EQ(archive_write_data(a, spec.data.data(), spec.data.size()),
                static_cast<la_ssize_t>(spec.data.size()));
    }
    archive_entry_free(e);
  }
  ASSERT_EQ(archive_write_close(a), ARCHIVE_OK) << archive_error_string(a);
  archive_write_free(a);
}

class ArchiveUnpackerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ecm-unpacker-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "cache" / "out");
    target_ = dir_ / "cache" / "out";
    archive_ = dir_ / "resource.archive";
  }
  void TearDown() override { fs::remove_all(dir_); }

  ecm::sdk::Result<UnpackStats> unpack(ArchiveFormat format = ArchiveFormat::kAuto,
                                       UnpackLimits limits = UnpackLimits{1 << 20, 100}) {
    return unpack_archive(archive_, target_, format, limits);
  }
  // Builds the archive and unpacks it; the unpack must fail and leave the target empty, and
  // nothing may have appeared next to the target either.
  std::string refused(Kind kind, const std::vector<Entry>& entries) {
    write_archive(archive_, kind, entries);
    auto r = unpack();
    EXPECT_FALSE(r.ok());
    if (r.ok()) return "";
    EXPECT_EQ(r.error().kind, ecm::sdk::ErrorKind::kInvalidRequest) << r.error().message;
    EXPECT_TRUE(fs::is_empty(target_)) << r.error().message;
    EXPECT_EQ(names(dir_ / "cache"), std::vector<std::string>{"out"}) << r.error().message;
    return r.error().message;
  }
  static std::vector<std::string> names(const fs::path& d) {
    std::vector<std::string> v;
    for (const auto& e : fs::directory_iterator(d))
      v.push_back(e.path().filename().string());
    return v;
  }
  static std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }
  static unsigned mode_of(const fs::path& p) {
    struct stat st {};
    EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
    return st.st_mode & 07777;
  }

  fs::path dir_;
  fs::path target_;
  fs::path archive_;
};

// Sets the umask for one test: modes must not depend on the daemon's.
class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t m) : old_(::umask(m)) {}
  ~ScopedUmask() { ::umask(old_); }

 private:
  mode_t old_;
};

TEST_F(ArchiveUnpackerTest, TarGzUnpacksNestedDirsExecutableAndInTreeLinks) {
  ScopedUmask umask(077);
  write_archive(
      archive_, Kind::kTarGz,
      {dir("top/"), file("top/a/b/c.txt", "hello\n"),
       file("top/bin/run.sh", "#!/bin/sh\necho hi\n", 0750), file("top/bin/suid", "x", 04755),
       symlink("top/link", "a/b/c.txt"), symlink("top/a/b/up", "../../bin/run.sh"),
       hardlink("top/hard", "top/a/b/c.txt"), dir("top/a/"), file("./top/./dot", "d")});
  auto r = unpack(ArchiveFormat::kTarGz);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(read(target_ / "top/a/b/c.txt"), "hello\n");
  EXPECT_EQ(read(target_ / "top/bin/run.sh"), "#!/bin/sh\necho hi\n");
  EXPECT_EQ(read(target_ / "top/dot"), "d");
  EXPECT_EQ(mode_of(target_ / "top/a/b/c.txt"), 0644u);
  EXPECT_EQ(mode_of(target_ / "top/bin/run.sh"), 0755u) << "exec bit kept, group/other opened";
  EXPECT_EQ(mode_of(target_ / "top/bin/suid"), 0755u) << "setuid stripped";
  EXPECT_EQ(mode_of(target_ / "top"), 0755u);
  EXPECT_EQ(mode_of(target_ / "top/a/b"), 0755u) << "an implied dir, despite umask 077";
  EXPECT_EQ(fs::read_symlink(target_ / "top/link"), "a/b/c.txt");
  EXPECT_EQ(read(target_ / "top/link"), "hello\n");
  EXPECT_EQ(read(target_ / "top/a/b/up"), "#!/bin/sh\necho hi\n");
  EXPECT_TRUE(fs::equivalent(target_ / "top/hard", target_ / "top/a/b/c.txt"));
  EXPECT_FALSE(fs::is_symlink(target_ / "top/hard"));
  EXPECT_EQ(r.value().entries, 9u);
  EXPECT_EQ(r.value().files, 4u);
  EXPECT_EQ(r.value().bytes, 6u + 18u + 1u + 1u);
}

TEST_F(ArchiveUnpackerTest, ZipUnpacksNestedDirsExecutableAndInTreeSymlink) {
  write_archive(archive_, Kind::kZip,
                {dir("app/"), file("app/lib/deep/x.py", "print(1)\n"),
                 file("app/run", "#!/bin/sh\n", 0755), symlink("app/cur", "lib/deep")});
  auto r = unpack(ArchiveFormat::kZip);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(read(target_ / "app/lib/deep/x.py"), "print(1)\n");
  EXPECT_EQ(mode_of(target_ / "app/lib/deep/x.py"), 0644u);
  EXPECT_EQ(mode_of(target_ / "app/run"), 0755u);
  EXPECT_EQ(mode_of(target_ / "app/lib"), 0755u);
  EXPECT_EQ(fs::read_symlink(target_ / "app/cur"), "lib/deep");
  EXPECT_EQ(read(target_ / "app/cur/x.py"), "print(1)\n");
  EXPECT_EQ(r.value().files, 2u);
}

TEST_F(ArchiveUnpackerTest, AutoDetectsZipTarAndTarGzButAFixedFormatRefusesAnother) {
  for (Kind kind : {Kind::kZip, Kind::kTar, Kind::kTarGz}) {
    write_archive(archive_, kind, {file("f", "content")});
    auto r = unpack(ArchiveFormat::kAuto);
    ASSERT_TRUE(r.ok()) << static_cast<int>(kind) << ": " << r.error().message;
    EXPECT_EQ(read(target_ / "f"), "content");
    fs::remove(target_ / "f");
  }
  write_archive(archive_, Kind::kZip, {file("f", "content")});
  auto r = unpack(ArchiveFormat::kTarGz);
  ASSERT_FALSE(r.ok()) << "a zip is not a tar.gz";
  EXPECT_TRUE(fs::is_empty(target_));
}

TEST_F(ArchiveUnpackerTest, DotDotEntryRefusedAndNothingLeft) {
  std::string m = refused(Kind::kTarGz, {file("ok/first", "written before"), file("../evil", "x")});
  EXPECT_NE(m.find("'../evil'"), std::string::npos) << m;
  EXPECT_NE(m.find("path has a '..' component"), std::string::npos) << m;
  EXPECT_FALSE(fs::exists(dir_ / "cache" / "evil"));

  m = refused(Kind::kZip, {file("a/../../evil", "x")});
  EXPECT_NE(m.find("'a/../../evil': path has a '..' component"), std::string::npos) << m;
  EXPECT_FALSE(fs::exists(dir_ / "cache" / "evil"));

  // Even one that would stay inside: '..' is never needed in a well-made archive.
  m = refused(Kind::kTar, {file("a/../b", "x")});
  EXPECT_NE(m.find("path has a '..' component"), std::string::npos) << m;
}

TEST_F(ArchiveUnpackerTest, AbsolutePathRefused) {
  fs::path outside = dir_ / "absolute-x";
  std::string m = refused(Kind::kTarGz, {file("fine", "1"), file(outside.string(), "x")});
  EXPECT_NE(m.find("is absolute"), std::string::npos) << m;
  EXPECT_NE(m.find(outside.string()), std::string::npos) << m;
  EXPECT_FALSE(fs::exists(outside));
}

TEST_F(ArchiveUnpackerTest, SymlinkToAbsolutePathThenThroughItRefused) {
  std::string m = refused(Kind::kTarGz, {symlink("link", "/etc"), file("link/passwd", "root::0")});
  EXPECT_NE(m.find("'link'"), std::string::npos) << m;
  EXPECT_NE(m.find("absolute path '/etc'"), std::string::npos) << m;
}

TEST_F(ArchiveUnpackerTest, EntryThroughAnInTreeSymlinkRefused) {
  // The link itself is fine; writing through it is not (it could have pointed anywhere).
  std::string m = refused(Kind::kTar, {dir("sub/"), symlink("inner", "sub"), file("inner/f", "x")});
  EXPECT_NE(m.find("'inner/f'"), std::string::npos) << m;
  EXPECT_NE(m.find("goes through the symlink 'inner'"), std::string::npos) << m;
}

TEST_F(ArchiveUnpackerTest, SymlinkUpOutsideRefused) {
  std::string m = refused(Kind::kTarGz, {symlink("up", "../..")});
  EXPECT_NE(m.find("'up'"), std::string::npos) << m;
  EXPECT_NE(m.find("points outside the target"), std::string::npos) << m;
  // One level deeper, one level too many.
  m = refused(Kind::kZip, {symlink("d/e/up", "../../../x")});
  EXPECT_NE(m.find("points outside the target"), std::string::npos) << m;
}

TEST_F(ArchiveUnpackerTest, SymlinkEscapingThroughAnotherSymlinkRefusedInEitherOrder) {
  // d/l -> .. is the target itself, and e -> d/l/.. reads as "d" lexically, but really is the
  // target's parent: the second link goes through the first.
  std::string m = refused(Kind::kTar, {symlink("d/l", ".."), symlink("e", "d/l/..")});
  EXPECT_NE(m.find("'e'"), std::string::npos) << m;
  EXPECT_NE(m.find("goes through the symlink 'd/l'"), std::string::npos) << m;

  m = refused(Kind::kTar, {symlink("e", "d/l/.."), symlink("d/l", "..")});
  EXPECT_NE(m.find("'d/l'"), std::string::npos) << m;
  EXPECT_NE(m.find("earlier symlink's target goes through it"), std::string::npos) << m;
}

TEST_F(ArchiveUnpackerTest, HardLinkOutsideOrToANonFileRefused) {
  std::string m = refused(Kind::kTarGz, {hardlink("h", "/etc/passwd")});
  EXPECT_NE(m.find("'h'"), std::string::npos) << m;
  EXPECT_NE(m.find("hard link target is absolute"), std::string::npos) << m;

  m = refused(Kind::kTarGz, {file("f", "x"), hardlink("h", "../outside")});
  EXPECT_NE(m.find("hard link target has a '..' component"), std::string::npos) << m;

  m = refused(Kind::kTarGz, {symlink("s", "f"), hardlink("h", "s")});
  EXPECT_NE(m.find("not a file extracted earlier"), std::string::npos) << m;

  m = refused(Kind::kTarGz, {hardlink("h", "later"), file("later", "x")});
  EXPECT_NE(m.find("not a file extracted earlier"), std::string::npos) << m;
}

TEST_F(ArchiveUnpackerTest, DeviceFifoAndSocketEntriesRefused) {
  std::string m = refused(Kind::kTarGz, {file("a", "1"), special("dev/null", AE_IFCHR)});
  EXPECT_NE(m.find("'dev/null'"), std::string::npos) << m;
  EXPECT_NE(m.find("character devices are refused"), std::string::npos) << m;
  m = refused(Kind::kTar, {special("blk", AE_IFBLK)});
  EXPECT_NE(m.find("block devices"), std::string::npos) << m;
  m = refused(Kind::kTar, {special("pipe", AE_IFIFO)});
  EXPECT_NE(m.find("fifos"), std::string::npos) << m;
}

TEST_F(ArchiveUnpackerTest, ExpansionPastMaxTotalBytesRefused) {
  write_archive(archive_, Kind::kTarGz, {file("small", "x"), zeros("bomb", 10 << 20)});
  ASSERT_LT(fs::file_size(archive_), 100u << 10) << "10 MiB of zeros compresses to little";
  auto r = unpack(ArchiveFormat::kTarGz, UnpackLimits{1 << 20, 100});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("'bomb'"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("past the limit of 1048576 bytes"), std::string::npos)
      << r.error().message;
  EXPECT_TRUE(fs::is_empty(target_));

  // The bound is on the total, not per file; exactly the bound is allowed.
  write_archive(archive_, Kind::kTarGz, {zeros("a", 600 << 10), zeros("b", 600 << 10)});
  r = unpack(ArchiveFormat::kTarGz, UnpackLimits{1 << 20, 100});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("'b'"), std::string::npos) << r.error().message;
  EXPECT_TRUE(fs::is_empty(target_));
  r = unpack(ArchiveFormat::kTarGz, UnpackLimits{1200 << 10, 100});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().bytes, 1200u << 10);
}

// Overwrites every 4-byte little-endian `from` at the given offset after each `signature`.
int patch_u32(std::string& bytes, const std::string& signature, std::size_t offset,
              std::uint32_t from, std::uint32_t to) {
  int patched = 0;
  for (std::size_t at = bytes.find(signature); at != std::string::npos;
       at = bytes.find(signature, at + 1)) {
    std::size_t p = at + offset;
    if (p + 4 > bytes.size()) continue;
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i)
      v = (v << 8) | static_cast<unsigned char>(bytes[p + i]);
    if (v != from) continue;
    for (int i = 0; i < 4; ++i)
      bytes[p + i] = static_cast<char>((to >> (8 * i)) & 0xff);
    ++patched;
  }
  return patched;
}

TEST_F(ArchiveUnpackerTest, SizeIsCountedWhileWritingNotTakenFromTheHeader) {
  // A zip whose headers claim 100 bytes for 10 MiB of deflated zeros.
  const std::uint32_t real = 10 << 20;
  write_archive(archive_, Kind::kZip, {zeros("liar", real)});
  std::string bytes = read(archive_);
  int n = patch_u32(bytes, std::string("PK\x01\x02", 4), 24, real, 100);  // central directory
  ASSERT_EQ(n, 1);
  patch_u32(bytes, std::string("PK\x03\x04", 4), 22, real, 100);  // local header, if it has it
  patch_u32(bytes, std::string("PK\x07\x08", 4), 12, real, 100);  // data descriptor, if any
  std::ofstream(archive_, std::ios::binary | std::ios::trunc) << bytes;

  auto r = unpack(ArchiveFormat::kZip, UnpackLimits{1 << 20, 100});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("past the limit of 1048576 bytes"), std::string::npos)
      << "the bound, not libarchive's size check at the end: " << r.error().message;
  EXPECT_TRUE(fs::is_empty(target_));
}

TEST_F(ArchiveUnpackerTest, MaxEntriesExceededRefused) {
  std::vector<Entry> five;
  for (int i = 0; i < 5; ++i)
    five.push_back(file("f" + std::to_string(i), "x"));
  write_archive(archive_, Kind::kTar, five);
  auto r = unpack(ArchiveFormat::kTar, UnpackLimits{1 << 20, 4});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("'f4'"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("more than 4 entries"), std::string::npos) << r.error().message;
  EXPECT_TRUE(fs::is_empty(target_));

  r = unpack(ArchiveFormat::kTar, UnpackLimits{1 << 20, 5});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().entries, 5u);
}

TEST_F(ArchiveUnpackerTest, DuplicateEntryRefused) {
  std::string m = refused(Kind::kTar, {file("a", "first"), file("a", "second")});
  EXPECT_NE(m.find("duplicate entry"), std::string::npos) << m;
  // A file replaced by a link would let a later hard link or reader go elsewhere.
  m = refused(Kind::kTar, {file("a", "first"), symlink("a", "b")});
  EXPECT_NE(m.find("duplicate entry"), std::string::npos) << m;
}

TEST_F(ArchiveUnpackerTest, TruncatedOrCorruptArchiveIsAnErrorNotACrash) {
  std::string random(1 << 20, '\0');
  std::mt19937 rng(42);
  for (auto& c : random)
    c = static_cast<char>(rng());
  write_archive(archive_, Kind::kTarGz, {file("first", "ok"), file("big", random)});
  std::string bytes = read(archive_);
  std::ofstream(archive_, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() / 2);
  auto r = unpack(ArchiveFormat::kTarGz);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ecm::sdk::ErrorKind::kInvalidRequest) << r.error().message;
  EXPECT_NE(r.error().message.find("'big'"), std::string::npos) << r.error().message;
  EXPECT_TRUE(fs::is_empty(target_)) << "'first' was written, then removed";

  write_archive(archive_, Kind::kZip, {file("first", "ok"), file("big", random)});
  bytes = read(archive_);
  std::ofstream(archive_, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() / 2);
  r = unpack(ArchiveFormat::kZip);
  ASSERT_FALSE(r.ok()) << "a zip without its central directory";
  EXPECT_TRUE(fs::is_empty(target_));

  std::ofstream(archive_, std::ios::binary | std::ios::trunc) << random.substr(0, 4096);
  for (auto format : {ArchiveFormat::kAuto, ArchiveFormat::kZip, ArchiveFormat::kTarGz}) {
    r = unpack(format);
    ASSERT_FALSE(r.ok()) << "random bytes";
    EXPECT_TRUE(fs::is_empty(target_));
  }
}

TEST_F(ArchiveUnpackerTest, TargetMustExistAndBeEmpty) {
  write_archive(archive_, Kind::kTarGz, {file("f", "x")});
  std::ofstream(target_ / "keep") << "not ours";
  auto r = unpack();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not empty"), std::string::npos) << r.error().message;
  EXPECT_EQ(read(target_ / "keep"), "not ours") << "what was there is left alone";
  EXPECT_EQ(names(target_), std::vector<std::string>{"keep"});

  r = unpack_archive(archive_, dir_ / "missing", ArchiveFormat::kAuto, UnpackLimits{1 << 20, 10});
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(fs::exists(dir_ / "missing"));
}

}  // namespace
