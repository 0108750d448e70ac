// Node resources as Linkis's load-instance resource counts them, and the ledger that admits engines
// against them. max, protected, locked, used and left are computed here and nowhere else.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace ecm::core {

struct Resource {
  std::uint64_t memory_bytes = 0;
  std::uint64_t cores = 0;
  std::uint64_t instances = 0;

  Resource& operator+=(const Resource& o);
  // Saturates at zero: `left` is never negative, even if the capacity shrank under the engines.
  Resource minus(const Resource& o) const;
  bool fits_in(const Resource& o) const;
  bool operator==(const Resource&) const = default;
};

std::string describe(const Resource& r);

struct ResourceSnapshot {
  Resource max;
  Resource protected_;  // kept back for the node itself
  Resource locked;      // admitted engines not yet available
  Resource used;        // available engines
  Resource left;        // max - protected - locked - used
};

class ResourceLedger {
 public:
  ResourceLedger(Resource max, Resource protected_);

  // Admits `amount` for the engine (locked). Throws EcmException(kInsufficientResources) naming
  // what is short; then nothing is locked. Admitting an engine already held is a logic error.
  void lock(const std::string& engine_id, const Resource& amount);
  // Takes back what an engine re-adopted after a restart holds, as locked or as used. Never
  // refused: the engine exists whatever the capacity says now (a smaller capacity in the new
  // config leaves less, possibly nothing, for new engines). Adopting twice is a logic error.
  void adopt(const std::string& engine_id, const Resource& amount, bool used);
  // locked -> used, when the engine becomes available. False if the engine holds nothing locked.
  bool mark_used(const std::string& engine_id);
  // Gives back whatever the engine holds. True the first time, false after (released once).
  bool release(const std::string& engine_id);

  ResourceSnapshot snapshot() const;

 private:
  struct Held {
    Resource amount;
    bool used = false;
  };

  const Resource max_;
  const Resource protected_;
  mutable std::mutex mu_;
  std::map<std::string, Held> held_;
  Resource locked_;
  Resource used_;
};

// The machine's own capacity: physical memory and online CPUs (instances are not a machine fact).
Resource detect_machine_resources();

}  // namespace ecm::core
