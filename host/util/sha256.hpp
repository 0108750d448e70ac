#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace ecm::host {

// Lower-case hex SHA-256 of a file's content (OpenSSL EVP). Throws std::runtime_error on I/O error.
std::string sha256_file(const std::filesystem::path& file);
// The same of bytes in memory.
std::string sha256_hex(std::string_view bytes);
// Lower-case hex of a digest.
std::string to_hex(const unsigned char* digest, std::size_t size);

}  // namespace ecm::host
