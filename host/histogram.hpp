#pragma once
/// @file histogram.hpp
/// @brief A log-bucketed histogram of non-negative values (latencies in milliseconds, sizes):
/// lock-free recording from any thread, percentiles with a bounded relative error, and the
/// cumulative buckets a Prometheus histogram exposes. Shared by the metrics endpoint and the load
/// harness.
///
/// Bucket b > 0 holds values in [base·g^(b-1), base·g^b) with g = 2^(1/sub_buckets); bucket 0
/// holds [0, base). A percentile is reported as its bucket's upper bound, so it is never
/// below the true value and at most a factor g (≈ 9% with 8 sub-buckets) above it.

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

namespace trove::host {

/// @brief Log-bucketed histogram; `record` is wait-free, reads are consistent enough for metrics
/// (each bucket is read atomically, not all together).
class histogram {
 public:
  static constexpr int sub_buckets = 8;  ///< buckets per doubling
  static constexpr int doublings = 40;   ///< range: base · 2^40
  static constexpr std::size_t bucket_count = 1 + sub_buckets * doublings;

  /// @param base upper bound of the first bucket (e.g. 0.01 ms)
  explicit histogram(double base = 0.001) noexcept : base_(base) {}

  histogram(const histogram& other) noexcept : base_(other.base_) { merge(other); }
  histogram& operator=(const histogram&) = delete;

  /// @brief Records `count` observations of `value` (negative values count as 0).
  void record(double value, std::uint64_t count = 1) noexcept {
    counts_[bucket_of(value)].fetch_add(count, std::memory_order_relaxed);
    total_.fetch_add(count, std::memory_order_relaxed);
    add_double(sum_, value > 0 ? value * static_cast<double>(count) : 0.0);
    double seen = max_.load(std::memory_order_relaxed);
    while (value > seen && !max_.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
    }
  }

  /// @brief Records the n values first + i·step (i = 0 … n-1) exactly as n record() calls would
  /// fill the buckets, in O(buckets touched · log n) instead of O(n): the latencies of a batch's
  /// events under an open-loop schedule form such a series (one per event, spaced 1/rate).
  void record_series(double first, double step, std::uint64_t n) noexcept {
    if (n == 0) return;
    auto value = [&](std::uint64_t i) { return first + static_cast<double>(i) * step; };
    for (std::uint64_t i = 0; i < n;) {
      // bucket_of is monotone along a monotone series: binary-search the run's last index
      const std::size_t b = bucket_of(value(i));
      std::uint64_t lo = i;
      std::uint64_t hi = n;  // bucket_of(value(lo)) == b; hi == n or its bucket differs
      while (hi - lo > 1) {
        const std::uint64_t mid = lo + (hi - lo) / 2;
        if (bucket_of(value(mid)) == b) {
          lo = mid;
        } else {
          hi = mid;
        }
      }
      counts_[b].fetch_add(lo - i + 1, std::memory_order_relaxed);
      i = lo + 1;
    }
    total_.fetch_add(n, std::memory_order_relaxed);
    // record() adds max(value, 0): sum the positive part of the series in closed form
    double positive_sum = 0;
    for (std::uint64_t i = 0; i < n;) {
      // at most two pieces: the series crosses 0 once
      std::uint64_t end = n;
      if (step != 0 && (value(i) > 0) != (value(n - 1) > 0)) {
        std::uint64_t lo = i;
        std::uint64_t hi = n - 1;  // sign(value(lo)) != sign(value(hi))
        while (hi - lo > 1) {
          const std::uint64_t mid = lo + (hi - lo) / 2;
          ((value(mid) > 0) == (value(i) > 0) ? lo : hi) = mid;
        }
        end = lo + 1;
      }
      if (value(i) > 0) {
        const auto count = static_cast<double>(end - i);
        positive_sum += count * (value(i) + value(end - 1)) / 2;
      }
      i = end;
    }
    add_double(sum_, positive_sum);
    const double m = std::max(value(0), value(n - 1));
    double seen = max_.load(std::memory_order_relaxed);
    while (m > seen && !max_.compare_exchange_weak(seen, m, std::memory_order_relaxed)) {
    }
  }

  /// @brief Adds every observation of `other`.
  void merge(const histogram& other) noexcept {
    for (std::size_t b = 0; b < bucket_count; ++b) {
      counts_[b].fetch_add(other.counts_[b].load(std::memory_order_relaxed),
                           std::memory_order_relaxed);
    }
    total_.fetch_add(other.count(), std::memory_order_relaxed);
    add_double(sum_, other.sum());
    const double m = other.max();
    double seen = max_.load(std::memory_order_relaxed);
    while (m > seen && !max_.compare_exchange_weak(seen, m, std::memory_order_relaxed)) {
    }
  }

  [[nodiscard]] std::uint64_t count() const noexcept {
    return total_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] double sum() const noexcept { return sum_.load(std::memory_order_relaxed); }
  /// @brief The largest value recorded, exactly (0 when empty).
  [[nodiscard]] double max() const noexcept { return max_.load(std::memory_order_relaxed); }

  /// @brief The q-quantile (0 < q ≤ 1) as the upper bound of its bucket, capped at max();
  /// 0 when empty.
  [[nodiscard]] double percentile(double q) const noexcept {
    const std::uint64_t n = count();
    if (n == 0) return 0;
    // rank of the q-quantile among n sorted values, 1-based (nearest-rank definition)
    auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(n)));
    if (rank < 1) rank = 1;
    std::uint64_t seen = 0;
    for (std::size_t b = 0; b < bucket_count; ++b) {
      seen += counts_[b].load(std::memory_order_relaxed);
      if (seen >= rank) return std::min(upper_bound(b), max());
    }
    return max();
  }

  /// @brief Observations in bucket b.
  [[nodiscard]] std::uint64_t bucket(std::size_t b) const noexcept {
    return counts_[b].load(std::memory_order_relaxed);
  }
  /// @brief Exclusive upper bound of bucket b (the last bucket is unbounded).
  [[nodiscard]] double upper_bound(std::size_t b) const noexcept {
    if (b + 1 >= bucket_count) return std::numeric_limits<double>::infinity();
    return base_ * std::exp2(static_cast<double>(b) / sub_buckets);
  }
  /// @brief Observations ≤ `bound`, counting whole buckets whose upper bound is ≤ bound (the
  /// cumulative `le` buckets of a Prometheus histogram, for bounds on the bucket grid).
  [[nodiscard]] std::uint64_t count_below(double bound) const noexcept {
    std::uint64_t n = 0;
    for (std::size_t b = 0; b < bucket_count && upper_bound(b) <= bound * (1 + 1e-12); ++b) {
      n += bucket(b);
    }
    return n;
  }

  /// @brief The bucket a value falls into.
  [[nodiscard]] std::size_t bucket_of(double value) const noexcept {
    if (!(value >= base_)) return 0;  // also NaN and negatives
    const double index = std::floor(std::log2(value / base_) * sub_buckets) + 1;
    if (index >= static_cast<double>(bucket_count - 1)) return bucket_count - 1;
    return static_cast<std::size_t>(index);
  }

 private:
  static void add_double(std::atomic<double>& target, double value) noexcept {
    double seen = target.load(std::memory_order_relaxed);
    while (!target.compare_exchange_weak(seen, seen + value, std::memory_order_relaxed)) {
    }
  }

  double base_;
  std::array<std::atomic<std::uint64_t>, bucket_count> counts_{};
  std::atomic<std::uint64_t> total_{0};
  std::atomic<double> sum_{0};
  std::atomic<double> max_{0};
};

}  // namespace trove::host
