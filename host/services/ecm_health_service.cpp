#include "services/ecm_health_service.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "util/log.hpp"

namespace ecm::host {
namespace {

// The file's text; throws std::runtime_error when it cannot be read.
std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw std::runtime_error("cannot read");
  return text.str();
}

// Reads and parses one /proc file; on failure records why and returns nullopt.
template <class Parse>
auto reading(const std::filesystem::path& path, Parse&& parse, std::vector<std::string>& errors)
    -> std::optional<decltype(parse(std::string_view{}))> {
  try {
    return parse(slurp(path));
  } catch (const std::exception& e) {
    errors.push_back("cannot read " + path.string() + ": " + e.what());
    return std::nullopt;
  }
}

}  // namespace

ECMHealthService::ECMHealthService(HealthSettings settings, const ECMMetricsService& metrics,
                                   const EngineConnCleanupService* cleanup,
                                   boost::asio::io_context& io)
    : settings_(std::move(settings)),
      metrics_(metrics),
      cleanup_(cleanup),
      timer_(io),
      assessor_(settings_.thresholds) {}

ECMHealthService::~ECMHealthService() {
  stop();
}

void ECMHealthService::start() {
  sample();
  std::lock_guard lock(mu_);
  schedule();
}

void ECMHealthService::stop() {
  std::lock_guard lock(mu_);
  stopped_ = true;
  timer_.cancel();
}

// Under mu_.
void ECMHealthService::schedule() {
  if (stopped_) return;
  timer_.expires_after(settings_.sample_interval);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    try {
      sample();
    } catch (const std::exception& e) {  // on an event-loop thread: never let it end the daemon
      log("health")->error("health sample failed: {}", e.what());
    }
    std::lock_guard lock(mu_);
    schedule();
  });
}

void ECMHealthService::set_status(core::EcmStatus status) {
  {
    std::lock_guard lock(mu_);
    if (status_ == status) return;
    status_ = status;
  }
  log("health")->info("ECM status: {}", core::to_string(status));
  sample();  // the health follows at once (ShuttingDown makes it StockUnavailable)
}

void ECMHealthService::update_settings(const HealthSettings& settings) {
  // sample() reads settings_ under sample_mu_, schedule() under mu_: written under both.
  std::lock_guard sampling(sample_mu_);
  std::lock_guard lock(mu_);
  settings_ = settings;
  assessor_.set_thresholds(settings.thresholds);
}

core::HealthReport ECMHealthService::sample() {
  std::lock_guard sampling(sample_mu_);
  core::HealthInputs in;
  {
    std::lock_guard lock(mu_);
    in.status = status_;
  }
  in.memory = reading(settings_.proc_meminfo, core::parse_meminfo, in.read_errors);
  in.load = reading(settings_.proc_loadavg, core::parse_loadavg, in.read_errors);
  // The CPU share is over at least half a sample interval: two readings a few milliseconds apart
  // (the sample at start and the one when the status changes) are a handful of ticks of the ECM's
  // own start-up, not the node's load. A sample too soon shows the last share and leaves the
  // overload count as it was.
  std::optional<double> shown_cpu_busy = last_cpu_busy_;
  if (auto cpu = reading(settings_.proc_stat, core::parse_proc_stat, in.read_errors)) {
    const auto now = std::chrono::steady_clock::now();
    if (!last_cpu_ || now - last_cpu_at_ >= settings_.sample_interval / 2) {
      if (last_cpu_) in.cpu_busy_percent = core::cpu_busy_percent(*last_cpu_, *cpu);
      last_cpu_ = *cpu;
      last_cpu_at_ = now;
      shown_cpu_busy = last_cpu_busy_ = in.cpu_busy_percent;
    }
  }
  if (cleanup_) {
    auto s = cleanup_->status();
    if (s.disk) {
      in.disk = core::DiskReading{s.path.string(),          s.disk->total_bytes,
                                  s.disk->free_bytes,       s.disk->used_percent(),
                                  s.high_watermark_percent, s.low_watermark_percent,
                                  s.over_watermark};
    } else {
      in.disk_unreadable = true;  // the clean-up measures at its start, before the first sample
    }
  }
  in.launch_failures_in_a_row = metrics_.launch_failures_in_a_row();
  const auto plugin_failures = metrics_.plugin_failures();
  in.plugin_failures_since_last_sample = plugin_failures - plugin_failures_seen_;
  plugin_failures_seen_ = plugin_failures;

  auto assessed = assessor_.assess(in);
  core::HealthReport r;
  r.status = in.status;
  r.health = r.assessed_health = assessed.health;
  r.reasons = std::move(assessed.reasons);
  r.memory = in.memory;
  r.cpu_busy_percent = shown_cpu_busy;
  r.load = in.load;
  r.work_disk = in.disk;
  r.launch_failures_in_a_row = in.launch_failures_in_a_row;
  r.plugin_failures = plugin_failures;
  r.reported_at = core::Clock::now();

  std::lock_guard lock(mu_);
  if (r.assessed_health != last_.assessed_health) {
    auto reasons = r.reasons.empty() ? std::string("-") : r.reasons.front();
    log("health")->info("node health {} -> {} ({})", core::to_string(last_.assessed_health),
                        core::to_string(r.assessed_health), reasons);
  }
  last_ = std::move(r);
  notify_locked();
  return effective_locked();
}

void ECMHealthService::notify_locked() {
  auto r = effective_locked();
  if (told_ == r.health) return;
  const auto from = told_.value_or(r.health);
  const bool first = !told_;
  told_ = r.health;
  if (observer_ && !first) observer_(from, r.health, r.reasons.empty() ? "" : r.reasons.front());
}

core::HealthReport ECMHealthService::effective_locked() const {
  core::HealthReport r = last_;
  r.status = status_;
  if (rm_health_) {
    r.health = rm_health_->first;
    r.set_by_rm = true;
    r.reasons.insert(
        r.reasons.begin(),
        "set by the RM" + (rm_health_->second.empty() ? std::string() : ": " + rm_health_->second));
  }
  return r;
}

core::HealthReport ECMHealthService::report() const {
  std::lock_guard lock(mu_);
  return effective_locked();
}

core::HealthReport ECMHealthService::set_rm_health(core::NodeHealth health,
                                                   const std::string& reason) {
  std::lock_guard lock(mu_);
  rm_health_.emplace(health, reason);
  log("health")->info("the RM set the node health to {} ({})", core::to_string(health),
                      reason.empty() ? "no reason given" : reason);
  notify_locked();
  return effective_locked();
}

core::HealthReport ECMHealthService::clear_rm_health() {
  std::lock_guard lock(mu_);
  if (rm_health_) log("health")->info("the RM cleared the node health it had set");
  rm_health_.reset();
  notify_locked();
  return effective_locked();
}

bool ECMHealthService::accepts_launches() const {
  return !launch_refusal().has_value();
}

std::optional<std::string> ECMHealthService::launch_refusal() const {
  auto r = report();
  if (core::takes_new_engines(r.health)) return std::nullopt;
  std::string message = "node health is " + std::string(core::to_string(r.health));
  if (!r.reasons.empty()) {
    message += ": ";
    for (std::size_t i = 0; i < r.reasons.size(); ++i)
      message += (i ? "; " : "") + r.reasons[i];
  }
  return message + " (no new engines)";
}

}  // namespace ecm::host
