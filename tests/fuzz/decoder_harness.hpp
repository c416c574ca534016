#pragma once
/// @file decoder_harness.hpp
/// @brief What the JSON-lines and CSV fuzz targets share: the fixed schema, the pipeline's line
/// splitting and record loop (host/pipeline.cpp read_lines() and decode_into()), and the checks
/// of every batch and of the record accounting.
///
/// A failed check calls fuzz_require(), which aborts: libFuzzer reports it as a crash and saves
/// the input.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "io/batch.hpp"
#include "io/json_decoder.hpp"

namespace trove::fuzz {

/// @brief Aborts with a message when a checked property does not hold.
inline void fuzz_require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "trove fuzz: check failed: %s\n", what);
    std::abort();
  }
}

/// @brief Longest line the splitter returns whole (the line_reader's max_line_bytes); longer lines
/// are bad without reaching a decoder, as in read_lines().
inline constexpr std::size_t max_line_bytes = 2048;
/// @brief The decoders' own limit, below the splitter's, so that their check is exercised too.
inline constexpr std::size_t max_record_bytes = 1024;
/// @brief Small batches, so that inputs fill rows and string bytes and reach batch_full.
inline constexpr std::size_t batch_rows = 8;
inline constexpr std::size_t batch_string_bytes = 96;

/// @brief Every field type, required and optional (columns in this order).
inline io::schema fuzz_schema() {
  using io::field_type;
  return io::schema{{{"id", field_type::u64, true},
                     {"n", field_type::i64, true},
                     {"ts", field_type::timestamp_ms, true},
                     {"name", field_type::string, true},
                     {"x", field_type::f64, true},
                     {"ok", field_type::boolean, true},
                     {"u", field_type::u64, false},
                     {"i", field_type::i64, false},
                     {"t", field_type::timestamp_ms, false},
                     {"s", field_type::string, false},
                     {"f", field_type::f64, false},
                     {"b", field_type::boolean, false}}};
}

/// @brief Calls f(text, number, overlong) per line like io::line_reader: lines end at '\n', a '\r'
/// right before it is dropped, the last line needs no newline and a final newline adds no empty
/// line; a line longer than max_line_bytes is reported overlong (cut to its first bytes).
template <class F>
void for_each_line(std::string_view data, F&& f) {
  std::uint64_t number = 0;
  while (!data.empty()) {
    const std::size_t nl = data.find('\n');
    std::string_view text = data.substr(0, nl);
    data = nl == std::string_view::npos ? std::string_view{} : data.substr(nl + 1);
    if (nl != std::string_view::npos && !text.empty() && text.back() == '\r') text.remove_suffix(1);
    const bool overlong = text.size() > max_line_bytes;
    f(overlong ? text.substr(0, max_line_bytes) : text, ++number, overlong);
  }
}

/// @brief Checks every row of a batch against the schema and the batch layout: string offsets
/// start at 0, never decrease and stay within the chars buffer; a null has no bytes (strings) or
/// the value 0 (fixed width); required fields are never null; booleans are 0 or 1; floats are
/// finite (NaN and infinity are bad input); positions are the line numbers given.
inline void check_batch(const io::host_batch& batch) {
  const io::schema& schema = batch.schema();
  const std::size_t rows = batch.size();
  fuzz_require(rows <= batch.capacity(), "rows within capacity");
  for (std::size_t c = 0; c < schema.fields.size(); ++c) {
    const io::field& field = schema.fields[c];
    if (field.type == io::field_type::string) {
      const std::uint32_t* offsets = batch.offsets(c);
      fuzz_require(offsets[0] == 0, "string offsets start at 0");
      for (std::size_t r = 0; r < rows; ++r) {
        fuzz_require(offsets[r] <= offsets[r + 1], "string offsets monotone");
        fuzz_require(offsets[r + 1] <= batch.string_capacity(), "string offsets within chars");
        if (!batch.is_valid(c, r)) fuzz_require(offsets[r] == offsets[r + 1], "null string empty");
      }
    } else {
      const std::uint64_t* values = batch.fixed(c);
      for (std::size_t r = 0; r < rows; ++r) {
        if (!batch.is_valid(c, r)) {
          fuzz_require(values[r] == 0, "null fixed-width value is 0");
          continue;
        }
        if (field.type == io::field_type::boolean) {
          fuzz_require(values[r] <= 1, "bool is 0 or 1");
        } else if (field.type == io::field_type::f64) {
          double value;
          std::memcpy(&value, &values[r], sizeof value);
          fuzz_require(std::isfinite(value), "f64 is finite");
        }
      }
    }
    if (field.required) {
      for (std::size_t r = 0; r < rows; ++r) {
        fuzz_require(batch.is_valid(c, r), "required field present");
      }
    }
  }
  for (std::size_t r = 1; r < rows; ++r) {
    fuzz_require(batch.positions()[r - 1].offset < batch.positions()[r].offset,
                 "positions increase (one row per line)");
  }
}

/// @brief A fingerprint of a batch's visible state: a decode that is not ok must leave it
/// unchanged.
struct batch_state {
  std::size_t rows = 0;
  std::uint32_t string_end[16] = {};

  static batch_state of(const io::host_batch& batch) {
    batch_state state;
    state.rows = batch.size();
    for (std::size_t c = 0; c < batch.schema().fields.size() && c < 16; ++c) {
      if (batch.schema().fields[c].type == io::field_type::string) {
        state.string_end[c] = batch.offsets(c)[batch.size()];
      }
    }
    return state;
  }
  bool operator==(const batch_state&) const = default;
};

/// @brief Counts of one input, for the accounting identity.
struct record_counts {
  std::uint64_t records = 0;   ///< non-blank data lines (the header excluded)
  std::uint64_t accepted = 0;  ///< rows committed
  std::uint64_t bad = 0;       ///< dead letters
  std::uint64_t rows_flushed = 0;
};

/// @brief The pipeline's decode_into() with the checks: decodes one record into batch; on
/// batch_full the batch is checked and "handed over" (cleared) and the record retried once; a
/// second batch_full or a bad result is a dead letter. OnAccepted(row) checks an accepted row.
template <class Decode, class OnAccepted>
void decode_record(std::string_view text, std::uint64_t number, io::host_batch& batch,
                   record_counts& counts, Decode&& decode, OnAccepted&& on_accepted) {
  const io::source_position pos{0, static_cast<std::int64_t>(number)};
  ++counts.records;
  batch_state before = batch_state::of(batch);
  io::decode_result r = decode(text, batch, pos);
  if (r.status == io::decode_status::batch_full) {
    fuzz_require(batch_state::of(batch) == before, "batch_full leaves the batch unchanged");
    check_batch(batch);
    counts.rows_flushed += batch.size();
    batch.clear();
    before = batch_state::of(batch);
    r = decode(text, batch, pos);
  }
  if (r.status == io::decode_status::ok) {
    fuzz_require(batch.size() == before.rows + 1, "ok commits exactly one row");
    fuzz_require(r.reason.empty(), "ok has no reason");
    fuzz_require(batch.positions()[before.rows].offset == pos.offset, "position stored");
    ++counts.accepted;
    on_accepted(text, batch, before.rows);
  } else {
    fuzz_require(batch_state::of(batch) == before, "a record not accepted leaves the batch");
    if (r.status == io::decode_status::bad) {
      fuzz_require(!r.reason.empty(), "bad has a reason");
    } else {
      fuzz_require(before.rows == 0, "batch_full again only on an empty batch");
    }
    ++counts.bad;
  }
  if (batch.full()) {
    check_batch(batch);
    counts.rows_flushed += batch.size();
    batch.clear();
  }
}

/// @brief Checks the accounting identity at the end of an input and the last batch.
inline void finish(const io::host_batch& batch, record_counts& counts) {
  check_batch(batch);
  counts.rows_flushed += batch.size();
  fuzz_require(counts.records == counts.accepted + counts.bad, "records = accepted + bad");
  fuzz_require(counts.rows_flushed == counts.accepted, "rows in batches = accepted");
}

/// @brief Earliest and latest epoch milliseconds of an RFC 3339 timestamp (years 0000-9999, the
/// zone offsets of +-23:59 and a leap second included).
inline constexpr std::int64_t min_timestamp_ms = -62'167'219'200'000 - 86'400'000;
inline constexpr std::int64_t max_timestamp_ms = 253'402'300'800'000 + 86'400'000;

}  // namespace trove::fuzz
