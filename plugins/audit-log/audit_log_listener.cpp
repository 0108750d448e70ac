// The `audit-log` listener (SDK 1.3): appends every ECM event it hears to a file, one JSON object
// per line, and rotates the file by size. Config: conf/plugins/audit-log.toml.
//
// A line: {"seq":12,"time":"2024-05-01T10:00:00.123Z","kind":"engine_exited","engine_id":"...",
// ...} with seq, time and kind always, then each field of the event that is set (see to_json).
//
// Several writers may append to the same file at once: during a reload the old generation drains
// its queue while the new one already writes, and an administrator may point two ECMs at one file.
// Each line is therefore written with a single write(2) on an O_APPEND descriptor, so lines never
// interleave, and the size check and rotation happen under flock(2) on the current file; a writer
// whose file was renamed away by another one reopens the path before it writes.
#include <ecm/sdk/sdk.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace {

using namespace ecm::sdk;

constexpr std::uint64_t kDefaultMaxBytes = 10ull * 1024 * 1024;
constexpr unsigned kDefaultKeep = 5;
constexpr unsigned kMaxKeep = 1000;
// A writer whose file another writer rotated reopens and checks again; after this many rounds it
// writes where it is rather than loop (the line is kept, in a file that may pass max_bytes).
constexpr int kMaxAttempts = 64;
constexpr const char* kKnownKeys = "path, max_bytes, keep, fsync, kinds";

struct Settings {
  std::filesystem::path path;
  std::uint64_t max_bytes = kDefaultMaxBytes;
  unsigned keep = kDefaultKeep;
  bool fsync = false;
  std::vector<EventKind> kinds;  // empty: every kind
};

// ---- config ----------------------------------------------------------------------------------

[[noreturn]] void refuse(const std::string& message) {
  throw std::invalid_argument(message);
}

// A scalar key; an array under that name is refused rather than silently ignored.
std::optional<std::string> scalar(const PluginConfig& config, const std::string& key) {
  if (config.lists.count(key) != 0) refuse("'" + key + "' must be a single value, not an array");
  return config.get(key);
}

std::optional<std::uint64_t> positive_integer(const std::string& text) {
  std::uint64_t n = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, n);
  if (text.empty() || ec != std::errc{} || p != end || n == 0) return std::nullopt;
  return n;
}

std::string kind_names() {
  std::string out;
  for (std::uint32_t v = 1; v <= kEventKindCount; ++v) {
    if (!out.empty()) out += ", ";
    out += event_kind_name(static_cast<EventKind>(v));
  }
  return out;
}

EventKind parse_kind(const std::string& name) {
  for (std::uint32_t v = 1; v <= kEventKindCount; ++v) {
    if (event_kind_name(static_cast<EventKind>(v)) == name) return static_cast<EventKind>(v);
  }
  refuse("'kinds': '" + name + "' is not an event kind (known: " + kind_names() + ")");
}

std::string trimmed(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

Settings parse_settings(const PluginConfig& config) {
  auto check_known = [](const std::string& key) {
    if (key.rfind("ecm.", 0) == 0) return;  // the host's own table, not ours
    if (key == "path" || key == "max_bytes" || key == "keep" || key == "fsync" || key == "kinds") {
      return;
    }
    refuse("unknown key '" + key + "' (known: " + kKnownKeys + ")");
  };
  for (const auto& entry : config.values)
    check_known(entry.first);
  for (const auto& entry : config.lists)
    check_known(entry.first);

  Settings s;
  const auto path = scalar(config, "path").value_or("");
  if (path.empty()) refuse("'path' is required: the file to append the audit log to");
  s.path = path;
  if (!s.path.is_absolute()) refuse("'path' = '" + path + "' must be an absolute path");
  if (!s.path.has_filename()) refuse("'path' = '" + path + "' names a directory, not a file");

  if (auto v = scalar(config, "max_bytes")) {
    auto n = positive_integer(*v);
    if (!n) {
      refuse("'max_bytes' = '" + *v +
             "' is not a positive integer (the size in bytes at which the file rotates)");
    }
    s.max_bytes = *n;
  }
  if (auto v = scalar(config, "keep")) {
    auto n = positive_integer(*v);
    if (!n || *n > kMaxKeep) {
      refuse("'keep' = '" + *v + "' is not an integer from 1 to " + std::to_string(kMaxKeep) +
             " (the number of rotated files kept)");
    }
    s.keep = static_cast<unsigned>(*n);
  }
  if (auto v = scalar(config, "fsync")) {
    if (*v != "true" && *v != "false") refuse("'fsync' = '" + *v + "' is not true or false");
    s.fsync = *v == "true";
  }

  // An array (kinds = ["engine_exited", ...]) or, for convenience, one comma-separated string.
  std::vector<std::string> names = config.list("kinds");
  if (auto v = config.get("kinds")) {
    std::size_t start = 0;
    while (start <= v->size()) {
      auto comma = v->find(',', start);
      if (comma == std::string::npos) comma = v->size();
      auto item = trimmed(v->substr(start, comma - start));
      if (!item.empty()) names.push_back(item);
      start = comma + 1;
    }
  }
  for (const auto& name : names) {
    const EventKind kind = parse_kind(name);
    if (std::find(s.kinds.begin(), s.kinds.end(), kind) == s.kinds.end()) s.kinds.push_back(kind);
  }
  return s;
}

// ---- one line --------------------------------------------------------------------------------

// RFC 3339 in UTC with milliseconds: 2024-05-01T10:00:00.123Z.
std::string rfc3339_utc(std::int64_t ms) {
  std::int64_t secs = ms / 1000;
  std::int64_t rem = ms % 1000;
  if (rem < 0) {
    rem += 1000;
    --secs;
  }
  const auto t = static_cast<std::time_t>(secs);
  std::tm tm{};
  if (::gmtime_r(&t, &tm) == nullptr) return std::to_string(ms);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(rem));
  return buf;
}

// Boost.JSON escapes quotes, backslashes and control characters, but copies every other byte as it
// is: a string that is not valid UTF-8 would make the line invalid JSON. Each byte that does not
// start a valid sequence becomes U+FFFD.
std::string valid_utf8(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out += s[i++];
      continue;
    }
    std::size_t n = 0;
    std::uint32_t min = 0;
    if ((c & 0xE0) == 0xC0) {
      n = 2;
      min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      n = 3;
      min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      n = 4;
      min = 0x10000;
    }
    bool ok = n != 0 && i + n <= s.size();
    std::uint32_t cp = ok ? (c & (0x7Fu >> n)) : 0;
    for (std::size_t k = 1; ok && k < n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) {
        ok = false;
      } else {
        cp = (cp << 6) | (b & 0x3Fu);
      }
    }
    if (ok && (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))) ok = false;
    if (ok) {
      out.append(s, i, n);
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

bool known_kind(EventKind kind) {
  const auto v = static_cast<std::uint32_t>(kind);
  return v >= 1 && v <= kEventKindCount;
}

std::string to_json_line(const Event& e) {
  boost::json::object o;
  o["seq"] = e.sequence;
  o["time"] = rfc3339_utc(e.timestamp_ms);
  const std::string_view kind = event_kind_name(e.kind);
  o["kind"] = std::string(kind);
  // A kind newer than this plugin: written as "unknown" with its number, so nothing is lost.
  if (!known_kind(e.kind)) o["kind_id"] = static_cast<std::uint32_t>(e.kind);
  auto text = [&](const char* key, const std::string& value) {
    if (!value.empty()) o[key] = valid_utf8(value);
  };
  text("engine_id", e.engine_id);
  text("user", e.user);
  text("engine_type", e.engine_type);
  text("from", e.from);
  text("to", e.to);
  text("reason", e.reason);
  if (e.pid != 0) o["pid"] = e.pid;
  if (e.exit_code) o["exit_code"] = *e.exit_code;
  if (e.signal) o["signal"] = *e.signal;
  text("plugin", e.plugin_name);
  text("plugin_version", e.plugin_version);
  if (e.generation != 0) o["generation"] = e.generation;
  text("message", e.message);
  std::string line = boost::json::serialize(o);
  line += '\n';
  return line;
}

// ---- the file --------------------------------------------------------------------------------

std::system_error os_error(int err, const std::string& what) {
  return std::system_error(err, std::generic_category(), "audit-log: " + what);
}

// flock(2) on one descriptor for the scope; unlock() ends it early.
class FileLock {
 public:
  FileLock(int fd, const std::string& path) : fd_(fd) {
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) throw os_error(errno, "cannot lock '" + path + "'");
    }
  }
  ~FileLock() { unlock(); }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  void unlock() {
    if (fd_ >= 0) ::flock(std::exchange(fd_, -1), LOCK_UN);
  }

 private:
  int fd_;
};

class RotatingFile {
 public:
  explicit RotatingFile(const Settings& s)
      : path_(s.path.string()), max_bytes_(s.max_bytes), keep_(s.keep), fsync_(s.fsync) {}
  ~RotatingFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  RotatingFile(const RotatingFile&) = delete;
  RotatingFile& operator=(const RotatingFile&) = delete;

  void open() {
    if (fd_ >= 0) return;
    const auto parent = std::filesystem::path(path_).parent_path();
    std::error_code ec;
    if (!std::filesystem::exists(parent, ec)) {
      std::filesystem::create_directories(parent, ec);
      if (ec) throw os_error(ec.value(), "cannot create the directory '" + parent.string() + "'");
    }
    int fd;
    do {
      fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) throw os_error(errno, "cannot open '" + path_ + "'");
    fd_ = fd;
  }

  void append(const std::string& line) {
    for (int attempt = 0;; ++attempt) {
      open();
      FileLock lock(fd_, path_);
      struct stat mine {};
      if (::fstat(fd_, &mine) != 0) throw os_error(errno, "cannot stat '" + path_ + "'");
      if (attempt < kMaxAttempts) {
        struct stat named {};
        const bool current = ::stat(path_.c_str(), &named) == 0 && named.st_dev == mine.st_dev &&
                             named.st_ino == mine.st_ino;
        if (!current) {  // rotated by another writer, or removed: reopen the path
          lock.unlock();
          close_fd();
          continue;
        }
        const auto size = static_cast<std::uint64_t>(mine.st_size);
        if (size > 0 && size + line.size() > max_bytes_) {
          rotate();
          lock.unlock();
          close_fd();
          continue;
        }
      }
      write_line(line);
      return;
    }
  }

  void close() {
    if (fd_ < 0) return;
    const int fd = std::exchange(fd_, -1);
    int err = 0;
    if (fsync_ && ::fsync(fd) != 0) err = errno;
    if (::close(fd) != 0 && err == 0 && errno != EINTR) err = errno;
    if (err != 0) throw os_error(err, "cannot flush '" + path_ + "'");
  }

 private:
  void close_fd() {
    if (fd_ >= 0) ::close(std::exchange(fd_, -1));
  }

  std::string numbered(unsigned i) const { return path_ + "." + std::to_string(i); }

  // path.(keep-1) -> path.keep (replacing the oldest), ..., path.1 -> path.2, path -> path.1.
  // Called under the lock of the current file.
  void rotate() {
    if (fsync_) ::fsync(fd_);
    for (unsigned i = keep_; i-- > 1;) {
      if (::rename(numbered(i).c_str(), numbered(i + 1).c_str()) != 0 && errno != ENOENT) {
        throw os_error(errno, "cannot rotate '" + numbered(i) + "'");
      }
    }
    if (::rename(path_.c_str(), numbered(1).c_str()) != 0) {
      throw os_error(errno, "cannot rotate '" + path_ + "'");
    }
  }

  // One write(2): with O_APPEND the line lands whole, after every other writer's lines.
  void write_line(const std::string& line) {
    ssize_t n;
    do {
      n = ::write(fd_, line.data(), line.size());
    } while (n < 0 && errno == EINTR);
    if (n < 0) throw os_error(errno, "cannot write to '" + path_ + "'");
    if (static_cast<std::size_t>(n) != line.size()) {
      // End the fragment so that the next line starts on its own (best effort: the disk may be
      // full).
      [[maybe_unused]] auto ignored = ::write(fd_, "\n", 1);
      throw std::runtime_error("audit-log: short write to '" + path_ + "' (" + std::to_string(n) +
                               " of " + std::to_string(line.size()) + " bytes): disk full?");
    }
  }

  std::string path_;
  std::uint64_t max_bytes_;
  unsigned keep_;
  bool fsync_;
  int fd_ = -1;
};

// ---- the listener ----------------------------------------------------------------------------

class AuditLogListener final : public EventListener {
 public:
  explicit AuditLogListener(const Settings& settings) : kinds_(settings.kinds), file_(settings) {
    file_.open();  // a path that cannot be opened refuses the plugin at load
  }

  std::vector<EventKind> kinds() const override { return kinds_; }

  void on_event(const Event& event) override {
    if (!kinds_.empty() && std::find(kinds_.begin(), kinds_.end(), event.kind) == kinds_.end()) {
      return;
    }
    file_.append(to_json_line(event));
  }

  void on_close() override { file_.close(); }

 private:
  std::vector<EventKind> kinds_;
  RotatingFile file_;
};

EventListener* create_listener(const PluginConfig& config) {
  return new AuditLogListener(parse_settings(config));
}

const PluginDescriptor kDescriptor{ECM_SDK_DESCRIPTOR_HEAD, "audit-log", "1.0.0",
                                   kListenerKind,           nullptr,     nullptr,
                                   &create_listener,        nullptr};

}  // namespace

ECM_PLUGIN(kDescriptor)
