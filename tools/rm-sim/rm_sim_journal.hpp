// rm-sim's journal (--state FILE): every engine change it accepted, one JSON object per line,
// appended and fsynced before the heartbeat that carried it is acknowledged. Reloaded at start, it
// gives back the acknowledged sequence per (ecm_id, incarnation), so a restarted rm-sim neither
// loses nor double-counts a transition.
#pragma once

#include <filesystem>
#include <vector>

#include "rm_sim_types.h"

namespace ecm::rmsim {

class Journal {
 public:
  // Opens (creating) `file` and reads what it holds. A last line without its newline (a crash
  // in the middle of a write, never acknowledged) is cut off. Throws std::runtime_error.
  explicit Journal(const std::filesystem::path& file);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  const std::vector<SimChange>& loaded() const { return loaded_; }
  // Appends the changes and fsyncs. Throws std::runtime_error (nothing is acknowledged then).
  void append(const std::vector<SimChange>& changes);

 private:
  std::filesystem::path file_;
  int fd_ = -1;
  std::vector<SimChange> loaded_;
};

}  // namespace ecm::rmsim
