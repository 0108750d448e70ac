// Size-based rotation of an engine's log stream by copy-truncate. Engines write their stdout and
// stderr straight into files they opened with O_APPEND themselves (an engine must outlive an ECM
// crash, so the ECM does not sit in a pipe between them), so the file cannot be renamed from under
// them: the ECM copies its content aside and truncates it, and the engine's next O_APPEND write
// lands at the new end.
//
// The layout is the one EngineLogReader reads as one stream: NAME.k, ..., NAME.2, NAME.1, NAME,
// NAME.1 the most recent rotated file, at most `keep` of them.
//
// Known loss window: bytes the engine writes between the last copy and the truncate are lost.
// That window is kept to a final fstat, the copy of what arrived since the previous copy
// (copy_file_range, in the kernel) and the ftruncate, back to back; growth during the bulk copy is
// caught up in a bounded number of rounds before it. Lines are lost whole, never cut: when the
// copy ends inside a line (one still being written, or a write the copy saw half done), NAME.1 is
// cut back to its last line end (looking back at most 64 KiB) and that unfinished line is lost
// with the truncate.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace ecm::core {

// The most rotated files a stream may keep (EngineLogReader reads no further).
inline constexpr int kMaxRotatedLogFiles = 1000;

// Rotates `path` (NAME) when it is larger than `max_bytes`: drops NAME.keep and anything beyond,
// shifts NAME.(keep-1)..NAME.1 up by one, copies NAME's content to NAME.1 (through a temp file,
// renamed into place), then truncates NAME to 0. The files it creates get NAME's owner, group and
// permission bits. keep == 0 only truncates. Returns true when it rotated; false when NAME is
// missing or not larger than max_bytes.
// Throws std::system_error for an I/O failure, std::runtime_error when NAME is not a regular file
// or has other hard links (truncating it would truncate someone else's file), and
// std::invalid_argument for keep outside 0..kMaxRotatedLogFiles. Nothing follows a symlink.
bool rotate_if_larger(const std::filesystem::path& path, std::uint64_t max_bytes, int keep);

// The same for the file `name` (one path component) in the directory open as `dir_fd`, for a
// caller that has opened the directory and checked where it is.
bool rotate_if_larger_at(int dir_fd, const std::string& name, std::uint64_t max_bytes, int keep);

}  // namespace ecm::core
