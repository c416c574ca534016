#pragma once
/// @file window.hpp
/// @brief Epoch-aligned tumbling and hopping window assignment (single-source).
///
/// A window [start, start + size) starts at a multiple of slide (slide == size for tumbling).
/// An event at time t belongs to every window with start <= t < start + size: the starts
/// floor(t/slide)*slide, minus 0, 1, ..., size/slide - 1 slides.

#include <cstdint>

#include "kernels/macros.hpp"

namespace trove::kernels {

/// @brief Event times outside [min_event_time, max_event_time] (about ±146 million years around
/// 1970) are rejected as bad records, so window and TTL arithmetic can never overflow and the
/// dedup set's sentinel states can never be mistaken for an event time.
inline constexpr std::int64_t max_event_time = (std::int64_t{1} << 62) - 1;
inline constexpr std::int64_t min_event_time = -max_event_time;

/// @brief Window geometry in milliseconds; size must be a positive multiple of slide.
struct window_spec {
  std::int64_t size_ms = 60'000;
  std::int64_t slide_ms = 60'000;

  /// @brief Number of windows each event belongs to.
  TROVE_HD std::int64_t windows_per_event() const noexcept { return size_ms / slide_ms; }

  /// @brief Start of the latest window containing t (floor division, correct for t < 0).
  TROVE_HD std::int64_t last_start(std::int64_t t) const noexcept {
    std::int64_t q = t / slide_ms;
    if ((t % slide_ms) != 0 && t < 0) --q;
    return q * slide_ms;
  }

  /// @brief Start of the k-th window containing t, k in [0, windows_per_event()), latest first.
  TROVE_HD std::int64_t start(std::int64_t t, std::int64_t k) const noexcept {
    return last_start(t) - k * slide_ms;
  }

  /// @brief An event is late once every window containing it has been emitted, i.e. the end of
  /// its latest window is at or before the watermark up to which windows were emitted.
  TROVE_HD bool is_late(std::int64_t t, std::int64_t emitted_watermark) const noexcept {
    return last_start(t) + size_ms <= emitted_watermark;
  }
};

/// @brief The emitted-window frontier a row is held to: the table's, or its source partition's
/// when that one is ahead (a partition that moved from an instance whose frontier was further;
/// d_row_frontier null: every row is held to the table's).
TROVE_HD TROVE_FORCEINLINE std::int64_t row_frontier(std::int64_t emitted_watermark,
                                                     const std::int64_t* d_row_frontier,
                                                     std::size_t row) noexcept {
  return d_row_frontier && d_row_frontier[row] > emitted_watermark ? d_row_frontier[row]
                                                                   : emitted_watermark;
}

}  // namespace trove::kernels
