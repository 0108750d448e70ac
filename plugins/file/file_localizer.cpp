// The `file` localizer: copies a file:// resource (a local or shared file system: NFS, CephFS...)
// into the staging file the host names. The ECM reads as root, so:
//  - only files under the configured `roots` are served: the file actually opened (its
//    /proc/self/fd link, so a path swapped between check and open changes nothing) must lie under
//    one, else it is refused as if it did not exist;
//  - when the ECM runs as root and the engine's user exists, the file is opened with that user's
//    file-system identity (setfsuid/setfsgid, this thread only): a user gets only what they could
//    read themselves.
#include <ecm/sdk/sdk.hpp>

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using namespace ecm::sdk;
namespace fs = std::filesystem;

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The path of "file:///a/b%20c" ("file:/a/b c" too); empty when it is not a local absolute path.
std::string path_of(const std::string& uri) {
  std::string rest = uri.substr(uri.find(':') + 1);
  if (rest.rfind("///", 0) == 0) {
    rest = rest.substr(2);
  } else if (rest.rfind("//localhost/", 0) == 0) {
    rest = rest.substr(11);
  } else if (rest.rfind("//", 0) == 0) {
    return "";  // another host: not ours to read
  }
  std::string out;
  for (std::size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] == '%' && i + 2 < rest.size() && hex(rest[i + 1]) >= 0 && hex(rest[i + 2]) >= 0) {
      out += static_cast<char>(hex(rest[i + 1]) * 16 + hex(rest[i + 2]));
      i += 2;
    } else if (rest[i] == '?' || rest[i] == '#') {
      break;
    } else {
      out += rest[i];
    }
  }
  if (out.empty() || out[0] != '/' || out.find('\0') != std::string::npos) return "";
  return out;
}

// Opens files as `user` for as long as it lives (the calling thread's fsuid/fsgid), when the ECM
// is root and the user exists; otherwise changes nothing.
class ActAs {
 public:
  explicit ActAs(const std::string& user) {
    if (::geteuid() != 0 || user.empty()) return;
    struct passwd pw {};
    struct passwd* found = nullptr;
    std::vector<char> buf(16384);
    if (::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || !found) return;
    // The raw calls: glibc's wrappers would apply them to every thread of the ECM.
    old_gid_ = static_cast<gid_t>(::syscall(SYS_setfsgid, pw.pw_gid));
    old_uid_ = static_cast<uid_t>(::syscall(SYS_setfsuid, pw.pw_uid));
    active_ = true;
  }
  ~ActAs() {
    if (!active_) return;
    ::syscall(SYS_setfsuid, old_uid_);
    ::syscall(SYS_setfsgid, old_gid_);
  }
  ActAs(const ActAs&) = delete;
  ActAs& operator=(const ActAs&) = delete;

 private:
  bool active_ = false;
  uid_t old_uid_ = 0;
  gid_t old_gid_ = 0;
};

class FileLocalizer final : public ResourceLocalizer {
 public:
  explicit FileLocalizer(std::vector<fs::path> roots) : roots_(std::move(roots)) {}

  std::vector<std::string> schemes() const override { return {"file"}; }

  Result<FetchResult> fetch(const FetchRequest& request, FetchProgress& progress) const override {
    const std::string path = path_of(request.uri);
    if (path.empty()) return invalid_request("not a local absolute file:// URI");
    std::error_code ec;
    // A first look at the path (no open of a device outside the roots)...
    if (!under_roots(fs::canonical(path, ec)) || ec) {
      return not_found("no such file under the allowed roots: " + path);
    }
    int in = -1;
    {
      ActAs as(request.user);
      // O_NONBLOCK: a FIFO placed under the roots must not hang the fetch (refused below).
      in = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    }
    if (in < 0) {
      return not_found("no such file under the allowed roots: " + path);
    }
    // ...then the truth: what was opened, not what the path said a moment ago.
    const fs::path real = fs::read_symlink("/proc/self/fd/" + std::to_string(in), ec);
    if (ec || !under_roots(real)) {
      // Outside the roots looks the same as missing: a caller learns nothing of other files.
      ::close(in);
      return not_found("no such file under the allowed roots: " + path);
    }
    struct stat st {};
    if (::fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(in);
      return invalid_request(path + " is not a regular file");
    }
    const int out = ::open(request.destination.c_str(),
                           O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
      const int e = errno;
      ::close(in);
      return internal_error("cannot create the staging file: " + std::string(std::strerror(e)));
    }
    const auto total = static_cast<std::uint64_t>(st.st_size);
    std::uint64_t done = 0;
    std::vector<char> buffer(1 << 20);
    std::string error;
    for (;;) {
      if (progress.cancelled()) {
        error = "cancelled";
        break;
      }
      const ssize_t n = ::read(in, buffer.data(), buffer.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        error = "read " + path + ": " + std::strerror(errno);
        break;
      }
      if (n == 0) break;
      for (ssize_t off = 0; off < n;) {
        const ssize_t w = ::write(out, buffer.data() + off, static_cast<std::size_t>(n - off));
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
          error = "write the staging file: " + std::string(std::strerror(errno));
          break;
        }
        off += w;
      }
      if (!error.empty()) break;
      done += static_cast<std::uint64_t>(n);
      progress.progress(done, total);
    }
    ::close(in);
    if (::close(out) != 0 && error.empty())
      error = "close the staging file: " + std::string(std::strerror(errno));
    if (!error.empty()) return internal_error(error);
    FetchResult r;
    r.bytes = done;
    r.resolved = real.string();
    return r;
  }

 private:
  bool under_roots(const fs::path& real) const {
    for (const auto& root : roots_) {
      auto rel = real.lexically_relative(root);
      if (!rel.empty() && *rel.begin() != ".." && rel.is_relative()) return true;
    }
    return false;
  }

  std::vector<fs::path> roots_;
};

ResourceLocalizer* create_localizer(const PluginConfig& config) {
  for (const auto& [key, value] : config.values) {
    (void)value;
    throw std::invalid_argument("unknown key '" + key + "' (known: roots)");
  }
  for (const auto& [key, value] : config.lists) {
    (void)value;
    if (key != "roots") throw std::invalid_argument("unknown key '" + key + "' (known: roots)");
  }
  std::vector<fs::path> roots;
  for (const auto& r : config.list("roots")) {
    if (r.empty() || r[0] != '/') {
      throw std::invalid_argument("roots: '" + r + "' is not an absolute path");
    }
    std::error_code ec;
    auto real = fs::weakly_canonical(r, ec);
    roots.push_back(ec ? fs::path(r) : real);
  }
  if (roots.empty()) {
    throw std::invalid_argument(
        "roots is required: the directories file:// resources may come from");
  }
  return new FileLocalizer(std::move(roots));
}

const PluginDescriptor kDescriptor{
    ECM_SDK_DESCRIPTOR_HEAD, "file", "1.0.0", kLocalizerKind, nullptr, nullptr, nullptr,
    &create_localizer};

}  // namespace

ECM_PLUGIN(kDescriptor)
