#include "ecm/core/resources.hpp"

#include <unistd.h>

#include <stdexcept>

#include "ecm/core/errors.hpp"

namespace ecm::core {
namespace {

std::uint64_t sub(std::uint64_t a, std::uint64_t b) {
  return a > b ? a - b : 0;
}

std::string mib(std::uint64_t bytes) {
  return std::to_string(bytes >> 20) + "MiB";
}

}  // namespace

Resource& Resource::operator+=(const Resource& o) {
  memory_bytes += o.memory_bytes;
  cores += o.cores;
  instances += o.instances;
  return *this;
}

Resource Resource::minus(const Resource& o) const {
  return {sub(memory_bytes, o.memory_bytes), sub(cores, o.cores), sub(instances, o.instances)};
}

bool Resource::fits_in(const Resource& o) const {
  return memory_bytes <= o.memory_bytes && cores <= o.cores && instances <= o.instances;
}

std::string describe(const Resource& r) {
  return "memory " + mib(r.memory_bytes) + ", cores " + std::to_string(r.cores) + ", instances " +
         std::to_string(r.instances);
}

ResourceLedger::ResourceLedger(Resource max, Resource protected_)
    : max_(max), protected_(protected_) {}

void ResourceLedger::lock(const std::string& engine_id, const Resource& amount) {
  std::lock_guard lock(mu_);
  if (held_.count(engine_id) != 0) {
    throw std::logic_error("engine " + engine_id + " already holds resources");
  }
  const Resource left = max_.minus(protected_).minus(locked_).minus(used_);
  if (!amount.fits_in(left)) {
    std::string shortfall;
    auto add = [&](const char* what, std::uint64_t want, std::uint64_t have, bool bytes) {
      if (want <= have) return;
      if (!shortfall.empty()) shortfall += "; ";
      shortfall += std::string(what) + ": asked " + (bytes ? mib(want) : std::to_string(want)) +
                   ", left " + (bytes ? mib(have) : std::to_string(have));
    };
    add("memory", amount.memory_bytes, left.memory_bytes, true);
    add("cores", amount.cores, left.cores, false);
    add("instances", amount.instances, left.instances, false);
    throw EcmException(ErrorCode::kInsufficientResources, "insufficient resources: " + shortfall);
  }
  held_[engine_id] = Held{amount, false};
  locked_ += amount;
}

void ResourceLedger::adopt(const std::string& engine_id, const Resource& amount, bool used) {
  std::lock_guard lock(mu_);
  if (held_.count(engine_id) != 0) {
    throw std::logic_error("engine " + engine_id + " already holds resources");
  }
  held_[engine_id] = Held{amount, used};
  (used ? used_ : locked_) += amount;
}

bool ResourceLedger::mark_used(const std::string& engine_id) {
  std::lock_guard lock(mu_);
  auto it = held_.find(engine_id);
  if (it == held_.end() || it->second.used) return false;
  it->second.used = true;
  locked_ = locked_.minus(it->second.amount);
  used_ += it->second.amount;
  return true;
}

bool ResourceLedger::release(const std::string& engine_id) {
  std::lock_guard lock(mu_);
  auto it = held_.find(engine_id);
  if (it == held_.end()) return false;
  if (it->second.used) {
    used_ = used_.minus(it->second.amount);
  } else {
    locked_ = locked_.minus(it->second.amount);
  }
  held_.erase(it);
  return true;
}

ResourceSnapshot ResourceLedger::snapshot() const {
  std::lock_guard lock(mu_);
  return {max_, protected_, locked_, used_, max_.minus(protected_).minus(locked_).minus(used_)};
}

Resource detect_machine_resources() {
  Resource r;
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGE_SIZE);
  if (pages > 0 && page_size > 0) {
    r.memory_bytes = static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_size);
  }
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  r.cores = cpus > 0 ? static_cast<std::uint64_t>(cpus) : 1;
  return r;
}

}  // namespace ecm::core
