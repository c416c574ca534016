#pragma once
/// @file watermark.hpp
/// @brief Event-time watermarks with bounded out-of-orderness, per source partition.
///
/// Each partition's watermark is its maximum event time seen minus allowed_lateness; the
/// pipeline's watermark is the minimum over active partitions. A partition that has received
/// nothing for idle_timeout (processing time) stops holding the watermark back. End of a finite
/// input moves the watermark to +infinity (INT64_MAX). Before any event it is -infinity.

#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <vector>

namespace trove::host {

/// @brief Tracks the watermark of a multi-partition source.
class watermark_tracker {
 public:
  using clock = std::chrono::steady_clock;
  static constexpr std::int64_t minus_infinity = std::numeric_limits<std::int64_t>::min();
  static constexpr std::int64_t plus_infinity = std::numeric_limits<std::int64_t>::max();

  watermark_tracker(std::int64_t allowed_lateness_ms, std::int64_t idle_timeout_ms)
      : lateness_(allowed_lateness_ms), idle_(std::chrono::milliseconds(idle_timeout_ms)) {}

  /// @brief Records the largest event time seen in a partition (at processing time `now`).
  void observe(std::int32_t partition, std::int64_t max_event_time, clock::time_point now) {
    auto& p = partitions_[partition];
    if (max_event_time > p.max_event_time) p.max_event_time = max_event_time;
    p.last_seen = now;
  }

  /// @brief A partition that will deliver events (e.g. newly assigned by Kafka) holds the
  /// watermark back from now on, until it delivers or stays idle for idle_timeout.
  void expect(std::int32_t partition, clock::time_point now) {
    auto [it, inserted] = partitions_.try_emplace(partition);
    if (inserted) it->second.last_seen = now;
  }

  /// @brief What a checkpoint keeps of a partition: its largest event time seen.
  struct partition_mark {
    std::int32_t partition = 0;
    std::int64_t max_event_time = minus_infinity;
  };

  /// @brief Every partition's largest event time and the watermark reached (for a checkpoint).
  [[nodiscard]] std::vector<partition_mark> partitions() const {
    std::vector<partition_mark> out;
    out.reserve(partitions_.size());
    for (const auto& [id, p] : partitions_) out.push_back({id, p.max_event_time});
    return out;
  }
  /// @brief The highest watermark returned so far (minus_infinity before any).
  [[nodiscard]] std::int64_t high() const noexcept { return high_; }

  /// @brief Restores a checkpoint's state: the partitions count as seen at `now` (idle time is
  /// processing time and starts again), and the watermark never goes below `high`.
  void restore(const std::vector<partition_mark>& marks, std::int64_t high, clock::time_point now) {
    partitions_.clear();
    for (const auto& m : marks) partitions_[m.partition] = partition_state{m.max_event_time, now};
    high_ = high;
    finished_ = false;
  }

  /// @brief Marks the end of a finite input: every window may close.
  void finish() noexcept { finished_ = true; }

  /// @brief The current watermark (monotone: it never moves back).
  std::int64_t current(clock::time_point now) {
    if (finished_) return high_ = plus_infinity;
    std::int64_t low = plus_infinity;
    bool any_active = false;
    for (const auto& [id, p] : partitions_) {
      if (now - p.last_seen >= idle_ && partitions_.size() > 1) continue;  // idle: ignored
      any_active = true;
      if (p.max_event_time < low) low = p.max_event_time;
    }
    if (!any_active || low == minus_infinity) return high_;
    // Saturating: an extreme event time minus a huge lateness must not overflow.
    std::int64_t candidate;
    if (__builtin_sub_overflow(low, lateness_, &candidate)) candidate = minus_infinity;
    if (candidate > high_) high_ = candidate;
    return high_;
  }

 private:
  struct partition_state {
    std::int64_t max_event_time = minus_infinity;
    clock::time_point last_seen{};
  };
  std::int64_t lateness_;
  clock::duration idle_;
  std::map<std::int32_t, partition_state> partitions_;
  std::int64_t high_ = minus_infinity;
  bool finished_ = false;
};

}  // namespace trove::host
