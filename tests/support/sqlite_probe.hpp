// Test support: a connection of the test's own to an SQLite file, to see what really reached the
// file (not what the code under test believes it wrote) and to break it on purpose.
#pragma once

#include <sqlite3.h>

#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace ecm::test {

class SqliteProbe {
 public:
  using Row = std::map<std::string, std::optional<std::string>>;  // column -> value (NULL: none)

  explicit SqliteProbe(const std::filesystem::path& path, bool read_only = false) {
    const int flags = read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
    const int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) {
      const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close_v2(db_);
      throw std::runtime_error("cannot open " + path.string() + ": " + msg);
    }
    sqlite3_busy_timeout(db_, 5000);
  }
  ~SqliteProbe() { sqlite3_close_v2(db_); }
  SqliteProbe(const SqliteProbe&) = delete;
  SqliteProbe& operator=(const SqliteProbe&) = delete;

  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      const std::string msg = err ? err : sqlite3_errmsg(db_);
      sqlite3_free(err);
      throw std::runtime_error(sql + ": " + msg);
    }
  }

  std::vector<Row> rows(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
    }
    std::vector<Row> out;
    int rc = SQLITE_OK;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      Row row;
      for (int i = 0; i < sqlite3_column_count(stmt); ++i) {
        std::optional<std::string> v;
        if (sqlite3_column_type(stmt, i) != SQLITE_NULL) {
          v.emplace(reinterpret_cast<const char*>(sqlite3_column_text(stmt, i)),
                    static_cast<std::size_t>(sqlite3_column_bytes(stmt, i)));
        }
        row.emplace(sqlite3_column_name(stmt, i), std::move(v));
      }
      out.push_back(std::move(row));
    }
    const std::string msg = sqlite3_errmsg(db_);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) throw std::runtime_error(sql + ": " + msg);
    return out;
  }

  // The value in the first row of a one-column query, as text; throws when none or NULL.
  std::string value(const std::string& sql) {
    auto all = rows(sql);
    if (all.empty() || all.front().empty() || !all.front().begin()->second) {
      throw std::runtime_error(sql + ": no value");
    }
    return *all.front().begin()->second;
  }

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace ecm::test
