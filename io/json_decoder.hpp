#pragma once
/// @file json_decoder.hpp
/// @brief Decodes JSON-lines records straight into a host_batch, and the result type shared by
/// every record decoder (JSON, CSV).
///
/// Decoding rules (the product's contract; tests/io_json_decoder.cpp checks each one):
///   - A record is one JSON object (one line, no trailing newline). The whole record must be valid
///     JSON: malformed syntax, trailing content after the object ("{} x"), invalid UTF-8 anywhere,
///     an empty record or a top level that is not an object (array, string, ...) make it bad.
///     Because the whole record is validated, a malformed value in an ignored field also makes it
///     bad, as does an integer beyond 64 bits anywhere in the record.
///   - A record longer than max_record_bytes (default 1 MiB) is bad without being parsed:
///     "record too long: N bytes > max_record_bytes (M)".
///   - Fields the schema does not name are ignored, so producers can add fields.
///   - A schema field that appears twice in one object makes the record bad ("duplicate field"):
///     JSON leaves the meaning undefined and guessing could count the wrong value.
///   - A missing optional field, or an optional field whose value is JSON null, is null.
///     A missing required field is bad ("missing required field 'x'"); so is JSON null for a
///     required field ("field 'x': required but null").
///   - Types: values are never converted from strings; "123" for a u64 field is bad
///     ("field 'x': expected u64, got string"), as is 1 for a bool or 1.5 for an i64.
///       i64           a JSON integer in [-2^63, 2^63-1]
///       u64           a JSON integer in [0, 2^64-1]; a negative value is bad
///       f64           any JSON number (integers are converted to double)
///       timestamp_ms  a JSON integer (milliseconds since the Unix epoch, negative allowed) or an
///                     RFC 3339 string, see parse_timestamp_ms()
///       bool          true or false
///       string        a JSON string (escapes decoded; the bytes are valid UTF-8)
///     A JSON number with a fraction or exponent (1.0, 1e3) is a float, never an integer.
///   - If the batch cannot take the row (all rows used, or a string column's bytes exhausted) the
///     result is batch_full and the batch is unchanged: retry the record on a fresh batch. A
///     string longer than a whole (empty) batch's string capacity makes the record bad instead,
///     since no retry could succeed.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/batch.hpp"

namespace simdjson::dom {
class parser;
}  // namespace simdjson::dom

namespace trove::io {

/// @brief Outcome of decoding one record.
enum class decode_status : std::uint8_t {
  ok,          ///< the row was committed to the batch
  batch_full,  ///< the batch cannot take this row; it is unchanged, retry on a fresh batch
  bad,         ///< the record is invalid (see reason); the batch is unchanged
};

/// @brief Status plus, for bad records, a human-readable reason for the dead-letter sink.
struct decode_result {
  decode_status status = decode_status::ok;
  std::string reason;  ///< empty unless status is bad (an empty std::string does not allocate)

  [[nodiscard]] bool ok() const noexcept { return status == decode_status::ok; }
};

/// @brief Parses an RFC 3339 timestamp into milliseconds since the Unix epoch (UTC).
///
/// Accepted: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`; `t` or a space may replace `T`
/// and `z` may replace `Z`; the fraction has 1 to 9 digits and is truncated to milliseconds;
/// second 60 (a leap second) is accepted and counts as the first second of the next minute.
/// Rejected: a missing zone designator (local time is ambiguous), a date without a time, out of
/// range fields (month 13, Feb 30, hour 24, ...), years outside 0000-9999, anything trailing.
/// @return false when the text is not such a timestamp (out is then unspecified)
[[nodiscard]] bool parse_timestamp_ms(std::string_view text, std::int64_t& out) noexcept;

/// @brief Default limit on one record's size in bytes (1 MiB).
inline constexpr std::size_t default_max_record_bytes = std::size_t{1} << 20;

/// @brief Decodes JSON-lines records into a host_batch (rules in the file comment).
///
/// One decoder per thread: it owns a reusable simdjson parser and padded input buffer, so the
/// steady state (records no longer than the longest seen so far) allocates nothing except the
/// reason of a bad record.
class json_decoder {
 public:
  /// @param schema the fields to extract; batches passed to decode() must use the same schema
  /// @param max_record_bytes records longer than this are bad without being parsed
  explicit json_decoder(const schema& schema,
                        std::size_t max_record_bytes = default_max_record_bytes);
  ~json_decoder();
  json_decoder(const json_decoder&) = delete;
  json_decoder& operator=(const json_decoder&) = delete;

  /// @brief Decodes one record (without its newline) into row batch.size() and commits it.
  /// @param position source position stored with the row
  [[nodiscard]] decode_result decode(std::string_view record, host_batch& batch,
                                     source_position position);

  /// @brief The limit given at construction.
  [[nodiscard]] std::size_t max_record_bytes() const noexcept { return max_record_bytes_; }

 private:
  /// @brief Name → field index, open addressing; built once, probed per key.
  struct name_slot {
    std::uint64_t hash = 0;
    int field = -1;
  };

  [[nodiscard]] int find_field(std::string_view key) const noexcept;
  void reserve_input(std::size_t bytes);

  io::schema schema_;
  std::size_t max_record_bytes_;
  std::vector<name_slot> name_table_;
  std::vector<int> position_hint_;  // field index seen at each key position of the last record
  std::vector<std::uint8_t> seen_;  // per field: present in the current record
  std::unique_ptr<simdjson::dom::parser> parser_;
  std::unique_ptr<char[]> input_;  // record copy followed by simdjson's padding
  std::size_t input_capacity_ = 0;
};

}  // namespace trove::io
