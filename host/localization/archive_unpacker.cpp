#include "localization/archive_unpacker.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

// libarchive reads; the writing is ours. archive_write_disk resolves entry paths against the
// process's working dir, which a multi-threaded daemon cannot chdir for one archive (and its
// NOABSOLUTEPATHS flag then refuses the absolute paths we would have to give it instead). So every
// file is made with *at() calls under an fd of the target, with O_NOFOLLOW and O_EXCL as a second
// line behind the checks below, which are what produce the error message.

namespace ecm::host {
namespace {

namespace fs = std::filesystem;
using sdk::ErrorKind;

// Longer paths could not be opened by the engine anyway; the bound also caps the work per entry.
constexpr std::size_t kMaxPath = 4095;
constexpr std::size_t kMaxNameShown = 200;

// How an unpack fails; thrown inside, returned as an sdk::Error at the top.
struct Failure {
  ErrorKind kind;
  std::string message;
};

// A name from the archive as it appears in a message: bounded, control bytes escaped.
std::string shown(std::string_view name) {
  std::string out;
  for (char c : name.substr(0, kMaxNameShown)) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", u);
      out += hex;
    } else {
      out += c;
    }
  }
  if (name.size() > kMaxNameShown) out += "...";
  return out;
}

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  // Closes now; false (errno set) when close reports a write error.
  bool close() { return ::close(std::exchange(fd_, -1)) == 0; }

 private:
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int fd_;
};

std::string join(const std::vector<std::string>& parts, std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    if (i) s += '/';
    s += parts[i];
  }
  return s;
}

// Splits on '/', dropping empty and "." components.
std::vector<std::string> split(std::string_view path) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view part = path.substr(start, slash - start);
    if (!part.empty() && part != ".") parts.emplace_back(part);
    start = slash + 1;
  }
  return parts;
}

class Unpacker {
 public:
  Unpacker(int root, const UnpackLimits& limits) : root_(root), limits_(limits) {}

  void unpack(archive* a, const std::string& archive_name) {
    archive_entry* e = nullptr;
    while (true) {
      name_.clear();
      int r = archive_read_next_header(a, &e);
      if (r == ARCHIVE_EOF) return;
      if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
        throw Failure{ErrorKind::kInvalidRequest,
                      "archive " + archive_name + ": cannot read entry " +
                          std::to_string(stats_.entries + 1) + ": " + archive_message(a)};
      }
      entry(a, e);
    }
  }

  const UnpackStats& stats() const { return stats_; }

 private:
  enum class Kind { kDir, kFile, kSymlink };

  [[noreturn]] void refuse(const std::string& reason) const {
    throw Failure{ErrorKind::kInvalidRequest, "archive entry '" + shown(name_) + "': " + reason};
  }
  // A system call failed: the archive's fault for the errors its names cause, else the host's.
  [[noreturn]] void sys_fail(const std::string& what) const {
    int err = errno;
    bool archive_fault =
        err == ENAMETOOLONG || err == EEXIST || err == ELOOP || err == ENOTDIR || err == EISDIR;
    throw Failure{archive_fault ? ErrorKind::kInvalidRequest : ErrorKind::kInternal,
                  "archive entry '" + shown(name_) + "': " + what + ": " + std::strerror(err)};
  }
  static std::string archive_message(archive* a) {
    const char* m = archive_error_string(a);
    return m ? m : "unknown libarchive error";
  }

  // The components of a path named by the archive, which must stay under the target.
  std::vector<std::string> relative_parts(std::string_view path, const std::string& what) const {
    if (path.size() > kMaxPath)
      refuse(what + " longer than " + std::to_string(kMaxPath) + " bytes");
    if (!path.empty() && path.front() == '/') refuse(what + " is absolute");
    std::vector<std::string> parts = split(path);
    for (const auto& p : parts) {
      if (p == "..") refuse(what + " has a '..' component");
    }
    return parts;
  }

  // No entry may be made through a symlink: its resolved place would be wherever the link points.
  void check_not_through_symlink(const std::vector<std::string>& parts) const {
    std::string prefix;
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
      prefix += (i ? "/" : "") + parts[i];
      auto it = made_.find(prefix);
      if (it != made_.end() && it->second == Kind::kSymlink) {
        refuse("path goes through the symlink '" + shown(it->first) + "'");
      }
    }
  }

  void count_entry() {
    if (++stats_.entries > limits_.max_entries) {
      refuse("the archive has more than " + std::to_string(limits_.max_entries) + " entries");
    }
  }

  void count_bytes(std::uint64_t n) {
    if (n > limits_.max_total_bytes - stats_.bytes) refuse_too_big();
    stats_.bytes += n;
  }
  [[noreturn]] void refuse_too_big() const {
    refuse("the archive expands past the limit of " + std::to_string(limits_.max_total_bytes) +
           " bytes");
  }

  // Opens dir `name` under `parent`, without following a symlink there.
  Fd open_dir(int parent, const std::string& name) const {
    Fd fd(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (fd.get() < 0) sys_fail("cannot open dir '" + shown(name) + "'");
    return fd;
  }

  // Makes dir `name` under `parent` with mode 0755 whatever the umask.
  void make_dir(int parent, const std::string& name) const {
    if (::mkdirat(parent, name.c_str(), 0755) != 0)
      sys_fail("cannot make dir '" + shown(name) + "'");
    Fd fd = open_dir(parent, name);
    if (::fchmod(fd.get(), 0755) != 0) sys_fail("cannot chmod dir '" + shown(name) + "'");
  }

  // The dir holding the entry's last component, making the missing ones (as tar does). The last
  // one stays open: archives list the files of a dir together.
  Fd open_parent(const std::vector<std::string>& parts) {
    std::string parent = join(parts, parts.size() - 1);
    if (last_parent_fd_.get() < 0 || parent != last_parent_) {
      Fd cur(::dup(root_));
      if (cur.get() < 0) sys_fail("cannot dup the target fd");
      std::string prefix;
      for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
        prefix += (i ? "/" : "") + parts[i];
        auto it = made_.find(prefix);
        if (it == made_.end()) {
          make_dir(cur.get(), parts[i]);
          made_.emplace(prefix, Kind::kDir);
        } else if (it->second != Kind::kDir) {
          refuse("'" + shown(prefix) + "' is not a directory");
        }
        cur = open_dir(cur.get(), parts[i]);
      }
      last_parent_ = std::move(parent);
      last_parent_fd_ = std::move(cur);
    }
    Fd fd(::dup(last_parent_fd_.get()));
    if (fd.get() < 0) sys_fail("cannot dup a dir fd");
    return fd;
  }

  void entry(archive* a, archive_entry* e) {
    const char* raw = archive_entry_pathname(e);
    if (!raw) raw = archive_entry_pathname_utf8(e);
    name_ = raw ? raw : "(undecodable name)";
    count_entry();
    if (!raw) refuse("the name cannot be decoded");

    const char* hardlink = archive_entry_hardlink(e);
    if (!hardlink) hardlink = archive_entry_hardlink_utf8(e);
    mode_t type = archive_entry_filetype(e);
    if (!hardlink) {
      switch (type) {
        case AE_IFREG:
        case AE_IFDIR:
        case AE_IFLNK:
          break;
        case AE_IFCHR:
          refuse("character devices are refused");
        case AE_IFBLK:
          refuse("block devices are refused");
        case AE_IFIFO:
          refuse("fifos are refused");
        case AE_IFSOCK:
          refuse("sockets are refused");
        default:
          refuse("unknown entry type");
      }
    }

    std::vector<std::string> parts = relative_parts(name_, "path");
    if (parts.empty()) {
      if (type == AE_IFDIR && !hardlink) return;  // "./": the target itself
      refuse("empty path");
    }
    check_not_through_symlink(parts);
    std::string path = join(parts, parts.size());
    if (auto it = made_.find(path); it != made_.end()) {
      // A dir named again (or after a file in it) is common in tars and harmless.
      if (it->second == Kind::kDir && type == AE_IFDIR && !hardlink) return;
      refuse("duplicate entry: the path was extracted already");
    }

    Fd parent = open_parent(parts);
    const std::string& leaf = parts.back();
    if (hardlink) {
      make_hardlink(parent.get(), leaf, path, hardlink);
    } else if (type == AE_IFDIR) {
      make_dir(parent.get(), leaf);
      made_.emplace(path, Kind::kDir);
    } else if (type == AE_IFLNK) {
      make_symlink(e, parent.get(), leaf, parts);
    } else {
      write_file(a, e, parent.get(), leaf, path);
    }
  }

  // Counts bytes as they come: the header's size is only a hint, a wrong one is caught here.
  void write_file(archive* a, archive_entry* e, int parent, const std::string& leaf,
                  const std::string& path) {
    if (archive_entry_size_is_set(e) && archive_entry_size(e) > 0 &&
        static_cast<std::uint64_t>(archive_entry_size(e)) >
            limits_.max_total_bytes - stats_.bytes) {
      refuse_too_big();
    }
    Fd fd(
        ::openat(parent, leaf.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (fd.get() < 0) sys_fail("cannot create file");
    made_.emplace(path, Kind::kFile);

    // Sparse formats give blocks at offsets: the holes count too (a copy would fill them).
    std::uint64_t end = 0;
    while (true) {
      const void* buf = nullptr;
      std::size_t size = 0;
      la_int64_t offset = 0;
      int r = archive_read_data_block(a, &buf, &size, &offset);
      if (r == ARCHIVE_EOF) break;
      if (r != ARCHIVE_OK && r != ARCHIVE_WARN) refuse("cannot read data: " + archive_message(a));
      if (offset < 0) refuse("negative data offset");
      std::uint64_t block_end = static_cast<std::uint64_t>(offset) + size;
      if (block_end > end) {
        count_bytes(block_end - end);
        end = block_end;
      }
      const char* p = static_cast<const char*>(buf);
      off_t at = static_cast<off_t>(offset);
      while (size > 0) {
        ssize_t n = ::pwrite(fd.get(), p, size, at);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) sys_fail("cannot write");
        p += n;
        at += n;
        size -= static_cast<std::size_t>(n);
      }
    }
    // A trailing hole: the file ends where the last (possibly empty) block said.
    if (::ftruncate(fd.get(), static_cast<off_t>(end)) != 0) sys_fail("cannot set the size");
    mode_t mode = (archive_entry_perm(e) & 0111) ? 0755 : 0644;  // drops setuid/setgid/sticky
    if (::fchmod(fd.get(), mode) != 0) sys_fail("cannot chmod");
    if (!fd.close()) sys_fail("cannot write");
    ++stats_.files;
  }

  // A symlink must resolve inside the target by lexical resolution from its own dir, and that
  // resolution must be the real one: no component it walks through (as opposed to ends at) may be
  // a symlink, neither one made earlier nor one made later. A link may end at another link; that
  // one is checked on its own.
  void make_symlink(archive_entry* e, int parent, const std::string& leaf,
                    const std::vector<std::string>& parts) {
    const char* raw = archive_entry_symlink(e);
    if (!raw) raw = archive_entry_symlink_utf8(e);
    if (!raw || !*raw) refuse("symlink without a target");
    std::string target = raw;
    if (target.size() > kMaxPath) refuse("symlink target too long");
    if (target.front() == '/') refuse("symlink to the absolute path '" + shown(target) + "'");

    std::string path = join(parts, parts.size());
    std::vector<std::string> at(parts.begin(), parts.end() - 1);
    std::vector<std::string> walked;
    std::vector<std::string> steps = split(target);
    for (std::size_t i = 0; i < steps.size(); ++i) {
      if (steps[i] == "..") {
        if (at.empty()) refuse("symlink to '" + shown(target) + "' points outside the target");
        at.pop_back();
        continue;
      }
      at.push_back(steps[i]);
      if (i + 1 < steps.size()) walked.push_back(join(at, at.size()));
    }
    for (const auto& w : walked) {
      auto it = made_.find(w);
      if (w == path || (it != made_.end() && it->second == Kind::kSymlink)) {
        refuse("symlink to '" + shown(target) + "' goes through the symlink '" + shown(w) + "'");
      }
    }
    if (walked_.count(path)) {
      refuse("symlink where an earlier symlink's target goes through it");
    }
    if (::symlinkat(target.c_str(), parent, leaf.c_str()) != 0) sys_fail("cannot make symlink");
    made_.emplace(path, Kind::kSymlink);
    walked_.insert(walked.begin(), walked.end());
  }

  // Only to a regular file this archive made earlier: never outside, never a link or device.
  void make_hardlink(int parent, const std::string& leaf, const std::string& path,
                     const char* raw_target) {
    std::vector<std::string> tparts = relative_parts(raw_target, "hard link target");
    std::string tpath = join(tparts, tparts.size());
    auto it = made_.find(tpath);
    if (tparts.empty() || it == made_.end() || it->second != Kind::kFile) {
      refuse("hard link to '" + shown(raw_target) +
             "', which is not a file extracted earlier from this archive");
    }
    Fd tparent = open_parent(tparts);
    if (::linkat(tparent.get(), tparts.back().c_str(), parent, leaf.c_str(), 0) != 0) {
      sys_fail("cannot make hard link");
    }
    made_.emplace(path, Kind::kFile);
  }

  int root_;
  UnpackLimits limits_;
  UnpackStats stats_;
  std::string name_;                  // the entry being unpacked, for messages
  std::map<std::string, Kind> made_;  // every path made so far, relative to the target
  std::set<std::string> walked_;      // the paths symlink targets go through
  std::string last_parent_;           // the dir of the last entry, open as last_parent_fd_
  Fd last_parent_fd_;
};

void support(archive* a, ArchiveFormat format) {
  switch (format) {
    case ArchiveFormat::kZip:
      archive_read_support_format_zip(a);
      break;
    case ArchiveFormat::kTar:
      archive_read_support_format_tar(a);
      break;
    case ArchiveFormat::kTarGz:
      archive_read_support_format_tar(a);
      archive_read_support_filter_gzip(a);
      break;
    case ArchiveFormat::kAuto:
      archive_read_support_format_tar(a);
      archive_read_support_format_zip(a);
      archive_read_support_filter_gzip(a);
      break;
  }
}

// Removes everything under target (which was empty before); says what could not be removed.
std::string clear(const fs::path& target) {
  std::error_code ec;
  std::vector<fs::path> children;
  for (fs::directory_iterator it(target, ec), end; !ec && it != end; it.increment(ec)) {
    children.push_back(it->path());
  }
  if (ec) return "; could not list " + target.string() + ": " + ec.message();
  for (const auto& child : children) {
    fs::remove_all(child, ec);  // removes a symlink, never what it points to
    if (ec) return "; could not remove " + child.string() + ": " + ec.message();
  }
  return std::string();
}

}  // namespace

sdk::Result<UnpackStats> unpack_archive(const fs::path& archive_path, const fs::path& target,
                                        ArchiveFormat format, const UnpackLimits& limits) {
  std::error_code ec;
  if (!fs::is_regular_file(archive_path, ec)) {
    return sdk::internal_error("archive " + archive_path.string() + " is not a regular file");
  }
  Fd root(::open(target.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (root.get() < 0) {
    return sdk::internal_error("cannot open the target dir " + target.string() + ": " +
                               std::strerror(errno));
  }
  if (fs::directory_iterator(target, ec) != fs::directory_iterator() || ec) {
    return sdk::internal_error("the target dir " + target.string() + " is not empty" +
                               (ec ? ": " + ec.message() : std::string()));
  }

  std::unique_ptr<archive, decltype(&archive_read_free)> a(archive_read_new(), archive_read_free);
  if (!a) return sdk::internal_error("archive_read_new failed");
  support(a.get(), format);
  std::string name = archive_path.string();
  try {
    if (archive_read_open_filename(a.get(), archive_path.c_str(), 1 << 16) != ARCHIVE_OK) {
      const char* m = archive_error_string(a.get());
      throw Failure{ErrorKind::kInvalidRequest, "archive " + name + ": " + (m ? m : "cannot open")};
    }
    Unpacker unpacker(root.get(), limits);
    unpacker.unpack(a.get(), name);
    return unpacker.stats();
  } catch (Failure& f) {
    return sdk::Error{f.kind, f.message + clear(target)};
  } catch (const std::exception& e) {
    return sdk::internal_error("archive " + name + ": " + e.what() + clear(target));
  }
}

}  // namespace ecm::host
