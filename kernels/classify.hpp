#pragma once
/// @file classify.hpp
/// @brief The first per-row pass of a batch: event-time range, filter, late check and dedup key,
/// fused so the batch is read once. Rows leave it as status_accepted, status_bad (event time out of
/// range), status_filtered or status_late; the dedup set
/// then moves duplicates out of status_accepted and status_late (duplicate is decided before late).

#include <cstddef>
#include <cstdint>

#include <cuda/std/bit>

#include "kernels/column_view.hpp"
#include "kernels/macros.hpp"
#include "kernels/row_key.hpp"
#include "kernels/row_status.hpp"
#include "kernels/window.hpp"
#include "kernels/xxhash64.hpp"

namespace trove::kernels {

/// @brief Comparison of a filter predicate.
enum class compare_op : std::uint8_t { eq, ne, lt, le, gt, ge };

/// @brief `column op constant`; a null value never matches (the row is filtered).
struct predicate {
  column_view column;
  compare_op op = compare_op::eq;
  value_kind kind = value_kind::i64;  ///< how to compare fixed-width values
  std::uint64_t value = 0;            ///< fixed-width constant (8-byte word)
  const char* d_string = nullptr;     ///< string constant (device memory)
  std::uint32_t string_length = 0;
};

/// @brief Up to this many predicates, all of which must hold (AND).
inline constexpr std::size_t max_predicates = 8;

/// @brief Everything the classify pass reads.
struct classify_input {
  std::size_t num_rows = 0;
  const std::int64_t* d_event_time = nullptr;
  window_spec window;
  std::int64_t emitted_watermark = INT64_MIN;  ///< rows whose windows all end <= this are late
  /// Per row, a frontier ahead of emitted_watermark for its partition (row_frontier); may be null.
  const std::int64_t* d_row_frontier = nullptr;
  predicate predicates[max_predicates];
  std::uint32_t num_predicates = 0;
  key_columns dedup_keys;  ///< count 0 = no dedup
  /// One output of several (`outputs`): the statuses the shared pass (filter, dedup) left; rows
  /// not accepted there keep theirs, the others are checked against this output's filter and
  /// lateness. Null: the shared pass itself.
  const std::uint8_t* d_prior_status = nullptr;
};

namespace detail {

template <class T>
TROVE_HD TROVE_FORCEINLINE bool compare(compare_op op, T a, T b) noexcept {
  switch (op) {
    case compare_op::eq:
      return a == b;
    case compare_op::ne:
      return a != b;
    case compare_op::lt:
      return a < b;
    case compare_op::le:
      return a <= b;
    case compare_op::gt:
      return a > b;
    default:
      return a >= b;
  }
}

/// @brief Lexicographic byte comparison: <0, 0, >0.
TROVE_HD inline int compare_bytes(const char* a, std::uint32_t alen, const char* b,
                                  std::uint32_t blen) noexcept {
  const std::uint32_t n = alen < blen ? alen : blen;
  for (std::uint32_t i = 0; i < n; ++i) {
    const auto x = static_cast<unsigned char>(a[i]);
    const auto y = static_cast<unsigned char>(b[i]);
    if (x != y) return x < y ? -1 : 1;
  }
  return alen == blen ? 0 : (alen < blen ? -1 : 1);
}

/// @brief Whether a row satisfies a predicate.
TROVE_HD inline bool matches(const predicate& p, std::size_t row) noexcept {
  if (!p.column.valid(row)) return false;
  if (p.column.is_string) {
    const std::uint32_t begin = p.column.d_offsets[row];
    const int c = compare_bytes(p.column.d_chars + begin, p.column.d_offsets[row + 1] - begin,
                                p.d_string, p.string_length);
    return compare(p.op, c, 0);
  }
  const std::uint64_t v = p.column.d_values[row];
  switch (p.kind) {
    case value_kind::i64:
      return compare(p.op, static_cast<std::int64_t>(v), static_cast<std::int64_t>(p.value));
    case value_kind::u64:
      return compare(p.op, v, p.value);
    default:
      return compare(p.op, cuda::std::bit_cast<double>(v), cuda::std::bit_cast<double>(p.value));
  }
}

/// @brief The fused classify functor.
struct classify_fn {
  classify_input in;
  std::uint8_t* d_status;
  hash128* d_dedup_keys;

  TROVE_HD void operator()(std::size_t row) const noexcept {
    if (in.d_prior_status != nullptr && in.d_prior_status[row] != status_accepted) {
      d_status[row] = in.d_prior_status[row];
      return;
    }
    const std::int64_t t = in.d_event_time[row];
    if (t < min_event_time || t > max_event_time) {
      d_status[row] = status_bad;
      return;
    }
    for (std::uint32_t i = 0; i < in.num_predicates; ++i) {
      if (!matches(in.predicates[i], row)) {
        d_status[row] = status_filtered;
        return;
      }
    }
    // A late row keeps its dedup key: the dedup set decides duplicate before late (a re-send of
    // an accepted record is a duplicate whether or not its window was already emitted).
    d_status[row] = in.window.is_late(t, row_frontier(in.emitted_watermark, in.d_row_frontier, row))
                        ? status_late
                        : status_accepted;
    if (in.dedup_keys.count) d_dedup_keys[row] = row_dedup_key(in.dedup_keys, row);
  }
};

/// @brief Histogram of row statuses.
struct status_counts {
  std::uint64_t counts[status_count];
};
struct status_one_fn {
  const std::uint8_t* d_status;
  TROVE_HD status_counts operator()(std::size_t row) const noexcept {
    status_counts c{};
    const std::uint8_t s = d_status[row];
    c.counts[s < status_count ? s : static_cast<std::uint8_t>(status_bad)] = 1;
    return c;
  }
};
/// @brief Whether a row's status is `status` (the stencil of select_rows).
struct status_is_fn {
  std::uint8_t status;
  TROVE_HD bool operator()(std::uint8_t s) const noexcept { return s == status; }
};
struct status_merge_fn {
  TROVE_HD status_counts operator()(const status_counts& a, const status_counts& b) const noexcept {
    status_counts c;
    for (int s = 0; s < status_count; ++s) c.counts[s] = a.counts[s] + b.counts[s];
    return c;
  }
};

}  // namespace detail
}  // namespace trove::kernels
