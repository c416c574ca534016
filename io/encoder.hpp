#pragma once
/// @file encoder.hpp
/// @brief Encoders that turn result_batch rows into JSON lines or CSV text.
///
/// Output rules:
///   - JSON lines: one object per row, keys in column order, each line ended by '\n'.
///     i64/u64/timestamp_ms are exact integers (timestamps as epoch milliseconds); f64 is the
///     shortest text that parses back to the same double, and NaN/±infinity (not JSON) are null;
///     bool is true/false; a null is null. Strings are escaped per RFC 8259: '"', '\\' and
///     control characters (\n, \r, \t, \b, \f, else \u00XX); valid UTF-8 passes through
///     unchanged. A byte that is not part of valid UTF-8 is written as \u00XX, its Latin-1
///     reading, so every line is valid JSON whatever the input held.
///   - CSV: a header line of the column names (once per encoder, see csv_encoder::reset()), then
///     one line per row ended by '\n'. A field containing a comma, quote, CR or LF is quoted with
///     quotes doubled (RFC 4180). A null is an empty field and an empty string is "" (so the two
///     stay distinct; csv_decoder reads them back that way); NaN/±infinity are written as null.
///     Numbers use the same text as JSON.
/// Encoders append to the caller's string and allocate nothing per row beyond its growth.

#include <string>
#include <string_view>
#include <vector>

#include "io/batch.hpp"
#include "io/result_batch.hpp"

namespace trove::io {

/// @brief Appends text as a quoted JSON string (escaping rules in the file comment).
void append_json_string(std::string& out, std::string_view text);

/// @brief A decoded row as a JSON object of its schema fields (nulls written as null): for
/// records without their original text (dead letters of late rows, generated events).
[[nodiscard]] std::string row_as_json(const host_batch& batch, std::size_t row);

/// @brief Appends text as one CSV field, quoted only when needed (an empty text becomes "").
void append_csv_field(std::string& out, std::string_view text);

/// @brief Optional outputs and restrictions of an encode() call (message-per-row sinks).
struct encode_options {
  /// When set, receives out.size() after each row's '\n' (so row r is the text between
  /// consecutive ends: one Kafka message per row).
  std::vector<std::size_t>* row_ends = nullptr;
  /// When set, only these columns (indices into the batch, in this order) are written, e.g. a
  /// message key made of the group-by columns.
  const std::vector<std::size_t>* columns = nullptr;
};

/// @brief Writes each row as one JSON object per line.
class json_encoder {
 public:
  /// @brief Appends one line per row of batch to out.
  void encode(const result_batch& batch, std::string& out, const encode_options& options = {});

 private:
  std::vector<std::string> keys_;  // `"name":` per column, escaped once per batch, not per row
};

/// @brief Writes a header line once, then one CSV line per row.
class csv_encoder {
 public:
  /// @brief Appends the header (first call only) and one line per row of batch to out.
  /// Every batch given to one encoder must have the same columns.
  void encode(const result_batch& batch, std::string& out, const encode_options& options = {});
  /// @brief Makes the next encode() write the header again (e.g. for a new output file).
  void reset() noexcept { header_written_ = false; }
  /// @brief Never writes a header (rows sent one per message carry none).
  void omit_header() noexcept { header_written_ = true; }

 private:
  bool header_written_ = false;
};

}  // namespace trove::io
