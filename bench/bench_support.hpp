// What the plain-main() benchmarks share: latency summaries, the split of work over threads, a
// small flag parser and JSON text. Header-only (benchmarks that include it link Boost::json).
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <boost/json/serialize.hpp>

namespace ecm::bench {

using Clock = std::chrono::steady_clock;

// ECM_BENCH_KEEP_FILES set (bench/run.sh): benchmarks leave their temp dirs for the script to
// remove at the end. On ext4 without a journal (this machine's root), creating files soon after
// thousands were deleted nearby is several times slower: one benchmark's clean-up would slow the
// next one's work-dir and log-file creation.
inline bool keep_files() {
  const char* v = std::getenv("ECM_BENCH_KEEP_FILES");
  return v != nullptr && *v != '\0';
}

inline double ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// The share of `total` that part `i` of `parts` gets (the first ones get the remainder).
inline int share(int total, int parts, int i) {
  return total / parts + (i < total % parts ? 1 : 0);
}

// Nearest-rank percentile of sorted values (0 when there are none).
inline double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto rank =
      static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

struct Summary {
  std::size_t count = 0;  // successful operations the percentiles are over
  int failures = 0;
  double p50 = 0, p90 = 0, p99 = 0, max = 0;
};

inline Summary summarize(std::vector<double> values, int failures = 0) {
  std::sort(values.begin(), values.end());
  Summary s;
  s.count = values.size();
  s.failures = failures;
  s.p50 = percentile(values, 50);
  s.p90 = percentile(values, 90);
  s.p99 = percentile(values, 99);
  s.max = values.empty() ? 0 : values.back();
  return s;
}

inline std::string json_number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

// Errors from several threads: every one counted, the first `max_kept` kept for the report.
class ErrorLog {
 public:
  explicit ErrorLog(std::size_t max_kept = 20) : max_kept_(max_kept) {}
  void add(std::string error) {
    std::lock_guard lock(mu_);
    ++count_;
    if (kept_.size() < max_kept_) kept_.push_back(std::move(error));
  }
  std::vector<std::string> kept() const {
    std::lock_guard lock(mu_);
    return kept_;
  }
  int count() const {
    std::lock_guard lock(mu_);
    return count_;
  }

 private:
  const std::size_t max_kept_;
  mutable std::mutex mu_;
  std::vector<std::string> kept_;
  int count_ = 0;
};

// `s` as a JSON string, quoted and escaped (Boost.JSON).
inline std::string json_string(const std::string& s) {
  return boost::json::serialize(boost::json::string_view(s));
}

// `--name VALUE` / `--name=VALUE` flags bound to ints (with a minimum) and strings, `--name`
// switches bound to bools; -h/--help prints the usage. parse() returns false after a message on
// stderr on a usage error.
class Flags {
 public:
  Flags(std::string program, std::string usage)
      : program_(std::move(program)), usage_(std::move(usage)) {}
  void add(const std::string& flag, int* target, int min) { ints_[flag] = {target, min}; }
  void add(const std::string& flag, std::string* target) { strings_[flag] = target; }
  void add_switch(const std::string& flag, bool* target) { switches_[flag] = target; }

  bool parse(int argc, char** argv) const {
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      if (arg == "-h" || arg == "--help") {
        std::cout << usage_;
        std::exit(0);
      }
      if (auto b = switches_.find(arg); b != switches_.end()) {
        *b->second = true;
        continue;
      }
      std::string value;
      if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
        value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        return fail(arg + " wants a value");
      }
      if (auto n = ints_.find(arg); n != ints_.end()) {
        auto v = integer(value, n->second.second);
        if (!v) {
          return fail(arg + " wants an integer >= " + std::to_string(n->second.second) + ", not '" +
                      value + "'");
        }
        *n->second.first = *v;
      } else if (auto s = strings_.find(arg); s != strings_.end()) {
        *s->second = value;
      } else {
        return fail("unknown option " + arg);
      }
    }
    return true;
  }

  // For checks across flags: prints "PROGRAM: what" and the usage; false.
  bool fail(const std::string& what) const {
    std::cerr << program_ << ": " << what << "\n" << usage_;
    return false;
  }

 private:
  static std::optional<int> integer(const std::string& text, int min) {
    try {
      std::size_t used = 0;
      const int v = std::stoi(text, &used);
      if (used == text.size() && v >= min) return v;
    } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): the caller reports it
    }
    return std::nullopt;
  }

  std::string program_;
  std::string usage_;
  std::map<std::string, std::pair<int*, int>> ints_;
  std::map<std::string, std::string*> strings_;
  std::map<std::string, bool*> switches_;
};

}  // namespace ecm::bench
