#pragma once
/// @file csv_decoder.hpp
/// @brief Decodes CSV lines (after a header line) straight into a host_batch.
///
/// Decoding rules (the product's contract; tests/io_csv_decoder.cpp checks each one):
///   - The first line is a header naming the columns; set_header() maps them to schema fields by
///     exact name. Columns the schema does not name are ignored; columns for optional fields may
///     be absent (always null). A header without a column for a required field is an error
///     listing every missing one; a header naming a schema field twice is an error. A UTF-8 byte
///     order mark before the header is skipped.
///   - Fields follow RFC 4180: separated by commas; a field that starts with a double quote is
///     quoted, ends at the next lone quote, and "" inside it is one quote ("a,""b""" → a,"b").
///     A quoted field must be followed by a comma or the end of the line. A quote inside an
///     unquoted field is kept as a literal character. Quoted fields cannot span lines (the line
///     reader splits records at every newline).
///   - Every row must have exactly as many fields as the header.
///   - An empty field is null for an optional field and makes the record bad for a required one.
///     For string fields a quoted empty field ("") is the empty string, not null, so the
///     csv_encoder's null/empty distinction round-trips.
///   - Types (same rules as JSON, on text): surrounding spaces and tabs are ignored for
///     non-string fields and kept for strings; the whole value must parse, nothing may trail.
///       i64, u64      decimal integers within range, no '+', no fraction; a negative u64 is bad
///       f64           a decimal number (from_chars syntax: 1, -2.5, 1e-3, .5); NaN and infinity
///                     are bad (they would poison aggregates)
///       timestamp_ms  an integer (epoch milliseconds) or an RFC 3339 timestamp, see
///                     parse_timestamp_ms()
///       bool          true or false, in any letter case
///       string        the field's text as is (not checked for UTF-8; encoders escape it)
///   - Batch handling is as for JSON: batch_full leaves the batch unchanged; a string that cannot
///     fit even an empty batch is bad.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "io/batch.hpp"
#include "io/json_decoder.hpp"  // decode_status, decode_result, parse_timestamp_ms

namespace trove::io {

/// @brief Decodes CSV records into a host_batch (rules in the file comment).
///
/// One decoder per input (it holds that input's header) and per thread; no allocation per
/// record in the steady state except the reason of a bad record.
class csv_decoder {
 public:
  /// @param schema the fields to extract; batches passed to decode() must use the same schema
  /// @param max_record_bytes records longer than this are bad without being parsed
  explicit csv_decoder(const schema& schema,
                       std::size_t max_record_bytes = default_max_record_bytes);

  /// @brief Reads the header line and maps its columns to schema fields.
  /// @return bad with a reason naming the missing required columns (or a duplicated column)
  [[nodiscard]] decode_result set_header(std::string_view line);

  /// @brief Whether set_header() succeeded.
  [[nodiscard]] bool has_header() const noexcept { return header_ok_; }

  /// @brief Decodes one data line (without its newline) into row batch.size() and commits it.
  /// @param position source position stored with the row
  [[nodiscard]] decode_result decode(std::string_view line, host_batch& batch,
                                     source_position position);

  /// @brief The limit given at construction.
  [[nodiscard]] std::size_t max_record_bytes() const noexcept { return max_record_bytes_; }

 private:
  io::schema schema_;
  std::size_t max_record_bytes_;
  std::vector<int> column_field_;  // CSV column → schema field index, -1 when ignored
  std::vector<std::uint8_t> field_has_column_;
  std::string unquote_scratch_;  // unescaped text of a quoted field containing ""
  bool header_ok_ = false;
};

}  // namespace trove::io
