#pragma once
/// @file agg_table_impl.hpp
/// @brief The aggregation table's single-source implementation, instantiated once per backend.
///
/// Storage: an array of fixed-stride slots, each an agg_header followed by the words of the
/// accumulators the table keeps (aggregates/; array of structs: one probe touches one or two cache
/// lines on the CPU and a single thread's contiguous bytes on the GPU), plus a key arena of 8-byte
/// words holding each group's key values as a record: [validity mask][per column: value | length,
/// bytes...]. Slots hold 32-bit word offsets into the arena, so the arena stays below 2^32 words
/// (32 GiB).

#include <thrust/copy.h>
#include <thrust/fill.h>
#include <thrust/for_each.h>
#include <thrust/functional.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/scan.h>
#include <thrust/transform.h>
#include <thrust/transform_reduce.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <cuda/std/bit>
#include <limits>
#include <set>
#include <string>

#include "kernels/agg_slot.hpp"
#include "kernels/agg_table.hpp"
#include "kernels/aggregates/dispatch.hpp"
#include "kernels/atomics.hpp"
#include "kernels/error.hpp"
#include "kernels/row_key.hpp"
#include "kernels/row_status.hpp"
#include "kernels/xxhash64.hpp"

#if defined(__CUDACC__)
#include <cooperative_groups.h>
#include <cooperative_groups/reduce.h>
#include <cooperative_groups/scan.h>
#endif

namespace trove::kernels::detail {

/// @brief The most words the key arena may have: key_ref is 32 bits.
inline constexpr std::size_t max_arena_words = std::size_t{1} << 32;

/// @brief Row r's source partition (0 without a partition column).
TROVE_HD TROVE_FORCEINLINE std::int32_t row_partition(const std::int32_t* d_partition,
                                                      std::size_t stride,
                                                      std::size_t row) noexcept {
  return d_partition ? d_partition[row * stride] : 0;
}

/// @brief Column types of the key and the fields, and the accumulators a slot holds, passed to
/// kernels by value. Accumulators are ordered by field, and within a field by acc_kind: field f's
/// are accs[field_acc_begin[f] .. field_acc_begin[f + 1]).
struct agg_layout {
  std::uint32_t num_keys = 0;
  std::uint32_t num_fields = 0;
  bool key_is_string[max_key_columns] = {};
  value_kind kinds[max_agg_fields] = {};
  bool nullable[max_agg_fields] = {};
  std::uint32_t num_accs = 0;
  acc_slot accs[max_agg_fields * acc_kind_count] = {};
  std::uint8_t field_acc_begin[max_agg_fields + 1] = {};
  std::uint32_t acc_words = 0;  ///< words after the header
  std::size_t stride = sizeof(agg_header);
  bool field_hashed[max_agg_fields] = {};  ///< the field has an accumulator reading hashes (hll)
  std::uint32_t hll_fields = 0;            ///< fields with an hll accumulator
  std::uint32_t dd_fields = 0;             ///< fields with a ddsketch accumulator
  std::uint32_t sketch_accs = 0;           ///< hll_fields + dd_fields
  std::uint32_t hll_precision = 14;
  double dd_log_gamma = 0;  // dd_params of agg_options::quantile_accuracy
  std::int32_t dd_key_min = 0;
  std::uint32_t dd_buckets = 0;
};

/// @brief 8-byte words of the arena block of a sketch accumulator of `kind` in this layout.
TROVE_HD inline std::uint64_t sketch_block_words(const agg_layout& layout, acc_kind kind) noexcept {
  return kind == acc_kind::hll ? hll_block_words(layout.hll_precision)
                               : dd_block_words(layout.dd_buckets);
}

/// @brief The layout of a table with these options (host code, agg_table.cpp).
agg_layout make_agg_layout(const agg_options& options);

/// @brief A signature of the layout (never 0): snapshots carry it, so that a table restores only
/// slots it can read (the aggregates of a restarted pipeline may have changed).
std::uint64_t layout_signature(const agg_layout& layout);

/// @brief The slots of a snapshot of the full layout of tables before accumulator selection (a
/// checkpoint of formats 1 to 3: every field non-null count, sum, min, max) in `layout`; throws
/// trove::logic_error when the stride is not that layout's.
std::vector<unsigned char> convert_full_layout_slots(const agg_layout& layout,
                                                     const agg_snapshot& snapshot);

/// @brief Decodes the rows gathered by an extraction on the host, in the deterministic output
/// order (window start, then group fingerprint), whatever order the slots were gathered in
/// (agg_table.cpp). Sorting compact host copies beats sorting slot indices on the device with a
/// comparator that chases them (and Thrust's OpenMP sort is sequential).
agg_result decode_result(const agg_layout& layout, const window_spec& window,
                         const unsigned char* h_slots, std::size_t rows,
                         const std::uint64_t* h_records, const std::uint64_t* h_record_offsets);

/// @brief Words a row's key record takes in the arena.
TROVE_HD inline std::uint64_t key_record_words(const key_columns& keys, std::size_t row) noexcept {
  std::uint64_t words = 1;  // validity mask
  for (std::uint32_t c = 0; c < keys.count; ++c) {
    const column_view& col = keys.columns[c];
    if (col.is_string) {
      const std::uint64_t len = col.valid(row) ? col.d_offsets[row + 1] - col.d_offsets[row] : 0;
      words += 1 + (len + 7) / 8;
    } else {
      words += 1;
    }
  }
  return words;
}

/// @brief Words a stored key record takes (read back from the record itself).
TROVE_HD inline std::uint64_t stored_record_words(const agg_layout& layout,
                                                  const std::uint64_t* record) noexcept {
  std::uint64_t words = 1;
  for (std::uint32_t c = 0; c < layout.num_keys; ++c) {
    if (layout.key_is_string[c]) {
      words += 1 + (record[words] + 7) / 8;
    } else {
      words += 1;
    }
  }
  return words;
}

/// @brief Writes a row's key record at `out`.
TROVE_HD inline void write_key_record(const key_columns& keys, std::size_t row,
                                      std::uint64_t* out) noexcept {
  std::uint64_t mask = 0;
  std::uint64_t word = 1;
  for (std::uint32_t c = 0; c < keys.count; ++c) {
    const column_view& col = keys.columns[c];
    const bool valid = col.valid(row);
    if (valid) mask |= std::uint64_t{1} << c;
    if (!col.is_string) {
      out[word++] = valid ? col.d_values[row] : 0;
      continue;
    }
    const std::uint32_t begin = valid ? col.d_offsets[row] : 0;
    const std::uint32_t len = valid ? col.d_offsets[row + 1] - begin : 0;
    out[word++] = len;
    for (std::uint32_t chunk = 0; chunk < len; chunk += 8) {
      std::uint64_t packed = 0;  // little-endian bytes, zero padded
      for (std::uint32_t b = 0; b < 8 && chunk + b < len; ++b) {
        packed |=
            static_cast<std::uint64_t>(static_cast<unsigned char>(col.d_chars[begin + chunk + b]))
            << (8 * b);
      }
      out[word++] = packed;
    }
  }
  out[0] = mask;
}

/// @brief Key-arena words taken from the shared counter (rows in parallel).
struct arena_shared {
  std::uint64_t* d_used;
  TROVE_HD TROVE_FORCEINLINE std::uint64_t allocate(std::uint64_t words) const noexcept {
#if defined(__CUDA_ARCH__)
    // CUDA-only fast path (warp-aggregated): the threads of a warp that create groups at the same
    // moment take their records' words with one atomic — an exclusive scan of their lengths and a
    // broadcast of the base — instead of one atomic each on the same hot word. The records get
    // the same lengths at other (disjoint) offsets; what the table holds is the same.
    namespace cg = cooperative_groups;
    const cg::coalesced_group active = cg::coalesced_threads();
    const std::uint64_t before = cg::exclusive_scan(active, words);
    const unsigned last = active.size() - 1;
    unsigned long long base = 0;
    if (active.thread_rank() == last) {
      base = atomicAdd(reinterpret_cast<unsigned long long*>(d_used),
                       static_cast<unsigned long long>(before + words));
    }
    return static_cast<std::uint64_t>(active.shfl(base, last)) + before;
#else
    return fetch_add(*d_used, words);  // the single-source path (the CPU's atomic strategy)
#endif
  }
};
/// @brief Key-arena words taken from the shared counter a chunk at a time and handed out by one
/// thread: two threads inserting groups would otherwise bounce the counter's cache line on every
/// new group. Records longer than an eighth of a chunk come straight from the counter, so a refill
/// throws away less than 1/7 of what was used (the reservation allows for a quarter), plus at most
/// one chunk per thread at the end of a pass (all reclaimed by the next rebuild).
struct arena_chunked {
  static constexpr std::uint64_t chunk_words = 512;
  std::uint64_t* d_used;
  std::uint64_t next = 0;
  std::uint64_t end = 0;
  TROVE_HD std::uint64_t allocate(std::uint64_t words) noexcept {
    if (next + words <= end) {
      const std::uint64_t at = next;
      next += words;
      return at;
    }
    if (words > chunk_words / 8) return fetch_add(*d_used, words);
    next = fetch_add(*d_used, chunk_words);
    end = next + chunk_words;
    const std::uint64_t at = next;
    next += words;
    return at;
  }
};
/// @brief Counts created slots on the shared device counter.
struct count_shared {
  std::uint64_t* d_count;
  TROVE_HD TROVE_FORCEINLINE void add(std::uint64_t n) const noexcept {
#if defined(__CUDA_ARCH__)
    // CUDA-only fast path (warp-aggregated): one atomic per warp for the groups its threads
    // create together, not one per group on the table's single hottest word. Same total.
    namespace cg = cooperative_groups;
    const cg::coalesced_group active = cg::coalesced_threads();
    const std::uint64_t total = cg::reduce(active, n, cg::plus<std::uint64_t>());
    if (active.thread_rank() == 0) {
      atomicAdd(reinterpret_cast<unsigned long long*>(d_count),
                static_cast<unsigned long long>(total));
    }
#else
    fetch_add(*d_count, n);
#endif
  }
};
/// @brief Counts created slots in a thread-local variable.
struct count_local {
  std::uint64_t value = 0;
  TROVE_HD void add(std::uint64_t n) noexcept { value += n; }
};

/// @brief Non-owning view of the table passed to kernels by value.
struct agg_ref {
  unsigned char* d_slots;
  std::uint64_t mask;
  agg_layout layout;
  window_spec window;
  std::uint64_t* d_arena;
  // [0] arena words used, [1] slots inserted, [2] changelog list length, [3] cross-partition
  // updates, [4] checkpoint list length, [5] sketch arena words handed out (sketches.d_used),
  // [6] sketch arena words of emitted groups (garbage until the next rebuild), [7] DDSketch
  // additions deferred (sketches.d_pending_count), [8] the sketch arena was full (sketches.d_full)
  std::uint64_t* d_counters;
  std::uint32_t* d_dirty_list;       // updated since the last extract_updated (agg_on_changelog)
  std::uint32_t* d_checkpoint_list;  // since the last snapshot_updated (agg_on_checkpoint_list)
  sketch_arena_ref sketches;         // register blocks of groups past their inline entries

  TROVE_HD TROVE_FORCEINLINE agg_header& header(std::uint64_t pos) const noexcept {
    return *reinterpret_cast<agg_header*>(d_slots + pos * layout.stride);
  }
  /// @brief The accumulator words of a slot (layout.acc_words of them).
  TROVE_HD TROVE_FORCEINLINE std::uint64_t* acc_words(std::uint64_t pos) const noexcept {
    return reinterpret_cast<std::uint64_t*>(d_slots + pos * layout.stride + sizeof(agg_header));
  }
  TROVE_HD TROVE_FORCEINLINE std::uint64_t home(const hash128& key,
                                                std::int64_t window_start) const noexcept {
    return mix64(key.hi ^ mix64(key.lo + static_cast<std::uint64_t>(window_start))) & mask;
  }
  TROVE_HD TROVE_FORCEINLINE bool matches(const agg_header& h, const hash128& key,
                                          std::int64_t window_start) const noexcept {
    return h.k0 == key.hi && h.k1 == key.lo && h.window_start == window_start;
  }

  /// @brief Appends pos to each list in `lists` (agg_on_* bits) it is not on yet: the first
  /// update since that list was last emptied. One plain load when it is on all of them already.
  TROVE_HD TROVE_FORCEINLINE void mark_dirty(std::uint64_t pos,
                                             std::uint32_t lists) const noexcept {
    agg_header& h = header(pos);
    if ((load_relaxed(h.dirty) & lists) == lists) return;
    const std::uint32_t before = fetch_or(h.dirty, lists);
    const std::uint32_t added = lists & ~before;
    if (added & agg_on_changelog) {
      d_dirty_list[fetch_add(d_counters[2], std::uint64_t{1})] = static_cast<std::uint32_t>(pos);
    }
    if (added & agg_on_checkpoint_list) {
      d_checkpoint_list[fetch_add(d_counters[4], std::uint64_t{1})] =
          static_cast<std::uint32_t>(pos);
    }
  }

  /// @brief Finds the (key, window) slot or creates it with its key record, identities and the
  /// creating row's source partition. Arena words come from `arena` (arena_shared or
  /// arena_chunked); `inserted` counts creations.
  template <class Arena, class Counter>
  TROVE_HD std::uint64_t find_or_insert(const hash128& key, std::int64_t window_start,
                                        const key_columns& keys, std::size_t row,
                                        std::int32_t partition, Arena& arena,
                                        Counter& inserted) const noexcept {
    std::uint64_t pos = home(key, window_start);
    while (true) {
      agg_header& h = header(pos);
      std::uint32_t state = load_acquire(h.state);
      if (state == agg_empty) {
        if (cas(h.state, state, agg_busy)) {
          const std::uint64_t words = key_record_words(keys, row);
          const std::uint64_t ref = arena.allocate(words);
          write_key_record(keys, row, d_arena + ref);
          h.k0 = key.hi;
          h.k1 = key.lo;
          h.window_start = window_start;
          h.key_ref = static_cast<std::uint32_t>(ref);  // the arena was sized below 2^32 words
          h.partition = partition;
          h.count = 0;
          h.dirty = 0;
          std::uint64_t* accs = acc_words(pos);
          for (std::uint32_t a = 0; a < layout.num_accs; ++a) {
            const acc_slot acc = layout.accs[a];
            init_acc(acc.kind, accs + acc.word, layout.kinds[acc.field]);
          }
          inserted.add(1);
          store_release(h.state, agg_full);
          return pos;
        }
      }
      while (state == agg_busy) state = load_acquire(h.state);
      if (state == agg_full && matches(h, key, window_start)) return pos;
      pos = (pos + 1) & mask;
    }
  }
};

/// @brief Per-row fingerprint of the group key (accepted rows only); a pass of its own so the
/// update pass can prefetch slots a few rows ahead on the CPU.
struct agg_fingerprint_fn {
  key_columns keys;
  const std::uint8_t* d_status;
  hash128* d_fingerprints;
  TROVE_HD void operator()(std::size_t row) const noexcept {
    if (d_status[row] == status_accepted) d_fingerprints[row] = row_fingerprint(keys, row);
  }
};

template <bool Atomic>
TROVE_HD void apply_row(const agg_ref& table, const column_view* fields, std::uint64_t pos,
                        std::size_t row) noexcept;

/// @brief Applies one accepted row to each of its windows that is still open.
struct agg_update_fn {
  agg_ref table;
  key_columns keys;
  const std::int64_t* d_event_time;
  const std::uint8_t* d_status;
  const hash128* d_fingerprints;
  column_view fields[max_agg_fields];
  std::int64_t emitted_watermark;
  std::size_t n;
  std::uint32_t track;  // agg_on_* lists an update puts its group on
  const std::int32_t* d_partition;
  std::size_t partition_stride;
  const std::int64_t* d_row_frontier = nullptr;

  TROVE_HD void operator()(std::size_t row) const noexcept {
#if !defined(__CUDA_ARCH__)
    // CPU only: overlap the cache miss of a row a few iterations ahead (contiguous OpenMP ranges).
    constexpr std::size_t lookahead = 6;
    if (row + lookahead < n && d_status[row + lookahead] == status_accepted) {
      const std::size_t ahead = row + lookahead;
      __builtin_prefetch(&table.header(
          table.home(d_fingerprints[ahead], table.window.last_start(d_event_time[ahead]))));
    }
#endif
    if (d_status[row] != status_accepted) return;
    const std::int64_t t = d_event_time[row];
    const hash128 key = d_fingerprints[row];
    const std::int32_t partition = row_partition(d_partition, partition_stride, row);
    const std::int64_t frontier = row_frontier(emitted_watermark, d_row_frontier, row);
    const std::int64_t windows = table.window.windows_per_event();
    for (std::int64_t k = 0; k < windows; ++k) {
      const std::int64_t start = table.window.start(t, k);
      // Starts decrease with k: once a window was emitted, so were all earlier ones.
      if (start + table.window.size_ms <= frontier) break;
      arena_shared arena{&table.d_counters[0]};
      count_shared inserted{&table.d_counters[1]};
      const std::uint64_t pos =
          table.find_or_insert(key, start, keys, row, partition, arena, inserted);
      // The header is in cache now; the shared counter is touched only by the rare mismatch
      // (the creator itself always matches).
      if (table.header(pos).partition != partition) {
        fetch_add(table.d_counters[3], std::uint64_t{1});
      }
      apply(pos, row);
      if (track) table.mark_dirty(pos, track);
    }
  }

  TROVE_HD TROVE_FORCEINLINE void apply(std::uint64_t pos, std::size_t row) const noexcept {
    apply_row<true>(table, fields, pos, row);
  }
};

/// @brief Adds one row to a slot's aggregates: with atomics when rows update slots concurrently,
/// with plain arithmetic when the calling thread owns the slot (cpu_exec's owned passes).
template <bool Atomic>
TROVE_HD TROVE_FORCEINLINE void apply_row(const agg_ref& table, const column_view* fields,
                                          std::uint64_t pos, std::size_t row) noexcept {
  agg_header& h = table.header(pos);
  if constexpr (Atomic) {
    fetch_add(h.count, std::uint64_t{1});
  } else {
    ++h.count;
  }
  std::uint64_t* words = table.acc_words(pos);
  // Field by field, so that a field's validity and value are read once for all its accumulators.
  for (std::uint32_t f = 0; f < table.layout.num_fields; ++f) {
    const column_view& col = fields[f];
    if (!col.valid(row)) continue;
    // A string field is read only by accumulators of hashes (approx_count_distinct).
    const std::uint64_t value = col.is_string ? 0 : col.d_values[row];
    const std::uint64_t hash = table.layout.field_hashed[f] ? hll_hash(col, row) : 0;
    const value_kind kind = table.layout.kinds[f];
    for (std::uint32_t a = table.layout.field_acc_begin[f]; a < table.layout.field_acc_begin[f + 1];
         ++a) {
      const acc_slot acc = table.layout.accs[a];
      update_acc<Atomic>(acc.kind, words + acc.word, acc_reads_hash(acc.kind) ? hash : value, kind,
                         table.sketches);
    }
  }
}

/// @brief Sketch-arena words of a slot's (or a snapshot row's) blocks: one block per sketch
/// accumulator that is dense (in the table) or `in_record` (in a snapshot).
TROVE_HD inline std::uint64_t sketch_words_of(const agg_layout& layout,
                                              const std::uint64_t* acc_words) noexcept {
  if (layout.sketch_accs == 0) return 0;
  std::uint64_t words = 0;
  for (std::uint32_t a = 0; a < layout.num_accs; ++a) {
    const acc_slot acc = layout.accs[a];
    if (!acc_is_sketch(acc.kind)) continue;
    const std::uint64_t state = acc_words[acc.word];
    if (sketch_dense(state) || state == sketch_in_record) {
      words += sketch_block_words(layout, acc.kind);
    }
  }
  return words;
}

/// @brief Adds again each DDSketch addition that found the sketch arena full (it has room now).
struct sketch_pending_fn {
  sketch_arena_ref sketches;
  const sketch_pending* d_pending;
  TROVE_HD void operator()(std::size_t i) const noexcept {
    const sketch_pending p = d_pending[i];
    ddsketch_acc::add<true>(p.w, p.counter, p.n, sketches);
  }
};

/// @brief The batch's sketch updates again, alone (after the sketch arena was full and grown):
/// every accepted row's hashes into each of its open windows' groups, which the update pass
/// created. Idempotent (register maxima, a set of entries), so rows that did reach their sketch
/// the first time change nothing.
struct agg_sketch_pass {
  agg_ref table;
  const std::int64_t* d_event_time;
  const std::uint8_t* d_status;
  const hash128* d_fingerprints;
  column_view fields[max_agg_fields];
  std::int64_t emitted_watermark;
  const std::int64_t* d_row_frontier = nullptr;

  TROVE_HD void operator()(std::size_t row) const noexcept {
    if (d_status[row] != status_accepted) return;
    const std::int64_t frontier = row_frontier(emitted_watermark, d_row_frontier, row);
    const hash128 key = d_fingerprints[row];
    for (std::int64_t k = 0; k < table.window.windows_per_event(); ++k) {
      const std::int64_t start = table.window.start(d_event_time[row], k);
      if (start + table.window.size_ms <= frontier) break;
      std::uint64_t pos = table.home(key, start);
      while (true) {
        const agg_header& h = table.header(pos);
        if (h.state == agg_empty) return;  // not created: cannot happen after the update pass
        if (h.state == agg_full && table.matches(h, key, start)) break;
        pos = (pos + 1) & table.mask;
      }
      std::uint64_t* words = table.acc_words(pos);
      for (std::uint32_t f = 0; f < table.layout.num_fields; ++f) {
        if (!table.layout.field_hashed[f] || !fields[f].valid(row)) continue;
        const std::uint64_t hash = hll_hash(fields[f], row);
        for (std::uint32_t a = table.layout.field_acc_begin[f];
             a < table.layout.field_acc_begin[f + 1]; ++a) {
          const acc_slot acc = table.layout.accs[a];
          if (acc_reads_hash(acc.kind)) {
            update_acc<true>(acc.kind, words + acc.word, hash, table.layout.kinds[f],
                             table.sketches);
          }
        }
      }
    }
  }
};

/// @brief The CPU's owner-partitioned update pass (see cpu_exec): one thread applies, in arrival
/// order, every (row, window) whose slot's home is in [lo, hi). One writer per slot: plain adds,
/// and float sums in arrival order, so the result is the same on every run.
struct agg_owned_pass {
  agg_ref table;
  key_columns keys;
  const std::int64_t* d_event_time;
  const std::uint8_t* d_status;
  const hash128* d_fingerprints;
  const column_view* fields;
  std::int64_t emitted_watermark;
  std::size_t begin;
  std::size_t end;
  std::uint32_t track;  // agg_on_* lists an update puts its group on
  const std::int32_t* d_partition;
  std::size_t partition_stride;
  const std::int64_t* d_row_frontier = nullptr;

  std::uint64_t operator()(std::uint64_t lo, std::uint64_t hi) const noexcept {
    constexpr std::size_t lookahead = 8;
    const std::int64_t windows = table.window.windows_per_event();
    arena_chunked arena{&table.d_counters[0]};
    count_local inserted;
    std::uint64_t cross = 0;  // added to the shared counter once per pass
    for (std::size_t row = begin; row < end; ++row) {
      if (row + lookahead < end && d_status[row + lookahead] == status_accepted) {
        const std::size_t ahead = row + lookahead;
        const std::uint64_t home =
            table.home(d_fingerprints[ahead], table.window.last_start(d_event_time[ahead]));
        if (home >= lo && home < hi) __builtin_prefetch(&table.header(home));
      }
      if (d_status[row] != status_accepted) continue;
      const std::int64_t t = d_event_time[row];
      const hash128 key = d_fingerprints[row];
      const std::int64_t frontier = row_frontier(emitted_watermark, d_row_frontier, row);
      for (std::int64_t k = 0; k < windows; ++k) {
        const std::int64_t start = table.window.start(t, k);
        if (start + table.window.size_ms <= frontier) break;
        const std::uint64_t home = table.home(key, start);
        if (home < lo || home >= hi) continue;
        const std::int32_t partition = row_partition(d_partition, partition_stride, row);
        const std::uint64_t pos =
            table.find_or_insert(key, start, keys, row, partition, arena, inserted);
        cross += table.header(pos).partition != partition ? 1 : 0;
        apply_row<false>(table, fields, pos, row);
        if (track) table.mark_dirty(pos, track);
      }
    }
    if (cross) fetch_add(table.d_counters[3], cross);
    return inserted.value;
  }
};

/// @brief (group, window) pairs of a row not yet in the table: an upper bound of the groups the row
/// can create (read-only; pairs repeated within the batch are counted each time).
struct agg_missing_fn {
  agg_ref table;
  const std::int64_t* d_event_time;
  const std::uint8_t* d_status;
  const hash128* d_fingerprints;
  std::int64_t emitted_watermark;
  const std::int64_t* d_row_frontier = nullptr;

  TROVE_HD std::uint64_t operator()(std::size_t row) const noexcept {
    if (d_status[row] != status_accepted) return 0;
    const std::int64_t frontier = row_frontier(emitted_watermark, d_row_frontier, row);
    std::uint64_t missing = 0;
    const hash128 key = d_fingerprints[row];
    for (std::int64_t k = 0; k < table.window.windows_per_event(); ++k) {
      const std::int64_t start = table.window.start(d_event_time[row], k);
      if (start + table.window.size_ms <= frontier) break;
      std::uint64_t pos = table.home(key, start);
      while (true) {
        const agg_header& h = table.header(pos);
        if (h.state == agg_empty) {
          ++missing;
          break;
        }
        if (h.state == agg_full && table.matches(h, key, start)) break;
        pos = (pos + 1) & table.mask;
      }
    }
    return missing;
  }
};

/// @brief Minimum and maximum event time of the accepted rows.
struct time_range {
  std::int64_t min;
  std::int64_t max;
};
struct time_range_fn {
  const std::int64_t* d_event_time;
  const std::uint8_t* d_status;
  TROVE_HD time_range operator()(std::size_t row) const noexcept {
    if (d_status[row] != status_accepted) return {INT64_MAX, INT64_MIN};
    return {d_event_time[row], d_event_time[row]};
  }
};
struct time_range_merge {
  TROVE_HD time_range operator()(const time_range& a, const time_range& b) const noexcept {
    return {a.min < b.min ? a.min : b.min, a.max > b.max ? a.max : b.max};
  }
};

/// @brief Slots of windows closed by the watermark.
struct closed_slot_fn {
  agg_ref table;
  std::int64_t watermark;
  TROVE_HD bool operator()(std::uint64_t pos) const noexcept {
    const agg_header& h = table.header(pos);
    return h.state == agg_full && h.window_start + table.window.size_ms <= watermark;
  }
};
struct closed_count_fn {
  closed_slot_fn closed;
  TROVE_HD std::uint64_t operator()(std::uint64_t pos) const noexcept {
    return closed(pos) ? 1 : 0;
  }
};
/// @brief Live (not emitted) slots in a dirty list.
struct full_slot_fn {
  agg_ref table;
  TROVE_HD bool operator()(std::uint32_t pos) const noexcept {
    return table.header(pos).state == agg_full;
  }
};
struct full_count_fn {
  agg_ref table;
  TROVE_HD std::uint64_t operator()(std::uint64_t pos) const noexcept {
    return table.header(pos).state == agg_full ? 1 : 0;
  }
};

/// @brief Takes each slot of the checkpoint list off it (emitted slots are on no list).
struct clear_checkpoint_mark_fn {
  agg_ref table;
  TROVE_HD void operator()(std::uint32_t pos) const noexcept {
    table.header(pos).dirty &= ~agg_on_checkpoint_list;
  }
};

/// @brief Key record length of each selected slot (for the gather's exclusive scan).
struct record_words_fn {
  agg_ref table;
  const std::uint32_t* d_positions;
  bool with_sketches = false;  // snapshots: the register blocks follow the key record
  TROVE_HD std::uint64_t operator()(std::size_t i) const noexcept {
    const std::uint64_t pos = d_positions[i];
    return stored_record_words(table.layout, table.d_arena + table.header(pos).key_ref) +
           (with_sketches ? sketch_words_of(table.layout, table.acc_words(pos)) : 0);
  }
};

/// @brief Copies each selected slot and its key record into contiguous output buffers.
struct gather_fn {
  agg_ref table;
  const std::uint32_t* d_positions;
  const std::uint64_t* d_record_offsets;
  unsigned char* d_out_slots;
  std::uint64_t* d_out_records;
  std::uint32_t mark_state;  // agg_freed for extract_closed, agg_full (unchanged) otherwise
  bool mark = true;          // false: leave the slot exactly as it is (checkpoint snapshots)
  std::uint32_t keep_lists = 0;  // agg_on_* bits that stay (extract_updated keeps the other list)
  // Snapshots: each sketch's block after the key record, its state word `in_record`. Results
  // (otherwise): each sketch finished (finalize_sketch) in its words.
  bool with_sketches = false;

  TROVE_HD void operator()(std::size_t i) const noexcept {
    const std::uint64_t pos = d_positions[i];
    const unsigned char* src = table.d_slots + pos * table.layout.stride;
    unsigned char* dst = d_out_slots + i * table.layout.stride;
    for (std::size_t b = 0; b < table.layout.stride; b += 8) {
      *reinterpret_cast<std::uint64_t*>(dst + b) = *reinterpret_cast<const std::uint64_t*>(src + b);
    }
    const std::uint64_t* record = table.d_arena + table.header(pos).key_ref;
    const std::uint64_t words = stored_record_words(table.layout, record);
    for (std::uint64_t w = 0; w < words; ++w) d_out_records[d_record_offsets[i] + w] = record[w];
    if (table.layout.sketch_accs) sketches(pos, i, d_out_records + d_record_offsets[i] + words);
    if (!mark) return;
    table.header(pos).dirty &= keep_lists;
    table.header(pos).state = mark_state;
  }

  TROVE_HD void sketches(std::uint64_t pos, std::size_t i, std::uint64_t* out) const noexcept {
    const std::uint64_t* accs = table.acc_words(pos);
    auto* dst = reinterpret_cast<std::uint64_t*>(d_out_slots + i * table.layout.stride +
                                                 sizeof(agg_header));
    for (std::uint32_t a = 0; a < table.layout.num_accs; ++a) {
      const acc_slot acc = table.layout.accs[a];
      if (!acc_is_sketch(acc.kind)) continue;
      const std::uint64_t state = accs[acc.word];
      const std::uint64_t block = sketch_block_words(table.layout, acc.kind);
      if (with_sketches) {
        if (!sketch_dense(state)) continue;
        const std::uint64_t* from = table.sketches.d_words + (state - 1);
        for (std::uint64_t w = 0; w < block; ++w) out[w] = from[w];
        out += block;
        dst[acc.word] = sketch_in_record;
        continue;
      }
      finalize_sketch(acc.kind, accs + acc.word, table.sketches, dst + acc.word);
      if (mark && mark_state == agg_freed && sketch_dense(state)) {
        fetch_add(table.d_counters[6], block);  // garbage until the next rebuild compacts
      }
    }
  }
};

/// @brief Puts a slot (header fields and accumulators) whose key is not in the table yet into an
/// empty slot of `to`, with its key record at arena offset `ref` (rebuilds and restores: keys are
/// distinct, so only empty slots need claiming). Returns the slot's position.
TROVE_HD inline std::uint64_t place_slot(const agg_ref& to, const agg_header& src,
                                         const std::uint64_t* acc_words, std::uint64_t ref,
                                         std::uint32_t dirty) noexcept {
  std::uint64_t pos = to.home(hash128{src.k0, src.k1}, src.window_start);
  while (true) {
    std::uint32_t expected = agg_empty;
    if (cas(to.header(pos).state, expected, agg_busy)) break;
    pos = (pos + 1) & to.mask;
  }
  agg_header& h = to.header(pos);
  h.k0 = src.k0;
  h.k1 = src.k1;
  h.window_start = src.window_start;
  h.key_ref = static_cast<std::uint32_t>(ref);  // the arena was sized below 2^32 words
  h.partition = src.partition;
  h.count = src.count;
  h.dirty = dirty;
  std::uint64_t* dst = to.acc_words(pos);
  for (std::uint32_t w = 0; w < to.layout.acc_words; ++w) dst[w] = acc_words[w];
  return pos;
}

/// @brief Copies the sketch blocks of a placed slot into `to`'s sketch arena from `at` on (a scan
/// of sketch_words_of), reading each from `block_of(state, words of the blocks before it)`, and
/// points its state words at them.
template <class BlockOf>
TROVE_HD void place_sketches(const agg_ref& to, std::uint64_t pos, std::uint64_t at,
                             const BlockOf& block_of) noexcept {
  std::uint64_t* accs = to.acc_words(pos);
  std::uint64_t before = 0;
  for (std::uint32_t a = 0; a < to.layout.num_accs; ++a) {
    const acc_slot acc = to.layout.accs[a];
    if (!acc_is_sketch(acc.kind)) continue;
    const std::uint64_t state = accs[acc.word];
    if (!sketch_dense(state) && state != sketch_in_record) continue;
    const std::uint64_t block = sketch_block_words(to.layout, acc.kind);
    const std::uint64_t* from = block_of(state, before);
    for (std::uint64_t w = 0; w < block; ++w) to.sketches.d_words[at + w] = from[w];
    accs[acc.word] = at + 1;
    at += block;
    before += block;
  }
}

/// @brief Inserts one slot of a snapshot (keys are distinct) with its record at the same arena
/// offset it has in the snapshot's record array, and its register blocks (after the record) at
/// d_sketch_refs[i] in the sketch arena.
struct agg_restore_fn {
  agg_ref to;
  const unsigned char* d_slots;
  const std::uint64_t* d_records;
  const std::uint64_t* d_record_offsets;
  const std::uint64_t* d_sketch_refs;  // exclusive scan of sketch_words_of (null: no sketches)

  TROVE_HD void operator()(std::size_t i) const noexcept {
    const auto& src = *reinterpret_cast<const agg_header*>(d_slots + i * to.layout.stride);
    const std::uint64_t ref = d_record_offsets[i];
    const std::uint64_t words = stored_record_words(to.layout, d_records + ref);
    for (std::uint64_t w = 0; w < words; ++w) to.d_arena[ref + w] = d_records[ref + w];
    const auto* accs =
        reinterpret_cast<const std::uint64_t*>(d_slots + i * to.layout.stride + sizeof(agg_header));
    const std::uint64_t pos = place_slot(to, src, accs, ref, 0);
    if (d_sketch_refs) {
      const std::uint64_t* blocks = d_records + ref + words;
      place_sketches(to, pos, d_sketch_refs[i],
                     [&](std::uint64_t, std::uint64_t before) { return blocks + before; });
    }
    agg_header& h = to.header(pos);
    store_release(h.state, agg_full);
  }
};

/// @brief Record length of each old slot that survives a rebuild (0 for the others).
struct live_record_words_fn {
  agg_ref table;
  TROVE_HD std::uint64_t operator()(std::size_t pos) const noexcept {
    const agg_header& h = table.header(pos);
    return h.state == agg_full ? stored_record_words(table.layout, table.d_arena + h.key_ref) : 0;
  }
};

/// @brief Sketch-arena words of each old slot that survives a rebuild (0 for the others).
struct live_sketch_words_fn {
  agg_ref table;
  TROVE_HD std::uint64_t operator()(std::size_t pos) const noexcept {
    return table.header(pos).state == agg_full ? sketch_words_of(table.layout, table.acc_words(pos))
                                               : 0;
  }
};

/// @brief Moves a live slot and its key record into the rebuilt table and arena.
struct agg_rehash_fn {
  agg_ref from;
  agg_ref to;
  const std::uint64_t* d_new_refs;     // exclusive scan of live_record_words_fn
  const std::uint64_t* d_sketch_refs;  // exclusive scan of live_sketch_words_fn (null: none)

  TROVE_HD void operator()(std::size_t old_pos) const noexcept {
    const agg_header& old = from.header(old_pos);
    if (old.state != agg_full) return;
    const std::uint64_t* record = from.d_arena + old.key_ref;
    const std::uint64_t words = stored_record_words(from.layout, record);
    const std::uint64_t ref = d_new_refs[old_pos];
    for (std::uint64_t w = 0; w < words; ++w) to.d_arena[ref + w] = record[w];
    const std::uint64_t pos = place_slot(to, old, from.acc_words(old_pos), ref, old.dirty);
    if (d_sketch_refs) {
      place_sketches(to, pos, d_sketch_refs[old_pos], [&](std::uint64_t state, std::uint64_t) {
        return from.sketches.d_words + (state - 1);
      });
    }
    agg_header& h = to.header(pos);
    if (old.dirty & agg_on_changelog) {
      to.d_dirty_list[fetch_add(to.d_counters[2], std::uint64_t{1})] =
          static_cast<std::uint32_t>(pos);
    }
    if (old.dirty & agg_on_checkpoint_list) {
      to.d_checkpoint_list[fetch_add(to.d_counters[4], std::uint64_t{1})] =
          static_cast<std::uint32_t>(pos);
    }
    store_release(h.state, agg_full);
  }
};

/// @brief The owning aggregation table for one backend's execution context.
template <class Exec>
class agg_table_impl final : public agg_table {
 public:
  agg_table_impl(Exec exec, const agg_options& options) : exec_(exec), options_(options) {
    TROVE_EXPECTS(options.key_is_string.size() <= max_key_columns,
                  "group_by may name at most 8 fields");
    TROVE_EXPECTS(options.fields.size() <= max_agg_fields,
                  "aggregates may use at most 16 distinct numeric fields");
    TROVE_EXPECTS(options.window.size_ms > 0 && options.window.slide_ms > 0 &&
                      options.window.size_ms % options.window.slide_ms == 0,
                  "window size must be a positive multiple of the slide");
    TROVE_EXPECTS(options.max_load > 0.0 && options.max_load < 1.0, "max_load must be in (0, 1)");
    layout_ = make_agg_layout(options);
    layout_signature_ = layout_signature(layout_);
    counters_ = device_buffer(*exec_.be, counter_count * sizeof(std::uint64_t), exec_.stream);
    counters_staging_.reserve(*exec_.be, counter_count * sizeof(std::uint64_t));
    exec_.be->fill_bytes(counters_.data(), 0, counters_.size(), exec_.stream);
    // The initial capacity is a hint: a cap below it wins (the table then grows only when it
    // must), so that a small max_bytes does not fail every run at start-up.
    const std::size_t slot_bytes = layout_.stride + 4 * sizeof(std::uint64_t);
    std::size_t capacity = 1024;
    while (capacity < options.initial_capacity && 2 * capacity * slot_bytes <= options.max_bytes) {
      capacity *= 2;
    }
    const std::size_t arena_words = std::min(capacity * 4, max_arena_words);
    check_bytes(capacity, arena_words);
    slots_ = allocate_slots(capacity);
    capacity_ = capacity;
    arena_ = device_buffer(*exec_.be, arena_words * sizeof(std::uint64_t), exec_.stream);
    arena_words_ = arena_words;
    if (layout_.sketch_accs) {
      for (std::uint32_t a = 0; a < layout_.num_accs; ++a) {
        if (acc_is_sketch(layout_.accs[a].kind)) {
          sketch_block_ = std::max<std::size_t>(sketch_block_,
                                                sketch_block_words(layout_, layout_.accs[a].kind));
        }
      }
      set_sketch_arena(std::max<std::size_t>(64 * sketch_block_, 1024));
    }
  }

  void aggregate(const agg_input& input, stream_view stream) override {
    const std::size_t n = input.num_rows;
    if (n == 0) return;
    expect_work_stream(stream);
    if (fingerprints_.size() < n * sizeof(hash128)) {
      fingerprints_ = device_buffer(*exec_.be, n * sizeof(hash128), stream);
    }
    auto* d_fp = fingerprints_.template as<hash128>();
    const auto rows = thrust::counting_iterator<std::size_t>(0);
    thrust::for_each(exec_.policy(), rows, rows + n,
                     agg_fingerprint_fn{input.keys, input.d_status, d_fp});
    // Room for the batch is made before any row is applied, so probing never degrades, the table
    // never fills, and a capacity error leaves the table as it was. The worst case is every row
    // creating a group in every window; when even that would not fit under the memory cap, an
    // exact count of the (group, window) pairs not yet in the table decides instead.
    const std::size_t windows = static_cast<std::size_t>(options_.window.windows_per_event());
    std::size_t incoming = n * windows;
    if (headroom() < incoming && !fits_under_cap(live_ + incoming)) {
      incoming = thrust::transform_reduce(exec_.policy(), rows, rows + n,
                                          agg_missing_fn{ref(), input.d_event_time, input.d_status,
                                                         d_fp, emitted_wm_, input.d_row_frontier},
                                          std::uint64_t{0}, thrust::plus<std::uint64_t>());
    }
    prefill(incoming, n);
    if (headroom() < incoming) rebuild(incoming);
    reserve_side_arrays(input, n);
    if constexpr (Exec::owner_partitioned) {
      const agg_owned_pass pass{ref(),
                                input.keys,
                                input.d_event_time,
                                input.d_status,
                                d_fp,
                                input.fields,
                                emitted_wm_,
                                0,
                                n,
                                track_mask(),
                                input.d_partition,
                                input.partition_stride,
                                input.d_row_frontier};
      owned_inserts_ += exec_.owned(capacity_, pass);
    } else {
      agg_update_fn update{ref(),
                           input.keys,
                           input.d_event_time,
                           input.d_status,
                           d_fp,
                           {},
                           emitted_wm_,
                           n,
                           track_mask(),
                           input.d_partition,
                           input.partition_stride,
                           input.d_row_frontier};
      for (std::size_t f = 0; f < options_.fields.size(); ++f) update.fields[f] = input.fields[f];
      thrust::for_each(exec_.policy(), rows, rows + n, update);
    }
    read_counters();
    // Groups that outgrew their inline sketch entries and found the sketch arena full were left
    // as they were: grow the arena (or compact it, when most of it belongs to emitted groups) and
    // apply the batch's sketch updates again.
    while (sketch_full_ || pending_count_ > 0) {
      if (sketch_full_) make_sketch_room();
      if (layout_.hll_fields) {
        agg_sketch_pass again{ref(), input.d_event_time, input.d_status,      d_fp,
                              {},    emitted_wm_,        input.d_row_frontier};
        for (std::size_t f = 0; f < options_.fields.size(); ++f) again.fields[f] = input.fields[f];
        thrust::for_each(exec_.policy(), rows, rows + n, again);
      }
      if (pending_count_ > 0) {  // DDSketch additions left out: once each (from a copy, so that
        // additions that find the arena full again go on the emptied list)
        const std::size_t count = pending_count_;
        device_buffer work(*exec_.be, count * sizeof(sketch_pending), exec_.stream);
        exec_.be->copy_on_device(work.data(), pending_.data(), count * sizeof(sketch_pending),
                                 exec_.stream);
        zero_counter(7);
        const auto items = thrust::counting_iterator<std::size_t>(0);
        thrust::for_each(exec_.policy(), items, items + count,
                         sketch_pending_fn{ref().sketches, work.template as<sketch_pending>()});
      }
      read_counters();
    }
    const time_range range = thrust::transform_reduce(
        exec_.policy(), rows, rows + n, time_range_fn{input.d_event_time, input.d_status},
        time_range{INT64_MAX, INT64_MIN}, time_range_merge{});
    note_open_windows(range);
  }

  agg_result extract_closed(std::int64_t watermark, stream_view stream) override {
    expect_work_stream(stream);
    emitted_wm_ = std::max(emitted_wm_, watermark);
    if (!unknown_windows_ &&
        (open_starts_.empty() || *open_starts_.begin() + options_.window.size_ms > watermark)) {
      return empty_result();
    }
    const auto positions = thrust::counting_iterator<std::uint64_t>(0);
    const closed_slot_fn closed{ref(), watermark};
    const std::size_t m = thrust::transform_reduce(exec_.policy(), positions, positions + capacity_,
                                                   closed_count_fn{closed}, std::uint64_t{0},
                                                   thrust::plus<std::uint64_t>());
    device_buffer selected(*exec_.be, std::max<std::size_t>(m, 1) * sizeof(std::uint32_t), stream);
    thrust::copy_if(exec_.policy(), positions, positions + capacity_,
                    selected.template as<std::uint32_t>(), closed);
    agg_result result = gather(selected.template as<std::uint32_t>(), m, agg_freed, 0);
    live_ -= m;
    while (!open_starts_.empty() && *open_starts_.begin() + options_.window.size_ms <= watermark) {
      open_starts_.erase(open_starts_.begin());
    }
    if (live_ == 0) unknown_windows_ = false;
    return result;
  }

  agg_result extract_updated(stream_view stream) override {
    TROVE_EXPECTS(options_.track_updates, "extract_updated needs agg_options::track_updates");
    expect_work_stream(stream);
    if (dirty_count_ == 0) return empty_result();
    auto* d_list = dirty_list_.template as<std::uint32_t>();
    const std::size_t m = thrust::transform_reduce(exec_.policy(), d_list, d_list + dirty_count_,
                                                   full_count_fn{ref()}, std::uint64_t{0},
                                                   thrust::plus<std::uint64_t>());
    device_buffer selected(*exec_.be, std::max<std::size_t>(m, 1) * sizeof(std::uint32_t), stream);
    thrust::copy_if(exec_.policy(), d_list, d_list + dirty_count_,
                    selected.template as<std::uint32_t>(), full_slot_fn{ref()});
    // Off the changelog list; a checkpoint's list keeps the groups until the next checkpoint.
    agg_result result =
        gather(selected.template as<std::uint32_t>(), m, agg_full, agg_on_checkpoint_list);
    dirty_count_ = 0;
    zero_counter(2);
    exec_.be->synchronize(stream);
    return result;
  }

  agg_snapshot snapshot(stream_view stream) override {
    expect_work_stream(stream);
    if (live_ == 0) return copy_out(nullptr, 0, stream);
    // live_ counts the full slots exactly, so one pass over the slots selects them (the cut's
    // pause is this scan plus the copy of the open groups).
    const auto positions = thrust::counting_iterator<std::uint64_t>(0);
    device_buffer selected(*exec_.be, live_ * sizeof(std::uint32_t), stream);
    auto* d_positions = selected.template as<std::uint32_t>();
    const std::size_t m =
        static_cast<std::size_t>(thrust::copy_if(exec_.policy(), positions, positions + capacity_,
                                                 d_positions, full_slot_fn{ref()}) -
                                 d_positions);
    TROVE_EXPECTS(m == live_, "agg_table::snapshot: open groups miscounted");
    return copy_out(d_positions, m, stream);
  }

  agg_snapshot snapshot_updated(stream_view stream) override {
    TROVE_EXPECTS(options_.track_checkpoint,
                  "snapshot_updated needs agg_options::track_checkpoint");
    expect_work_stream(stream);
    if (checkpoint_count_ == 0) return copy_out(nullptr, 0, stream);
    // The list holds each slot updated since it was last emptied once (emitted slots too, which
    // are skipped): the cut's pause follows the groups that changed, not the table's capacity.
    auto* d_list = checkpoint_list_.template as<std::uint32_t>();
    device_buffer selected(*exec_.be, checkpoint_count_ * sizeof(std::uint32_t), stream);
    auto* d_positions = selected.template as<std::uint32_t>();
    const std::size_t m =
        static_cast<std::size_t>(thrust::copy_if(exec_.policy(), d_list, d_list + checkpoint_count_,
                                                 d_positions, full_slot_fn{ref()}) -
                                 d_positions);
    agg_snapshot out = copy_out(d_positions, m, stream);
    forget_updated(stream);
    return out;
  }

  void forget_updated(stream_view stream) override {
    TROVE_EXPECTS(options_.track_checkpoint, "forget_updated needs agg_options::track_checkpoint");
    expect_work_stream(stream);
    if (checkpoint_count_ == 0) return;
    auto* d_list = checkpoint_list_.template as<std::uint32_t>();
    thrust::for_each(exec_.policy(), d_list, d_list + checkpoint_count_,
                     clear_checkpoint_mark_fn{ref()});
    checkpoint_count_ = 0;
    zero_counter(4);
    exec_.be->synchronize(stream);
  }

  [[nodiscard]] std::size_t updated_count() const noexcept override { return checkpoint_count_; }

 private:
  /// The selected slots and their key records, copied to host memory (the table is unchanged).
  agg_snapshot copy_out(const std::uint32_t* d_positions, std::size_t m, stream_view stream) {
    agg_snapshot out;
    out.stride = layout_.stride;
    out.layout = layout_signature_;
    if (m == 0) return out;
    out.rows = m;
    const auto items = thrust::counting_iterator<std::size_t>(0);
    device_buffer offsets(*exec_.be, (m + 1) * sizeof(std::uint64_t), stream);
    auto* d_offsets = offsets.template as<std::uint64_t>();
    thrust::transform(exec_.policy(), items, items + m, d_offsets,
                      record_words_fn{ref(), d_positions, true});
    const std::size_t words =
        thrust::reduce(exec_.policy(), d_offsets, d_offsets + m, std::uint64_t{0});
    thrust::exclusive_scan(exec_.policy(), d_offsets, d_offsets + m, d_offsets);
    device_buffer out_slots(*exec_.be, m * layout_.stride, stream);
    device_buffer out_records(*exec_.be, std::max<std::size_t>(words, 1) * 8, stream);
    thrust::for_each(
        exec_.policy(), items, items + m,
        gather_fn{ref(), d_positions, d_offsets, out_slots.template as<unsigned char>(),
                  out_records.template as<std::uint64_t>(), agg_full, false, 0, true});
    out.slots.resize(m * layout_.stride);
    out.records.resize(words);
    out.record_offsets.resize(m);
    exec_.be->copy_to_host(out.slots.data(), out_slots.data(), out.slots.size(), stream);
    exec_.be->copy_to_host(out.records.data(), out_records.data(), words * 8, stream);
    exec_.be->copy_to_host(out.record_offsets.data(), d_offsets, m * 8, stream);
    exec_.be->synchronize(stream);
    out.partitions.resize(m);
    for (std::size_t i = 0; i < m; ++i) {
      agg_header h;
      std::memcpy(&h, out.slots.data() + i * layout_.stride, sizeof(h));
      out.partitions[i] = h.partition;
    }
    return out;
  }

 public:
  void restore(const agg_snapshot& given, std::int64_t emitted_watermark,
               stream_view stream) override {
    TROVE_EXPECTS(used_ == 0, "agg_table::restore needs an empty table");
    // A snapshot of the layout before accumulator selection (older checkpoints) is read into this
    // table's layout first: the aggregates it asks for are a subset of what that one kept.
    agg_snapshot converted;
    if (given.rows > 0 && given.layout == 0) {
      converted.rows = given.rows;
      converted.stride = layout_.stride;
      converted.layout = layout_signature_;
      converted.slots = convert_full_layout_slots(layout_, given);
      converted.records = given.records;
      converted.record_offsets = given.record_offsets;
      converted.partitions = given.partitions;
    }
    const agg_snapshot& snap = converted.rows > 0 ? converted : given;
    TROVE_EXPECTS(
        snap.rows == 0 || (snap.stride == layout_.stride && snap.layout == layout_signature_),
        "checkpoint: aggregation slots of another layout (aggregates changed)");
    TROVE_EXPECTS(
        snap.slots.size() == snap.rows * snap.stride && snap.record_offsets.size() == snap.rows,
        "checkpoint: inconsistent aggregation snapshot");
    // The slot bytes carry each group's partition (all a snapshot without the vector has); a
    // vector that contradicts them means the snapshot was put together wrongly.
    TROVE_EXPECTS(snap.partitions.empty() || snap.partitions.size() == snap.rows,
                  "checkpoint: inconsistent aggregation snapshot (partitions)");
    for (std::size_t i = 0; i < snap.partitions.size(); ++i) {
      agg_header h;
      std::memcpy(&h, snap.slots.data() + i * snap.stride, sizeof(h));
      TROVE_EXPECTS(h.partition == snap.partitions[i],
                    "checkpoint: aggregation snapshot partitions disagree with its slots");
    }
    expect_work_stream(stream);
    emitted_wm_ = std::max(emitted_wm_, emitted_watermark);
    if (snap.rows == 0) return;
    const std::size_t m = snap.rows;
    const std::size_t words = snap.records.size();
    // Per row, its register blocks (after its key record) and where they go in the sketch arena.
    std::vector<std::uint64_t> sketch_refs(layout_.sketch_accs ? m : 0);
    std::uint64_t sketch_total = 0;
    for (std::size_t i = 0; i < m; ++i) {  // every record must lie inside the record array
      const std::uint64_t at = snap.record_offsets[i];
      bool inside = at < words;
      std::uint64_t need = 1;
      std::uint64_t blocks = 0;
      if (layout_.sketch_accs) {
        std::vector<std::uint64_t> accs_copy(layout_.acc_words);
        std::memcpy(accs_copy.data(), snap.slots.data() + i * snap.stride + sizeof(agg_header),
                    layout_.acc_words * 8);
        for (std::uint32_t a = 0; a < layout_.num_accs; ++a) {
          const acc_slot acc = layout_.accs[a];
          const std::uint64_t state = accs_copy[acc.word];
          TROVE_EXPECTS(
              !acc_is_sketch(acc.kind) || state == sketch_sparse || state == sketch_in_record,
              "checkpoint: a sketch in an unknown state");
        }
        sketch_refs[i] = sketch_total;
        blocks = sketch_words_of(layout_, accs_copy.data());
        sketch_total += blocks;
      }
      for (std::uint32_t c = 0; inside && c < layout_.num_keys; ++c) {
        if (layout_.key_is_string[c]) {
          inside = at + need < words && snap.records[at + need] <= (words << 3);
          if (inside) need += 1 + (snap.records[at + need] + 7) / 8;
        } else {
          need += 1;
        }
      }
      TROVE_EXPECTS(inside && at + need + blocks <= words, "checkpoint: key record out of range");
    }
    live_ = m;  // capacity_for sizes for the live groups
    const std::size_t capacity = capacity_for(2 * m, capacity_);
    // The register blocks stay in the key arena too (after their records, unused) until the next
    // rebuild compacts it.
    const std::size_t arena_words = arena_size(words, std::max(arena_words_, 2 * words + 1024));
    const std::size_t sketch_words =
        layout_.sketch_accs ? std::max<std::size_t>(sketch_words_, 2 * sketch_total) : 0;
    check_bytes(capacity, arena_words, sketch_words);
    if (sketch_words != sketch_words_) set_sketch_arena(sketch_words);
    if (capacity != capacity_) {
      next_ = device_buffer();
      next_capacity_ = 0;
      next_filled_ = 0;
      slots_ = allocate_slots(capacity);
      capacity_ = capacity;
    }
    if (arena_words != arena_words_) {
      arena_ = device_buffer(*exec_.be, arena_words * sizeof(std::uint64_t), stream);
      arena_words_ = arena_words;
    }
    device_buffer d_slots(*exec_.be, snap.slots.size(), stream);
    device_buffer d_records(*exec_.be, std::max<std::size_t>(words, 1) * 8, stream);
    device_buffer d_offsets(*exec_.be, m * 8, stream);
    exec_.be->copy_to_device(d_slots.data(), snap.slots.data(), snap.slots.size(), stream);
    exec_.be->copy_to_device(d_records.data(), snap.records.data(), words * 8, stream);
    exec_.be->copy_to_device(d_offsets.data(), snap.record_offsets.data(), m * 8, stream);
    const auto items = thrust::counting_iterator<std::size_t>(0);
    device_buffer d_sketch_refs(*exec_.be, std::max<std::size_t>(sketch_refs.size(), 1) * 8,
                                stream);
    if (!sketch_refs.empty()) {
      exec_.be->copy_to_device(d_sketch_refs.data(), sketch_refs.data(), sketch_refs.size() * 8,
                               stream);
    }
    thrust::for_each(
        exec_.policy(), items, items + m,
        agg_restore_fn{ref(), d_slots.template as<unsigned char>(),
                       d_records.template as<std::uint64_t>(),
                       d_offsets.template as<std::uint64_t>(),
                       sketch_refs.empty() ? nullptr : d_sketch_refs.template as<std::uint64_t>()});
    // [3], the cross-partition updates, runs on since the table was made.
    const std::uint64_t counters[3] = {words, 0, 0};
    exec_.be->copy_to_device(counters_.data(), counters, sizeof(counters), stream);
    zero_counter(4);
    set_counter(5, sketch_total);
    zero_counter(6);
    exec_.be->synchronize(stream);
    used_ = m;
    live_after_rebuild_ = m;
    used_after_rebuild_ = m;
    arena_used_ = words;
    sketch_used_ = sketch_total;
    sketch_freed_ = 0;
    dirty_count_ = 0;
    checkpoint_count_ = 0;
    for (std::size_t i = 0; i < m; ++i) {
      agg_header h;
      std::memcpy(&h, snap.slots.data() + i * snap.stride, sizeof(h));
      open_starts_.insert(h.window_start);
    }
  }

  [[nodiscard]] std::int64_t emitted_watermark() const noexcept override { return emitted_wm_; }

  [[nodiscard]] std::uint64_t cross_partition_rows() const noexcept override {
    return cross_partition_rows_;
  }

  [[nodiscard]] table_stats stats() const override {
    const std::size_t bytes = (capacity_ + next_capacity_) * layout_.stride +
                              (arena_words_ + sketch_words_) * sizeof(std::uint64_t);
    table_stats stats{live_, used_, capacity_, bytes, rebuilds_, rebuilds_};
    stats.sketch_bytes = sketch_words_ * sizeof(std::uint64_t);
    return stats;
  }

 private:
  /// Every call runs on the table's work stream (given to make_agg_table): work on another stream
  /// could race the table's own allocations, zeroing and frees, which are ordered on that one.
  void expect_work_stream(stream_view stream) const {
    TROVE_EXPECTS(stream.handle == exec_.stream.handle,
                  "agg_table: called on another stream than its work stream (make_agg_table)");
  }

  agg_ref ref() const noexcept {
    return agg_ref{slots_.template as<unsigned char>(),
                   capacity_ - 1,
                   layout_,
                   options_.window,
                   arena_.template as<std::uint64_t>(),
                   counters_.template as<std::uint64_t>(),
                   dirty_list_.template as<std::uint32_t>(),
                   checkpoint_list_.template as<std::uint32_t>(),
                   sketch_arena_ref{sketch_.template as<std::uint64_t>(), sketch_words_,
                                    counters_.template as<std::uint64_t>() + 5,
                                    counters_.template as<std::uint64_t>() + 8,
                                    layout_.hll_precision, layout_.dd_log_gamma, layout_.dd_key_min,
                                    layout_.dd_buckets, pending_.template as<sketch_pending>(),
                                    counters_.template as<std::uint64_t>() + 7}};
  }

  agg_result empty_result() const {
    return decode_result(layout_, options_.window, nullptr, 0, nullptr, nullptr);
  }

  /// Arena words for `need` words, `want` when there is room for that under the 32-bit key refs.
  /// A need beyond them is returned as is, for check_bytes to refuse.
  static std::size_t arena_size(std::size_t need, std::size_t want) noexcept {
    return need > max_arena_words ? need : std::min(want, max_arena_words);
  }

  void check_bytes(std::size_t capacity, std::size_t arena_words) const {
    check_bytes(capacity, arena_words, sketch_words_);
  }
  void check_bytes(std::size_t capacity, std::size_t arena_words, std::size_t sketch_words) const {
    if (arena_words > max_arena_words) {
      throw capacity_error(
          "aggregation table needs a key arena of " + std::to_string(arena_words) +
          " words (the group keys of " + std::to_string(live_) +
          " open groups plus the next batch) but slots address at most 2^32 words (32 GiB), "
          "whatever window.max_bytes allows; have fewer groups open at once: shorten "
          "window.size or lower window.allowed_lateness, or group by shorter keys");
    }
    const std::size_t bytes =
        capacity * layout_.stride + (arena_words + sketch_words) * sizeof(std::uint64_t);
    if (bytes > options_.max_bytes) {
      throw capacity_error(
          "aggregation table needs " + std::to_string(bytes) + " bytes (" +
          std::to_string(capacity) + " slots for " + std::to_string(live_) +
          " open groups plus the next batch" +
          (sketch_words ? ", " + std::to_string(sketch_words * 8) + " of them sketch registers"
                        : std::string()) +
          ") but its cap is " + std::to_string(options_.max_bytes) +
          " bytes (window.max_bytes, 8 GiB by default); raise window.max_bytes, or have fewer "
          "groups open at once: shorten window.size or lower window.allowed_lateness");
    }
  }

  device_buffer allocate_slots(std::size_t capacity) {
    device_buffer buffer(*exec_.be, capacity * layout_.stride, exec_.stream);
    exec_.be->fill_bytes(buffer.data(), 0, buffer.size(), exec_.stream);  // all agg_empty
    return buffer;
  }

  /// The capacity (a power of two, at least `from`) for `slots` groups under max_load, with the
  /// live groups at most 60% of max_load so the next rebuild is not one batch away.
  std::size_t capacity_for(std::size_t slots, std::size_t from) const noexcept {
    return capacity_for_live(live_, slots, from);
  }
  /// capacity_for with `live` open groups instead of live_.
  std::size_t capacity_for_live(std::size_t live, std::size_t slots,
                                std::size_t from) const noexcept {
    std::size_t capacity = from;
    while (static_cast<double>(live) > 0.6 * options_.max_load * static_cast<double>(capacity) ||
           static_cast<double>(slots) > options_.max_load * static_cast<double>(capacity)) {
      capacity *= 2;
    }
    return capacity;
  }

  /// Whether a table holding `slots` groups stays under the memory cap.
  bool fits_under_cap(std::size_t slots) const noexcept {
    const std::size_t capacity = capacity_for(slots, capacity_);
    return capacity * layout_.stride + (arena_words_ + sketch_words_) * sizeof(std::uint64_t) <=
           options_.max_bytes;
  }

  /// Slots that may still be filled before the load passes max_load.
  std::size_t headroom() const noexcept {
    const auto limit = static_cast<std::size_t>(options_.max_load * static_cast<double>(capacity_));
    return limit > used_ ? limit - used_ : 0;
  }

  /// Makes room in the key arena and the dirty list for the worst case of a chunk of rows (every
  /// row creating a group in every window), before any of them is applied.
  void reserve_side_arrays(const agg_input& input, std::size_t rows) {
    const std::size_t windows = static_cast<std::size_t>(options_.window.windows_per_event());
    std::size_t strings = 0;
    for (bool s : options_.key_is_string) strings += s ? 1 : 0;
    // Chunked arena allocation (owner-partitioned passes) may leave one chunk per thread unused.
    const std::size_t chunk_slack = exec_.parallelism() * arena_chunked::chunk_words;
    const std::size_t exact_bound =
        windows * (rows * (1 + layout_.num_keys + strings) + input.key_string_bytes / 8 + 1);
    const std::size_t record_bound =
        exact_bound + (Exec::owner_partitioned ? exact_bound / 4 : 0) + chunk_slack;
    if (arena_used_ + record_bound > arena_words_) {
      const std::size_t need = arena_used_ + record_bound;
      const std::size_t words = arena_size(need, std::max(arena_words_ * 2, need));
      check_bytes(capacity_, words);
      device_buffer grown(*exec_.be, words * sizeof(std::uint64_t), exec_.stream);
      exec_.be->copy_on_device(grown.data(), arena_.data(), arena_used_ * sizeof(std::uint64_t),
                               exec_.stream);
      arena_ = std::move(grown);
      arena_words_ = words;
    }
    const std::size_t incoming = rows * windows;
    if (options_.track_updates) reserve_list(dirty_list_, dirty_capacity_, dirty_count_, incoming);
    // Each (row, window, quantile field) defers at most one addition.
    if (layout_.dd_fields && pending_capacity_ < incoming * layout_.dd_fields) {
      pending_capacity_ = std::max(2 * pending_capacity_, incoming * layout_.dd_fields);
      pending_ = device_buffer(*exec_.be, pending_capacity_ * sizeof(sketch_pending), exec_.stream);
    }
    if (options_.track_checkpoint) {
      reserve_list(checkpoint_list_, checkpoint_capacity_, checkpoint_count_, incoming);
    }
  }

  /// Room in a list of slot positions for `incoming` more after its `count` (doubling).
  void reserve_list(device_buffer& list, std::size_t& capacity, std::size_t count,
                    std::size_t incoming) {
    if (capacity >= count + incoming) return;
    const std::size_t entries = std::max(capacity * 2, count + incoming);
    device_buffer grown(*exec_.be, entries * sizeof(std::uint32_t), exec_.stream);
    if (count) {
      exec_.be->copy_on_device(grown.data(), list.data(), count * sizeof(std::uint32_t),
                               exec_.stream);
    }
    list = std::move(grown);
    capacity = entries;
  }

  /// The lists an update puts its group on (agg_on_* bits).
  std::uint32_t track_mask() const noexcept {
    return (options_.track_updates ? agg_on_changelog : 0u) |
           (options_.track_checkpoint ? agg_on_checkpoint_list : 0u);
  }

  /// Before a batch whose rows may create `incoming` slots: once the load passes
  /// prefill_start_load, allocates the table the coming rebuild will want (its capacity when the
  /// load reaches max_load) and zeroes a slice of it, so that the rebuild only rehashes.
  void prefill(std::size_t incoming, std::size_t n) {
    if (capacity_ < options_.prefill_min_slots || prefill_blocked_) return;
    if (next_capacity_ == 0) {
      if (static_cast<double>(used_ + incoming) <=
          options_.prefill_start_load * static_cast<double>(capacity_)) {
        return;
      }
      // The rebuild sizes for its open groups (tombstones are dropped): the open groups now plus
      // the slots filled until then, times the share of the slots filled since the last rebuild
      // that still hold an open group (1 while the table only grows, 0 when every new group
      // replaced an emitted one). Sizing for the used slots instead always doubled the table
      // (bug: a flat set of open groups grew it at every tombstone-clearing rebuild).
      const auto at_rebuild =
          static_cast<std::size_t>(options_.max_load * static_cast<double>(capacity_));
      const double filled = static_cast<double>(used_ - std::min(used_, used_after_rebuild_));
      const double kept = static_cast<double>(live_) - static_cast<double>(live_after_rebuild_);
      const double share = filled > 0 ? std::clamp(kept / filled, 0.0, 1.0) : 1.0;
      const std::size_t live_at_rebuild =
          live_ + static_cast<std::size_t>(
                      share * static_cast<double>(at_rebuild > used_ ? at_rebuild - used_ : 0));
      const std::size_t capacity =
          capacity_for_live(live_at_rebuild, live_at_rebuild + 2 * incoming, capacity_);
      if ((capacity_ + capacity) * layout_.stride +
              (arena_words_ + sketch_words_) * sizeof(std::uint64_t) >
          options_.max_bytes) {
        prefill_blocked_ = true;  // both tables at once would pass the cap: rebuild as before
        return;
      }
      next_ = device_buffer(*exec_.be, capacity * layout_.stride, exec_.stream);
      next_capacity_ = capacity;
      next_filled_ = 0;
    }
    if (next_filled_ == next_capacity_) return;
    // Finish while half of the room before the rebuild is left (every row may insert).
    const std::size_t remaining = next_capacity_ - next_filled_;
    const std::size_t room = headroom() > incoming ? headroom() - incoming : 0;
    const std::size_t batches =
        std::max<std::size_t>(1, room / (2 * std::max<std::size_t>(1, incoming)));
    const std::size_t least = std::max<std::size_t>(1, options_.prefill_slots_per_row * n);
    zero_next(std::min(remaining, std::max(least, (remaining + batches - 1) / batches)));
  }

  /// Zeroes the next `slots` slots of the prefilled table (all agg_empty).
  void zero_next(std::size_t slots) {
    if (slots == 0) return;
    exec_.be->fill_bytes(next_.template as<unsigned char>() + next_filled_ * layout_.stride, 0,
                         slots * layout_.stride, exec_.stream);
    next_filled_ += slots;
  }

  /// The slots of a rebuild to `capacity`: the prefilled table when it has that size (its rest
  /// zeroed now), a freshly zeroed one otherwise.
  device_buffer take_slots(std::size_t capacity) {
    device_buffer slots;
    if (next_capacity_ == capacity) {
      zero_next(next_capacity_ - next_filled_);
      capacity = next_capacity_;
      slots = std::move(next_);
    } else {
      next_ = device_buffer();
      slots = allocate_slots(capacity);
    }
    next_capacity_ = 0;
    next_filled_ = 0;
    return slots;
  }

  /// Drops tombstones (emitted groups), compacts the key arena and grows the capacity (see
  /// capacity_for) so that `incoming` more slots fit under max_load.
  void rebuild(std::size_t incoming) {
    const auto positions = thrust::counting_iterator<std::size_t>(0);
    const agg_ref old_ref = ref();
    // Room for two such batches, so that a table near its size is not rebuilt batch after batch.
    std::size_t capacity = capacity_for(live_ + 2 * incoming, capacity_);
    device_buffer new_refs(*exec_.be, capacity_ * sizeof(std::uint64_t), exec_.stream);
    auto* d_new_refs = new_refs.template as<std::uint64_t>();
    thrust::transform(exec_.policy(), positions, positions + capacity_, d_new_refs,
                      live_record_words_fn{old_ref});
    const std::size_t live_words =
        thrust::reduce(exec_.policy(), d_new_refs, d_new_refs + capacity_, std::uint64_t{0});
    thrust::exclusive_scan(exec_.policy(), d_new_refs, d_new_refs + capacity_, d_new_refs);
    const std::size_t arena_words =
        arena_size(live_words, std::max(arena_words_, 2 * live_words + 1024));
    // The register blocks of the open groups, compacted (emitted groups' blocks dropped) into an
    // arena with room for as many again.
    device_buffer sketch_refs;
    std::size_t live_sketch = 0;
    std::size_t sketch_words = 0;
    if (layout_.sketch_accs) {
      sketch_refs = device_buffer(*exec_.be, capacity_ * sizeof(std::uint64_t), exec_.stream);
      auto* d_sketch_refs = sketch_refs.template as<std::uint64_t>();
      thrust::transform(exec_.policy(), positions, positions + capacity_, d_sketch_refs,
                        live_sketch_words_fn{old_ref});
      live_sketch = thrust::reduce(exec_.policy(), d_sketch_refs, d_sketch_refs + capacity_,
                                   std::uint64_t{0});
      thrust::exclusive_scan(exec_.policy(), d_sketch_refs, d_sketch_refs + capacity_,
                             d_sketch_refs);
      sketch_words = std::max<std::size_t>(2 * live_sketch, 64 * sketch_block_);
    }
    // The prefilled table, when it is large enough (up to twice as large: its prediction assumed
    // no window emitted meanwhile) and fits under the cap with the new arena.
    if (next_capacity_ >= capacity && next_capacity_ <= 2 * capacity &&
        next_capacity_ * layout_.stride + (arena_words + sketch_words) * sizeof(std::uint64_t) <=
            options_.max_bytes) {
      capacity = next_capacity_;
    }
    check_bytes(capacity, arena_words, sketch_words);
    device_buffer old_sketches;
    if (layout_.sketch_accs) {
      old_sketches = std::move(sketch_);
      set_sketch_arena(sketch_words);  // the old ref still points at the old arena
    }

    device_buffer slots = take_slots(capacity);
    device_buffer arena(*exec_.be, arena_words * sizeof(std::uint64_t), exec_.stream);
    const std::size_t dirty_entries = options_.track_updates ? dirty_count_ + incoming : 0;
    device_buffer dirty(*exec_.be, std::max<std::size_t>(dirty_entries, 1) * sizeof(std::uint32_t),
                        exec_.stream);
    const std::size_t checkpoint_entries =
        options_.track_checkpoint ? checkpoint_count_ + incoming : 0;
    device_buffer checkpoint_list(
        *exec_.be, std::max<std::size_t>(checkpoint_entries, 1) * sizeof(std::uint32_t),
        exec_.stream);
    const std::uint64_t counters[3] = {live_words, 0, 0};  // [3] runs on
    exec_.be->copy_to_device(counters_.data(), counters, sizeof(counters), exec_.stream);
    zero_counter(4);  // [4]: the rehash lists the checkpoint list's slots again
    agg_ref new_ref = old_ref;
    new_ref.d_slots = slots.template as<unsigned char>();
    new_ref.mask = capacity - 1;
    new_ref.d_arena = arena.template as<std::uint64_t>();
    new_ref.d_dirty_list = dirty.template as<std::uint32_t>();
    new_ref.d_checkpoint_list = checkpoint_list.template as<std::uint32_t>();
    new_ref.sketches.d_words = sketch_.template as<std::uint64_t>();
    new_ref.sketches.capacity = sketch_words_;
    set_counter(5, live_sketch);
    zero_counter(6);
    thrust::for_each(
        exec_.policy(), positions, positions + capacity_,
        agg_rehash_fn{old_ref, new_ref, d_new_refs,
                      layout_.sketch_accs ? sketch_refs.template as<std::uint64_t>() : nullptr});
    slots_ = std::move(slots);
    arena_ = std::move(arena);
    dirty_list_ = std::move(dirty);
    checkpoint_list_ = std::move(checkpoint_list);
    capacity_ = capacity;
    arena_words_ = arena_words;
    dirty_capacity_ = std::max<std::size_t>(dirty_entries, 1);
    checkpoint_capacity_ = std::max<std::size_t>(checkpoint_entries, 1);
    read_counters();
    used_ = live_;
    live_after_rebuild_ = live_;
    used_after_rebuild_ = used_;
    ++rebuilds_;
    prefill_blocked_ = false;
  }

  /// Zeroes one device counter (d_counters[index]) on the work stream.
  void zero_counter(std::size_t index) { set_counter(index, 0); }
  void set_counter(std::size_t index, std::uint64_t value) {
    // Staged in the table (not on the stack): the copy may still be in flight when this returns.
    counter_values_[index] = value;
    exec_.be->copy_to_device(counters_.template as<std::uint64_t>() + index,
                             &counter_values_[index], sizeof(value), exec_.stream);
  }

  /// A zeroed sketch arena of `words` (the previous one dropped: callers copy what they keep).
  void set_sketch_arena(std::size_t words) {
    sketch_ = device_buffer(*exec_.be, words * sizeof(std::uint64_t), exec_.stream);
    exec_.be->fill_bytes(sketch_.data(), 0, sketch_.size(), exec_.stream);
    sketch_words_ = words;
  }

  /// After a pass in which groups found the sketch arena full: doubles it (the caller repeats
  /// while a pass still finds it full), keeping the blocks handed out. Every block that was handed
  /// out lies below sketch_used_ (allocation never passes the capacity), so copying that much
  /// keeps them all (the rest of the new arena is zero);
  /// emitted groups' blocks are dropped by the next rebuild. Never a rebuild here: the pending
  /// list points into the slots.
  void make_sketch_room() {
    const std::size_t kept = sketch_used_;
    const std::size_t words = 2 * sketch_words_;  // again, while a pass still finds it full
    check_bytes(capacity_, arena_words_, words);
    device_buffer old = std::move(sketch_);
    set_sketch_arena(words);
    exec_.be->copy_on_device(sketch_.data(), old.data(), kept * sizeof(std::uint64_t),
                             exec_.stream);
    set_counter(5, kept);
    zero_counter(8);
    sketch_used_ = kept;
    sketch_full_ = false;
  }

  void read_counters() {
    // Pinned (allocated with the table): read after every batch.
    auto* counters = static_cast<std::uint64_t*>(counters_staging_.data());
    exec_.be->copy_to_host(counters, counters_.data(), counter_count * sizeof(std::uint64_t),
                           exec_.stream);
    exec_.be->synchronize(exec_.stream);
    arena_used_ = counters[0];
    used_ += counters[1] + owned_inserts_;
    live_ += counters[1] + owned_inserts_;
    owned_inserts_ = 0;
    dirty_count_ = counters[2];
    cross_partition_rows_ = counters[3];
    checkpoint_count_ = counters[4];
    sketch_used_ = counters[5];
    sketch_freed_ = counters[6];
    pending_count_ = counters[7];
    sketch_full_ = counters[8] != 0;
    TROVE_EXPECTS(pending_count_ <= pending_capacity_,
                  "agg_table: more deferred sketch additions than the batch can make");
    if (counters[1]) {  // reset the insert counter; the others are running totals
      zero_counter(1);
    }
  }

  /// Remembers which windows may hold groups, so extract_closed only scans the table when the
  /// watermark really closes one. A batch spanning absurdly many windows (a broken clock) switches
  /// to scanning on every call until the table is empty again.
  void note_open_windows(const time_range& range) {
    if (range.min > range.max) return;
    const window_spec& w = options_.window;
    const std::int64_t first = w.start(range.min, w.windows_per_event() - 1);
    const std::int64_t last = w.last_start(range.max);
    // Unsigned: the span of a batch with absurd event times must not overflow.
    if ((static_cast<std::uint64_t>(last) - static_cast<std::uint64_t>(first)) /
            static_cast<std::uint64_t>(w.slide_ms) >
        4096) {
      unknown_windows_ = true;
      return;
    }
    for (std::int64_t start = first; start <= last; start += w.slide_ms) {
      if (start + w.size_ms > emitted_wm_) open_starts_.insert(start);
    }
  }

  /// Copies the selected slots out as result rows, marking them `mark_state` and taking them off
  /// every list but `keep_lists`.
  agg_result gather(std::uint32_t* d_positions, std::size_t m, std::uint32_t mark_state,
                    std::uint32_t keep_lists) {
    if (m == 0) return empty_result();
    const stream_view stream = exec_.stream;
    const agg_ref table = ref();
    const auto items = thrust::counting_iterator<std::size_t>(0);
    device_buffer offsets(*exec_.be, (m + 1) * sizeof(std::uint64_t), stream);
    auto* d_offsets = offsets.template as<std::uint64_t>();
    thrust::transform(exec_.policy(), items, items + m, d_offsets,
                      record_words_fn{table, d_positions});
    const std::size_t words =
        thrust::reduce(exec_.policy(), d_offsets, d_offsets + m, std::uint64_t{0});
    thrust::exclusive_scan(exec_.policy(), d_offsets, d_offsets + m, d_offsets);
    device_buffer out_slots(*exec_.be, m * layout_.stride, stream);
    device_buffer out_records(*exec_.be, std::max<std::size_t>(words, 1) * 8, stream);
    thrust::for_each(
        exec_.policy(), items, items + m,
        gather_fn{table, d_positions, d_offsets, out_slots.template as<unsigned char>(),
                  out_records.template as<std::uint64_t>(), mark_state, true, keep_lists});
    // Into the table's pinned staging (kept across extractions): slots (a multiple of 8 bytes),
    // then records, then offsets; decode_result reads them there.
    const std::size_t slot_bytes = m * layout_.stride;
    results_staging_.reserve(*exec_.be, slot_bytes + (words + m) * 8);
    auto* h_slots = static_cast<unsigned char*>(results_staging_.data());
    auto* h_records = reinterpret_cast<std::uint64_t*>(h_slots + slot_bytes);
    std::uint64_t* h_offsets = h_records + words;
    exec_.be->copy_to_host(h_slots, out_slots.data(), slot_bytes, stream);
    exec_.be->copy_to_host(h_records, out_records.data(), words * 8, stream);
    exec_.be->copy_to_host(h_offsets, d_offsets, m * 8, stream);
    exec_.be->synchronize(stream);
    return decode_result(layout_, options_.window, h_slots, m, h_records, h_offsets);
  }

  static constexpr std::size_t counter_count = 9;  // agg_ref::d_counters

  Exec exec_;
  agg_options options_;
  agg_layout layout_;
  std::uint64_t layout_signature_ = 0;
  device_buffer slots_;
  device_buffer arena_;
  device_buffer counters_;
  device_buffer dirty_list_;
  device_buffer checkpoint_list_;
  device_buffer fingerprints_;
  host_buffer results_staging_;   // extracted rows, pinned on CUDA
  host_buffer counters_staging_;  // counters_ read back after every batch, pinned on CUDA
  std::size_t capacity_ = 0;
  std::size_t used_ = 0;  // non-empty slots (tombstones included)
  std::size_t live_ = 0;  // groups not yet emitted
  std::size_t arena_words_ = 0;
  std::size_t arena_used_ = 0;
  device_buffer sketch_;          // register blocks of hll accumulators (sketch_arena_ref)
  std::size_t sketch_words_ = 0;  // its capacity
  std::size_t sketch_used_ = 0;   // device counter [5] as last read
  bool sketch_full_ = false;      // device counter [8]: a block could not be handed out
  std::size_t sketch_freed_ = 0;  // device counter [6]: words of emitted groups' blocks
  std::size_t sketch_block_ = 1;  // words of the largest block
  device_buffer pending_;         // sketch_pending: DDSketch additions deferred (arena full)
  std::size_t pending_capacity_ = 0;
  std::size_t pending_count_ = 0;  // device counter [7] as last read
  std::uint64_t counter_values_[counter_count] = {};
  std::size_t dirty_capacity_ = 0;
  std::size_t dirty_count_ = 0;
  std::size_t checkpoint_capacity_ = 0;
  std::size_t checkpoint_count_ = 0;
  std::uint64_t owned_inserts_ = 0;         // groups created by owner-partitioned passes (CPU)
  std::uint64_t cross_partition_rows_ = 0;  // device counter [3] as last read
  std::uint64_t rebuilds_ = 0;
  // Open groups and used slots right after the last rebuild (or restore): prefill() predicts
  // from them how many open groups the next rebuild will keep.
  std::size_t live_after_rebuild_ = 0;
  std::size_t used_after_rebuild_ = 0;
  // The next table, allocated and zeroed ahead of the rebuild (prefill()).
  device_buffer next_;
  std::size_t next_capacity_ = 0;
  std::size_t next_filled_ = 0;   // slots zeroed so far
  bool prefill_blocked_ = false;  // the cap ruled a prefill out until the next rebuild
  std::int64_t emitted_wm_ = INT64_MIN;
  std::set<std::int64_t> open_starts_;
  bool unknown_windows_ = false;
};

}  // namespace trove::kernels::detail
