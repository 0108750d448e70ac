// What a name taken from a request may look like. Every user name, engine id, engine type and
// relative path that ends up in a file system path passes through here first.
#pragma once

#include <string>
#include <string_view>

namespace ecm::core {

// [A-Za-z0-9._-], 1..max_len characters, not "." or "..", not starting with '-'.
bool is_safe_name(std::string_view name, std::size_t max_len = 64);

// A POSIX-ish user name: [a-z_][a-z0-9_-]*[$]?, at most 32 characters.
bool is_valid_user_name(std::string_view name);

// A relative path whose every component is a safe name: no "..", no absolute path, no NUL,
// no empty component. Used for the files and directories a plugin asks for in the work dir.
bool is_safe_relative_path(std::string_view path);

// True when the text has no NUL byte (what may go into argv and the environment).
bool has_no_nul(std::string_view text);

}  // namespace ecm::core
