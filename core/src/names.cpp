#include "ecm/core/names.hpp"

namespace ecm::core {

bool has_no_nul(std::string_view text) {
  return text.find('\0') == std::string_view::npos;
}

bool is_safe_name(std::string_view name, std::size_t max_len) {
  if (name.empty() || name.size() > max_len) return false;
  if (name == "." || name == ".." || name.front() == '-') return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool is_valid_user_name(std::string_view name) {
  if (name.empty() || name.size() > 32) return false;
  auto first = name.front();
  if (!((first >= 'a' && first <= 'z') || first == '_')) return false;
  for (std::size_t i = 1; i < name.size(); ++i) {
    char c = name[i];
    const bool last_dollar = c == '$' && i + 1 == name.size();
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok && !last_dollar) return false;
  }
  return true;
}

bool is_safe_relative_path(std::string_view path) {
  if (path.empty() || path.size() > 1024 || path.front() == '/') return false;
  std::size_t start = 0;
  while (start <= path.size()) {
    auto slash = path.find('/', start);
    auto end = slash == std::string_view::npos ? path.size() : slash;
    if (!is_safe_name(path.substr(start, end - start), 255)) return false;
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return true;
}

}  // namespace ecm::core
