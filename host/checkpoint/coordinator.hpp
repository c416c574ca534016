#pragma once
/// @file coordinator.hpp
/// @brief Cadence and durability of checkpoints: decides when the device thread cuts one, writes
/// it on a background thread (so encoding, I/O and fsync never pause the data path), and reports
/// each checkpoint once it is durable — the moment source offsets may be committed.
///
/// One checkpoint is in flight at most: a cut is due when `interval` has passed since the last
/// one began *and* the previous write finished. A write that cannot keep up therefore delays the
/// next checkpoint, never a batch; `delayed()` counts the intervals that were late.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "host/checkpoint/store.hpp"

namespace trove::host {

/// @brief Counters of the checkpoints of a run (for metrics and the final summary).
struct checkpoint_stats {
  std::uint64_t written = 0;
  std::uint64_t delayed = 0;  ///< cuts that came later than `interval` (the previous write ran)
  std::uint64_t last_id = 0;
  std::uint64_t last_bytes = 0;          ///< manifest + referenced segments
  double last_write_seconds = 0;         ///< encode + write + fsync of the last one
  double last_cut_seconds = 0;           ///< device-thread pause of the last cut (copy-out)
  double max_cut_seconds = 0;            ///< the longest device-thread pause of a cut
  double max_write_seconds = 0;          ///< the longest write
  std::uint64_t last_dedup_entries = 0;  ///< new dedup entries in the last segment
  std::uint64_t last_groups = 0;         ///< groups the last one wrote (all, or the updated)
  std::uint64_t group_updates_written = 0;  ///< checkpoints that wrote only the updated groups
};

/// @brief Owns the checkpoint writer thread of one run.
class checkpoint_coordinator {
 public:
  using clock = std::chrono::steady_clock;
  /// @brief Called on the writer thread after a checkpoint is durable.
  using durable_fn = std::function<void(const checkpoint_state&)>;
  /// @brief Called on the writer thread when a write fails (the run must stop).
  using failure_fn = std::function<void(std::exception_ptr)>;

  /// @brief Called on the writer thread before a checkpoint is written; throws to refuse it
  /// (fencing: the instance lost a partition it holds).
  using before_write_fn = std::function<void(const checkpoint_state&)>;
  /// @brief Whether a partition's state at an epoch must stay (checkpoint_store::write).
  using pinned_fn = std::function<bool(const kafka_position&)>;

  checkpoint_coordinator(checkpoint_store& store, std::int64_t interval_ms, std::uint32_t retain,
                         std::uint64_t next_id, std::vector<segment_ref> segments,
                         durable_fn on_durable, failure_fn on_failure);
  ~checkpoint_coordinator();
  checkpoint_coordinator(const checkpoint_coordinator&) = delete;
  checkpoint_coordinator& operator=(const checkpoint_coordinator&) = delete;

  /// @brief A shared checkpoint.dir: `before_write` fences every write, `pinned` keeps what a
  /// partition's next owner still needs (see partition_ownership).
  void share(before_write_fn before_write, pinned_fn pinned);

  /// @brief The state was rebuilt (partitions moved): waits for the write in flight, then the
  /// next cut inherits no segment (its new entries hold every live one) and is due at once.
  void restart_chain();

  /// @brief The open groups in the tables are those of this group-segment chain (a restored
  /// checkpoint's, or none at a fresh start): the next cut may write only the groups updated
  /// since. Until then, and after restart_chain(), the next cut writes every open group.
  void continue_groups(std::vector<group_segment_ref> chain);

  /// @brief The group-segment chain of the last checkpoint written, when the next cut may
  /// continue it (see continue_groups); false: the next cut writes every open group.
  [[nodiscard]] bool group_chain(std::vector<group_segment_ref>& chain) const;

  /// @brief Whether the device thread should cut a checkpoint now.
  [[nodiscard]] bool due(clock::time_point now);

  /// @brief The id the next cut gets, and the live segments it inherits (all written ones whose
  /// entries may still be live: max_first_seen + ttl > watermark). Marks a cut as begun.
  std::uint64_t begin_cut(clock::time_point now, std::int64_t watermark, std::int64_t ttl_ms,
                          std::vector<segment_ref>& segments);

  /// @brief Hands a cut (its sink positions filled in) to the writer thread.
  void submit(std::unique_ptr<checkpoint_state> state, double cut_seconds);

  /// @brief Gives up a begun cut that will never be submitted (the run is failing or its sink
  /// queue closed), so that nobody waits for it.
  void cancel_cut();

  /// @brief Waits until every submitted checkpoint is written (or failed).
  void wait_idle();

  /// @brief Waits until checkpoint `id` (submitted) is durable, or a write failed. Unlike
  /// wait_idle() it does not wait for a cut begun after `id`: that one may be queued behind the
  /// caller (the sink stage).
  void wait_durable(std::uint64_t id);
  /// @brief Whether a write failed (the run is stopping).
  [[nodiscard]] bool failed() const;
  /// @brief Whether a cut was begun and its write has not finished yet.
  [[nodiscard]] bool in_flight() const;

  [[nodiscard]] checkpoint_stats stats() const;

 private:
  void run();

  checkpoint_store& store_;
  clock::duration interval_;
  std::uint32_t retain_;
  durable_fn on_durable_;
  failure_fn on_failure_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::unique_ptr<checkpoint_state> pending_;
  double pending_cut_seconds_ = 0;
  bool busy_ = false;  // a cut was begun and is not written yet
  bool stopping_ = false;
  bool delay_counted_ = false;  // this interval's delay is counted
  bool failed_ = false;
  bool forced_ = false;  // restart_chain(): the next cut is due at once
  before_write_fn before_write_;
  pinned_fn pinned_;
  std::uint64_t next_id_;
  std::vector<segment_ref> segments_;  // of the last checkpoint written
  std::vector<group_segment_ref> group_chain_;  // of the last checkpoint written
  bool group_chain_valid_ = false;              // the tables' open groups are group_chain_'s
  clock::time_point last_cut_;
  checkpoint_stats stats_;
  std::thread thread_;
};

}  // namespace trove::host
