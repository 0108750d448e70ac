// Unpacks a resource archive (zip, tar, tar.gz) into an empty cache dir. The archive comes from
// outside (a download), so it is treated as hostile: nothing it holds may land outside the target,
// nothing but regular files, dirs and in-tree links is made, and it cannot expand without bound.
#pragma once

#include <cstdint>
#include <filesystem>

#include "ecm/sdk/result.hpp"

namespace ecm::host {

struct UnpackLimits {
  std::uint64_t max_total_bytes = 0;  // uncompressed bytes over all files, counted as written
  std::uint64_t max_entries = 0;      // entries of any kind, dirs included
};

// kAuto lets libarchive detect the format among tar and zip, gzip-compressed or not (only these:
// no other decompressor, in particular none that runs an external program).
enum class ArchiveFormat { kZip, kTar, kTarGz, kAuto };

struct UnpackStats {
  std::uint64_t entries = 0;
  std::uint64_t files = 0;  // regular files written (hard links not counted)
  std::uint64_t bytes = 0;  // uncompressed bytes written
};

// Unpacks `archive` into `target`, which must be an existing, empty dir. Files get mode 0644, or
// 0755 if any exec bit was set (setuid, setgid and sticky bits are dropped); dirs 0755; ownership
// and times are not restored. Refused, failing the whole archive: absolute paths, `..`
// components, paths through a symlink, symlinks that are absolute or resolve outside target (or
// through another symlink), hard links to anything but a file extracted earlier, devices, fifos,
// sockets, duplicate entries, more than `max_entries` entries, more than `max_total_bytes` bytes.
// On any error everything written under target is removed (target itself stays, empty) and the
// error names the entry and the reason: kInvalidRequest when the archive is at fault (refused,
// corrupt, truncated), kInternal when the host is (I/O error, disk full).
sdk::Result<UnpackStats> unpack_archive(const std::filesystem::path& archive,
                                        const std::filesystem::path& target, ArchiveFormat format,
                                        const UnpackLimits& limits);

}  // namespace ecm::host
