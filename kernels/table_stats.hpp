#pragma once
/// @file table_stats.hpp
/// @brief Size and health of a device-resident hash table, exported as metrics.

#include <cstddef>
#include <cstdint>

namespace trove::kernels {

/// @brief A snapshot of a table's occupancy.
struct table_stats {
  std::size_t entries = 0;   ///< live entries (upper bound between rebuilds for the dedup set)
  std::size_t used = 0;      ///< non-empty slots, tombstones included
  std::size_t capacity = 0;  ///< slots
  std::size_t bytes = 0;     ///< device bytes held (slots and side arrays)
  std::uint64_t rebuilds = 0;
  /// Rebuilds done at once, before one batch (the others were spread over several batches).
  std::uint64_t blocking_rebuilds = 0;
  /// Of bytes: the sketch arena (aggregation table; 0 without sketch aggregates).
  std::size_t sketch_bytes = 0;
  [[nodiscard]] double load_factor() const noexcept {
    return capacity ? static_cast<double>(used) / static_cast<double>(capacity) : 0.0;
  }
};

}  // namespace trove::kernels
