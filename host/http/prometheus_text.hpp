// The ECM's metrics and health in the Prometheus text exposition format (version 0.0.4): every
// name prefixed `ecm_`, counters ending in `_total`, one HELP and one TYPE line per family.
#pragma once

#include <string>

#include "ecm/core/ecm_metrics.hpp"
#include "ecm/core/health_assessment.hpp"

namespace ecm::host {

inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

std::string prometheus_text(const core::EcmMetrics& metrics, const core::HealthReport& health);

// A label value with \, " and newline escaped as the format asks.
std::string escape_label_value(const std::string& value);

}  // namespace ecm::host
