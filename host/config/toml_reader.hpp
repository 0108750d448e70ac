// Reads typed values out of a TOML table and refuses anything it was not asked for: an unknown
// key, a wrong type or a bad value becomes a ConfigError with file, line and dotted key.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "config/config_error.hpp"

namespace ecm::host {

class TomlReader {
 public:
  // Parses the file; a syntax error becomes a ConfigError.
  static toml::table parse_file(const std::filesystem::path& file);
  static toml::table parse_text(std::string_view text, const std::string& source_name);

  TomlReader(const toml::table& table, std::string file, std::string prefix = {});

  std::optional<std::string> string(const std::string& key);
  std::optional<bool> boolean(const std::string& key);
  std::optional<std::int64_t> integer(const std::string& key, std::int64_t min, std::int64_t max);
  std::optional<std::chrono::milliseconds> duration(const std::string& key);
  // "auto" (nullopt inside) or a size / a count; absent: the outer nullopt.
  std::optional<std::optional<std::uint64_t>> auto_or_size(const std::string& key);
  std::optional<std::optional<std::uint64_t>> auto_or_count(const std::string& key,
                                                            std::int64_t max);
  std::optional<std::uint64_t> size(const std::string& key);
  std::optional<std::vector<std::string>> string_list(const std::string& key);
  // A sub-table; nullopt when absent.
  std::optional<TomlReader> table(const std::string& key);

  // Throws for the first key of this table (not descending) that no accessor asked for.
  void refuse_unknown_keys() const;

  [[noreturn]] void fail(const std::string& key, const std::string& problem) const;
  const std::string& file() const { return file_; }

 private:
  const toml::node* find(const std::string& key);
  std::string dotted(const std::string& key) const;

  const toml::table* table_;
  std::string file_;
  std::string prefix_;
  std::set<std::string> seen_;
};

}  // namespace ecm::host
