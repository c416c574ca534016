#pragma once
/// @file accumulator.hpp
/// @brief The accumulators an aggregation slot can hold, and which of them a table keeps. Plain
/// types, no device code: the host (device_stage, checkpoints) names accumulators with them.
///
/// A user-facing aggregate is built from accumulators: sum(f) from `sum`, avg(f) from `sum` and
/// `non_null`, count from the slot header's counter. A table keeps only the accumulators its
/// pipeline asked for (agg_options::field_accumulators), each in its own file beside this one
/// (non_null.hpp, sum.hpp, min_max.hpp, hll.hpp, ddsketch.hpp: words, identity, single-source
/// update, merge; a sketch keeps what outgrows its slot in the table's sketch arena,
/// sketch_arena.hpp); dispatch.hpp is the one switch that maps a kind to its file.

#include <cstdint>

namespace trove::kernels {

/// @brief What an accumulator computes over the non-null values of one field.
enum class acc_kind : std::uint8_t {
  non_null,  ///< how many values were present (kept only for nullable fields; else = count)
  sum,       ///< integer sums exact modulo 2^64, float sums in the order of the additions
  min,
  max,
  hll,       ///< HyperLogLog registers of the values' hashes (approx_count_distinct; hll.hpp)
  ddsketch,  ///< DDSketch bucket counters of the values (p50 ... p999; ddsketch.hpp)
};

/// @brief Number of acc_kind values.
inline constexpr std::uint32_t acc_kind_count = 6;

/// @brief Whether an accumulator is a sketch (keeps what outgrows its slot in the sketch arena).
constexpr bool acc_is_sketch(acc_kind kind) noexcept {
  return kind == acc_kind::hll || kind == acc_kind::ddsketch;
}

/// @brief Quantiles a ddsketch accumulator reports (p50, p90, p95, p99, p999).
inline constexpr std::uint32_t dd_quantile_count = 5;

/// @brief Whether an accumulator reads the hash of a value (hll_hash) rather than the value.
constexpr bool acc_reads_hash(acc_kind kind) noexcept {
  return kind == acc_kind::hll;
}

/// @brief The bit of `kind` in a field's accumulator mask.
constexpr std::uint8_t acc_bit(acc_kind kind) noexcept {
  return static_cast<std::uint8_t>(1u << static_cast<unsigned>(kind));
}

/// @brief sum | min | max: what a field keeps when its table was not told (tables before
/// accumulator selection kept these and non_null for every field).
inline constexpr std::uint8_t acc_value_bits =
    acc_bit(acc_kind::sum) | acc_bit(acc_kind::min) | acc_bit(acc_kind::max);

/// @brief One accumulator of a slot: its kind, the field it reads, and where its words start
/// (8-byte words after the slot header).
struct acc_slot {
  acc_kind kind = acc_kind::sum;
  std::uint8_t field = 0;
  std::uint16_t word = 0;
};

}  // namespace trove::kernels
