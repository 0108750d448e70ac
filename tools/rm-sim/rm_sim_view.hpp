// How rm-sim shows what it knows: the one ECM table (printed by `serve` every --print-interval
// and by `rm-sim ecms`) and the IDL's enum names as the ECM and Linkis spell them.
#pragma once

#include <string>
#include <vector>

#include "rm_sim_types.h"

namespace ecm::rmsim {

// SHUTTING_DOWN -> "ShuttingDown", STOCK_AVAILABLE -> "StockAvailable".
std::string status_name(::ecm::thrift::EngineStatus::type s);
std::string health_name(::ecm::thrift::NodeHealth::type h);

// Engines not ended, as the changes received describe them.
int live_engines(const SimEcm& e);

// One line per ECM under a header; `now_ms` is wall-clock milliseconds.
std::string ecm_table(const std::vector<SimEcm>& ecms, std::int64_t now_ms);

}  // namespace ecm::rmsim
