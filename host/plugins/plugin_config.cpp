#include "plugins/plugin_config.hpp"

#include "config/toml_reader.hpp"

namespace ecm::host {
namespace {

std::optional<std::string> scalar_text(const toml::node& n) {
  if (auto s = n.value_exact<std::string>()) return *s;
  if (auto b = n.value_exact<bool>()) return *b ? "true" : "false";
  if (auto i = n.value_exact<std::int64_t>()) return std::to_string(*i);
  if (auto d = n.value_exact<double>()) return std::to_string(*d);
  return std::nullopt;
}

void flatten(const toml::table& t, const std::string& prefix, const std::string& file,
             sdk::PluginConfig& out) {
  for (const auto& [k, node] : t) {
    const std::string key =
        prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (const auto* sub = node.as_table()) {
      flatten(*sub, key, file, out);
    } else if (const auto* arr = node.as_array()) {
      std::vector<std::string> items;
      for (const auto& e : *arr) {
        auto text = scalar_text(e);
        if (!text)
          throw ConfigError(file, e.source().begin.line, key, "arrays may hold scalars only");
        items.push_back(*text);
      }
      out.lists[key] = std::move(items);
    } else if (auto text = scalar_text(node)) {
      out.values[key] = *text;
    } else {
      throw ConfigError(file, node.source().begin.line, key, "unsupported value type");
    }
  }
}

}  // namespace

sdk::PluginConfig load_plugin_config(const std::filesystem::path& file) {
  sdk::PluginConfig config;
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return config;
  auto root = TomlReader::parse_file(file);
  flatten(root, "", file.string(), config);
  return config;
}

}  // namespace ecm::host
