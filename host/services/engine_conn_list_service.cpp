#include "services/engine_conn_list_service.hpp"

#include <stdexcept>

#include "ecm/core/engine_exit.hpp"
#include "util/log.hpp"

namespace ecm::host {

void EngineConnListService::set_store(EngineStateStore* store) {
  std::lock_guard lock(mu_);
  store_ = store;
}

void EngineConnListService::persist(const core::EngineConn& record) {
  if (store_) store_->put(record);
}

void EngineConnListService::add_status_observer(StatusObserver observer) {
  std::lock_guard lock(mu_);
  observers_.push_back(std::move(observer));
}

void EngineConnListService::notify(core::EngineStatus from, const core::EngineConn& record) const {
  for (const auto& o : observers_) {
    try {
      o(from, record);
    } catch (const std::exception& e) {
      log("engines")->error("[{}] status observer failed: {}", record.id, e.what());
    }
  }
}

std::pair<core::EngineConn, bool> EngineConnListService::add_unless_ticket_known(
    const core::EngineConn& record) {
  std::lock_guard lock(mu_);
  if (!record.ticket_id.empty()) {
    auto t = by_ticket_.find(record.ticket_id);
    if (t != by_ticket_.end()) return {*engines_.at(t->second).record, false};
  }
  persist(record);
  if (!record.ticket_id.empty()) by_ticket_[record.ticket_id] = record.id;
  engines_[record.id] = Entry{std::make_shared<const core::EngineConn>(record), std::nullopt};
  notify(record.status, record);
  return {record, true};
}

void EngineConnListService::restore(const core::EngineConn& record) {
  std::lock_guard lock(mu_);
  if (engines_.count(record.id) != 0) {
    throw std::logic_error("engine " + record.id + " restored twice");
  }
  if (!record.ticket_id.empty()) by_ticket_[record.ticket_id] = record.id;
  engines_[record.id] = Entry{std::make_shared<const core::EngineConn>(record), std::nullopt};
}

std::optional<core::EngineConn> EngineConnListService::get(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = engines_.find(id);
  if (it == engines_.end()) return std::nullopt;
  return *it->second.record;
}

std::optional<core::EngineConn> EngineConnListService::find_by_ticket(
    const std::string& ticket_id) const {
  std::lock_guard lock(mu_);
  auto t = by_ticket_.find(ticket_id);
  if (t == by_ticket_.end()) return std::nullopt;
  return *engines_.at(t->second).record;
}

std::vector<std::shared_ptr<const core::EngineConn>> EngineConnListService::snapshot(
    const EngineConnFilter& f) const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<const core::EngineConn>> out;
  out.reserve(engines_.size());
  for (const auto& [id, e] : engines_) {
    const auto& r = *e.record;
    if (f.user && r.user != *f.user) continue;
    if (f.engine_type && r.engine_type != *f.engine_type) continue;
    if (f.status && r.status != *f.status) continue;
    out.push_back(e.record);
  }
  return out;
}

std::vector<core::EngineConn> EngineConnListService::list(const EngineConnFilter& f) const {
  std::vector<core::EngineConn> out;
  for (const auto& r : snapshot(f))
    out.push_back(*r);
  return out;
}

std::optional<EngineRuntime> EngineConnListService::runtime(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = engines_.find(id);
  if (it == engines_.end()) return std::nullopt;
  return it->second.runtime;
}

std::size_t EngineConnListService::size() const {
  std::lock_guard lock(mu_);
  return engines_.size();
}

std::map<const void*, std::size_t> EngineConnListService::count_by_plugin_pin() const {
  std::lock_guard lock(mu_);
  std::map<const void*, std::size_t> out;
  for (const auto& [id, entry] : engines_) {
    if (entry.runtime && entry.runtime->plugin_pin) ++out[entry.runtime->plugin_pin.get()];
  }
  return out;
}

std::optional<core::EngineConn> EngineConnListService::transition(
    const std::string& id, core::EngineStatus to,
    const std::function<void(core::EngineConn&)>& mutate) {
  std::lock_guard lock(mu_);
  auto it = engines_.find(id);
  if (it == engines_.end()) return std::nullopt;
  auto& e = it->second;
  if (!core::can_transition(e.record->status, to)) {
    log("engines")->debug("[{}] transition {} -> {} refused", id, core::to_string(e.record->status),
                          core::to_string(to));
    return std::nullopt;
  }
  core::EngineConn next = *e.record;
  next.status = to;
  if (mutate) mutate(next);
  persist(next);
  const auto from = e.record->status;
  e.record = std::make_shared<const core::EngineConn>(std::move(next));
  // An ended engine no longer pins its plugin generation.
  if (core::is_ended(to)) e.runtime.reset();
  notify(from, *e.record);
  return *e.record;
}

std::optional<core::EngineConn> EngineConnListService::update(
    const std::string& id, const std::function<void(core::EngineConn&)>& mutate) {
  std::lock_guard lock(mu_);
  auto it = engines_.find(id);
  if (it == engines_.end()) return std::nullopt;
  core::EngineConn next = *it->second.record;
  mutate(next);
  persist(next);
  it->second.record = std::make_shared<const core::EngineConn>(std::move(next));
  return *it->second.record;
}

void EngineConnListService::set_runtime(const std::string& id, EngineRuntime runtime) {
  std::lock_guard lock(mu_);
  auto it = engines_.find(id);
  if (it != engines_.end() && !core::is_ended(it->second.record->status)) {
    it->second.runtime = std::move(runtime);
  }
}

std::optional<core::EngineConn> EngineConnListService::finish(const std::string& id,
                                                              const core::ExitStatus& exit) {
  std::lock_guard lock(mu_);
  auto it = engines_.find(id);
  if (it == engines_.end() || core::is_ended(it->second.record->status)) return std::nullopt;
  auto& e = it->second;
  core::EngineConn ended = *e.record;
  core::record_exit(ended, exit, core::Clock::now());
  if (!core::can_transition(e.record->status, ended.status)) return std::nullopt;
  persist(ended);
  const auto from = e.record->status;
  e.record = std::make_shared<const core::EngineConn>(std::move(ended));
  e.runtime.reset();
  notify(from, *e.record);
  return *e.record;
}

bool EngineConnListService::remove_ended(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = engines_.find(id);
  if (it == engines_.end() || !core::is_ended(it->second.record->status)) return false;
  if (store_) store_->remove(id);
  if (!it->second.record->ticket_id.empty()) by_ticket_.erase(it->second.record->ticket_id);
  engines_.erase(it);
  return true;
}

}  // namespace ecm::host
