#include "ecm/core/ecm_metrics.hpp"

#include <limits>

namespace ecm::core {

void LatencyHistogram::observe(std::chrono::microseconds latency) {
  const double ms = static_cast<double>(latency.count()) / 1000.0;
  std::size_t i = 0;
  while (i < kBoundsMs.size() && ms > kBoundsMs[i])
    ++i;
  ++per_bucket_[i];
  sum_ms_ += ms;
  ++count_;
}

std::vector<LatencyHistogram::Bucket> LatencyHistogram::buckets() const {
  std::vector<Bucket> out;
  std::uint64_t running = 0;
  for (std::size_t i = 0; i < per_bucket_.size(); ++i) {
    running += per_bucket_[i];
    out.push_back(
        {i < kBoundsMs.size() ? kBoundsMs[i] : std::numeric_limits<double>::infinity(), running});
  }
  return out;
}

}  // namespace ecm::core
