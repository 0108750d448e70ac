#include "config/toml_reader.hpp"

#include "ecm/core/units.hpp"

namespace ecm::host {
namespace {

std::uint32_t line_of(const toml::node& n) {
  return n.source().begin.line;
}

}  // namespace

toml::table TomlReader::parse_file(const std::filesystem::path& file) {
  try {
    return toml::parse_file(file.string());
  } catch (const toml::parse_error& e) {
    throw ConfigError(file.string(), e.source().begin.line, "", std::string(e.description()));
  }
}

toml::table TomlReader::parse_text(std::string_view text, const std::string& source_name) {
  try {
    return toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    throw ConfigError(source_name, e.source().begin.line, "", std::string(e.description()));
  }
}

TomlReader::TomlReader(const toml::table& table, std::string file, std::string prefix)
    : table_(&table), file_(std::move(file)), prefix_(std::move(prefix)) {}

std::string TomlReader::dotted(const std::string& key) const {
  return prefix_.empty() ? key : prefix_ + "." + key;
}

void TomlReader::fail(const std::string& key, const std::string& problem) const {
  const toml::node* n = table_->get(key);
  throw ConfigError(file_, n ? line_of(*n) : line_of(*table_), dotted(key), problem);
}

const toml::node* TomlReader::find(const std::string& key) {
  seen_.insert(key);
  return table_->get(key);
}

std::optional<std::string> TomlReader::string(const std::string& key) {
  const auto* n = find(key);
  if (!n) return std::nullopt;
  if (!n->is_string()) fail(key, "expected a string");
  return n->value<std::string>();
}

std::optional<bool> TomlReader::boolean(const std::string& key) {
  const auto* n = find(key);
  if (!n) return std::nullopt;
  if (!n->is_boolean()) fail(key, "expected true or false");
  return n->value<bool>();
}

std::optional<std::int64_t> TomlReader::integer(const std::string& key, std::int64_t min,
                                                std::int64_t max) {
  const auto* n = find(key);
  if (!n) return std::nullopt;
  if (!n->is_integer()) fail(key, "expected an integer");
  auto v = *n->value<std::int64_t>();
  if (v < min || v > max) {
    fail(key, std::to_string(v) + " is out of range " + std::to_string(min) + ".." +
                  std::to_string(max));
  }
  return v;
}

std::optional<std::chrono::milliseconds> TomlReader::duration(const std::string& key) {
  const auto* n = find(key);
  if (!n) return std::nullopt;
  if (!n->is_string()) fail(key, "expected a duration string with a unit, like \"30s\"");
  auto text = *n->value<std::string>();
  auto d = core::parse_duration(text);
  if (!d) fail(key, "'" + text + "' is not a duration (use a unit: 500ms, 30s, 5m, 1h, 1d)");
  return d;
}

std::optional<std::optional<std::uint64_t>> TomlReader::auto_or_size(const std::string& key) {
  const auto* n = table_->get(key);
  if (n && n->value_exact<std::string>() == "auto") {
    seen_.insert(key);
    return std::optional<std::uint64_t>{};
  }
  auto v = size(key);
  if (!v) return std::nullopt;
  return std::optional<std::uint64_t>{*v};
}

std::optional<std::optional<std::uint64_t>> TomlReader::auto_or_count(const std::string& key,
                                                                      std::int64_t max) {
  const auto* n = table_->get(key);
  if (n && n->value_exact<std::string>() == "auto") {
    seen_.insert(key);
    return std::optional<std::uint64_t>{};
  }
  auto v = integer(key, 0, max);
  if (!v) return std::nullopt;
  return std::optional<std::uint64_t>{static_cast<std::uint64_t>(*v)};
}

std::optional<std::uint64_t> TomlReader::size(const std::string& key) {
  const auto* n = find(key);
  if (!n) return std::nullopt;
  if (!n->is_string()) fail(key, "expected a size string with a unit, like \"512MiB\"");
  auto text = *n->value<std::string>();
  auto s = core::parse_size(text);
  if (!s) fail(key, "'" + text + "' is not a size (use a unit: B, KiB, MiB, GiB, TiB)");
  return s;
}

std::optional<std::vector<std::string>> TomlReader::string_list(const std::string& key) {
  const auto* n = find(key);
  if (!n) return std::nullopt;
  const auto* arr = n->as_array();
  if (!arr) fail(key, "expected an array of strings");
  std::vector<std::string> out;
  for (const auto& e : *arr) {
    if (!e.is_string()) fail(key, "expected an array of strings");
    out.push_back(*e.value<std::string>());
  }
  return out;
}

std::optional<TomlReader> TomlReader::table(const std::string& key) {
  const auto* n = find(key);
  if (!n) return std::nullopt;
  const auto* t = n->as_table();
  if (!t) fail(key, "expected a table");
  return TomlReader(*t, file_, dotted(key));
}

void TomlReader::refuse_unknown_keys() const {
  for (const auto& [k, node] : *table_) {
    std::string key(k.str());
    if (seen_.count(key) == 0) {
      throw ConfigError(file_, line_of(node), dotted(key), "unknown key");
    }
  }
}

}  // namespace ecm::host
