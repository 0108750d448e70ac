// Reading an engine's logs: a stream (stdout, stderr or another file under the engine's log dir)
// read as one sequence of lines across its rotated files, paged forward or tailed from the end,
// filtered by keywords and grouped into multi-line records. Pure: files in, lines out; no Thrift.
//
// The stream NAME is the files NAME.k, ..., NAME.2, NAME.1, NAME read in that order (the highest
// number is the oldest; numbering stops at the first missing k). Line numbers are 1-based over
// that sequence as it stands when the read happens (a rotation that drops the oldest file shifts
// them). A file that does not end with a newline contributes its last, unterminated line too.
//
// Records: without a record pattern every line is a record. With one, a line matching it
// (ECMAScript syntax, Boost.Regex, searched in its first 1 KiB) starts a new record and the lines
// that follow without matching belong to it; lines before the first start form a record of their
// own.
//
// Filters apply to whole records: `include` keeps a record when ANY of its words occurs in it
// (any-of; empty: every record), `exclude` drops a record when any of its words occurs. Words are
// plain case-sensitive substrings.
//
// Bounds: at most `max_lines` lines per read (the reader's bound, default 5,000; a query may ask
// fewer, never more); a line longer than kMaxLogLineBytes is cut. Either cut sets `truncated`.
// Memory is bounded by these, never by the file: files are read in chunks, the tail from the end.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace ecm::core {

inline constexpr std::int64_t kDefaultMaxLogLines = 5000;
inline constexpr std::size_t kMaxLogLineBytes = 64 * 1024;
inline constexpr std::size_t kMaxLogKeywords = 64;
// A record pattern's matcher may take up to about (pattern length)^2 x (line span) steps before it
// gives up on a line: 128 bytes keep that under a second.
inline constexpr std::size_t kMaxLogPatternBytes = 128;

struct LogQuery {
  // "stdout", "stderr", or a safe relative path under the log dir (is_safe_relative_path).
  std::string stream = "stdout";
  // Forward paging: the first line to look at (1-based; 0: 1) and at most page_size lines
  // (0: the bound). Not with tail.
  std::int64_t from_line = 0;
  std::int64_t page_size = 0;
  // > 0: the last `tail` matching records instead (their lines bounded by page_size/the bound).
  std::int64_t tail = 0;
  std::vector<std::string> include;
  std::vector<std::string> exclude;
  std::string record_pattern;  // empty: one line, one record
};

struct LogPage {
  std::vector<std::string> lines;
  // The line number of lines[0]; when no line matched, the line the read started at.
  std::int64_t first_line = 0;
  // Where the next page starts (the first line of the next matching record); none at the end.
  std::optional<std::int64_t> next_from_line;
  // Lines in the stream when the read reached its end (0 if it stopped before): a follower
  // resumes at end_line + 1 when next_from_line is none.
  std::int64_t end_line = 0;
  // A line or a record was cut, or the query asked for more than the bound allows.
  bool truncated = false;
};

class EngineLogReader {
 public:
  explicit EngineLogReader(std::int64_t max_lines = kDefaultMaxLogLines);

  // Throws EcmException: kInvalidRequest for a bad query (stream name, negative or conflicting
  // numbers, invalid pattern or one too costly to match, too many keywords), kNotFound when the
  // stream has no file.
  LogPage read(const std::filesystem::path& log_dir, const LogQuery& query) const;

  std::int64_t max_lines() const { return max_lines_; }

 private:
  std::int64_t max_lines_;
};

}  // namespace ecm::core
