#pragma once
/// @file absl_baseline.hpp
/// @brief The baseline every trove throughput number is divided by: the W1 job (dedup on
/// event_id, count/sum/min/max of amount by (user_id, type, tumbling window)) as a user would
/// write it by hand — one thread, an absl::flat_hash_set for dedup and an absl::flat_hash_map for
/// the groups. Shared by the kernel benchmarks (bench/bench_kernels.cpp) and the load harness
/// (`trove bench`), so both divide by the same code.

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>

namespace trove::host {

/// @brief Single-threaded dedup + grouped aggregation over W1 columns.
class absl_baseline {
 public:
  /// @brief A group: string_view keys into the caller's columns (cheaper than std::string keys,
  /// so the baseline is not handicapped); the columns must outlive the baseline.
  struct group_key {
    std::uint64_t user;
    std::string_view type;
    std::int64_t window;
    bool operator==(const group_key&) const = default;
    template <class H>
    friend H AbslHashValue(H h, const group_key& k) {
      return H::combine(std::move(h), k.user, k.type, k.window);
    }
  };
  /// @brief The aggregates of a group (avg = sum / count).
  struct group_acc {
    std::uint64_t count = 0;
    double sum = 0;
    double min = 1e300;
    double max = -1e300;
  };

  /// @param window_ms tumbling window size (windows aligned to the epoch)
  explicit absl_baseline(std::int64_t window_ms) noexcept : window_ms_(window_ms) {}

  /// @brief Dedups and aggregates n rows; the type strings are
  /// `type_chars[type_offsets[i] .. type_offsets[i+1])`.
  void process(const std::uint64_t* event_id, const std::uint64_t* user_id,
               const std::uint32_t* type_offsets, const char* type_chars, const std::int64_t* ts,
               const double* amount, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      if (!seen_.insert(event_id[i]).second) continue;
      const std::int64_t t = ts[i];
      const std::string_view type(type_chars + type_offsets[i],
                                  type_offsets[i + 1] - type_offsets[i]);
      group_acc& a = groups_[group_key{user_id[i], type, t - t % window_ms_}];
      ++a.count;
      a.sum += amount[i];
      a.min = std::min(a.min, amount[i]);
      a.max = std::max(a.max, amount[i]);
    }
  }

  /// @brief Distinct (user, type, window) groups so far.
  [[nodiscard]] std::size_t groups() const noexcept { return groups_.size(); }
  /// @brief Distinct event ids so far (accepted events).
  [[nodiscard]] std::size_t accepted() const noexcept { return seen_.size(); }

 private:
  std::int64_t window_ms_;
  absl::flat_hash_set<std::uint64_t> seen_;
  absl::flat_hash_map<group_key, group_acc> groups_;
};

}  // namespace trove::host
