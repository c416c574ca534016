#pragma once
/// @file dedup_set_impl.hpp
/// @brief The dedup set's single-source implementation, instantiated once per backend
/// (dedup_set_cpu in backend_cpu.cpp with Thrust's OpenMP system, dedup_set_cuda in
/// backend_cuda.cu with the CUDA system). Per-row logic lives in TROVE_HD functors.

#include <thrust/copy.h>
#include <thrust/fill.h>
#include <thrust/for_each.h>
#include <thrust/functional.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/transform_iterator.h>
#include <thrust/transform_reduce.h>

#include <algorithm>
#include <climits>
#include <memory>
#include <string>

#include "kernels/atomics.hpp"
#include "kernels/dedup_set.hpp"
#include "kernels/error.hpp"
#include "kernels/row_status.hpp"
#include "kernels/xxhash64.hpp"

namespace trove::kernels::detail {

// first_seen doubles as the slot's state word, so one CAS publishes a slot and one word decides a
// batch's winner. Event times are validated to lie in [min_event_time, max_event_time] (classify
// marks others bad), far from these sentinels.
inline constexpr std::int64_t fs_empty = INT64_MIN;       // never used
inline constexpr std::int64_t fs_busy = INT64_MIN + 1;    // being written by its inserter
inline constexpr std::int64_t fs_claim0 = INT64_MIN + 2;  // fs_claim0 + row: claimed by row
inline constexpr std::int64_t fs_claim_end = fs_claim0 + (std::int64_t{1} << 32);
inline constexpr std::uint64_t no_slot = ~std::uint64_t{0};
inline constexpr std::uint64_t inserted_bit = std::uint64_t{1} << 63;

TROVE_HD TROVE_FORCEINLINE constexpr std::int64_t claim_of(std::size_t row) noexcept {
  return fs_claim0 + static_cast<std::int64_t>(row);
}
TROVE_HD TROVE_FORCEINLINE constexpr bool is_claim(std::int64_t first_seen) noexcept {
  return first_seen >= fs_claim0 && first_seen < fs_claim_end;
}

/// @brief Slot of a table whose keys are one exact 64-bit value (a required integer field):
/// 16 bytes, four per cache line.
struct dedup_slot64 {
  std::uint64_t key;
  std::int64_t first_seen;  // event time of the accepted row, or one of the fs_* states
  TROVE_HD TROVE_FORCEINLINE bool holds(const hash128& k) const noexcept { return key == k.hi; }
  TROVE_HD TROVE_FORCEINLINE void store(const hash128& k) noexcept { key = k.hi; }
  TROVE_HD TROVE_FORCEINLINE hash128 get() const noexcept { return {key, 0}; }
  TROVE_HD static TROVE_FORCEINLINE std::uint64_t hash(const hash128& k) noexcept {
    return mix64(k.hi);
  }
};

/// @brief Slot of a table whose keys are 128-bit (fingerprints, or a nullable exact value).
struct dedup_slot128 {
  std::uint64_t k0;
  std::uint64_t k1;
  std::int64_t first_seen;
  TROVE_HD TROVE_FORCEINLINE bool holds(const hash128& k) const noexcept {
    return k0 == k.hi && k1 == k.lo;
  }
  TROVE_HD TROVE_FORCEINLINE void store(const hash128& k) noexcept {
    k0 = k.hi;
    k1 = k.lo;
  }
  TROVE_HD TROVE_FORCEINLINE hash128 get() const noexcept { return {k0, k1}; }
  TROVE_HD static TROVE_FORCEINLINE std::uint64_t hash(const hash128& k) noexcept {
    return mix64(k.hi ^ mix64(k.lo));
  }
};

/// @brief t0 + ttl <= watermark, without overflow for any t0, ttl >= 0, watermark.
TROVE_HD TROVE_FORCEINLINE bool ttl_expired(std::int64_t first_seen, std::int64_t ttl,
                                            std::int64_t watermark) noexcept {
  return watermark >= INT64_MIN + ttl && first_seen <= watermark - ttl;
}

/// @brief The first_seen an accepted row stamps: its event time, raised if needed so that the entry
/// is live under the watermark it was accepted with. (A row older than ttl behind the watermark is
/// accepted, and its later copies in the same batch must still be duplicates.)
TROVE_HD TROVE_FORCEINLINE std::int64_t acceptance_stamp(std::int64_t event_time, std::int64_t ttl,
                                                         std::int64_t watermark) noexcept {
  return ttl_expired(event_time, ttl, watermark) ? watermark - ttl + 1 : event_time;
}

/// @brief Non-owning view of the table passed to kernels by value.
template <class Slot>
struct dedup_ref {
  Slot* d_slots;
  std::uint64_t mask;
  std::int64_t ttl_ms;

  TROVE_HD TROVE_FORCEINLINE std::uint64_t home(const hash128& key) const noexcept {
    return Slot::hash(key) & mask;
  }
  /// An accepted entry (not a sentinel) that has not expired.
  TROVE_HD TROVE_FORCEINLINE bool live(std::int64_t first_seen,
                                       std::int64_t watermark) const noexcept {
    return first_seen >= fs_claim_end && !ttl_expired(first_seen, ttl_ms, watermark);
  }

  /// @brief Whether the key has a live entry; for a table no one writes to meanwhile.
  TROVE_HD bool contains_live(const hash128& key, std::int64_t watermark) const noexcept {
    for (std::uint64_t pos = home(key);; pos = (pos + 1) & mask) {
      const Slot& slot = d_slots[pos];
      if (slot.first_seen == fs_empty) return false;
      if (slot.holds(key)) return live(slot.first_seen, watermark);
    }
  }

  /// @brief Finds the key's slot or inserts it, publishing it with first_seen = initial.
  /// @return the slot index, with inserted_bit set when this call inserted it.
  TROVE_HD std::uint64_t find_or_insert(const hash128& key, std::int64_t initial) const noexcept {
    std::uint64_t pos = home(key);
    while (true) {
      Slot& slot = d_slots[pos];
      std::int64_t state = load_acquire(slot.first_seen);
      if (state == fs_empty) {
        if (cas(slot.first_seen, state, fs_busy)) {
          slot.store(key);
          store_release(slot.first_seen, initial);
          return pos | inserted_bit;
        }
        // Lost the race: `state` now holds the winner's state; fall through and compare keys.
      }
      while (state == fs_busy) state = load_acquire(slot.first_seen);
      if (slot.holds(key)) return pos;
      pos = (pos + 1) & mask;
    }
  }
};

/// @brief Phase 1: each considered row finds its key. A live entry from an earlier batch makes it
/// a duplicate at once; otherwise the row lowers the slot's claim to its own row index (an atomic
/// min on first_seen) and becomes a candidate. The smallest row wins whatever the interleaving.
template <class Slot>
struct dedup_probe_fn {
  dedup_ref<Slot> table;
  const hash128* d_keys;
  std::uint8_t* d_status;
  std::uint64_t* d_candidate;
  std::int64_t watermark;
  std::size_t n;

  TROVE_HD void operator()(std::size_t row) const noexcept {
#if !defined(__CUDA_ARCH__)
    // CPU only: OpenMP hands each thread a contiguous range, so prefetching the home slot of a
    // row a few iterations ahead overlaps the cache misses of a table far larger than the cache.
    constexpr std::size_t lookahead = 8;
    if (row + lookahead < n)
      __builtin_prefetch(&table.d_slots[table.home(d_keys[row + lookahead])]);
#endif
    if (d_status[row] != status_accepted) {
      d_candidate[row] = no_slot;
      return;
    }
    const std::int64_t claim = claim_of(row);
    const std::uint64_t found = table.find_or_insert(d_keys[row], claim);
    d_candidate[row] = found;
    if (found & inserted_bit) return;
    std::int64_t& first_seen = table.d_slots[found].first_seen;
    std::int64_t current = load_relaxed(first_seen);
    while (true) {
      if (is_claim(current)) {
        if (current <= claim) return;  // an earlier row of this batch holds it
      } else if (table.live(current, watermark)) {
        d_status[row] = status_duplicate;
        d_candidate[row] = no_slot;
        return;
      }
      // Expired entry, or a later row's claim: take it (on failure `current` is reloaded).
      if (atomic_ref<std::int64_t>(first_seen)
              .compare_exchange_weak(current, claim, cuda::std::memory_order_relaxed)) {
        return;
      }
    }
  }
};

/// @brief Phase 2: the row whose claim survived is the first copy: it is accepted and stamps
/// first_seen with its event time; every other candidate of that key is a duplicate.
template <class Slot>
struct dedup_resolve_fn {
  dedup_ref<Slot> table;
  const std::int64_t* d_event_time;
  std::uint8_t* d_status;
  const std::uint64_t* d_candidate;
  std::int64_t watermark;
  std::size_t n;

  TROVE_HD void operator()(std::size_t row) const noexcept {
#if !defined(__CUDA_ARCH__)
    constexpr std::size_t lookahead = 8;
    if (row + lookahead < n && d_candidate[row + lookahead] != no_slot) {
      __builtin_prefetch(&table.d_slots[d_candidate[row + lookahead] & ~inserted_bit]);
    }
#endif
    const std::uint64_t candidate = d_candidate[row];
    if (candidate == no_slot) return;
    std::int64_t& first_seen = table.d_slots[candidate & ~inserted_bit].first_seen;
    // Losers may read the winner's event time instead of its claim: either way not their claim.
    if (load_relaxed(first_seen) == claim_of(row)) {
      store_relaxed(first_seen, acceptance_stamp(d_event_time[row], table.ttl_ms, watermark));
    } else {
      d_status[row] = status_duplicate;
    }
  }
};

/// @brief The CPU's owner-partitioned dedup (see cpu_exec): one thread visits, in arrival order,
/// the rows whose key's home slot is in [lo, hi), so the first copy wins by construction and one
/// pass decides every row. Returns the slots it inserted.
template <class Slot>
struct dedup_owned_pass {
  dedup_ref<Slot> table;
  const hash128* d_keys;
  const std::int64_t* d_event_time;
  std::uint8_t* d_status;
  std::int64_t watermark;
  std::size_t n;

  std::uint64_t operator()(std::uint64_t lo, std::uint64_t hi) const noexcept {
    constexpr std::size_t lookahead = 8;
    std::uint64_t inserted = 0;
    for (std::size_t row = 0; row < n; ++row) {
      if (row + lookahead < n && d_status[row + lookahead] == status_accepted) {
        const std::uint64_t ahead = table.home(d_keys[row + lookahead]);
        if (ahead >= lo && ahead < hi) __builtin_prefetch(&table.d_slots[ahead]);
      }
      if (d_status[row] != status_accepted) continue;
      const hash128 key = d_keys[row];
      const std::uint64_t home = table.home(key);
      if (home < lo || home >= hi) continue;
      const std::int64_t stamp = acceptance_stamp(d_event_time[row], table.ttl_ms, watermark);
      const std::uint64_t found = table.find_or_insert(key, stamp);
      if (found & inserted_bit) {
        ++inserted;
        continue;
      }
      std::int64_t& first_seen = table.d_slots[found].first_seen;
      if (table.live(load_relaxed(first_seen), watermark)) {
        d_status[row] = status_duplicate;
      } else {
        store_relaxed(first_seen, stamp);  // expired: accepted again
      }
    }
    return inserted;
  }
};

/// @brief 1 for every row whose probe inserted a new slot.
struct inserted_fn {
  const std::uint64_t* d_candidate;
  TROVE_HD std::uint64_t operator()(std::size_t row) const noexcept {
    const std::uint64_t c = d_candidate[row];
    return (c != no_slot && (c & inserted_bit)) ? 1 : 0;
  }
};
/// @brief 1 for every row marked duplicate.
struct is_duplicate_fn {
  const std::uint8_t* d_status;
  TROVE_HD std::uint64_t operator()(std::size_t row) const noexcept {
    return d_status[row] == status_duplicate ? 1 : 0;
  }
};
/// @brief 1 for every live slot.
template <class Slot>
struct live_slot_fn {
  dedup_ref<Slot> table;
  std::int64_t watermark;
  TROVE_HD std::uint64_t operator()(std::size_t pos) const noexcept {
    return table.live(table.d_slots[pos].first_seen, watermark) ? 1 : 0;
  }
};
/// @brief Re-inserts a live slot of the old table into the new one; 1 when it did (rebuilds at
/// once ignore the count; incremental migration adds it to the new table's used slots).
template <class Slot>
struct migrate_fn {
  dedup_ref<Slot> from;
  dedup_ref<Slot> to;
  std::int64_t watermark;
  TROVE_HD std::uint64_t operator()(std::size_t pos) const noexcept {
    const Slot& slot = from.d_slots[pos];
    if (!from.live(slot.first_seen, watermark)) return 0;
    return (to.find_or_insert(slot.get(), slot.first_seen) & inserted_bit) ? 1 : 0;
  }
};

/// @brief While the old table migrates: a row whose key is live there is a duplicate (its entry
/// may not have moved yet). The old table is frozen, so the order of rows does not matter.
template <class Slot>
struct dedup_old_fn {
  dedup_ref<Slot> old;
  const hash128* d_keys;
  std::uint8_t* d_status;
  std::int64_t watermark;
  TROVE_HD void operator()(std::size_t row) const noexcept {
    if (d_status[row] == status_accepted && old.contains_live(d_keys[row], watermark)) {
      d_status[row] = status_duplicate;
    }
  }
};

/// @brief After a batch's accepted rows are decided: a late row whose key is live (accepted in an
/// earlier batch or anywhere in this one, not expired) is a duplicate, not late — duplicate is
/// decided before late. Late rows never insert. The table is not written meanwhile, so the order of
/// rows does not matter and both strategies (owned, atomic) give the same statuses.
template <class Slot>
struct dedup_late_fn {
  dedup_ref<Slot> table;
  dedup_ref<Slot> old;  // the frozen old table while migrating (d_slots null otherwise)
  const hash128* d_keys;
  std::uint8_t* d_status;
  std::int64_t watermark;
  TROVE_HD void operator()(std::size_t row) const noexcept {
    if (d_status[row] != status_late) return;
    if (table.contains_live(d_keys[row], watermark) ||
        (old.d_slots != nullptr && old.contains_live(d_keys[row], watermark))) {
      d_status[row] = status_duplicate;
    }
  }
};

/// @brief Whether a row is left accepted (a new entry of the set).
struct is_accepted_fn {
  const std::uint8_t* d_status;
  TROVE_HD bool operator()(std::size_t row) const noexcept {
    return d_status[row] == status_accepted;
  }
};
/// @brief The entry an accepted row stamped (see dedup_resolve_fn / dedup_owned_pass).
struct accepted_entry_fn {
  const hash128* d_keys;
  const std::int64_t* d_event_time;
  std::int64_t ttl_ms;
  std::int64_t watermark;
  TROVE_HD dedup_entry operator()(std::size_t row) const noexcept {
    dedup_entry e;
    e.key = d_keys[row];
    e.first_seen = acceptance_stamp(d_event_time[row], ttl_ms, watermark);
    e.row = static_cast<std::uint32_t>(row);
    return e;
  }
};
/// @brief Bulk insert of restored entries: find or insert the key, keep the largest first_seen.
template <class Slot>
struct restore_fn {
  dedup_ref<Slot> table;
  const dedup_entry* d_entries;
  std::int64_t watermark;
  TROVE_HD std::uint64_t operator()(std::size_t i) const noexcept {
    const dedup_entry& e = d_entries[i];
    if (!table.live(e.first_seen, watermark)) return 0;
    const std::uint64_t found = table.find_or_insert(e.key, e.first_seen);
    if (found & inserted_bit) return 1;
    fetch_max(table.d_slots[found].first_seen, e.first_seen);
    return 0;
  }
};

/// @brief The owning dedup set for one backend's execution context and slot layout.
template <class Exec, class Slot>
class dedup_set_impl final : public dedup_set {
 public:
  dedup_set_impl(Exec exec, const dedup_options& options) : exec_(exec), options_(options) {
    TROVE_EXPECTS(options.ttl_ms >= 0, "dedup.ttl must not be negative");
    TROVE_EXPECTS(options.max_load > 0.0 && options.max_load < 1.0,
                  "dedup max_load must be in (0, 1)");
    std::size_t capacity = 1024;
    // The initial capacity yields to the memory cap: a small cap with the default initial
    // capacity must not fail before the first key.
    while (capacity < options.initial_capacity &&
           2 * capacity * sizeof(Slot) <= options.max_bytes) {
      capacity *= 2;
    }
    slots_ = allocate_slots(capacity, 0);
    capacity_ = capacity;
    min_capacity_ = capacity;
  }

  std::size_t apply(const hash128* d_keys, const std::int64_t* d_event_time, std::uint8_t* d_status,
                    std::size_t n, std::int64_t watermark, stream_view stream) override {
    if (n == 0) return 0;
    expect_work_stream(stream);
    TROVE_EXPECTS(n < (std::size_t{1} << 32), "a batch must hold fewer than 2^32 rows");
    make_room(watermark, n);
    const auto rows = thrust::counting_iterator<std::size_t>(0);
    if (phase_ == growth_phase::migrating) {
      thrust::for_each(exec_.policy(), rows, rows + n,
                       dedup_old_fn<Slot>{old_ref(), d_keys, d_status, watermark});
    }
    if (!Exec::owner_partitioned && candidates_.size() < n * sizeof(std::uint64_t)) {
      candidates_ = device_buffer(*exec_.be, n * sizeof(std::uint64_t) * 2, stream);
    }
    std::size_t inserted = 0;
    if constexpr (Exec::owner_partitioned) {
      const dedup_owned_pass<Slot> pass{ref(), d_keys, d_event_time, d_status, watermark, n};
      inserted = exec_.owned(capacity_, pass);
    } else {
      auto* d_candidate = candidates_.template as<std::uint64_t>();
      thrust::for_each(exec_.policy(), rows, rows + n,
                       dedup_probe_fn<Slot>{ref(), d_keys, d_status, d_candidate, watermark, n});
      thrust::for_each(
          exec_.policy(), rows, rows + n,
          dedup_resolve_fn<Slot>{ref(), d_event_time, d_status, d_candidate, watermark, n});
      inserted = thrust::transform_reduce(exec_.policy(), rows, rows + n, inserted_fn{d_candidate},
                                          std::uint64_t{0}, thrust::plus<std::uint64_t>());
    }
    used_ += inserted;
    if (phase_ == growth_phase::counting) {
      // Keys hash uniformly: the share of this batch's new slots that lies behind the cursor
      // (already counted, so missed by the count) is the share of the table already counted.
      inserted_behind_ += static_cast<double>(inserted) * static_cast<double>(cursor_) /
                          static_cast<double>(capacity_);
    }
    dedup_ref<Slot> old{};
    if (phase_ == growth_phase::migrating) old = old_ref();
    thrust::for_each(exec_.policy(), rows, rows + n,
                     dedup_late_fn<Slot>{ref(), old, d_keys, d_status, watermark});
    return thrust::transform_reduce(exec_.policy(), rows, rows + n, is_duplicate_fn{d_status},
                                    std::uint64_t{0}, thrust::plus<std::uint64_t>());
  }

  std::size_t collect_accepted(const hash128* d_keys, const std::int64_t* d_event_time,
                               const std::uint8_t* d_status, std::size_t n, std::int64_t watermark,
                               dedup_entry* h_out, stream_view stream) override {
    if (n == 0) return 0;
    expect_work_stream(stream);
    if (entries_.size() < n * sizeof(dedup_entry)) {
      entries_ = device_buffer(*exec_.be, n * sizeof(dedup_entry), stream);
    }
    auto* d_entries = entries_.template as<dedup_entry>();
    const auto rows = thrust::counting_iterator<std::size_t>(0);
    const auto entries = thrust::make_transform_iterator(
        rows, accepted_entry_fn{d_keys, d_event_time, options_.ttl_ms, watermark});
    // Stable: entries come out in row order, so a checkpoint is the same on every backend.
    const auto end = thrust::copy_if(exec_.policy(), entries, entries + n, rows, d_entries,
                                     is_accepted_fn{d_status});
    const auto m = static_cast<std::size_t>(end - d_entries);
    exec_.be->copy_to_host(h_out, d_entries, m * sizeof(dedup_entry), stream);
    exec_.be->synchronize(stream);
    return m;
  }

  void insert_entries(const dedup_entry* h_entries, std::size_t n, std::int64_t watermark,
                      stream_view stream) override {
    if (n == 0) return;
    expect_work_stream(stream);
    finish_growth(watermark);
    // Room for every entry under max_load (expired ones included: an upper bound).
    if (static_cast<double>(used_ + n) > options_.max_load * static_cast<double>(capacity_)) {
      rebuild(watermark, n);
    }
    device_buffer staged(*exec_.be, n * sizeof(dedup_entry), stream);
    exec_.be->copy_to_device(staged.data(), h_entries, n * sizeof(dedup_entry), stream);
    const auto items = thrust::counting_iterator<std::size_t>(0);
    used_ += thrust::transform_reduce(
        exec_.policy(), items, items + n,
        restore_fn<Slot>{ref(), staged.template as<dedup_entry>(), watermark}, std::uint64_t{0},
        thrust::plus<std::uint64_t>());
    exec_.be->synchronize(stream);
  }

  [[nodiscard]] table_stats stats() const override {
    const std::size_t entries = used_ + old_remaining();
    std::size_t bytes = capacity_ * sizeof(Slot);
    if (phase_ == growth_phase::filling) bytes += fresh_capacity_ * sizeof(Slot);
    if (phase_ == growth_phase::migrating) bytes += old_capacity_ * sizeof(Slot);
    return table_stats{entries, entries, capacity_, bytes, rebuilds_, blocking_rebuilds_};
  }

 private:
  /// Every call runs on the table's work stream (given to make_dedup_set): work on another stream
  /// could race the table's own allocations, zeroing and frees, which are ordered on that one.
  void expect_work_stream(stream_view stream) const {
    TROVE_EXPECTS(stream.handle == exec_.stream.handle,
                  "dedup_set: called on another stream than its work stream (make_dedup_set)");
  }

  /// Where an incremental rebuild is (see dedup_set.hpp); each phase advances one slice per
  /// batch (slice()).
  enum class growth_phase {
    idle,
    counting,   // live entries of slots_ counted, slice by slice (inserts go on meanwhile)
    filling,    // fresh_ allocated and set to empty, slice by slice
    migrating,  // slots_ is the new table; old_ is frozen and moves into it slice by slice
  };

  dedup_ref<Slot> ref() const noexcept {
    return dedup_ref<Slot>{slots_.template as<Slot>(), capacity_ - 1, options_.ttl_ms};
  }
  dedup_ref<Slot> old_ref() const noexcept {
    return dedup_ref<Slot>{old_.template as<Slot>(), old_capacity_ - 1, options_.ttl_ms};
  }
  /// Entries of the old table not migrated yet (an upper bound: expired ones included).
  std::size_t old_remaining() const noexcept {
    if (phase_ != growth_phase::migrating) return 0;
    const double left = 1.0 - static_cast<double>(cursor_) / static_cast<double>(old_capacity_);
    return static_cast<std::size_t>(static_cast<double>(old_used_) * left);
  }
  /// Slots a phase advances for a batch of n rows: `remaining` slots of work left before the
  /// table in use runs out of its `room` (slots until max_load). At least slots_per_row × n, and
  /// enough to finish while half of the room is left (every row may insert).
  std::size_t slice(std::size_t remaining, std::size_t room, std::size_t n) const noexcept {
    const std::size_t least = std::max<std::size_t>(1, options_.incremental_slots_per_row * n);
    const std::size_t batches = std::max<std::size_t>(1, room / (2 * std::max<std::size_t>(1, n)));
    return std::max(least, (remaining + batches - 1) / batches);
  }
  /// Slots of `capacity` under max_load not yet used by `used` + `reserved`.
  std::size_t room(std::size_t capacity, std::size_t used, std::size_t reserved) const noexcept {
    const auto limit = static_cast<std::size_t>(options_.max_load * static_cast<double>(capacity));
    return limit > used + reserved ? limit - used - reserved : 0;
  }

  void check_cap(std::size_t capacity, std::size_t live) const {
    const std::size_t bytes = capacity * sizeof(Slot);
    if (bytes > options_.max_bytes) {
      throw capacity_error("dedup table needs " + std::to_string(bytes) + " bytes (" +
                           std::to_string(capacity) + " slots for " + std::to_string(live) +
                           " live keys plus the next batch) but dedup.max_bytes is " +
                           std::to_string(options_.max_bytes) +
                           "; raise dedup.max_bytes or lower dedup.ttl");
    }
  }

  void fill_empty(device_buffer& buffer, std::size_t from, std::size_t to) {
    Slot empty{};
    empty.first_seen = fs_empty;
    thrust::fill_n(exec_.policy(), buffer.template as<Slot>() + from, to - from, empty);
  }

  device_buffer allocate_slots(std::size_t capacity, std::size_t live) {
    check_cap(capacity, live);
    device_buffer buffer(*exec_.be, capacity * sizeof(Slot), exec_.stream);
    fill_empty(buffer, 0, capacity);
    return buffer;
  }

  /// The capacity of the next table for `live` entries plus `incoming(capacity)` more (the
  /// inserts it takes before the rebuild is over): the least power of two from the initial
  /// capacity up under which they stay within 3/4 of max_load, so that rebuilds do not follow
  /// each other batch after batch. It grows to that at once, but shrinks only once that is at
  /// most a quarter of capacity_ (hysteresis: a live set that wavers around a power of two does
  /// not make the table grow and shrink by turns). Neither depends on capacity_ otherwise, so a
  /// flat live set keeps one capacity, whatever the table had grown to (README, "Dedup table
  /// growth"; a capacity from capacity_ up and the old table's room counted as incoming ratcheted
  /// 18M live keys up to 268M slots).
  template <class Incoming>
  std::size_t capacity_for(std::size_t live, Incoming incoming) const noexcept {
    std::size_t fit = min_capacity_;
    // Powers of two, grown two-fold: four-fold paid fewer rebuilds but overshot — W1 (9.5M live
    // keys) ended in a 64M-slot table instead of 32M, and the kernel's zeroing of the extra fresh
    // pages cost more than the rebuilds saved (README, "Dedup table growth").
    while (static_cast<double>(live + incoming(fit)) >
           0.75 * options_.max_load * static_cast<double>(fit)) {
      fit *= 2;
    }
    if (fit >= capacity_ || 4 * fit <= capacity_) return fit;
    return capacity_;
  }
  std::size_t capacity_for(std::size_t live, std::size_t incoming) const noexcept {
    return capacity_for(live, [incoming](std::size_t) { return incoming; });
  }

  /// Before a batch of n rows: advances an incremental rebuild by one slice, or starts one, or
  /// rebuilds at once when the batch would otherwise push the load past max_load. Afterwards
  /// slots_ has room for the batch.
  void make_room(std::int64_t watermark, std::size_t n) {
    const double limit = options_.max_load * static_cast<double>(capacity_);
    const auto positions = thrust::counting_iterator<std::size_t>(0);
    if (phase_ == growth_phase::idle) {
      if (static_cast<double>(used_ + n) > limit) {
        rebuild(watermark, n);
        return;
      }
      if (capacity_ < options_.incremental_min_slots || incremental_blocked_ ||
          static_cast<double>(used_ + n) <=
              options_.incremental_start_load * static_cast<double>(capacity_)) {
        return;
      }
      phase_ = growth_phase::counting;
      cursor_ = 0;
      counted_live_ = 0;
      inserted_behind_ = 0;
    }
    if (phase_ == growth_phase::counting || phase_ == growth_phase::filling) {
      if (static_cast<double>(used_ + n) > limit) {  // the batch does not fit: give up, rebuild
        fresh_ = device_buffer();
        phase_ = growth_phase::idle;
        rebuild(watermark, n);
        return;
      }
    }
    if (phase_ == growth_phase::counting) {
      // Work left: the rest of the count and the fill of a table (estimated) twice as large.
      const std::size_t end = std::min(
          capacity_,
          cursor_ + slice(capacity_ - cursor_ + 2 * capacity_, room(capacity_, used_, n), n));
      counted_live_ += thrust::transform_reduce(
          exec_.policy(), positions + cursor_, positions + end,
          live_slot_fn<Slot>{ref(), watermark}, std::uint64_t{0}, thrust::plus<std::uint64_t>());
      cursor_ = end;
      if (cursor_ < capacity_) return;
      // Live: the counted entries (some expire before they move: an upper bound) and those
      // inserted behind the cursor while counting (apply(); those ahead of it were counted).
      const auto live = counted_live_ + static_cast<std::size_t>(inserted_behind_ + 0.5);
      // The new table also takes what arrives until the migration ends: this batch and the
      // fill's (into the old table, then migrated), the migration's. Each phase advances at
      // least slots_per_row slots per row, so at most (its capacity + capacity_) / slots_per_row
      // rows — not the old table's room, which grows with the table and so would ratchet it.
      // A slow pace (few slots per row) is sped up to finish within the room a phase has
      // (slice()), so count at most a quarter of the new table's max_load for it.
      const std::size_t per_row = std::max<std::size_t>(1, options_.incremental_slots_per_row);
      const std::size_t old_capacity = capacity_;
      const double max_load = options_.max_load;
      fresh_capacity_ = capacity_for(live, [=](std::size_t capacity) {
        const std::size_t paced = (capacity + old_capacity) / per_row;
        const auto bound =
            static_cast<std::size_t>(0.25 * max_load * static_cast<double>(capacity));
        return 2 * n + std::min(paced, bound);
      });
      if (fresh_capacity_ * sizeof(Slot) > options_.max_bytes) {
        // Only a rebuild at the last moment (exact live count, one batch) may fit under the cap.
        phase_ = growth_phase::idle;
        incremental_blocked_ = true;
        return;
      }
      fresh_ = device_buffer(*exec_.be, fresh_capacity_ * sizeof(Slot), exec_.stream);
      phase_ = growth_phase::filling;
      cursor_ = 0;
      return;
    }
    if (phase_ == growth_phase::filling) {
      const std::size_t end =
          std::min(fresh_capacity_,
                   cursor_ + slice(fresh_capacity_ - cursor_, room(capacity_, used_, n), n));
      fill_empty(fresh_, cursor_, end);
      cursor_ = end;
      if (cursor_ < fresh_capacity_) return;
      // The new table takes the inserts from this batch on; the old one is frozen.
      old_ = std::move(slots_);
      old_capacity_ = capacity_;
      old_used_ = used_;
      slots_ = std::move(fresh_);
      capacity_ = fresh_capacity_;
      used_ = 0;
      phase_ = growth_phase::migrating;
      cursor_ = 0;
    }
    // Migrating: one slice, or all that is left when the new table could not otherwise take
    // the batch and the rest of the old one.
    const double new_limit = options_.max_load * static_cast<double>(capacity_);
    const bool rush = static_cast<double>(used_ + n + old_remaining()) > new_limit;
    const std::size_t end =
        rush ? old_capacity_
             : std::min(old_capacity_,
                        cursor_ + slice(old_capacity_ - cursor_,
                                        room(capacity_, used_ + old_remaining(), n), n));
    used_ += thrust::transform_reduce(exec_.policy(), positions + cursor_, positions + end,
                                      migrate_fn<Slot>{old_ref(), ref(), watermark},
                                      std::uint64_t{0}, thrust::plus<std::uint64_t>());
    cursor_ = end;
    if (cursor_ < old_capacity_) return;
    old_ = device_buffer();
    phase_ = growth_phase::idle;
    ++rebuilds_;
    if (static_cast<double>(used_ + n) > new_limit) rebuild(watermark, n);
  }

  /// Ends an incremental rebuild in progress at once (before a bulk insert).
  void finish_growth(std::int64_t watermark) {
    if (phase_ == growth_phase::counting || phase_ == growth_phase::filling) {
      fresh_ = device_buffer();
      phase_ = growth_phase::idle;
    } else if (phase_ == growth_phase::migrating) {
      const auto positions = thrust::counting_iterator<std::size_t>(0);
      used_ +=
          thrust::transform_reduce(exec_.policy(), positions + cursor_, positions + old_capacity_,
                                   migrate_fn<Slot>{old_ref(), ref(), watermark}, std::uint64_t{0},
                                   thrust::plus<std::uint64_t>());
      old_ = device_buffer();
      phase_ = growth_phase::idle;
      ++rebuilds_;
    }
  }

  /// At once: drops expired entries and grows (or shrinks, see capacity_for()) so that the live
  /// entries plus the next batch stay well under max_load.
  void rebuild(std::int64_t watermark, std::size_t incoming) {
    const auto positions = thrust::counting_iterator<std::size_t>(0);
    const dedup_ref<Slot> old_ref = ref();
    const std::size_t live = thrust::transform_reduce(
        exec_.policy(), positions, positions + capacity_, live_slot_fn<Slot>{old_ref, watermark},
        std::uint64_t{0}, thrust::plus<std::uint64_t>());
    const std::size_t capacity = capacity_for(live, incoming);
    device_buffer fresh = allocate_slots(capacity, live);
    const dedup_ref<Slot> new_ref{fresh.template as<Slot>(), capacity - 1, options_.ttl_ms};
    thrust::for_each(exec_.policy(), positions, positions + capacity_,
                     migrate_fn<Slot>{old_ref, new_ref, watermark});
    slots_ = std::move(fresh);
    capacity_ = capacity;
    used_ = live;
    ++rebuilds_;
    ++blocking_rebuilds_;
    incremental_blocked_ = false;
  }

  Exec exec_;
  dedup_options options_;
  device_buffer slots_;
  device_buffer candidates_;
  device_buffer entries_;  // collect_accepted(): the batch's new entries before the copy out
  std::size_t capacity_ = 0;
  std::size_t min_capacity_ = 0;  // the initial capacity: a table never shrinks below it
  std::size_t used_ = 0;
  std::uint64_t rebuilds_ = 0;
  std::uint64_t blocking_rebuilds_ = 0;
  // Incremental rebuild (make_room()).
  growth_phase phase_ = growth_phase::idle;
  bool incremental_blocked_ = false;  // the cap ruled an incremental rebuild out until a rebuild
  std::size_t cursor_ = 0;            // next slot of the phase's table
  std::size_t counted_live_ = 0;      // counting: live entries in slots_[0, cursor_)
  double inserted_behind_ = 0;        // counting: slots inserted in [0, cursor_) since, expected
  device_buffer fresh_;               // filling: the new table
  std::size_t fresh_capacity_ = 0;
  device_buffer old_;  // migrating: the old table (frozen)
  std::size_t old_capacity_ = 0;
  std::size_t old_used_ = 0;
};

/// @brief The dedup set for the options' key layout.
template <class Exec>
std::unique_ptr<dedup_set> make_dedup_set(Exec exec, const dedup_options& options) {
  if (options.exact_64bit_keys) {
    return std::make_unique<dedup_set_impl<Exec, dedup_slot64>>(exec, options);
  }
  return std::make_unique<dedup_set_impl<Exec, dedup_slot128>>(exec, options);
}

}  // namespace trove::kernels::detail
