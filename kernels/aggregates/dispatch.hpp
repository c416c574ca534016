#pragma once
/// @file dispatch.hpp
/// @brief The one place that maps an acc_kind to its accumulator: the slot code calls these and
/// never names an accumulator itself. A new accumulator is its own file plus one case in each
/// switch below.

#include <cstdint>

#include "kernels/aggregates/accumulator.hpp"
#include "kernels/aggregates/ddsketch.hpp"
#include "kernels/aggregates/hll.hpp"
#include "kernels/aggregates/min_max.hpp"
#include "kernels/aggregates/non_null.hpp"
#include "kernels/aggregates/sketch_arena.hpp"
#include "kernels/aggregates/sum.hpp"
#include "kernels/column_view.hpp"
#include "kernels/macros.hpp"

namespace trove::kernels::detail {

/// @brief 8-byte words an accumulator of `kind` takes in a slot.
TROVE_HD constexpr std::uint32_t acc_word_count(acc_kind kind) noexcept {
  switch (kind) {
    case acc_kind::non_null:
      return non_null_acc::words;
    case acc_kind::sum:
      return sum_acc::words;
    case acc_kind::min:
      return min_acc::words;
    case acc_kind::max:
      return max_acc::words;
    case acc_kind::hll:
      return hll_acc::words;
    case acc_kind::ddsketch:
      return ddsketch_acc::words;
  }
  return 1;
}

/// @brief Writes the identity of an accumulator (a group no value has reached yet).
TROVE_HD TROVE_FORCEINLINE void init_acc(acc_kind kind, std::uint64_t* w,
                                         value_kind field) noexcept {
  switch (kind) {
    case acc_kind::non_null:
      return non_null_acc::init(w, field);
    case acc_kind::sum:
      return sum_acc::init(w, field);
    case acc_kind::min:
      return min_acc::init(w, field);
    case acc_kind::max:
      return max_acc::init(w, field);
    case acc_kind::hll:
      return hll_acc::init(w, field);
    case acc_kind::ddsketch:
      return ddsketch_acc::init(w, field);
  }
}

/// @brief Adds one present value: with atomics when rows update slots concurrently (the GPU, the
/// CPU's atomic strategy), plain when the calling thread owns the slot (the CPU's owned passes).
/// `value` is the field's 8-byte word, or its hll_hash for an accumulator that acc_reads_hash.
template <bool Atomic>
TROVE_HD TROVE_FORCEINLINE void update_acc(acc_kind kind, std::uint64_t* w, std::uint64_t value,
                                           value_kind field,
                                           const sketch_arena_ref& sketches) noexcept {
  switch (kind) {
    case acc_kind::non_null:
      return non_null_acc::update<Atomic>(w, value, field);
    case acc_kind::sum:
      return sum_acc::update<Atomic>(w, value, field);
    case acc_kind::min:
      return min_acc::update<Atomic>(w, value, field);
    case acc_kind::max:
      return max_acc::update<Atomic>(w, value, field);
    case acc_kind::hll:
      return hll_acc::update<Atomic>(w, value, sketches);
    case acc_kind::ddsketch:
      return ddsketch_acc::update<Atomic>(w, value, field, sketches);
  }
}

/// @brief w = the accumulator of both groups' values together (plain: one writer).
TROVE_HD TROVE_FORCEINLINE void merge_acc(acc_kind kind, std::uint64_t* w,
                                          const std::uint64_t* other, value_kind field,
                                          const sketch_arena_ref& sketches) noexcept {
  switch (kind) {
    case acc_kind::non_null:
      return non_null_acc::merge(w, other, field);
    case acc_kind::sum:
      return sum_acc::merge(w, other, field);
    case acc_kind::min:
      return min_acc::merge(w, other, field);
    case acc_kind::max:
      return max_acc::merge(w, other, field);
    case acc_kind::hll:
      return hll_acc::merge(w, other, sketches);
    case acc_kind::ddsketch:
      return ddsketch_acc::merge(w, other, sketches);
  }
}

}  // namespace trove::kernels::detail

namespace trove::kernels::detail {

/// @brief 8-byte words of a sketch accumulator's block in the sketch arena.
TROVE_HD constexpr std::uint64_t sketch_block_words(acc_kind kind,
                                                    const sketch_arena_ref& a) noexcept {
  return kind == acc_kind::hll ? hll_block_words(a.hll_precision) : dd_block_words(a.dd_buckets);
}

/// @brief A finished sketch in the words of an extracted row: hll its estimate, rounded (u64);
/// ddsketch its dd_quantile_count quantiles (doubles, NaN when it counted no value).
TROVE_HD inline void finalize_sketch(acc_kind kind, const std::uint64_t* w,
                                     const sketch_arena_ref& a, std::uint64_t* out) noexcept {
  if (kind == acc_kind::hll) {
    out[0] = static_cast<std::uint64_t>(llround(hll_acc::estimate(w, a)));
    return;
  }
  double q[dd_quantile_count];
  ddsketch_acc::quantiles(w, a, q);
  for (std::uint32_t i = 0; i < dd_quantile_count; ++i)
    out[i] = cuda::std::bit_cast<std::uint64_t>(q[i]);
}

}  // namespace trove::kernels::detail
