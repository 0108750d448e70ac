// Rendering engines for people (key: value lines, tables) and for programs (JSON).
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "ecm_types.h"

namespace ecm::ctl {

// Milliseconds since the epoch as ISO-8601 UTC: "2024-05-01T12:34:56.789Z".
std::string format_time_ms(std::int64_t ms);

// Every key always present, null when the field is unset (see the README of ecmctl --json).
boost::json::object engine_to_json(const ::ecm::thrift::EngineConn& engine);
boost::json::array engines_to_json(const std::vector<::ecm::thrift::EngineConn>& engines);

// One "key: value" line per field, "-" when unset; labels and properties one per line.
void print_engine(std::ostream& out, const ::ecm::thrift::EngineConn& engine);

// Columns ID, USER, TYPE, STATUS, PID, EXIT, CREATED; the header even when the list is empty.
void print_engine_table(std::ostream& out, const std::vector<::ecm::thrift::EngineConn>& engines);

// {memory_bytes, cores, instances}, null when a field is unset.
boost::json::object resource_amount_to_json(const ::ecm::thrift::ResourceAmount& amount);
// {path, total_bytes, free_bytes, used_percent, high_watermark_percent, low_watermark_percent,
// over_watermark, removed_by_retention, removed_by_watermark, last_pass}, null when unset.
boost::json::object disk_usage_to_json(const ::ecm::thrift::DiskUsage& disk);
// {max, protected, locked, used, left}, each a resource_amount_to_json object (null when unset),
// and disk, a disk_usage_to_json object (null when unset).
boost::json::object resources_to_json(const ::ecm::thrift::NodeResources& resources);

// Rows max, protected, locked, used, left; columns MEMORY (in MiB), CORES, INSTANCES. Then, when
// the ECM reports its disk, a "disk:" line (usage, watermark, what the clean-up removed).
void print_resources_table(std::ostream& out, const ::ecm::thrift::NodeResources& resources);

// "1024MiB", "0.5MiB": a byte count in MiB, with up to one decimal.
std::string format_mib(std::int64_t bytes);

// Compact JSON and a newline.
void print_json(std::ostream& out, const boost::json::value& value);

}  // namespace ecm::ctl
