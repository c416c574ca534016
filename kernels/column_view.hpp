#pragma once
/// @file column_view.hpp
/// @brief Non-owning views of device-resident batch columns (the layout of io::host_batch after
/// the H2D copy): fixed-width columns hold 8 bytes per row, strings are u32 offsets + bytes, and
/// every column may carry an LSB-first validity bitmap.

#include <cstddef>
#include <cstdint>

#include "kernels/macros.hpp"

namespace trove::kernels {

/// @brief How a kernel reads the 8-byte words of a fixed-width column.
enum class value_kind : std::uint8_t { i64, u64, f64 };

/// @brief A device column: fixed-width (d_values) or string (d_offsets + d_chars).
struct column_view {
  const std::uint64_t* d_values = nullptr;   ///< fixed-width: one 8-byte word per row
  const std::uint32_t* d_offsets = nullptr;  ///< string: rows+1 offsets into d_chars
  const char* d_chars = nullptr;             ///< string: bytes
  const std::uint8_t* d_validity = nullptr;  ///< bit row set = present; nullptr = all present
  bool is_string = false;

  /// @brief Whether row holds a value.
  TROVE_HD bool valid(std::size_t row) const noexcept {
    return d_validity == nullptr || ((d_validity[row >> 3] >> (row & 7)) & 1u) != 0;
  }
};

/// @brief Up to this many columns take part in one key (dedup key or group key).
inline constexpr std::size_t max_key_columns = 8;

/// @brief A fixed-size, trivially copyable list of columns that can be passed to kernels by value.
struct key_columns {
  column_view columns[max_key_columns];
  std::uint32_t count = 0;
};

}  // namespace trove::kernels
