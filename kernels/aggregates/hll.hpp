#pragma once
/// @file hll.hpp
/// @brief Accumulator: HyperLogLog over the XXH64 hash of a field's values, for
/// approx_count_distinct(field). 2^p one-byte registers (p = agg_options::hll_precision, 4..18),
/// register = max over the values that hash to it of (leading zeros of the hash's other bits + 1),
/// estimated with Ertl's improved estimator ("New cardinality estimation algorithms for
/// HyperLogLog sketches", 2017): no bias correction tables, no switch to linear counting.
/// Relative standard error 1.04 / sqrt(2^p): 0.81% at the default p = 14.
///
/// Small groups do not pay for the registers. The accumulator is 4 words in the slot: a state word
/// and 6 inline entries of 32 bits (register index, register value and 26 - p more hash bits).
/// While a group has seen at most 6 distinct entries they are its sketch, and its estimate is
/// their number: exact unless two values agree in all 26 + 6 bits of their entries (for p = 14,
/// probability below 1e-6 for a group of six). The 7th distinct entry promotes the group: a block
/// of 2^p bytes from the sketch arena (sketch_arena.hpp) takes every entry as a register update.
///
/// Order-independent by construction: registers are maxima and the inline entries a set, so the
/// owned strategy (plain stores), the atomic one (CAS) and any thread count give the same
/// registers and the same estimate.
///
/// State word: 0 sparse; `locked` while one thread promotes (the others wait); `in_record` in a
/// snapshot (the registers follow the group's key record); otherwise 1 + the block's word offset.

#include <cstdint>
#include <cuda/std/bit>

#include "kernels/aggregates/accumulator.hpp"
#include "kernels/aggregates/sketch_arena.hpp"
#include "kernels/atomics.hpp"
#include "kernels/column_view.hpp"
#include "kernels/xxhash64.hpp"

namespace trove::kernels::detail {

/// @brief Precisions approx_count_distinct accepts.
inline constexpr std::uint32_t hll_min_precision = 4;
inline constexpr std::uint32_t hll_max_precision = 18;

/// @brief 8-byte words of a group's register block at precision p (one byte per register).
TROVE_HD constexpr std::uint64_t hll_block_words(std::uint32_t p) noexcept {
  return (std::uint64_t{1} << p) / 8;
}

/// @brief The largest register value at precision p: 64 - p zero bits, plus one.
TROVE_HD constexpr std::uint32_t hll_max_rho(std::uint32_t p) noexcept {
  return 64 - p + 1;
}

/// @brief The value an HLL accumulator reads from a row: XXH64 of the 8 little-endian bytes of a
/// fixed-width value (seed 0), of the bytes of a string.
TROVE_HD TROVE_FORCEINLINE std::uint64_t hll_hash(const column_view& col,
                                                  std::size_t row) noexcept {
  if (col.is_string) {
    const std::uint32_t begin = col.d_offsets[row];
    return xxh64(col.d_chars + begin, col.d_offsets[row + 1] - begin, 0);
  }
  return xxh64_u64(col.d_values[row], 0);
}

/// @brief The 32-bit entry of a hash: [register index: p][register value: 6][hash bits: 26 - p].
/// Never 0 (the register value is at least 1).
TROVE_HD TROVE_FORCEINLINE std::uint32_t hll_entry(std::uint64_t hash, std::uint32_t p) noexcept {
  const std::uint64_t index = hash >> (64 - p);
  const std::uint64_t rest = hash << p;
  const std::uint32_t rho =
      rest == 0 ? hll_max_rho(p) : static_cast<std::uint32_t>(cuda::std::countl_zero(rest)) + 1;
  const std::uint32_t fill_bits = 26 - p;
  return static_cast<std::uint32_t>(index << (32 - p)) | (rho << fill_bits) |
         static_cast<std::uint32_t>(hash & ((std::uint64_t{1} << fill_bits) - 1));
}
TROVE_HD TROVE_FORCEINLINE std::uint32_t hll_entry_index(std::uint32_t entry,
                                                         std::uint32_t p) noexcept {
  return entry >> (32 - p);
}
/// Clamped: entries of a snapshot are read as they come (a hostile file cannot index past the
/// estimator's histogram).
TROVE_HD TROVE_FORCEINLINE std::uint32_t hll_entry_rho(std::uint32_t entry,
                                                       std::uint32_t p) noexcept {
  const std::uint32_t rho = (entry >> (26 - p)) & 63u;
  return rho < hll_max_rho(p) ? rho : hll_max_rho(p);
}

/// @brief Ertl's improved estimate from the histogram of register values: c[k] registers hold k,
/// for k = 0 .. q + 1 (q = 64 - p). Deterministic: plain double arithmetic in a fixed order.
TROVE_HD inline double hll_estimate_histogram(const std::uint32_t* c, std::uint32_t p) noexcept {
  const std::uint32_t q = 64 - p;
  const double m = static_cast<double>(std::uint64_t{1} << p);
  // tau(x) = (1 - x - sum_k (1 - x^(2^-k))^2 2^-k) / 3
  double x = 1.0 - static_cast<double>(c[q + 1]) / m;
  double z = 0.0;
  if (x > 0.0 && x < 1.0) {
    double y = 1.0;
    double t = 1.0 - x;
    double previous = 0.0;
    do {
      x = sqrt(x);
      previous = t;
      y *= 0.5;
      t -= (1.0 - x) * (1.0 - x) * y;
    } while (t != previous);
    z = m * t / 3.0;
  }
  for (std::uint32_t k = q; k >= 1; --k) z = 0.5 * (z + static_cast<double>(c[k]));
  // sigma(x) = x + sum_k x^(2^k) 2^(k-1)
  double s = static_cast<double>(c[0]) / m;
  if (s >= 1.0) return 0.0;  // every register is zero: nothing seen
  {
    double y = 1.0;
    double xs = s;
    double previous = 0.0;
    do {
      xs *= xs;
      previous = s;
      s += xs * y;
      y += y;
    } while (s != previous);
  }
  z += m * s;
  constexpr double alpha_inf = 0.721347520444481703680;  // 1 / (2 ln 2)
  return alpha_inf * m * m / z;
}

/// @brief The estimate of a register block (one byte per register).
TROVE_HD inline double hll_estimate_registers(const std::uint64_t* block,
                                              std::uint32_t p) noexcept {
  std::uint32_t c[hll_max_rho(hll_min_precision) + 1] = {};
  const std::uint32_t top = hll_max_rho(p);
  const std::uint64_t words = hll_block_words(p);
  for (std::uint64_t w = 0; w < words; ++w) {
    const std::uint64_t word = block[w];
    if (word == 0) {
      c[0] += 8;
      continue;
    }
    for (std::uint32_t b = 0; b < 8; ++b) {
      const std::uint32_t v = static_cast<std::uint32_t>((word >> (8 * b)) & 0xFF);
      ++c[v < top ? v : top];
    }
  }
  return hll_estimate_histogram(c, p);
}

struct hll_acc {
  static constexpr acc_kind kind = acc_kind::hll;
  static constexpr std::uint32_t inline_entries = 6;
  static constexpr std::uint32_t words = 1 + inline_entries / 2;
  static constexpr std::uint64_t sparse = sketch_sparse;
  static constexpr std::uint64_t locked = sketch_locked;
  static constexpr std::uint64_t in_record = sketch_in_record;

  TROVE_HD static void init(std::uint64_t* w, value_kind) noexcept {
    for (std::uint32_t i = 0; i < words; ++i) w[i] = 0;
  }

  /// @brief Whether the group's registers are in the arena (w[0] = 1 + their offset).
  TROVE_HD TROVE_FORCEINLINE static bool dense(std::uint64_t state) noexcept {
    return sketch_dense(state);
  }

  TROVE_HD TROVE_FORCEINLINE static std::uint32_t* entries(std::uint64_t* w) noexcept {
    return reinterpret_cast<std::uint32_t*>(w + 1);
  }

  /// @brief register[index] = max(register[index], rho); byte registers in 32-bit words so the
  /// atomic strategy can CAS them (a read first: most updates change nothing).
  template <bool Atomic>
  TROVE_HD TROVE_FORCEINLINE static void raise(std::uint64_t* block, std::uint32_t index,
                                               std::uint32_t rho) noexcept {
    auto* words32 = reinterpret_cast<std::uint32_t*>(block);
    std::uint32_t& word = words32[index >> 2];
    const std::uint32_t shift = (index & 3u) * 8;
    if constexpr (Atomic) {
      std::uint32_t current = load_relaxed(word);
      while (((current >> shift) & 0xFFu) < rho) {
        const std::uint32_t desired = (current & ~(0xFFu << shift)) | (rho << shift);
        if (atomic_ref<std::uint32_t>(word).compare_exchange_weak(
                current, desired, cuda::std::memory_order_relaxed)) {
          break;
        }
      }
    } else if (((word >> shift) & 0xFFu) < rho) {
      word = (word & ~(0xFFu << shift)) | (rho << shift);
    }
  }

  template <bool Atomic>
  TROVE_HD TROVE_FORCEINLINE static void raise_entry(std::uint64_t* block, std::uint32_t entry,
                                                     std::uint32_t p) noexcept {
    raise<Atomic>(block, hll_entry_index(entry, p), hll_entry_rho(entry, p));
  }

  /// @brief Waits while another thread promotes the group; returns the state it settled in.
  TROVE_HD TROVE_FORCEINLINE static std::uint64_t settled(std::uint64_t* w) noexcept {
    std::uint64_t state = load_acquire(w[0]);
    while (state == locked) state = load_acquire(w[0]);
    return state;
  }

  /// @brief Adds one value's entry. With Atomic, rows of many threads may update the group at
  /// once: an entry written to the inline set is followed by a sequentially consistent re-read of
  /// the state word, and a promotion swaps the state word before it reads the entries, so every
  /// entry either is read by the promotion or sees it and goes to the registers itself.
  template <bool Atomic>
  TROVE_HD static void add_entry(std::uint64_t* w, std::uint32_t entry,
                                 const sketch_arena_ref& arena) noexcept {
    const std::uint32_t p = arena.hll_precision;
    constexpr auto seq = cuda::std::memory_order_seq_cst;
    std::uint64_t state = Atomic ? atomic_ref<std::uint64_t>(w[0]).load(seq) : w[0];
    if (state == sparse) {
      std::uint32_t* e = entries(w);
      for (std::uint32_t i = 0; i < inline_entries; ++i) {
        if constexpr (Atomic) {
          std::uint32_t current = atomic_ref<std::uint32_t>(e[i]).load(seq);
          if (current == 0 &&
              atomic_ref<std::uint32_t>(e[i]).compare_exchange_strong(current, entry, seq)) {
            if (atomic_ref<std::uint64_t>(w[0]).load(seq) == sparse) return;
            state = settled(w);
            if (dense(state)) raise_entry<true>(arena.d_words + (state - 1), entry, p);
            return;  // (back to sparse: the promotion failed, the batch is applied again)
          }
          if (current == entry) return;  // its writer makes sure a promotion sees it
        } else {
          if (e[i] == 0) {
            e[i] = entry;
            return;
          }
          if (e[i] == entry) return;
        }
      }
      promote<Atomic>(w, entry, arena);
      return;
    }
    if constexpr (Atomic) state = settled(w);
    if (dense(state)) raise_entry<Atomic>(arena.d_words + (state - 1), entry, p);
  }

  /// @brief The inline set is full and `entry` is not in it: moves the group to a register block.
  template <bool Atomic>
  TROVE_HD static void promote(std::uint64_t* w, std::uint32_t entry,
                               const sketch_arena_ref& arena) noexcept {
    const std::uint32_t p = arena.hll_precision;
    constexpr auto seq = cuda::std::memory_order_seq_cst;
    if constexpr (Atomic) {
      std::uint64_t expected = sparse;
      if (!atomic_ref<std::uint64_t>(w[0]).compare_exchange_strong(expected, locked, seq)) {
        const std::uint64_t state = settled(w);
        if (dense(state)) raise_entry<true>(arena.d_words + (state - 1), entry, p);
        return;
      }
    }
    const std::uint64_t at = arena.allocate(hll_block_words(p));
    if (at == UINT64_MAX) {  // the arena is full: the table grows it and applies the batch again
      if constexpr (Atomic) {
        atomic_ref<std::uint64_t>(w[0]).store(sparse, seq);
      }
      return;
    }
    std::uint64_t* block = arena.d_words + at;  // zeroed when the arena was allocated
    std::uint32_t* e = entries(w);
    for (std::uint32_t i = 0; i < inline_entries; ++i) {
      const std::uint32_t held = Atomic ? atomic_ref<std::uint32_t>(e[i]).load(seq) : e[i];
      if (held != 0) raise_entry<false>(block, held, p);
    }
    raise_entry<false>(block, entry, p);
    if constexpr (Atomic) {
      store_release(w[0], at + 1);
    } else {
      w[0] = at + 1;
    }
  }

  /// @brief Adds a value (hll_hash of the field) to the group's sketch.
  template <bool Atomic>
  TROVE_HD TROVE_FORCEINLINE static void update(std::uint64_t* w, std::uint64_t hash,
                                                const sketch_arena_ref& arena) noexcept {
    add_entry<Atomic>(w, hll_entry(hash, arena.hll_precision), arena);
  }

  /// @brief w = the sketch of both groups' values (plain: one writer). A dense `other` makes w
  /// dense (its registers carry no inline entries to keep). When the arena is full w is left as
  /// it was, which the caller sees on the arena's counter.
  TROVE_HD static void merge(std::uint64_t* w, const std::uint64_t* other,
                             const sketch_arena_ref& arena) noexcept {
    const std::uint32_t p = arena.hll_precision;
    if (!dense(other[0])) {
      const auto* e = reinterpret_cast<const std::uint32_t*>(other + 1);
      for (std::uint32_t i = 0; i < inline_entries; ++i) {
        if (e[i] != 0) add_entry<false>(w, e[i], arena);
      }
      return;
    }
    if (!dense(w[0])) promote<false>(w, 0, arena);  // entry 0: register 0 raised to 0, a no-op
    if (!dense(w[0])) return;
    const std::uint64_t* from = arena.d_words + (other[0] - 1);
    std::uint64_t* to = arena.d_words + (w[0] - 1);
    for (std::uint32_t index = 0; index < (1u << p); ++index) {
      raise<false>(to, index,
                   static_cast<std::uint32_t>((from[index / 8] >> (8 * (index % 8))) & 0xFF));
    }
  }

  /// @brief The distinct-count estimate of a group in the table.
  TROVE_HD static double estimate(const std::uint64_t* w, const sketch_arena_ref& arena) noexcept {
    if (dense(w[0])) return hll_estimate_registers(arena.d_words + (w[0] - 1), arena.hll_precision);
    const auto* e = reinterpret_cast<const std::uint32_t*>(w + 1);
    std::uint32_t n = 0;
    for (std::uint32_t i = 0; i < inline_entries; ++i) n += e[i] != 0 ? 1 : 0;
    return static_cast<double>(n);
  }
};

}  // namespace trove::kernels::detail
