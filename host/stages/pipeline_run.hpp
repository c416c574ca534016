#pragma once
/// @file pipeline_run.hpp
/// @brief Inside one `trove run` (host/ internal; host/pipeline.hpp is the public face): the
/// state the stages share and the stages themselves, each defined in the file named after it —
///   host/pipeline.cpp                 wiring: construction, threads, the run's end, restarts
///   host/stages/source_stage.cpp     the source thread: read, decode, batch, positions
///   host/stages/device_loop.cpp      the device thread: batches through the kernels, accounting
///   host/stages/sink_stage.cpp       the sink thread: encode, write, checkpoint sink positions,
///                                    exactly-once commits
///   host/stages/checkpointing.cpp    restore at start, cuts between batches, compatibility keys
///   host/stages/offset_commits.cpp   Kafka offset commits (what is durable, and when)
#include "host/pipeline.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>

#include <sys/stat.h>
#include <unistd.h>
#include <condition_variable>
#include <future>

#include <chrono>
#include <cstdio>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "host/bounded_queue.hpp"
#include "host/checkpoint/coordinator.hpp"
#include "host/checkpoint/ownership.hpp"
#include "host/checkpoint/partition_restore.hpp"
#include "host/checkpoint/record_log.hpp"
#include "host/checkpoint/store.hpp"
#include "host/device_select.hpp"
#include "host/device_stage.hpp"
#include "host/offset_tracker.hpp"
#include "host/router.hpp"
#include "host/run_observer.hpp"
#include "host/watermark.hpp"
#include "io/csv_decoder.hpp"
#include "io/dead_letter.hpp"
#include "io/dev_broker.hpp"
#include "io/encoder.hpp"
#include "io/json_decoder.hpp"
#include "io/kafka_consumer.hpp"
#include "io/kafka_producer.hpp"
#include "io/line_reader.hpp"
#include "io/result_sink.hpp"
#include "io/synthetic.hpp"
#include "kernels/error.hpp"
#include "kernels/window.hpp"

namespace trove::host::detail {

extern std::atomic<bool> stop_flag;       // every stage stops (a request, an error, the end)
extern std::atomic<bool> stop_requested;  // request_stop() was called (a signal)
/// exactly_once: transactions of this process (all runs of a `trove run`, for the metrics).
extern std::atomic<std::uint64_t> transactions_committed_total;
extern std::atomic<std::uint64_t> transactions_aborted_total;
using clock_type = std::chrono::steady_clock;

/// Batch memory from the backend: pinned on CUDA (so H2D copies are true DMA), aligned on CPU.
class backend_allocator final : public io::host_allocator {
 public:
  explicit backend_allocator(kernels::backend& be) : be_(be) {}
  void* allocate(std::size_t bytes) override { return be_.allocate_host(bytes); }
  void deallocate(void* ptr, std::size_t bytes) noexcept override {
    be_.deallocate_host(ptr, bytes);
  }

 private:
  kernels::backend& be_;
};

/// A bad record found by the source, dead-lettered by the device thread together with its batch
/// (so that dead letters, like results, are in the file exactly up to a checkpoint's cut).
struct pending_bad {
  std::string reason;
  io::source_position position;
  std::string text;
  std::size_t original_bytes = 0;
};

/// Partitions moving (a shared checkpoint.dir): handed from the source thread's rebalance callback
/// to the device thread, in queue order with the batches.
struct partition_change {
  bool revoke = false;     // revoke: cut a final checkpoint, then drop every partition's state
  partitions_state state;  // assign: the newly assigned partitions' state, to restore
  std::promise<std::uint64_t> done;  // revoke: the final checkpoint's id (0: none was cut)
};

/// A filled batch travelling from the source to the device stage.
struct batch_item {
  io::host_batch* batch = nullptr;                                   // null on the end marker
  std::vector<std::pair<std::int32_t, std::int64_t>> partition_max;  // max event time per partition
  bool end = false;
  bool interrupted = false;  // the end marker of a run stopped by a signal (input not exhausted)
  batch_report report;       // filled as the batch moves through the stages
  std::vector<offset_tracker::range> offsets;  // Kafka: offsets per source partition
  std::vector<std::int32_t> assigned;          // Kafka: partitions assigned since the last batch
  std::vector<pending_bad> bad;                // bad records among (or before) its rows
  source_position_state end_mark;              // file/synthetic: the source after this batch
  std::shared_ptr<partition_change> change;    // no batch: partitions move (between batches)
};

/// Result rows travelling from the device stage to the sink, with the report of their batch.
struct sink_item {
  std::vector<io::result_batch> rows;  // one per output, in order
  batch_report report;
  bool has_report = false;  // false for the rows of the final extraction (no batch)
  std::uint64_t seq = 0;    // 0, 1, 2, ... in queue order (offset commits wait for its flush)
  std::unique_ptr<checkpoint_state> checkpoint;  // a cut: sink positions are taken here
  double cut_seconds = 0;
};

/// Everything one run owns.
class pipeline {
 public:
  pipeline(const pipeline_config& config, const run_options& options);
  /// @brief Transactions the sink committed so far (exactly_once).
  [[nodiscard]] std::uint64_t transactions_committed() const noexcept {
    return transactions_committed_.load();
  }
  run_stats run();

 private:
  template <class F>
  void guarded(F&& body) {
    try {
      body();
    } catch (...) {
      {
        std::lock_guard lock(error_mutex_);
        if (!error_) error_ = std::current_exception();
      }
      stop_flag = true;
      ready_.close();
      free_.close();
      out_.close();
      // A cut queued for the sink stage that failed is never written: nobody may wait for it.
      if (coordinator_) coordinator_->cancel_cut();
    }
  }
  /// A partition idle this long stops holding the watermark back; a Kafka source's own
  /// `source.idle_timeout` counts too (the smaller wins).
  static std::int64_t idle_timeout_of(const pipeline_config& config);
  // ---- checkpoints ------------------------------------------------------------------------------
  /// The configuration whose change makes saved state meaningless, as (key, value) pairs.
  std::vector<std::pair<std::string, std::string>> compat_keys() const;
  /// Opens checkpoint.dir and, when it holds a checkpoint, restores it: state, counters,
  /// watermarks, dead-letter length; the sources and the sink resume from its positions. With a
  /// Kafka source the directory is shared by the group's instances: this instance's own chain
  /// gives counters and sink positions, and partitions' state comes with their assignment.
  void open_checkpoints();
  /// Throws when a checkpoint was written under another configuration (naming the key).
  void check_compat(const checkpoint_state& st) const;
  // ---- partitions moving between instances (shared checkpoint.dir, Kafka) -----------------
  /// Source thread, revoke callback: hands the open batch over, has the device thread cut a
  /// final checkpoint and drop the state, and returns once that checkpoint is durable (and, with
  /// exactly-once, its transaction committed): the next owner continues exactly there.
  void hand_over(io::host_batch*& batch, clock_type::time_point& opened, bool lost);
  /// Source thread, assign callback: claims the partitions, loads their state and queues it for
  /// the device thread ahead of their first records; returns where each partition starts.
  std::vector<std::int64_t> take_over(const std::vector<io::topic_partition>& assigned);
  /// Device thread: applies a partition change between two batches.
  void apply_change(partition_change& change);
  /// A checkpoint is durable (and committed): claims below its epochs are released, and a
  /// waiting hand_over() may return.
  void handed_over(const std::vector<kafka_position>& positions, std::uint64_t id);
  /// Records a failure of a callback librdkafka runs (exceptions must not cross it).
  void fail(std::exception_ptr error);
  /// Writer thread: a checkpoint is durable; its Kafka offsets may now be committed.
  void checkpoint_durable(const checkpoint_state& st);
  /// A checkpoint's Kafka positions as the consumer's source offsets.
  std::vector<io::source_offset> consumer_offsets(const source_position_state& source) const;
  /// Device thread, between two batches: cuts a checkpoint. The state is copied out here; the
  /// sink thread adds its positions once every row before the cut is written, and the writer
  /// thread encodes and writes it.
  /// Returns the checkpoint's id (0: none, the sink stage is gone).
  std::uint64_t cut_checkpoint();
  /// Device thread, after a batch: keeps what the next checkpoint needs of it.
  void note_for_checkpoint(const batch_item& item);
  /// `brokers: embedded` anywhere starts one in-process dev broker that both use.
  void start_embedded_broker();
  /// After the stages stopped: commits what became durable (everything, after a complete run
  /// whose sink flushed) and leaves the consumer group.
  void finish_consumer();
  /// Commits the offsets of batches whose effects are durable (dead letters flushed first).
  void commit_durable();
  // ---- source stage -----------------------------------------------------------------------------
  io::host_batch* fresh_batch();
  /// Hands a batch to the device stage. `decode_seconds` < 0: the wall time since fresh_batch().
  bool push_batch(io::host_batch*& batch, clock_type::time_point opened,
                  double decode_seconds = -1);
  /// The offset range of a batch's partition (created at `pos`): Kafka offsets only grow within
  /// a partition, so a range starts at the first row seen and its end is the largest offset.
  /// The reference is valid until the next call.
  static offset_tracker::range& offset_range(std::vector<offset_tracker::range>& ranges,
                                             io::source_position pos);
  /// How long a Kafka poll may wait. librdkafka's batch consume returns only when it has the
  /// messages asked for or the timeout passed, and its records are decoded (and the batch
  /// opened) after it returns: an empty batch polls for half of batch.linger, so that a record
  /// waits at most ~1.5 linger before its batch goes to the device; an open one polls until its
  /// linger is up. At most 100 ms, so that stop requests and commits are seen.
  int poll_timeout_ms(const io::host_batch* batch, clock_type::time_point opened) const;
  /// Whether a non-empty batch opened at `opened` has waited batch.linger.
  bool lingered(const io::host_batch* batch, clock_type::time_point opened) const;
  /// At the end of a source: the last partial batch goes to the device, an empty one to the pool.
  void hand_over_last(io::host_batch*& batch, clock_type::time_point opened,
                      double decode_seconds = -1);
  /// Decodes one record (CSV with `csvd`, else JSON) into the current batch, handing a full batch
  /// to the device and taking a fresh one first when needed; bad records are dead-lettered.
  /// Returns false (batch null) once the pipeline is stopping.
  bool decode_into(std::string_view text, io::source_position pos, io::csv_decoder* csvd,
                   io::json_decoder& json, io::host_batch*& batch, clock_type::time_point& opened,
                   std::string_view key = {});
  void bad_record(std::string_view reason, io::source_position pos, std::string_view text,
                  std::size_t original_bytes = 0);
  std::string source_name() const;
  /// The source and position a dead letter names: for Kafka the topic and (partition, offset),
  /// translated from the row's source-partition id.
  std::pair<std::string, io::source_position> locate(io::source_position pos) const;
  // ---- sources (Kafka, file/stdin lines, synthetic) -------------------------------------------
  void read_kafka();
  void read_source();
  void read_lines();
  void read_synthetic();
  // ---- device stage (the thread that calls run()) ------------------------------------------
  /// The next batch for the device: the one already prefetched, else from the queue.
  std::optional<batch_item> next_item();
  /// Per row of a batch, the frontier of its partition where that is ahead of the table's (empty
  /// when none is: the common case).
  std::span<const std::int64_t> row_frontiers(const io::host_batch& batch);
  void process();
  /// Counts a step's statuses, dead-letters its bad and late rows and queues its rows for the sink
  /// (with the batch's report, when there is a batch).
  void account(step_output&& out, const io::host_batch* batch,
               const batch_report* report = nullptr);
  /// The stats with `bad` (counted on two threads) and `in` filled in: the accounting identity.
  run_stats counted() const;
  state_report state_now();
  void progress(bool final);
  // ---- sink stage -------------------------------------------------------------------------------
  void write_sink();
  const pipeline_config& config_;
  const run_options& options_;
  selected_backend selected_;
  backend_allocator allocator_;
  device_stage stage_;
  // Per output: its sink's router (each row's target, device thread; routed() read by the sink).
  std::vector<router> routers_;
  watermark_tracker watermark_;
  std::vector<std::unique_ptr<io::host_batch>> pool_;
  bounded_queue<io::host_batch*> free_;
  bounded_queue<batch_item> ready_;
  std::optional<batch_item> prefetched_;  // device thread: taken from ready_, being copied
  bounded_queue<sink_item> out_;
  io::dead_letter_writer dead_letter_;
  static constexpr std::uint64_t no_sink_seq = UINT64_MAX;
  /// Watermark at which every window of a batch is emitted: the end of the latest window of its
  /// latest event.
  std::int64_t durable_at(
      const std::vector<std::pair<std::int32_t, std::int64_t>>& partition_max) const;
  std::unique_ptr<io::dev_broker> dev_broker_;  // `brokers: embedded`
  std::string source_brokers_;
  std::vector<std::string> sink_brokers_;  // per output
  // The CSV source's header line (set by the source thread before its first batch): a file that
  // forwarded CSV records starts with it.
  std::string csv_header_;
  std::unique_ptr<io::kafka_consumer> consumer_;  // Kafka source (created by the source thread)
  // Checkpoints (checkpoint section): the store, the writer, the checkpoint restored at start.
  std::unique_ptr<checkpoint_store> store_;
  std::unique_ptr<checkpoint_coordinator> coordinator_;
  std::optional<checkpoint_state> restored_;
  std::unique_ptr<partition_ownership> ownership_;  // shared checkpoint.dir (Kafka source)
  /// Device thread: the owner epoch of every partition whose state this instance holds.
  std::map<std::pair<std::string, std::int32_t>, std::uint64_t> epochs_;
  bool warned_cross_partition_ = false;  // device thread
  /// Device thread: partitions whose emitted-window frontier is ahead of the table's (they moved
  /// here from an instance that was ahead), and the per-row frontiers of a batch built from them.
  std::map<std::int32_t, std::int64_t> partition_frontier_;
  std::vector<std::int64_t> row_frontier_;
  std::mutex handover_mutex_;
  std::condition_variable handover_cv_;
  std::uint64_t handed_over_id_ = 0;      // the newest checkpoint durable (and committed)
  std::vector<pending_bad> pending_bad_;  // source thread: bad records of the open batch
  source_position_state mark_;            // source thread: after the last record handled
  source_position_state last_mark_;       // device thread: after the last batch processed
  // Device thread: dedup entries accepted since the last cut.
  std::shared_ptr<record_log> pending_entries_ = std::make_shared<record_log>();
  std::map<std::pair<std::string, std::int32_t>, std::int64_t> kafka_next_;  // device thread
  std::mutex durable_mutex_;
  std::vector<io::source_offset> durable_offsets_;  // of the newest durable checkpoint
  /// sink.delivery: exactly_once — a transaction per checkpoint, committed by the sink stage.
  bool exactly_once_ = false;
  std::atomic<std::uint64_t> transactions_committed_{0};  // sink thread
  offset_tracker tracker_;
  std::uint64_t sink_seq_ = 0;                 // device thread: next sink item number
  std::uint64_t last_sink_seq_ = no_sink_seq;  // device thread: last sink item queued
  std::atomic<bool> sink_flushed_all_{false};  // the sink stage ended with a final flush
  std::size_t ts_column_ = 0;
  clock_type::time_point fill_begin_;        // source thread: when the current batch was taken
  clock_type::time_point schedule_start_;    // source thread: synthetic pacing's time of event 0
  std::int64_t max_event_time_ = INT64_MIN;  // device thread
  std::atomic<std::uint64_t> bad_{0};
  run_stats stats_;
  bool sent_any_ = false;
  clock_type::time_point last_progress_;
  std::uint64_t last_in_ = 0;
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

}  // namespace trove::host::detail
