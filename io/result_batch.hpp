#pragma once
/// @file result_batch.hpp
/// @brief A small host-side columnar table of output rows (group keys, window bounds,
/// aggregates) that the encoders turn into JSON lines or CSV.
///
/// Unlike host_batch it grows (std::vector): result rows are few compared with input rows, and the
/// number of emitted groups is not known in advance.

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "io/batch.hpp"  // field_type
#include "io/record_list.hpp"

namespace trove::io {

/// @brief One output column.
///
/// Fixed-width types keep one 8-byte value per row in `fixed` (i64/timestamp_ms as two's
/// complement, f64 as its bit pattern, boolean as 0/1). Strings keep `offsets` (rows+1 entries,
/// offsets[0] = 0) into `chars`. `valid` has one byte per row (1 = present); an empty `valid`
/// means every row is present.
struct result_column {
  std::string name;
  field_type type = field_type::i64;
  std::vector<std::uint64_t> fixed;
  std::vector<std::uint32_t> offsets;
  std::string chars;
  std::vector<std::uint8_t> valid;

  result_column() = default;
  /// @brief An empty column (string columns start with offsets = {0}).
  result_column(std::string column_name, field_type column_type)
      : name(std::move(column_name)), type(column_type) {
    if (type == field_type::string) offsets.push_back(0);
  }

  /// @brief Appends an i64 or timestamp_ms value.
  void append_i64(std::int64_t value) { append_fixed(static_cast<std::uint64_t>(value)); }
  /// @brief Appends a u64 value.
  void append_u64(std::uint64_t value) { append_fixed(value); }
  /// @brief Appends an f64 value.
  void append_f64(double value) {
    std::uint64_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    append_fixed(bits);
  }
  /// @brief Appends a boolean value.
  void append_bool(bool value) { append_fixed(value ? 1U : 0U); }
  /// @brief Appends a string value.
  void append_string(std::string_view value) {
    assert(type == field_type::string);
    chars.append(value);
    offsets.push_back(static_cast<std::uint32_t>(chars.size()));
    valid.push_back(1);
  }
  /// @brief Appends a null.
  void append_null() {
    if (type == field_type::string) {
      offsets.push_back(offsets.empty() ? 0 : offsets.back());
    } else {
      fixed.push_back(0);
    }
    valid.push_back(0);
  }

  /// @brief Whether row's value is present.
  [[nodiscard]] bool is_valid(std::size_t row) const noexcept {
    return valid.empty() || valid[row] != 0;
  }
  /// @brief The string of a row of a string column.
  [[nodiscard]] std::string_view string_at(std::size_t row) const noexcept {
    return std::string_view(chars).substr(offsets[row], offsets[row + 1] - offsets[row]);
  }
  /// @brief The value of a row of an f64 column.
  [[nodiscard]] double f64_at(std::size_t row) const noexcept {
    double value;
    std::memcpy(&value, &fixed[row], sizeof value);
    return value;
  }
  /// @brief Rows in this column.
  [[nodiscard]] std::size_t size() const noexcept {
    return type == field_type::string ? (offsets.empty() ? 0 : offsets.size() - 1) : fixed.size();
  }
  /// @brief Drops every row, keeping the name, type and memory.
  void clear() noexcept {
    fixed.clear();
    offsets.clear();
    if (type == field_type::string) offsets.push_back(0);
    chars.clear();
    valid.clear();
  }

 private:
  void append_fixed(std::uint64_t bits) {
    assert(type != field_type::string);
    fixed.push_back(bits);
    valid.push_back(1);
  }
};

/// @brief Output rows as columns; every column holds `rows` values. A forwarding output's batch
/// (`forwarded`) has no columns: its rows are records as received, written as they are.
struct result_batch {
  std::vector<result_column> columns;
  std::size_t rows = 0;
  bool forwarded = false;     ///< rows are `records`, not columns
  record_list records;        ///< forwarded: the records' bytes as received
  record_list record_keys;    ///< forwarded: their message keys (Kafka; empty: none)
  std::string record_header;  ///< forwarded: the line a file needs before them (a CSV header)
  record_list targets;        ///< a routed sink: each row's target (topic); empty otherwise

  /// @brief Appends a forwarded record and its message key (empty: none).
  void append_record(std::string_view text, std::string_view key = {}) {
    records.push_back(text);
    record_keys.push_back(key);
    ++rows;
  }

  /// @brief Adds an empty column and returns it (valid until the next add_column(): the
  /// columns live in a vector).
  result_column& add_column(std::string name, field_type type) {
    return columns.emplace_back(std::move(name), type);
  }
  /// @brief Drops every row, keeping the columns.
  void clear() noexcept {
    for (result_column& column : columns) column.clear();
    records.clear();
    record_keys.clear();
    targets.clear();
    rows = 0;
  }
  /// @brief Whether every column holds exactly `rows` values (and `valid` is empty or sized).
  [[nodiscard]] bool consistent() const noexcept {
    if (forwarded) return columns.empty() && records.size() == rows;
    for (const result_column& column : columns) {
      if (column.size() != rows) return false;
      if (!column.valid.empty() && column.valid.size() != rows) return false;
      if (column.type == field_type::string && !column.offsets.empty() &&
          column.offsets.back() > column.chars.size()) {
        return false;
      }
    }
    return true;
  }
};

}  // namespace trove::io
