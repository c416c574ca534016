#pragma once
/// @file dedup_set.hpp
/// @brief Exact deduplication with an event-time TTL, device-resident across batches.
///
/// Semantics (README, "Semantics worth knowing"): a row is a duplicate when a row with the same key
/// was accepted earlier and that entry has not expired; an entry accepted with event time t0
/// expires once the watermark W reaches t0 + ttl (W >= t0 + ttl), and the key may then be accepted
/// again. Within a batch the first row in arrival order wins whatever the thread interleaving (a
/// key accepted in the batch is a duplicate for the rest of the batch, even if the watermark
/// already expired it).
///
/// Memory policy: the table is an open-addressing table (linear probing) rebuilt before a batch
/// would push its load past max_load; a rebuild drops expired entries and sizes the next table
/// for the live entries and the inserts it takes while the rebuild runs (a power of two: grown at
/// once, shrunk only to a quarter or less, never below the initial capacity), so that a flat live
/// set keeps one capacity and a falling one gives memory back. Tables of at least
/// incremental_min_slots slots rebuild incrementally, a slice per batch, starting at
/// incremental_start_load: count the live entries, fill the new table, then migrate the old one
/// while it stays frozen and is still consulted for duplicates. A slice is proportional to the
/// batch (incremental_slots_per_row), larger only when the room left in the table needs it, so that
/// the work per batch stays a fraction of the batch's own. No batch then pauses for a whole rebuild
/// (a stop-the-world rebuild of a 16M-slot table took ~1 s on 2 cores); a batch that would overfill
/// the table first finishes (or replaces) the incremental rebuild at once. If the capacity needed
/// exceeds max_bytes, apply() throws trove::capacity_error and changes nothing: no row is silently
/// dropped or silently called a duplicate; the pipeline stops with a message naming dedup.max_bytes
/// and dedup.ttl.

#include <cstddef>
#include <cstdint>

#include "kernels/backend.hpp"
#include "kernels/table_stats.hpp"
#include "kernels/xxhash64.hpp"

namespace trove::kernels {

/// @brief Configuration of a dedup set.
struct dedup_options {
  std::int64_t ttl_ms = 600'000;
  std::size_t initial_capacity = std::size_t{1} << 20;  ///< slots (rounded up to a power of 2)
  std::size_t max_bytes = std::size_t{4} << 30;         ///< cap on the table's device memory
  double max_load = 0.7;                                ///< rebuild before exceeding this
  /// Tables with at least this many slots rebuild incrementally (0: always; SIZE_MAX: never).
  std::size_t incremental_min_slots = std::size_t{1} << 20;
  double incremental_start_load = 0.35;  ///< an incremental rebuild starts past this load
  /// The least a phase advances per row of a batch (slots counted, filled or migrated); more
  /// when the table's remaining room needs it to finish in time.
  std::size_t incremental_slots_per_row = 16;
  /// Keys are one exact, never-null 64-bit value (key.hi; key.lo ignored): 16-byte slots instead
  /// of 24. Set by the runtime for a single required integer dedup field.
  bool exact_64bit_keys = false;
};

/// @brief One dedup entry as checkpoints keep it: the key, the first_seen stamp it was accepted
/// with, and the batch row that accepted it (the host tags it with the row's source partition).
struct dedup_entry {
  hash128 key;
  std::int64_t first_seen = 0;
  std::uint32_t row = 0;
};

/// @brief A device-resident set of accepted keys with their first-seen event times.
/// Every call passes the stream the table was made for (backend::make_dedup_set): its work, memory
/// included, is ordered on that stream; another stream is refused (trove::logic_error).
class dedup_set {
 public:
  virtual ~dedup_set() = default;

  /// @brief Marks duplicates in a batch.
  /// @param d_keys per-row 128-bit key (exact value or fingerprint, see row_key.hpp)
  /// @param d_event_time per-row event time (ms)
  /// @param d_status per-row status; rows with status_accepted are considered, duplicates are set
  ///        to status_duplicate; a status_late row whose key is live after the batch (accepted
  ///        earlier, or by any row of this batch) becomes status_duplicate too (duplicate is
  ///        decided before late; late rows never enter the set); other rows are left alone
  /// @param watermark the current watermark (entries with first_seen + ttl <= watermark expired)
  /// @return the number of rows whose status is status_duplicate afterwards
  virtual std::size_t apply(const hash128* d_keys, const std::int64_t* d_event_time,
                            std::uint8_t* d_status, std::size_t n, std::int64_t watermark,
                            stream_view stream) = 0;

  /// @brief The entries a batch added: one per row left status_accepted by apply() (with the same
  /// keys, event times and watermark), in row order, copied to host memory. This is what a
  /// checkpoint writes of the dedup set: what changed, not the whole table.
  /// @param h_out host array of at least n entries
  /// @return the number of entries written
  virtual std::size_t collect_accepted(const hash128* d_keys, const std::int64_t* d_event_time,
                                       const std::uint8_t* d_status, std::size_t n,
                                       std::int64_t watermark, dedup_entry* h_out,
                                       stream_view stream) = 0;

  /// @brief Restores entries (from a checkpoint) into the set; a key given twice keeps its
  /// latest first_seen (a key is accepted again only after it expired, so later stamps are
  /// larger). The table grows first when it needs to; entries already expired at `watermark`
  /// are skipped.
  virtual void insert_entries(const dedup_entry* h_entries, std::size_t n, std::int64_t watermark,
                              stream_view stream) = 0;

  /// @brief Occupancy of the table.
  [[nodiscard]] virtual table_stats stats() const = 0;
};

}  // namespace trove::kernels
