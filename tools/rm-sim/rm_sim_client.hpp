// The rm-sim commands that talk to a running `rm-sim serve` (its RmSimAdmin service).
#pragma once

#include <map>
#include <string>

#include "EngineConnManagerService.h"

namespace ecm::rmsim {

// Each prints to stdout (a table, or JSON with `json`) and returns the exit code; errors go to
// stderr. `rm`: HOST:PORT of rm-sim serve.
int list_ecms(const std::string& rm, bool json);
int list_changes(const std::string& rm, bool json);
int launch(const std::string& rm, const ::ecm::thrift::LaunchRequest& request, int count,
           bool json);

}  // namespace ecm::rmsim
