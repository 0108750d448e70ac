// A config that cannot be used: names the file, the line and the key, so the fix is obvious.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace ecm::host {

class ConfigError : public std::runtime_error {
 public:
  ConfigError(const std::string& file, std::uint32_t line, const std::string& key,
              const std::string& problem)
      : std::runtime_error(file + (line ? ":" + std::to_string(line) : std::string()) + ": " +
                           (key.empty() ? std::string() : key + ": ") + problem),
        file_(file),
        line_(line),
        key_(key) {}
  const std::string& file() const { return file_; }
  std::uint32_t line() const { return line_; }
  const std::string& key() const { return key_; }

 private:
  std::string file_;
  std::uint32_t line_;
  std::string key_;
};

}  // namespace ecm::host
