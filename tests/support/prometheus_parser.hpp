// A small, strict parser of the Prometheus text exposition format (0.0.4), for tests: it refuses
// anything a scraper could misread (bad names, label syntax or escapes, values, a TYPE after its
// samples, a family split in two, a repeated series, a histogram whose buckets do not add up).
#pragma once

#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace ecm::test {

struct PromSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct PromFamily {
  std::string name;
  std::string type;  // counter, gauge, histogram, summary, untyped
  std::string help;
  std::vector<PromSample> samples;
};

class PromParseError : public std::runtime_error {
 public:
  PromParseError(int line, const std::string& what)
      : std::runtime_error("line " + std::to_string(line) + ": " + what) {}
};

namespace prom_detail {

inline bool is_name_start(char c, bool colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}
inline bool is_name_char(char c, bool colon) {
  return is_name_start(c, colon) || (c >= '0' && c <= '9');
}
inline bool valid_name(const std::string& s, bool colon) {
  if (s.empty() || !is_name_start(s[0], colon)) return false;
  for (char c : s) {
    if (!is_name_char(c, colon)) return false;
  }
  return true;
}

inline double parse_value(const std::string& text, int line) {
  if (text == "+Inf" || text == "Inf") return INFINITY;
  if (text == "-Inf") return -INFINITY;
  if (text == "NaN") return NAN;
  if (text.empty()) throw PromParseError(line, "empty value");
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-')) {
      throw PromParseError(line, "bad value '" + text + "'");
    }
  }
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) throw PromParseError(line, "bad value '" + text + "'");
  return v;
}

// The family a sample belongs to: histogram samples carry a suffix.
inline std::string family_of(const std::string& sample,
                             const std::map<std::string, PromFamily>& f) {
  if (f.count(sample)) return sample;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    std::string s(suffix);
    if (sample.size() > s.size() && sample.compare(sample.size() - s.size(), s.size(), s) == 0) {
      auto base = sample.substr(0, sample.size() - s.size());
      auto it = f.find(base);
      if (it != f.end() && (it->second.type == "histogram" || it->second.type == "summary")) {
        return base;
      }
    }
  }
  return sample;
}

}  // namespace prom_detail

// Families by name. Throws PromParseError.
inline std::map<std::string, PromFamily> parse_prometheus_text(const std::string& text) {
  using namespace prom_detail;
  std::map<std::string, PromFamily> families;
  std::set<std::string> finished;  // families whose samples are over
  std::string current;             // the family of the last line
  std::set<std::string> series;
  if (!text.empty() && text.back() != '\n') throw PromParseError(0, "no newline at the end");
  int line_no = 0;
  std::size_t pos = 0;
  auto enter = [&](const std::string& family, int ln) {
    if (family == current) return;
    if (!current.empty()) finished.insert(current);
    if (finished.count(family)) throw PromParseError(ln, "family " + family + " split in two");
    current = family;
  };
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (line.empty()) throw PromParseError(line_no, "empty line");
    if (line[0] == '#') {
      if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
        const bool is_type = line[2] == 'T';
        auto rest = line.substr(7);
        auto sp = rest.find(' ');
        if (sp == std::string::npos) throw PromParseError(line_no, "HELP/TYPE without text");
        auto name = rest.substr(0, sp);
        auto arg = rest.substr(sp + 1);
        if (!valid_name(name, true)) throw PromParseError(line_no, "bad metric name " + name);
        enter(name, line_no);
        auto& fam = families[name];
        fam.name = name;
        if (is_type) {
          if (!fam.type.empty()) throw PromParseError(line_no, "second TYPE for " + name);
          if (!fam.samples.empty()) throw PromParseError(line_no, "TYPE after samples: " + name);
          static const std::set<std::string> kTypes{"counter", "gauge", "histogram", "summary",
                                                    "untyped"};
          if (!kTypes.count(arg)) throw PromParseError(line_no, "bad type " + arg);
          fam.type = arg;
        } else {
          if (!fam.help.empty()) throw PromParseError(line_no, "second HELP for " + name);
          fam.help = arg;
        }
      }
      continue;  // any other comment
    }
    // name{label="value",...} value [timestamp]
    std::size_t i = 0;
    while (i < line.size() && is_name_char(line[i], true))
      ++i;
    PromSample s;
    s.name = line.substr(0, i);
    if (!valid_name(s.name, true)) throw PromParseError(line_no, "bad sample name in: " + line);
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (true) {
        if (i < line.size() && line[i] == '}') {
          ++i;
          break;
        }
        std::size_t start = i;
        while (i < line.size() && is_name_char(line[i], false))
          ++i;
        auto label = line.substr(start, i - start);
        if (!valid_name(label, false) || label.rfind("__", 0) == 0) {
          throw PromParseError(line_no, "bad label name '" + label + "'");
        }
        if (i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"') {
          throw PromParseError(line_no, "label " + label + " without =\"");
        }
        i += 2;
        std::string value;
        while (true) {
          if (i >= line.size()) throw PromParseError(line_no, "unterminated label value");
          char c = line[i++];
          if (c == '"') break;
          if (c == '\\') {
            if (i >= line.size()) throw PromParseError(line_no, "dangling backslash");
            char e = line[i++];
            if (e == 'n') {
              value += '\n';
            } else if (e == '\\' || e == '"') {
              value += e;
            } else {
              throw PromParseError(line_no, std::string("bad escape \\") + e);
            }
          } else {
            value += c;
          }
        }
        if (!s.labels.emplace(label, value).second) {
          throw PromParseError(line_no, "label " + label + " repeated");
        }
        if (i < line.size() && line[i] == ',') {
          ++i;
        } else if (i >= line.size() || line[i] != '}') {
          throw PromParseError(line_no, "expected , or } after a label");
        }
      }
    }
    if (i >= line.size() || line[i] != ' ') throw PromParseError(line_no, "no value: " + line);
    auto rest = line.substr(i + 1);
    auto sp = rest.find(' ');
    s.value = parse_value(rest.substr(0, sp), line_no);
    if (sp != std::string::npos) {
      auto ts = rest.substr(sp + 1);
      if (ts.empty() || ts.find_first_not_of("-0123456789") != std::string::npos) {
        throw PromParseError(line_no, "bad timestamp '" + ts + "'");
      }
    }
    auto family = family_of(s.name, families);
    enter(family, line_no);
    auto& fam = families[family];
    fam.name = family;
    if (fam.type.empty()) fam.type = "untyped";
    std::string key = s.name;
    for (const auto& [k, v] : s.labels)
      key += "|" + k + "=" + v;
    if (!series.insert(key).second) throw PromParseError(line_no, "series repeated: " + line);
    if (fam.type == "histogram" && s.name == family + "_bucket" && !s.labels.count("le")) {
      throw PromParseError(line_no, "bucket without le");
    }
    fam.samples.push_back(std::move(s));
  }
  // Histograms: cumulative buckets ending at +Inf, equal to _count.
  for (const auto& [name, fam] : families) {
    if (fam.type != "histogram") continue;
    double last_le = -INFINITY, last_count = 0, inf_count = -1, count = -1;
    bool sum = false;
    for (const auto& s : fam.samples) {
      if (s.name == name + "_bucket") {
        double le = parse_value(s.labels.at("le"), 0);
        if (le <= last_le) throw PromParseError(0, name + ": buckets out of order");
        if (s.value < last_count) throw PromParseError(0, name + ": buckets not cumulative");
        last_le = le;
        last_count = s.value;
        if (std::isinf(le)) inf_count = s.value;
      } else if (s.name == name + "_count") {
        count = s.value;
      } else if (s.name == name + "_sum") {
        sum = true;
      } else {
        throw PromParseError(0, name + ": unexpected sample " + s.name);
      }
    }
    if (inf_count < 0 || count < 0 || !sum) {
      throw PromParseError(0, name + ": no +Inf bucket, _count or _sum");
    }
    if (inf_count != count) throw PromParseError(0, name + ": +Inf bucket != _count");
  }
  return families;
}

// The value of the one sample `name` with exactly `labels`; throws when there is none.
inline double prom_value(const std::map<std::string, PromFamily>& families, const std::string& name,
                         const std::map<std::string, std::string>& labels = {}) {
  for (const auto& [_, fam] : families) {
    for (const auto& s : fam.samples) {
      if (s.name == name && s.labels == labels) return s.value;
    }
  }
  throw std::out_of_range("no sample " + name);
}

}  // namespace ecm::test
