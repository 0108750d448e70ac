#include "ecm/core/engine_log_reader.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>

#include <boost/regex.hpp>

#include "ecm/core/errors.hpp"
#include "ecm/core/names.hpp"

namespace ecm::core {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kChunk = 64 * 1024;
constexpr int kMaxRotated = 1000;
constexpr std::size_t kRecordPatternSpan = 1024;

[[noreturn]] void invalid(const std::string& message) {
  throw EcmException(ErrorCode::kInvalidRequest, message);
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&&) = delete;
  Fd(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// One file of the stream, its size taken when opened: the read sees the file as it was then.
struct LogFile {
  Fd fd;
  std::uint64_t size = 0;
  dev_t dev = 0;
  ino_t ino = 0;
  // For the live file: the inode of NAME.1 when it was opened (0: none). Copy-truncate rotation
  // keeps the live file's inode but makes a new NAME.1, so a change here means "truncated since".
  ino_t rotation_mark = 0;
};

// Reads up to `len` bytes at `offset`; fewer only at the end of the file.
std::size_t read_at(const LogFile& f, char* buf, std::size_t len, std::uint64_t offset) {
  std::size_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(f.fd.get(), buf + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw EcmException(ErrorCode::kInternal,
                         std::string("cannot read log file: ") + std::strerror(errno));
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  return done;
}

// Opens `path` when it is a regular file (not through a symlink); nullopt when it does not exist.
std::optional<LogFile> open_log(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    if (errno == ELOOP) invalid("log stream '" + path.filename().string() + "' is a symlink");
    throw EcmException(ErrorCode::kInternal,
                       "cannot open log file " + path.string() + ": " + std::strerror(errno));
  }
  LogFile f{Fd(fd)};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    invalid("log stream '" + path.filename().string() + "' is not a regular file");
  }
  f.size = static_cast<std::uint64_t>(st.st_size);
  f.dev = st.st_dev;
  f.ino = st.st_ino;
  return f;
}

// NAME.k ... NAME.1, NAME: oldest first.
std::vector<LogFile> open_stream(const fs::path& dir, const std::string& name) {
  std::vector<LogFile> rotated;
  for (int k = 1; k <= kMaxRotated; ++k) {
    auto f = open_log(dir / (name + "." + std::to_string(k)));
    if (!f) break;
    rotated.push_back(std::move(*f));
  }
  std::vector<LogFile> files;
  files.reserve(rotated.size() + 1);
  for (auto it = rotated.rbegin(); it != rotated.rend(); ++it)
    files.push_back(std::move(*it));
  if (auto live = open_log(dir / name)) {
    if (!rotated.empty()) live->rotation_mark = rotated.front().ino;
    files.push_back(std::move(*live));
  }
  if (files.empty()) throw EcmException(ErrorCode::kNotFound, "no log stream '" + name + "'");
  return files;
}

// Newline counts per file, so paging and tailing a growing log does not recount what it has
// counted before. Keyed by (device, inode): a rotated file keeps its inode when renamed. An entry
// is used only while the byte before its offset is still a newline.
struct Checkpoint {
  std::int64_t newlines = 0;  // before `offset`
  std::uint64_t offset = 0;   // just past a newline (or 0)
};
constexpr std::int64_t kCheckpointLines = 16384;
struct CountEntry {
  ino_t rotation_mark = 0;   // LogFile::rotation_mark when counted: another one voids the entry
  std::uint64_t offset = 0;  // just past the last newline counted
  std::int64_t newlines = 0;
  std::vector<Checkpoint> checkpoints;  // every kCheckpointLines newlines
};
std::mutex g_count_mutex;
std::map<std::pair<dev_t, ino_t>, CountEntry> g_counts;

std::int64_t count_lines(const LogFile& f) {
  if (f.size == 0) return 0;
  CountEntry start;
  {
    std::lock_guard lock(g_count_mutex);
    auto it = g_counts.find({f.dev, f.ino});
    if (it != g_counts.end() && it->second.rotation_mark == f.rotation_mark) start = it->second;
  }
  start.rotation_mark = f.rotation_mark;
  if (start.offset == f.size && start.offset > 0) {  // nothing new since the last count
    char c = 0;
    if (read_at(f, &c, 1, f.size - 1) == 1 && c == '\n') return start.newlines;
  }
  if (start.offset > f.size) start = {};
  if (start.offset > 0) {
    char c = 0;
    if (read_at(f, &c, 1, start.offset - 1) != 1 || c != '\n') start = {};
  }
  std::vector<char> buf(kChunk * 4);
  std::uint64_t pos = start.offset;
  CountEntry end = start;
  char last = '\n';
  while (pos < f.size) {
    std::size_t n = read_at(f, buf.data(), std::min<std::uint64_t>(buf.size(), f.size - pos), pos);
    if (n == 0) break;
    const char* p = buf.data();
    const char* e = p + n;
    while (const char* nl = static_cast<const char*>(std::memchr(p, '\n', e - p))) {
      ++end.newlines;
      end.offset = pos + static_cast<std::uint64_t>(nl - buf.data()) + 1;
      if (end.newlines % kCheckpointLines == 0)
        end.checkpoints.push_back({end.newlines, end.offset});
      p = nl + 1;
    }
    last = buf[n - 1];
    pos += n;
  }
  std::int64_t newlines = end.newlines;
  if (start.offset == f.size) {
    read_at(f, &last, 1, f.size - 1);
  }
  {
    std::lock_guard lock(g_count_mutex);
    if (g_counts.size() > 4096) g_counts.clear();
    g_counts[{f.dev, f.ino}] = std::move(end);
  }
  return newlines + (last != '\n' ? 1 : 0);
}

// Where the file's line `line` (1-based) or an earlier one starts: the latest known newline
// before it. Call after count_lines(f).
Checkpoint checkpoint_before(const LogFile& f, std::int64_t line) {
  std::lock_guard lock(g_count_mutex);
  auto it = g_counts.find({f.dev, f.ino});
  if (it == g_counts.end() || it->second.rotation_mark != f.rotation_mark) return {};
  const CountEntry& e = it->second;
  if (e.offset <= f.size && e.newlines < line) return {e.newlines, e.offset};
  Checkpoint best;
  for (const auto& c : e.checkpoints) {
    if (c.newlines >= line || c.offset > f.size) break;
    best = c;
  }
  return best;
}

// The query, checked and with its bounds resolved.
struct Plan {
  std::int64_t from_line = 1;
  std::int64_t limit = 0;  // lines
  std::int64_t tail = 0;
  bool over_bound = false;  // asked for more lines than the bound
  // Boost.Regex, not std::regex: its matcher gives up (throws) past a bound on its steps and
  // uses no recursion, where libstdc++'s backtracks without end on a pattern like "(a*)*b" and
  // recurses per character.
  std::optional<boost::regex> record_start;
};

Plan plan(const LogQuery& q, std::int64_t max_lines) {
  if (!is_safe_relative_path(q.stream)) {
    invalid("bad log stream '" + q.stream.substr(0, 128) +
            "': expected stdout, stderr or a relative path under the log dir");
  }
  if (q.from_line < 0) invalid("from_line must not be negative");
  if (q.page_size < 0) invalid("page_size must not be negative");
  if (q.tail < 0) invalid("tail must not be negative");
  if (q.tail > 0 && q.from_line > 0) invalid("tail and from_line exclude each other");
  if (q.include.size() > kMaxLogKeywords || q.exclude.size() > kMaxLogKeywords) {
    invalid("at most " + std::to_string(kMaxLogKeywords) + " include and exclude words each");
  }
  for (const auto* words : {&q.include, &q.exclude}) {
    for (const auto& w : *words) {
      if (w.empty()) invalid("an include or exclude word must not be empty");
    }
  }
  Plan p;
  p.from_line = q.from_line > 0 ? q.from_line : 1;
  p.tail = q.tail;
  p.limit = q.page_size > 0 ? std::min(q.page_size, max_lines) : max_lines;
  p.over_bound = q.page_size > max_lines || q.tail > max_lines;
  if (!q.record_pattern.empty()) {
    if (q.record_pattern.size() > kMaxLogPatternBytes) invalid("record pattern too long");
    try {
      p.record_start.emplace(q.record_pattern, boost::regex::ECMAScript | boost::regex::optimize);
    } catch (const boost::regex_error& e) {
      invalid("invalid record pattern '" + q.record_pattern + "': " + e.what());
    }
  }
  return p;
}

bool contains_any(const std::vector<std::string>& lines, const std::vector<std::string>& words) {
  for (const auto& w : words) {
    for (const auto& l : lines) {
      if (l.find(w) != std::string::npos) return true;
    }
  }
  return false;
}

struct Record {
  std::int64_t start = 0;   // line number of lines[0]
  std::int64_t length = 0;  // lines in the record, including any not kept
  std::vector<std::string> lines;
  bool cut = false;  // a line cut or lines not kept
};

bool matches(const Record& r, const LogQuery& q) {
  if (!q.include.empty() && !contains_any(r.lines, q.include)) return false;
  return q.exclude.empty() || !contains_any(r.lines, q.exclude);
}

// The pattern sees a line's first kRecordPatternSpan bytes only: a record's start is at the start
// of its line, and the matcher's bound on its steps grows with the length it searches. A search
// that reaches the bound (a pattern that backtracks without end) fails the whole read.
bool starts_record(const Plan& p, const std::string& line) {
  if (!p.record_start) return true;
  auto end = line.begin() + static_cast<std::ptrdiff_t>(std::min(line.size(), kRecordPatternSpan));
  try {
    return boost::regex_search(line.begin(), end, *p.record_start);
  } catch (const std::runtime_error& e) {  // boost::regex_error: error_complexity, error_stack
    invalid(
        "record pattern too costly to match (simplify it: no nested or overlapping "
        "repetition): " +
        std::string(e.what()).substr(0, 128));
  }
}

// Lines front to back across the files, with their numbers.
class ForwardLines {
 public:
  explicit ForwardLines(const std::vector<LogFile>& files) : files_(files), buf_(kChunk) {}

  // Moves to line `target` (1-based); false when the stream has fewer lines.
  bool seek(std::int64_t target) {
    std::int64_t before = 0;
    for (file_ = 0; file_ < files_.size(); ++file_) {
      std::int64_t n = count_lines(files_[file_]);
      if (before + n >= target) break;
      before += n;
    }
    offset_ = 0;
    begin_ = end_ = 0;
    next_line_ = before + 1;
    if (file_ == files_.size()) return false;
    auto c = checkpoint_before(files_[file_], target - before);
    offset_ = c.offset;
    next_line_ = before + c.newlines + 1;
    while (next_line_ < target) {  // skip within the file without building strings
      if (!fill()) return false;
      const char* p = buf_.data() + begin_;
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', end_ - begin_));
      if (nl == nullptr) {
        begin_ = end_;
        continue;
      }
      begin_ = static_cast<std::size_t>(nl - buf_.data()) + 1;
      ++next_line_;
    }
    return true;
  }

  // The next line (without its newline), cut at kMaxLogLineBytes; false at the end.
  bool next(std::string& line, std::int64_t& number, bool& cut) {
    line.clear();
    cut = false;
    bool any = false;
    while (fill(any)) {
      any = true;
      const char* p = buf_.data() + begin_;
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', end_ - begin_));
      std::size_t len = nl ? static_cast<std::size_t>(nl - p) : end_ - begin_;
      std::size_t room = kMaxLogLineBytes - std::min(kMaxLogLineBytes, line.size());
      if (len > room) cut = true;
      line.append(p, std::min(len, room));
      begin_ += len;
      if (nl) {
        ++begin_;
        number = next_line_++;
        return true;
      }
    }
    if (!any) return false;
    number = next_line_++;  // the unterminated last line of a file
    return true;
  }

 private:
  // Makes bytes available; moves to the next file only when `within_line` is false (a line
  // never spans two files).
  bool fill(bool within_line = false) {
    while (begin_ == end_) {
      if (file_ >= files_.size()) return false;
      const LogFile& f = files_[file_];
      if (offset_ >= f.size) {
        if (within_line) return false;
        ++file_;
        offset_ = 0;
        continue;
      }
      std::size_t n =
          read_at(f, buf_.data(), std::min<std::uint64_t>(kChunk, f.size - offset_), offset_);
      if (n == 0) {
        offset_ = f.size;
        continue;
      }
      offset_ += n;
      begin_ = 0;
      end_ = n;
    }
    return true;
  }

  const std::vector<LogFile>& files_;
  std::vector<char> buf_;
  std::size_t file_ = 0;
  std::uint64_t offset_ = 0;  // of the next read in files_[file_]
  std::size_t begin_ = 0, end_ = 0;
  std::int64_t next_line_ = 1;
};

LogPage read_forward(const std::vector<LogFile>& files, const LogQuery& q, const Plan& p) {
  LogPage page;
  page.first_line = p.from_line;
  page.truncated = p.over_bound && q.page_size > 0;
  ForwardLines in(files);
  if (!in.seek(p.from_line)) {
    std::int64_t total = 0;
    for (const auto& f : files)
      total += count_lines(f);
    page.end_line = total;
    return page;
  }
  bool first = true;
  std::int64_t last_number = p.from_line - 1;
  // Takes the finished record; false when the page is full and `r` starts the next page.
  auto take = [&](Record& r) {
    if (!matches(r, q)) return true;
    auto used = static_cast<std::int64_t>(page.lines.size());
    if (used >= p.limit) {
      page.next_from_line = r.start;
      return false;
    }
    if (used > 0 && used + static_cast<std::int64_t>(r.lines.size()) > p.limit) {
      page.next_from_line = r.start;  // whole records only, unless one alone is too long
      return false;
    }
    if (first) page.first_line = r.start;
    first = false;
    std::int64_t room = p.limit - used;
    if (static_cast<std::int64_t>(r.lines.size()) > room) {
      r.lines.resize(static_cast<std::size_t>(room));
      r.cut = true;
    }
    page.truncated = page.truncated || r.cut;
    for (auto& l : r.lines)
      page.lines.push_back(std::move(l));
    return true;
  };
  Record rec;
  std::string line;
  std::int64_t number = 0;
  bool cut = false;
  while (in.next(line, number, cut)) {
    last_number = number;
    if (rec.length == 0 || starts_record(p, line)) {
      if (rec.length > 0 && !take(rec)) return page;
      rec = Record{number, 0, {}, false};
    }
    ++rec.length;
    if (static_cast<std::int64_t>(rec.lines.size()) < p.limit) {
      rec.lines.push_back(line);
      rec.cut = rec.cut || cut;
    } else {
      rec.cut = true;
    }
  }
  if (rec.length > 0 && !take(rec)) return page;
  page.end_line = last_number;
  return page;
}

// Line boundaries back to front across the files.
LogPage read_tail(const std::vector<LogFile>& files, const LogQuery& q, const Plan& p) {
  LogPage page;
  page.truncated = p.over_bound;
  std::int64_t total = 0;
  for (const auto& f : files)
    total += count_lines(f);
  page.end_line = total;
  page.first_line = total + 1;

  std::vector<Record> found;  // newest first
  std::int64_t lines_found = 0;
  std::int64_t number = total + 1;   // of the line last produced
  std::vector<std::string> pending;  // continuation lines seen so far, newest first
  std::int64_t pending_length = 0;
  bool pending_cut = false;
  bool done = false;

  // A record complete (its start line reached, or the start of the stream): keep it if it matches.
  auto finish = [&](std::int64_t start) {
    Record r{start, pending_length, {pending.rbegin(), pending.rend()}, pending_cut};
    pending.clear();
    pending_length = 0;
    pending_cut = false;
    if (!matches(r, q)) return;
    auto room = p.limit - lines_found;
    if (room <= 0 || (!found.empty() && static_cast<std::int64_t>(r.lines.size()) > room)) {
      page.truncated = true;  // a record wanted that does not fit
      done = true;
      return;
    }
    if (static_cast<std::int64_t>(r.lines.size()) > room) {
      r.lines.resize(static_cast<std::size_t>(room));
      r.cut = true;
    }
    page.truncated = page.truncated || r.cut;
    lines_found += static_cast<std::int64_t>(r.lines.size());
    found.push_back(std::move(r));
    if (static_cast<std::int64_t>(found.size()) >= p.tail) done = true;
  };
  auto on_line = [&](std::string line, bool cut) {
    --number;
    ++pending_length;
    if (static_cast<std::int64_t>(pending.size()) < p.limit) {
      pending.push_back(std::move(line));
      pending_cut = pending_cut || cut;
    } else {
      pending_cut = true;
    }
    if (starts_record(p, pending.back())) finish(number);
  };

  std::vector<char> buf(kChunk);
  for (auto f = files.rbegin(); f != files.rend() && !done; ++f) {
    if (f->size == 0) continue;
    // The end of the line being scanned for its start; a final newline ends no line.
    std::uint64_t line_end = f->size;
    char last = 0;
    read_at(*f, &last, 1, f->size - 1);
    if (last == '\n') --line_end;
    std::uint64_t pos = line_end;  // bytes [0, pos) not yet scanned
    auto emit = [&](std::uint64_t begin) {
      std::uint64_t len = line_end - begin;
      std::string line(std::min<std::uint64_t>(len, kMaxLogLineBytes), '\0');
      read_at(*f, line.data(), line.size(), begin);
      on_line(std::move(line), len > kMaxLogLineBytes);
    };
    while (pos > 0 && !done) {
      std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, pos));
      std::uint64_t base = pos - n;
      read_at(*f, buf.data(), n, base);
      for (std::size_t i = n; i-- > 0 && !done;) {
        if (buf[i] != '\n') continue;
        emit(base + i + 1);
        line_end = base + i;
      }
      pos = base;
    }
    if (!done) {
      emit(0);
    }
  }
  if (!done && pending_length > 0) finish(number);

  for (auto r = found.rbegin(); r != found.rend(); ++r) {
    if (page.lines.empty()) page.first_line = r->start;
    for (auto& l : r->lines)
      page.lines.push_back(std::move(l));
  }
  return page;
}

}  // namespace

EngineLogReader::EngineLogReader(std::int64_t max_lines)
    : max_lines_(max_lines > 0 ? max_lines : kDefaultMaxLogLines) {}

LogPage EngineLogReader::read(const fs::path& log_dir, const LogQuery& query) const {
  Plan p = plan(query, max_lines_);
  auto files = open_stream(log_dir, query.stream);
  return p.tail > 0 ? read_tail(files, query, p) : read_forward(files, query, p);
}

}  // namespace ecm::core
