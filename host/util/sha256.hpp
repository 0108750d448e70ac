#pragma once

#include <filesystem>
#include <string>

namespace ecm::host {

// Lower-case hex SHA-256 of a file's content (OpenSSL EVP). Throws std::runtime_error on I/O error.
std::string sha256_file(const std::filesystem::path& file);

}  // namespace ecm::host
