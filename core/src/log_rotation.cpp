#include "ecm/core/log_rotation.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <system_error>
#include <utility>
#include <vector>

namespace ecm::core {
namespace {

// Rounds of "copy what arrived since the last copy" before the final copy and the truncate: the
// file may grow while it is copied; each round copies only the growth of the previous one, so a
// few rounds bring the last, unprotected copy down to a handful of bytes.
constexpr int kCatchUpRounds = 8;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_;
};

[[noreturn]] void fail(const std::string& what, const std::string& name) {
  const int err = errno;
  throw std::system_error(err, std::generic_category(), what + " " + name);
}

std::string numbered(const std::string& name, int k) {
  return name + "." + std::to_string(k);
}

std::uint64_t size_of(int fd, const std::string& name) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail("cannot stat", name);
  return static_cast<std::uint64_t>(st.st_size);
}

// Copies [offset, offset + len) of `in` to the same offset of `out`; returns the bytes copied
// (fewer when `in` was cut short meanwhile). In the kernel when it can (copy_file_range), else
// through a buffer.
std::uint64_t copy_range(int in, int out, std::uint64_t offset, std::uint64_t len,
                         const std::string& name) {
  std::uint64_t done = 0;
  bool in_kernel = true;
  std::vector<char> buf;
  while (done < len) {
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(len - done, 1u << 30));
    ssize_t n = 0;
    if (in_kernel) {
      loff_t off_in = static_cast<loff_t>(offset + done);
      loff_t off_out = off_in;
      n = ::copy_file_range(in, &off_in, out, &off_out, want, 0);
      if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) {
        in_kernel = false;
        continue;
      }
    } else {
      if (buf.empty()) buf.resize(256 * 1024);
      n = ::pread(in, buf.data(), std::min(want, buf.size()), static_cast<off_t>(offset + done));
      if (n > 0) {
        std::size_t written = 0;
        while (written < static_cast<std::size_t>(n)) {
          ssize_t w = ::pwrite(out, buf.data() + written, static_cast<std::size_t>(n) - written,
                               static_cast<off_t>(offset + done + written));
          if (w < 0 && errno == EINTR) continue;
          if (w < 0) fail("cannot write the rotated copy of", name);
          written += static_cast<std::size_t>(w);
        }
      }
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("cannot copy", name);
    if (n == 0) break;  // the file is shorter than it was: someone else truncated it
    done += static_cast<std::uint64_t>(n);
  }
  return done;
}

// Removes the temp file unless release()d (it was renamed into place).
class TempGuard {
 public:
  TempGuard(int dir, std::string name) : dir_(dir), name_(std::move(name)) {}
  ~TempGuard() {
    if (!name_.empty()) ::unlinkat(dir_, name_.c_str(), 0);
  }
  TempGuard(const TempGuard&) = delete;
  TempGuard& operator=(const TempGuard&) = delete;
  void release() { name_.clear(); }

 private:
  int dir_;
  std::string name_;
};

// Cuts `copy` (of `length` bytes) back to just after its last '\n' when it ends inside a line,
// looking back at most kLineSearchBytes; returns its new length. The last copy can end mid-line
// even when the engine writes whole lines in single write() calls: a reader may see a write that
// spans pages half done, and the ftruncate then drops the rest. Without a newline near the end the
// stream is not line-oriented and the copy is left as it is.
constexpr std::uint64_t kLineSearchBytes = 64 * 1024;

std::uint64_t trim_to_line_end(int copy, std::uint64_t length, const std::string& name) {
  if (length == 0) return 0;
  const std::uint64_t span = std::min(length, kLineSearchBytes);
  std::vector<char> tail(static_cast<std::size_t>(span));
  const off_t from = static_cast<off_t>(length - span);
  std::size_t got = 0;
  while (got < tail.size()) {
    const ssize_t n =
        ::pread(copy, tail.data() + got, tail.size() - got, from + static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("cannot read back the rotated copy of", name);
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got != tail.size() || tail.back() == '\n') return length;
  const auto last = std::find(tail.rbegin(), tail.rend(), '\n');
  if (last == tail.rend()) return length;
  const std::uint64_t keep = length - static_cast<std::uint64_t>(last - tail.rbegin());
  if (::ftruncate(copy, static_cast<off_t>(keep)) != 0)
    fail("cannot trim the rotated copy of", name);
  return keep;
}

void unlink_if_present(int dir, const std::string& name) {
  if (::unlinkat(dir, name.c_str(), 0) != 0 && errno != ENOENT) fail("cannot remove", name);
}

}  // namespace

bool rotate_if_larger_at(int dir, const std::string& name, std::uint64_t max_bytes, int keep) {
  if (keep < 0 || keep > kMaxRotatedLogFiles) {
    throw std::invalid_argument("keep must be 0.." + std::to_string(kMaxRotatedLogFiles));
  }
  // O_RDWR for the ftruncate; O_NONBLOCK so a FIFO put in its place cannot hang us (refused below).
  Fd live(::openat(dir, name.c_str(), O_RDWR | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC));
  if (!live) {
    if (errno == ENOENT) return false;
    fail("cannot open", name);
  }
  struct stat st {};
  if (::fstat(live.get(), &st) != 0) fail("cannot stat", name);
  if (!S_ISREG(st.st_mode)) throw std::runtime_error(name + " is not a regular file");
  // A hard link to another file (one the engine's user could not write) must not be truncated.
  if (st.st_nlink != 1) {
    throw std::runtime_error(name + " has " + std::to_string(st.st_nlink) +
                             " hard links; not truncating it");
  }
  if (static_cast<std::uint64_t>(st.st_size) <= max_bytes) return false;

  // Leftovers beyond the bound (keep was lowered, or a rotation died half-way).
  for (int k = keep + 1; k <= kMaxRotatedLogFiles + 1; ++k) {
    if (::unlinkat(dir, numbered(name, k).c_str(), 0) != 0) {
      if (errno == ENOENT) break;
      fail("cannot remove", numbered(name, k));
    }
  }
  if (keep == 0) {
    if (::ftruncate(live.get(), 0) != 0) fail("cannot truncate", name);
    return true;
  }

  // The copy goes to a temp file first so NAME.1 never shows a half-made file under its name.
  const std::string tmp = "." + name + ".rotating";
  unlink_if_present(dir, tmp);  // a rotation that died half-way
  Fd copy(::openat(dir, tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!copy) fail("cannot create", tmp);
  TempGuard guard(dir, tmp);
  // Engines may run as another user: the copy is theirs as the live file is (mode after owner:
  // fchown may clear mode bits).
  if ((st.st_uid != ::geteuid() || st.st_gid != ::getegid()) &&
      ::fchown(copy.get(), st.st_uid, st.st_gid) != 0) {
    fail("cannot give the owner of", name + " to " + tmp);
  }
  if (::fchmod(copy.get(), st.st_mode & 0777) != 0) fail("cannot set the mode of", tmp);

  // The bulk copy.
  std::uint64_t copied = copy_range(live.get(), copy.get(), 0, size_of(live.get(), name), name);

  // Shift NAME.(keep-1) -> NAME.keep ... NAME.1 -> NAME.2 (the rename replaces NAME.keep), then
  // the copy becomes NAME.1. Done before the catch-up, so no rename stands in the loss window.
  for (int k = keep - 1; k >= 1; --k) {
    if (::renameat(dir, numbered(name, k).c_str(), dir, numbered(name, k + 1).c_str()) != 0 &&
        errno != ENOENT) {
      fail("cannot rename", numbered(name, k));
    }
  }
  if (::renameat(dir, tmp.c_str(), dir, numbered(name, 1).c_str()) != 0) {
    fail("cannot rename " + tmp + " to", numbered(name, 1));
  }
  guard.release();

  // Catch up with what the engine wrote meanwhile: each round copies the previous one's growth,
  // so it shrinks to what arrives during the copy of a few lines.
  for (int round = 0; round < kCatchUpRounds; ++round) {
    const auto size = size_of(live.get(), name);
    if (size <= copied) break;
    copied += copy_range(live.get(), copy.get(), copied, size - copied, name);
  }
  // The loss window: what the engine writes after this fstat and before the ftruncate is lost.
  // Only the copy of the last round's growth stands between the two.
  const auto size = size_of(live.get(), name);
  if (size > copied) copied += copy_range(live.get(), copy.get(), copied, size - copied, name);
  if (::ftruncate(live.get(), 0) != 0) fail("cannot truncate", name);
  trim_to_line_end(copy.get(), copied, name);
  return true;
}

bool rotate_if_larger(const std::filesystem::path& path, std::uint64_t max_bytes, int keep) {
  const auto parent = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  Fd dir(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) {
    if (errno == ENOENT) return false;
    fail("cannot open the directory", parent.string());
  }
  return rotate_if_larger_at(dir.get(), path.filename().string(), max_bytes, keep);
}

}  // namespace ecm::core
