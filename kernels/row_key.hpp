#pragma once
/// @file row_key.hpp
/// @brief Per-row keys over several batch columns (single-source).
///
/// - row_fingerprint: the 128-bit fingerprint of a multi-column key (two XXH64 chains, see
///   xxhash64.hpp). Used for group keys and for dedup keys that are strings or span columns.
/// - row_dedup_key: a single fixed-width dedup column is compared exactly: {value, 0} when
///   present, {0, 1} when null, so no two distinct values ever collide.

#include <cstddef>
#include <cstdint>

#include "kernels/column_view.hpp"
#include "kernels/macros.hpp"
#include "kernels/xxhash64.hpp"

namespace trove::kernels {

/// @brief Fingerprint of the key formed by `columns` at `row`.
TROVE_HD inline hash128 row_fingerprint(const key_columns& columns, std::size_t row) noexcept {
  hash128 f = fingerprint_start();
  for (std::uint32_t c = 0; c < columns.count; ++c) {
    const column_view& col = columns.columns[c];
    if (!col.valid(row)) {
      f = combine_null(f, c);
    } else if (col.is_string) {
      const std::uint32_t begin = col.d_offsets[row];
      f = combine_bytes(f, col.d_chars + begin, col.d_offsets[row + 1] - begin);
    } else {
      f = combine_fixed(f, col.d_values[row]);
    }
  }
  return f;
}

/// @brief Whether dedup keys over these columns are compared exactly (one fixed-width column).
TROVE_HD inline bool dedup_key_is_exact(const key_columns& columns) noexcept {
  return columns.count == 1 && !columns.columns[0].is_string;
}

/// @brief The 128-bit dedup key of a row: exact for one fixed-width column, else a fingerprint.
TROVE_HD inline hash128 row_dedup_key(const key_columns& columns, std::size_t row) noexcept {
  if (dedup_key_is_exact(columns)) {
    const column_view& col = columns.columns[0];
    return col.valid(row) ? hash128{col.d_values[row], 0} : hash128{0, 1};
  }
  return row_fingerprint(columns, row);
}

}  // namespace trove::kernels
