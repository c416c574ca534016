#pragma once
/// @file ddsketch.hpp
/// @brief Accumulator: DDSketch (Masson, Rim, Lee: "DDSketch: a fast and fully-mergeable quantile
/// sketch with relative-error guarantees", VLDB 2019) of a numeric field, for p50/p90/p95/p99/p999.
///
/// A value x lands in the bucket of key ceil(log_gamma |x|), gamma = (1 + a) / (1 - a), a the
/// relative accuracy (agg_options::quantile_accuracy, 0.01 by default); the bucket's value
/// 2 gamma^key / (gamma + 1) is within a of every x in it. Buckets are counters, so a sketch is
/// exact under any order of updates (owned or atomic strategy, any thread count) and two sketches
/// merge by adding them.
///
/// Bounded: keys cover magnitudes from 1e-9 to 1e18 (dd_bucket_count buckets per sign). The
/// collapse rule: a magnitude below 1e-9 counts as 0 (the zero bucket, also for 0 itself), one
/// above the range counts in its sign's top bucket (its quantile is then a lower bound). NaN is
/// ignored like a null.
///
/// Small groups do not pay for the buckets: the accumulator is 5 words in the slot, a state word
/// and 8 inline entries of 32 bits ([bucket + 1: 16][count: 16]). A 9th bucket (or a count past
/// 65535) promotes the group to a block of 32-bit counters in the sketch arena (sketch_arena.hpp):
/// the promoting thread freezes each inline entry with an atomic exchange and adds what it held,
/// so an increment lands either in an entry before it is frozen or in the block after.
///
/// State word as in hll.hpp: 0 sparse, `locked` while promoting, `in_record` in snapshots, else 1 +
/// the block's word offset. When the arena is full the value is put on the arena's pending list
/// (the table grows the arena and adds those values again, once each: counts are not idempotent).

#include <cmath>
#include <cstdint>
#include <cuda/std/bit>
#include <cuda/std/limits>

#include "kernels/aggregates/accumulator.hpp"
#include "kernels/aggregates/sketch_arena.hpp"
#include "kernels/atomics.hpp"
#include "kernels/column_view.hpp"

namespace trove::kernels::detail {

/// @brief Relative accuracies p50(...) etc. accept.
inline constexpr double dd_min_accuracy = 0.001;
inline constexpr double dd_max_accuracy = 0.1;
/// @brief Smallest magnitude with a bucket of its own, and the largest the buckets reach.
inline constexpr double dd_min_magnitude = 1e-9;
inline constexpr double dd_max_magnitude = 1e18;

/// @brief The quantiles a sketch reports, in output order (p50, p90, p95, p99, p999).
TROVE_HD constexpr double dd_quantile(std::uint32_t i) noexcept {
  return i == 0 ? 0.5 : i == 1 ? 0.9 : i == 2 ? 0.95 : i == 3 ? 0.99 : 0.999;
}

/// @brief The sketch parameters of an accuracy: ln gamma, the key of bucket 0, buckets per sign.
struct dd_params {
  double log_gamma = 0;
  std::int32_t key_min = 0;
  std::uint32_t buckets = 0;
};

/// @brief Host code: the parameters of a relative accuracy in [dd_min_accuracy, dd_max_accuracy].
inline dd_params dd_params_for(double accuracy) noexcept {
  dd_params p;
  p.log_gamma = std::log((1 + accuracy) / (1 - accuracy));
  p.key_min = static_cast<std::int32_t>(std::ceil(std::log(dd_min_magnitude) / p.log_gamma));
  const auto key_max =
      static_cast<std::int32_t>(std::ceil(std::log(dd_max_magnitude) / p.log_gamma));
  p.buckets = static_cast<std::uint32_t>(key_max - p.key_min + 1);
  return p;
}

/// @brief 32-bit counters of a dense sketch: the zero bucket, then each sign's buckets.
TROVE_HD constexpr std::uint64_t dd_counters(std::uint32_t buckets) noexcept {
  return 1 + 2 * std::uint64_t{buckets};
}
/// @brief 8-byte words of a group's counter block.
TROVE_HD constexpr std::uint64_t dd_block_words(std::uint32_t buckets) noexcept {
  return (dd_counters(buckets) + 1) / 2;
}

/// @brief The counter of a value: 0 for the zero bucket, 1 + i for positive bucket i, 1 + buckets
/// + i for negative bucket i. UINT32_MAX for NaN (not counted).
TROVE_HD TROVE_FORCEINLINE std::uint32_t dd_counter_of(double x,
                                                       const sketch_arena_ref& a) noexcept {
  if (x != x) return UINT32_MAX;
  const double magnitude = x < 0 ? -x : x;
  if (magnitude < dd_min_magnitude) return 0;
  std::int64_t index = 0;
  if (magnitude > dd_max_magnitude) {  // (also infinity) the top bucket
    index = a.dd_buckets - 1;
  } else {
    index = static_cast<std::int64_t>(ceil(log(magnitude) / a.dd_log_gamma)) - a.dd_key_min;
    const std::int64_t top = static_cast<std::int64_t>(a.dd_buckets) - 1;
    index = index < 0 ? 0 : (index > top ? top : index);
  }
  return static_cast<std::uint32_t>(1 + index + (x < 0 ? a.dd_buckets : 0));
}

/// @brief The value a counter stands for (within the accuracy of every value in it).
TROVE_HD TROVE_FORCEINLINE double dd_value_of(std::uint32_t counter,
                                              const sketch_arena_ref& a) noexcept {
  if (counter == 0) return 0.0;
  const bool negative = counter > a.dd_buckets;
  const std::int64_t index = static_cast<std::int64_t>(counter) - 1 - (negative ? a.dd_buckets : 0);
  const double gamma = exp(a.dd_log_gamma);
  const double v =
      2.0 * exp(static_cast<double>(index + a.dd_key_min) * a.dd_log_gamma) / (gamma + 1.0);
  return negative ? -v : v;
}

/// @brief Counters in value order: the most negative first, then zero, then positive ascending.
TROVE_HD TROVE_FORCEINLINE std::uint64_t dd_order_of(std::uint32_t counter,
                                                     std::uint32_t buckets) noexcept {
  if (counter == 0) return buckets;
  if (counter > buckets) return 2 * std::uint64_t{buckets} - counter;  // negative, reversed
  return std::uint64_t{buckets} + counter;
}

struct ddsketch_acc {
  static constexpr acc_kind kind = acc_kind::ddsketch;
  static constexpr std::uint32_t inline_entries = 8;
  static constexpr std::uint32_t words = 1 + inline_entries / 2;
  static constexpr std::uint64_t sparse = sketch_sparse;
  static constexpr std::uint64_t locked = sketch_locked;
  static constexpr std::uint64_t in_record = sketch_in_record;
  static constexpr std::uint32_t frozen = ~std::uint32_t{0};
  static constexpr std::uint32_t max_inline_count = 0xFFFF;

  TROVE_HD static void init(std::uint64_t* w, value_kind) noexcept {
    for (std::uint32_t i = 0; i < words; ++i) w[i] = 0;
  }
  TROVE_HD TROVE_FORCEINLINE static bool dense(std::uint64_t state) noexcept {
    return sketch_dense(state);
  }
  TROVE_HD TROVE_FORCEINLINE static std::uint32_t* entries(std::uint64_t* w) noexcept {
    return reinterpret_cast<std::uint32_t*>(w + 1);
  }
  TROVE_HD TROVE_FORCEINLINE static std::uint32_t* block_of(std::uint64_t state,
                                                            const sketch_arena_ref& a) noexcept {
    return reinterpret_cast<std::uint32_t*>(a.d_words + (state - 1));
  }

  template <bool Atomic>
  TROVE_HD TROVE_FORCEINLINE static void add_dense(std::uint32_t* block, std::uint32_t counter,
                                                   std::uint32_t n) noexcept {
    if constexpr (Atomic) {
      fetch_add(block[counter], n);
    } else {
      block[counter] += n;
    }
  }

  /// @brief Adds n values of one counter to the group's sketch (n <= max_inline_count).
  template <bool Atomic>
  TROVE_HD static void add(std::uint64_t* w, std::uint32_t counter, std::uint32_t n,
                           const sketch_arena_ref& a) noexcept {
    while (true) {
      std::uint64_t state = Atomic ? load_acquire(w[0]) : w[0];
      if (state == sparse) {
        if (add_inline<Atomic>(w, counter, n)) return;
        if (promote<Atomic>(w, counter, n, a)) return;
        continue;  // another thread promoted (or found the arena full): look again
      }
      if constexpr (Atomic) {
        while (state == locked) state = load_acquire(w[0]);
        if (state == sparse) continue;
      }
      if (dense(state)) add_dense<Atomic>(block_of(state, a), counter, n);
      return;
    }
  }

  /// @brief Adds to the inline entry of `counter`, or takes a free one; false when neither can
  /// (all taken by other counters, the count would pass 16 bits, or the entries are frozen).
  template <bool Atomic>
  TROVE_HD TROVE_FORCEINLINE static bool add_inline(std::uint64_t* w, std::uint32_t counter,
                                                    std::uint32_t n) noexcept {
    std::uint32_t* e = entries(w);
    const std::uint32_t tag = (counter + 1) << 16;
    for (std::uint32_t i = 0; i < inline_entries; ++i) {
      std::uint32_t current = Atomic ? load_relaxed(e[i]) : e[i];
      while (true) {
        if (current == frozen) return false;
        const bool free = current == 0;
        const bool mine = (current & 0xFFFF0000u) == tag;
        if (!free && !mine) break;  // another counter's: the next entry
        if (mine && (current & 0xFFFFu) + n > max_inline_count) return false;
        const std::uint32_t desired = free ? tag | n : current + n;
        if constexpr (Atomic) {
          if (atomic_ref<std::uint32_t>(e[i]).compare_exchange_weak(
                  current, desired, cuda::std::memory_order_relaxed)) {
            return true;
          }
        } else {
          e[i] = desired;
          return true;
        }
      }
    }
    return false;
  }

  /// @brief Moves the group to a counter block with n more of `counter`. False: another thread is
  /// promoting (the caller looks again). When the arena is full the values go on its pending list
  /// (true: they are taken care of).
  template <bool Atomic>
  TROVE_HD static bool promote(std::uint64_t* w, std::uint32_t counter, std::uint32_t n,
                               const sketch_arena_ref& a) noexcept {
    if constexpr (Atomic) {
      std::uint64_t expected = sparse;
      if (!cas(w[0], expected, locked)) return false;
    }
    const std::uint64_t at = a.allocate(dd_block_words(a.dd_buckets));
    if (at == UINT64_MAX) {
      if constexpr (Atomic) store_release(w[0], sparse);
      a.defer(w, counter, n);
      return true;
    }
    auto* block = reinterpret_cast<std::uint32_t*>(a.d_words + at);  // zeroed
    std::uint32_t* e = entries(w);
    for (std::uint32_t i = 0; i < inline_entries; ++i) {
      std::uint32_t held = 0;
      if constexpr (Atomic) {
        held = atomic_ref<std::uint32_t>(e[i]).exchange(frozen, cuda::std::memory_order_acq_rel);
      } else {
        held = e[i];
        e[i] = frozen;
      }
      if (held != 0 && held != frozen) block[(held >> 16) - 1] += held & 0xFFFFu;
    }
    block[counter] += n;
    if constexpr (Atomic) {
      store_release(w[0], at + 1);
    } else {
      w[0] = at + 1;
    }
    return true;
  }

  /// @brief Adds one present value (the field's 8-byte word, read as `field`).
  template <bool Atomic>
  TROVE_HD TROVE_FORCEINLINE static void update(std::uint64_t* w, std::uint64_t value,
                                                value_kind field,
                                                const sketch_arena_ref& a) noexcept {
    double x = 0;
    switch (field) {
      case value_kind::f64:
        x = cuda::std::bit_cast<double>(value);
        break;
      case value_kind::i64:
        x = static_cast<double>(static_cast<std::int64_t>(value));
        break;
      case value_kind::u64:
        x = static_cast<double>(value);
        break;
    }
    const std::uint32_t counter = dd_counter_of(x, a);
    if (counter == UINT32_MAX) return;
    add<Atomic>(w, counter, 1, a);
  }

  /// @brief w = the sketch of both groups' values (plain: one writer).
  TROVE_HD static void merge(std::uint64_t* w, const std::uint64_t* other,
                             const sketch_arena_ref& a) noexcept {
    if (!dense(other[0])) {
      const auto* e = reinterpret_cast<const std::uint32_t*>(other + 1);
      for (std::uint32_t i = 0; i < inline_entries; ++i) {
        if (e[i] != 0 && e[i] != frozen) add<false>(w, (e[i] >> 16) - 1, e[i] & 0xFFFF, a);
      }
      return;
    }
    const std::uint32_t* from = block_of(other[0], a);
    for (std::uint32_t c = 0; c < dd_counters(a.dd_buckets); ++c) {
      std::uint32_t left = from[c];
      while (left > 0) {  // in pieces an inline entry can hold
        const std::uint32_t piece = left < max_inline_count ? left : max_inline_count;
        add<false>(w, c, piece, a);
        left -= piece;
      }
    }
  }

  /// @brief Writes the dd_quantile_count quantiles (doubles; NaN when no value was counted) into
  /// out[0 ..): the value of the bucket that holds the value of rank floor(q (n - 1)).
  TROVE_HD static void quantiles(const std::uint64_t* w, const sketch_arena_ref& a,
                                 double* out) noexcept {
    // Gathers (order, counter, count) of the non-empty counters in value order.
    std::uint64_t total = 0;
    if (dense(w[0])) {
      const std::uint32_t* block = block_of(w[0], a);
      const std::uint64_t counters = dd_counters(a.dd_buckets);
      for (std::uint64_t c = 0; c < counters; ++c) total += block[c];
      std::uint32_t q = 0;
      std::uint64_t seen = 0;
      for (std::uint64_t order = 0; order < counters && q < dd_quantile_count; ++order) {
        // order → counter: negative buckets reversed, zero, positive ascending
        std::uint32_t c = 0;
        if (order < a.dd_buckets) {
          c = static_cast<std::uint32_t>(2 * std::uint64_t{a.dd_buckets} - order);
        } else if (order > a.dd_buckets) {
          c = static_cast<std::uint32_t>(order - a.dd_buckets);
        }
        seen += block[c];
        while (q < dd_quantile_count && total > 0 &&
               seen > static_cast<std::uint64_t>(dd_quantile(q) * static_cast<double>(total - 1))) {
          out[q++] = dd_value_of(c, a);
        }
      }
      for (; q < dd_quantile_count; ++q) out[q] = cuda::std::numeric_limits<double>::quiet_NaN();
      return;
    }
    const auto* e = reinterpret_cast<const std::uint32_t*>(w + 1);
    std::uint32_t counter[inline_entries];
    std::uint32_t count[inline_entries];
    std::uint32_t k = 0;
    for (std::uint32_t i = 0; i < inline_entries; ++i) {
      if (e[i] == 0 || e[i] == frozen) continue;
      // insertion sort by value order (at most 8 entries)
      const std::uint32_t c = (e[i] >> 16) - 1;
      std::uint32_t at = k++;
      while (at > 0 && dd_order_of(counter[at - 1], a.dd_buckets) > dd_order_of(c, a.dd_buckets)) {
        counter[at] = counter[at - 1];
        count[at] = count[at - 1];
        --at;
      }
      counter[at] = c;
      count[at] = e[i] & 0xFFFFu;
      total += count[at];
    }
    std::uint32_t q = 0;
    std::uint64_t seen = 0;
    for (std::uint32_t i = 0; i < k && q < dd_quantile_count; ++i) {
      seen += count[i];
      while (q < dd_quantile_count &&
             seen > static_cast<std::uint64_t>(dd_quantile(q) * static_cast<double>(total - 1))) {
        out[q++] = dd_value_of(counter[i], a);
      }
    }
    for (; q < dd_quantile_count; ++q) out[q] = cuda::std::numeric_limits<double>::quiet_NaN();
  }
};

}  // namespace trove::kernels::detail
