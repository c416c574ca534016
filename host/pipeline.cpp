#include "host/pipeline.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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
#include "host/checkpoint/record_log.hpp"
#include "host/checkpoint/store.hpp"
#include "host/device_select.hpp"
#include "host/device_stage.hpp"
#include "host/offset_tracker.hpp"
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

namespace trove::host {
namespace {

std::atomic<bool> stop_flag{false};       // every stage stops (a request, an error, the end)
std::atomic<bool> stop_requested{false};  // request_stop() was called (a signal)
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
};

/// Result rows travelling from the device stage to the sink, with the report of their batch.
struct sink_item {
  io::result_batch rows;
  batch_report report;
  bool has_report = false;  // false for the rows of the final extraction (no batch)
  std::uint64_t seq = 0;    // 0, 1, 2, ... in queue order (offset commits wait for its flush)
  std::unique_ptr<checkpoint_state> checkpoint;  // a cut: sink positions are taken here
  double cut_seconds = 0;
};

/// Re-encodes a decoded row as JSON (for late records sent to the dead-letter file).
std::string row_as_json(const io::host_batch& batch, std::size_t row) {
  std::string out = "{";
  const auto& fields = batch.schema().fields;
  for (std::size_t c = 0; c < fields.size(); ++c) {
    if (c) out += ',';
    io::append_json_string(out, fields[c].name);
    out += ':';
    if (!batch.is_valid(c, row)) {
      out += "null";
      continue;
    }
    const std::uint64_t v = batch.fixed(c) ? batch.fixed(c)[row] : 0;
    switch (fields[c].type) {
      case io::field_type::string:
        io::append_json_string(out, batch.string_at(c, row));
        break;
      case io::field_type::u64:
        out += fmt::format("{}", v);
        break;
      case io::field_type::f64:
        out += fmt::format("{}", std::bit_cast<double>(v));
        break;
      case io::field_type::boolean:
        out += v ? "true" : "false";
        break;
      default:
        out += fmt::format("{}", static_cast<std::int64_t>(v));
        break;
    }
  }
  out += '}';
  return out;
}

/// Everything one run owns.
class pipeline {
 public:
  pipeline(const pipeline_config& config, const run_options& options)
      : config_(config),
        options_(options),
        selected_(select_backend(config.device)),
        allocator_(*selected_.backend),
        stage_(config, *selected_.backend),
        watermark_(config.window.allowed_lateness_ms, idle_timeout_of(config)),
        free_(config.batch.buffers),
        ready_(config.batch.buffers),
        out_(8),
        dead_letter_(config.dead_letter.path) {
    spdlog::info("device: {} ({})", selected_.backend->description(), selected_.reason);
    for (auto* o : options_.observers) o->on_device_ready(selected_.backend->description());
    for (std::uint32_t i = 0; i < config.batch.buffers; ++i) {
      pool_.push_back(std::make_unique<io::host_batch>(config.schema, config.batch.max_events,
                                                       config.batch.max_string_bytes, allocator_));
      free_.push(pool_.back().get());
    }
    ts_column_ = static_cast<std::size_t>(config.schema.index_of(config.event_time));
    stats_.device = selected_.backend->description();
    exactly_once_ = config.sink.type == sink_type::kafka &&
                    config.sink.kafka.delivery == delivery_mode::exactly_once;
    start_embedded_broker();
    if (config.checkpoint) open_checkpoints();
  }

  /// @brief Transactions the sink committed so far (exactly_once).
  [[nodiscard]] std::uint64_t transactions_committed() const noexcept {
    return transactions_committed_.load();
  }

  run_stats run() {
    const auto start = clock_type::now();
    const std::uint64_t restored_in =
        stats_.accepted + stats_.duplicate + stats_.late + stats_.filtered + bad_.load();
    last_progress_ = start;
    std::thread source([this] { guarded([this] { read_source(); }); });
    std::thread sink([this] { guarded([this] { write_sink(); }); });
    guarded([this] { process(); });
    ready_.close();
    free_.close();
    out_.close();
    source.join();
    sink.join();
    if (coordinator_) {
      coordinator_->wait_idle();  // the final checkpoint
      const checkpoint_stats cs = coordinator_->stats();
      stats_.checkpoints = cs.written;
      stats_.checkpoints_delayed = cs.delayed;
      stats_.checkpoint_bytes = cs.last_bytes;
      stats_.checkpoint_max_cut_seconds = cs.max_cut_seconds;
      stats_.checkpoint_max_write_seconds = cs.max_write_seconds;
      if (cs.written > 0) {
        spdlog::info(
            "checkpoints: {} written ({} delayed by a slow write); last {} bytes; longest "
            "data-path pause {:.3f} s, longest write {:.3f} s",
            cs.written, cs.delayed, cs.last_bytes, cs.max_cut_seconds, cs.max_write_seconds);
      }
    }
    dead_letter_.flush();
    finish_consumer();
    stats_.transactions_committed = transactions_committed_.load();
    if (error_) std::rethrow_exception(error_);
    stats_.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    stats_.events_per_second =
        stats_.seconds > 0 ? static_cast<double>(stats_.in - restored_in) / stats_.seconds : 0;
    stats_.interrupted = stop_flag.load();
    for (auto* o : options_.observers) o->on_finished(stats_);
    return stats_;
  }

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
  static std::int64_t idle_timeout_of(const pipeline_config& config) {
    if (config.source.type != source_type::kafka) return config.window.idle_timeout_ms;
    return std::min(config.window.idle_timeout_ms, config.source.kafka.idle_timeout_ms);
  }

  // ---- checkpoints ------------------------------------------------------------------------------
  /// The configuration whose change makes saved state meaningless, as (key, value) pairs.
  std::vector<std::pair<std::string, std::string>> compat_keys() const {
    auto typed = [&](const std::vector<std::string>& fields) {
      std::string out = "[";
      for (const auto& name : fields) {
        if (out.size() > 1) out += ", ";
        const int c = config_.schema.index_of(name);
        out += name;
        if (c >= 0) {
          const io::field& f = config_.schema.fields[static_cast<std::size_t>(c)];
          out += std::string(":") + io::to_string(f.type) + (f.required ? "" : "?");
        }
      }
      return out + "]";
    };
    std::vector<std::pair<std::string, std::string>> keys;
    keys.emplace_back("source.type", to_string(config_.source.type));
    if (config_.source.type == source_type::file)
      keys.emplace_back("source.path", config_.source.path);
    if (config_.source.type == source_type::kafka) {
      std::string topics;
      for (const auto& t : config_.source.kafka.topics) topics += (topics.empty() ? "" : ",") + t;
      keys.emplace_back("source.topics", topics);
    }
    keys.emplace_back("event_time", typed({config_.event_time}));
    keys.emplace_back("dedup.key", config_.dedup ? typed(config_.dedup->key) : "(none)");
    keys.emplace_back("group_by", typed(config_.group_by));
    std::string aggregates;
    std::vector<std::string> fields;
    for (const auto& a : config_.aggregates) {
      aggregates += (aggregates.empty() ? "" : ", ") + to_string(a);
      if (!a.field.empty()) fields.push_back(a.field);
    }
    keys.emplace_back("aggregates", "[" + aggregates + "] " + typed(fields));
    keys.emplace_back("window.type", to_string(config_.window.type));
    keys.emplace_back("window.size", std::to_string(config_.window.size_ms) + "ms");
    keys.emplace_back("window.slide", std::to_string(config_.window.slide_ms) + "ms");
    return keys;
  }

  /// Opens checkpoint.dir and, when it holds a checkpoint, restores it: state, counters,
  /// watermarks, dead-letter length; the sources and the sink resume from its positions.
  void open_checkpoints() {
    const checkpoint_config& cc = *config_.checkpoint;
    const auto load_begin = clock_type::now();
    store_ = std::make_unique<checkpoint_store>(cc.dir);
    restored_ = store_->load_latest();
    std::uint64_t next_id = 1;
    std::vector<segment_ref> segments;
    if (restored_) {
      const checkpoint_state& st = *restored_;
      for (const auto& [key, value] : compat_keys()) {
        for (const auto& [saved_key, saved] : st.compat) {
          if (saved_key != key || saved == value) continue;
          throw logic_error(fmt::format(
              "{}: the checkpoint in checkpoint.dir '{}' (id {}) was written with {} = {}, but the "
              "configuration now says {}; the saved state means nothing under the new value. "
              "Restore the old value, or start fresh: point checkpoint.dir at an empty directory "
              "(or delete its checkpoint-*.ckpt and dedup-*.seg files)",
              key, cc.dir, st.id, key, saved, value));
        }
      }
      std::vector<kernels::dedup_entry> entries(st.dedup_entries.size());
      for (std::size_t i = 0; i < entries.size(); ++i) {
        const dedup_record& r = st.dedup_entries[i];
        entries[i].key = {r.key_hi, r.key_lo};
        entries[i].first_seen = r.first_seen;
      }
      stage_.restore(entries, st.watermark, st.agg, st.emitted_watermark);
      std::vector<watermark_tracker::partition_mark> marks;
      for (const auto& p : st.partitions) marks.push_back({p.partition, p.max_event_time});
      watermark_.restore(marks, st.watermark, clock_type::now());
      max_event_time_ = st.max_event_time;
      stats_.accepted = st.counters.accepted;
      stats_.duplicate = st.counters.duplicate;
      stats_.late = st.counters.late;
      stats_.filtered = st.counters.filtered;
      bad_ = st.counters.bad;
      stats_.rows_out = st.counters.rows_out;
      stats_.windows_emitted = st.counters.windows_emitted;
      stats_.batches = st.counters.batches;
      stats_.watermark = st.watermark;
      stats_.restored_checkpoint = st.id;
      stats_.restore_seconds =
          std::chrono::duration<double>(clock_type::now() - load_begin).count();
      dead_letter_.truncate_to(st.dead_letter_length);
      mark_ = st.source;
      last_mark_ = st.source;
      for (const auto& k : st.source.kafka) kafka_next_[{k.topic, k.partition}] = k.next_offset;
      next_id = st.id + 1;
      segments = st.segments;
      restored_->dedup_entries.clear();
      restored_->dedup_entries.shrink_to_fit();
      restored_->agg = {};
      spdlog::info(
          "checkpoint {} restored from '{}' in {:.3f} s: {} dedup entries, {} open groups, "
          "watermark {}, {} records counted before it",
          st.id, cc.dir, stats_.restore_seconds, entries.size(), stage_.agg_stats().entries,
          st.watermark, st.counters.in());
    } else {
      // A fresh start owns the sink and dead-letter files as it owns the state: the sink is
      // opened empty ("w"), and so is the dead-letter file. Otherwise the dead letters of a run
      // killed before its first durable checkpoint (flushed by a cut whose checkpoint never
      // became durable) would stay, and this run would write them a second time.
      dead_letter_.truncate_to(0);
      spdlog::info("checkpoints: none in '{}' yet; starting fresh (every {} ms, {} kept)", cc.dir,
                   cc.interval_ms, cc.retain);
    }
    // Checkpoints newer than the one restored were unusable (torn, corrupt) or pending a
    // transaction that never committed: the ids after it start clean.
    store_->discard_newer_than(next_id - 1);
    stage_.collect_new_entries(true);
    coordinator_ = std::make_unique<checkpoint_coordinator>(
        *store_, cc.interval_ms, cc.retain, next_id, std::move(segments),
        [this](const checkpoint_state& st) { checkpoint_durable(st); },
        [this](std::exception_ptr e) {
          {
            std::lock_guard lock(error_mutex_);
            if (!error_) error_ = e;
          }
          stop_flag = true;
        });
  }

  /// Writer thread: a checkpoint is durable; its Kafka offsets may now be committed.
  void checkpoint_durable(const checkpoint_state& st) {
    // exactly_once: the sink's transaction commits these offsets, after this point.
    if (!consumer_ || exactly_once_) return;
    std::vector<io::source_offset> offsets = consumer_offsets(st.source);
    std::lock_guard lock(durable_mutex_);
    durable_offsets_ = std::move(offsets);
  }

  /// A checkpoint's Kafka positions as the consumer's source offsets.
  std::vector<io::source_offset> consumer_offsets(const source_position_state& source) const {
    std::vector<io::source_offset> offsets;
    if (!consumer_) return offsets;
    for (const auto& k : source.kafka) {
      const std::int32_t id = consumer_->source_id_of(k.topic, k.partition);
      if (id >= 0) offsets.push_back({id, k.next_offset});
    }
    return offsets;
  }

  /// Device thread, between two batches: cuts a checkpoint. The state is copied out here; the
  /// sink thread adds its positions once every row before the cut is written, and the writer
  /// thread encodes and writes it.
  void cut_checkpoint() {
    const auto begin = clock_type::now();
    auto st = std::make_unique<checkpoint_state>();
    st->id = coordinator_->begin_cut(begin, watermark_.high(),
                                     config_.dedup ? config_.dedup->ttl_ms : 0, st->segments);
    st->created_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    st->compat = compat_keys();
    st->transaction_pending = exactly_once_;
    st->counters.accepted = stats_.accepted;
    st->counters.duplicate = stats_.duplicate;
    st->counters.late = stats_.late;
    st->counters.filtered = stats_.filtered;
    st->counters.bad = bad_.load();
    st->counters.rows_out = stats_.rows_out;
    st->counters.windows_emitted = stats_.windows_emitted;
    st->counters.batches = stats_.batches;
    st->watermark = watermark_.high();
    st->max_event_time = max_event_time_;
    for (const auto& m : watermark_.partitions()) {
      st->partitions.push_back({m.partition, m.max_event_time});
    }
    st->emitted_watermark = stage_.emitted_watermark();
    st->source = last_mark_;
    st->source.kafka.clear();
    for (const auto& [where, next] : kafka_next_) {
      st->source.kafka.push_back({where.first, where.second, next});
    }
    st->dead_letter_length = dead_letter_.length();
    st->agg = stage_.snapshot_groups();
    // Entries that expired already (first_seen + ttl <= watermark) are never needed again: after
    // a finite input (watermark +inf) the final checkpoint keeps none.
    const std::int64_t ttl = config_.dedup ? config_.dedup->ttl_ms : 0;
    const std::int64_t high = watermark_.high();
    if (high != INT64_MIN && high >= INT64_MIN + ttl) {
      const std::int64_t expired_at_or_before = high - ttl;
      pending_entries_->erase_if(
          [&](const dedup_record& e) { return e.first_seen <= expired_at_or_before; });
    }
    st->new_entries = pending_entries_->spans();
    st->new_entries_owner = std::move(pending_entries_);  // freed once written
    pending_entries_ = std::make_shared<record_log>();
    const double seconds = std::chrono::duration<double>(clock_type::now() - begin).count();
    sink_item item;
    item.checkpoint = std::move(st);
    item.cut_seconds = seconds;
    item.seq = sink_seq_;
    if (out_.push(std::move(item))) {
      last_sink_seq_ = sink_seq_++;
    } else {
      coordinator_->cancel_cut();  // the sink stage is gone (an error stops the run)
    }
  }

  /// Device thread, after a batch: keeps what the next checkpoint needs of it.
  void note_for_checkpoint(const batch_item& item) {
    const auto& entries = stage_.new_entries();
    const io::source_position* pos = item.batch->positions();
    for (const auto& e : entries) {
      pending_entries_->emplace() = {e.first_seen, e.key.hi, e.key.lo, pos[e.row].partition, 0};
    }
    if (consumer_) {
      for (const auto& r : item.offsets) {
        auto& next = kafka_next_[{consumer_->topic_of(r.partition),
                                  io::kafka_consumer::partition_of(r.partition)}];
        next = std::max(next, r.last + 1);
      }
    } else {
      last_mark_ = item.end_mark;
    }
  }

  /// `brokers: embedded` anywhere starts one in-process dev broker that both use.
  void start_embedded_broker() {
    source_brokers_ = config_.source.kafka.brokers;
    sink_brokers_ = config_.sink.kafka.brokers;
    const bool source_embedded =
        config_.source.type == source_type::kafka && source_brokers_ == "embedded";
    const bool sink_embedded = config_.sink.type == sink_type::kafka && sink_brokers_ == "embedded";
    if (!source_embedded && !sink_embedded) return;
    std::vector<io::dev_topic> topics;
    if (source_embedded) {
      for (const auto& topic : config_.source.kafka.topics) topics.push_back({topic, 4});
    }
    if (sink_embedded) topics.push_back({config_.sink.kafka.topic, 4});
    dev_broker_ = std::make_unique<io::dev_broker>(1, topics);
    spdlog::info("embedded dev broker (librdkafka mock cluster) at {}",
                 dev_broker_->bootstrap_servers());
    if (source_embedded) source_brokers_ = dev_broker_->bootstrap_servers();
    if (sink_embedded) sink_brokers_ = dev_broker_->bootstrap_servers();
  }

  /// After the stages stopped: commits what became durable (everything, after a complete run
  /// whose sink flushed) and leaves the consumer group.
  void finish_consumer() {
    if (!consumer_) return;
    if (!coordinator_ && !error_ && sink_flushed_all_ && !stop_flag.load()) {
      tracker_.emitted(INT64_MAX, 0);
    }
    try {
      commit_durable();
    } catch (const std::exception& e) {
      spdlog::warn(
          "kafka: final offset commit failed: {} (records after the last successful "
          "commit are read again at the next start: at-least-once; check the brokers)",
          e.what());
    }
    consumer_->close();
  }

  /// Commits the offsets of batches whose effects are durable (dead letters flushed first).
  void commit_durable() {
    if (!consumer_) return;
    std::vector<io::source_offset> offsets;
    if (coordinator_) {
      // With checkpoints: exactly the offsets of the newest durable checkpoint (they are
      // authoritative on restart; the group's commits are for monitoring).
      std::lock_guard lock(durable_mutex_);
      offsets = std::move(durable_offsets_);
      durable_offsets_.clear();
    } else {
      offsets = tracker_.take_committable();
    }
    if (offsets.empty()) return;
    dead_letter_.flush();
    if (consumer_->commit(offsets)) {
      for (const auto& o : offsets) {
        spdlog::debug("kafka: committed {} at offset {}",
                      consumer_->partition_name(o.source_partition), o.next_offset);
      }
    }
  }

  // ---- source stage -----------------------------------------------------------------------------
  io::host_batch* fresh_batch() {
    auto b = free_.pop();
    if (!b) return nullptr;
    (*b)->clear();
    fill_begin_ = clock_type::now();
    return *b;
  }

  /// Hands a batch to the device stage. `decode_seconds` < 0: the wall time since fresh_batch().
  bool push_batch(io::host_batch*& batch, clock_type::time_point opened,
                  double decode_seconds = -1) {
    batch_item item;
    item.batch = batch;
    item.bad = std::move(pending_bad_);
    pending_bad_.clear();
    item.end_mark = mark_;
    item.report.rows = batch->size();
    item.report.opened = opened;
    item.report.closed = clock_type::now();
    item.report.schedule_start = schedule_start_;
    item.report.decode_seconds =
        decode_seconds >= 0
            ? decode_seconds
            : std::chrono::duration<double>(item.report.closed - fill_begin_).count();
    if (batch->size() > 0) {
      item.report.partition_first = batch->positions()[0].partition;
      item.report.offset_first = batch->positions()[0].offset;
      item.report.offset_last = batch->positions()[batch->size() - 1].offset;
      const auto* ts = reinterpret_cast<const std::int64_t*>(batch->fixed(ts_column_));
      const auto* pos = batch->positions();
      offset_tracker::range* range = nullptr;  // Kafka: offsets of the current run's partition
      for (std::size_t row = 0; row < batch->size(); ++row) {
        const std::int32_t p = pos[row].partition;
        // Rows come in runs of one partition: per-partition work happens once per run.
        if (item.partition_max.empty() || item.partition_max.back().first != p) {
          item.partition_max.emplace_back(p, INT64_MIN);
          if (consumer_) range = &offset_range(item.offsets, pos[row]);
        }
        // A row that ends bad (event time out of range) never moves a watermark: only good rows
        // count. Its partition still delivered, so it is not idle.
        const std::int64_t t = ts[row];
        if (t >= kernels::min_event_time && t <= kernels::max_event_time &&
            t > item.partition_max.back().second) {
          item.partition_max.back().second = t;
        }
        if (range) range->last = std::max(range->last, pos[row].offset);
      }
    }
    if (consumer_) {
      // Bad records move the partition's offset on too (they are dead-lettered with the batch).
      for (const pending_bad& b : item.bad) {
        auto& r = offset_range(item.offsets, b.position);
        r.last = std::max(r.last, b.position.offset);
      }
      item.assigned = consumer_->take_new_assignments();
      if (!options_.observers.empty()) {
        item.report.offsets.reserve(item.offsets.size());
        for (const auto& r : item.offsets) {
          item.report.offsets.push_back({r.partition, r.first, r.last});
        }
      }
    }
    batch = nullptr;
    return ready_.push(std::move(item));
  }

  /// The offset range of a batch's partition (created at `pos`): Kafka offsets only grow within
  /// a partition, so a range starts at the first row seen and its end is the largest offset.
  /// The reference is valid until the next call.
  static offset_tracker::range& offset_range(std::vector<offset_tracker::range>& ranges,
                                             io::source_position pos) {
    for (auto& r : ranges) {
      if (r.partition == pos.partition) return r;
    }
    return ranges.emplace_back(offset_tracker::range{pos.partition, pos.offset, pos.offset});
  }

  /// How long a Kafka poll may wait. librdkafka's batch consume returns only when it has the
  /// messages asked for or the timeout passed, and its records are decoded (and the batch
  /// opened) after it returns: an empty batch polls for half of batch.linger, so that a record
  /// waits at most ~1.5 linger before its batch goes to the device; an open one polls until its
  /// linger is up. At most 100 ms, so that stop requests and commits are seen.
  int poll_timeout_ms(const io::host_batch* batch, clock_type::time_point opened) const {
    const std::int64_t linger = config_.batch.linger_ms;
    std::int64_t wait = linger / 2;
    if (batch->size() > 0) {
      const auto waited =
          std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - opened);
      wait = linger - waited.count();
    }
    return static_cast<int>(std::clamp<std::int64_t>(wait, 1, 100));
  }

  /// Whether a non-empty batch opened at `opened` has waited batch.linger.
  bool lingered(const io::host_batch* batch, clock_type::time_point opened) const {
    return batch->size() > 0 &&
           clock_type::now() - opened >= std::chrono::milliseconds(config_.batch.linger_ms);
  }

  /// At the end of a source: the last partial batch goes to the device, an empty one to the pool.
  void hand_over_last(io::host_batch*& batch, clock_type::time_point opened,
                      double decode_seconds = -1) {
    if (!batch) return;
    if (batch->size() > 0 || !pending_bad_.empty()) {
      push_batch(batch, opened, decode_seconds);
    } else {
      free_.push(batch);
    }
  }

  /// Decodes one record (CSV with `csvd`, else JSON) into the current batch, handing a full batch
  /// to the device and taking a fresh one first when needed; bad records are dead-lettered.
  /// Returns false (batch null) once the pipeline is stopping.
  bool decode_into(std::string_view text, io::source_position pos, io::csv_decoder* csvd,
                   io::json_decoder& json, io::host_batch*& batch, clock_type::time_point& opened) {
    auto decode = [&] {
      return csvd ? csvd->decode(text, *batch, pos) : json.decode(text, *batch, pos);
    };
    if (batch->size() == 0) opened = clock_type::now();
    auto r = decode();
    if (r.status == io::decode_status::batch_full) {
      if (!push_batch(batch, opened) || !(batch = fresh_batch())) return false;
      opened = clock_type::now();
      r = decode();
    }
    if (r.status == io::decode_status::bad) {
      bad_record(r.reason, pos, text);
    } else if (r.status == io::decode_status::batch_full) {
      bad_record("record does not fit an empty batch (raise batch.max_string_bytes)", pos, text);
    }
    return true;
  }

  void bad_record(std::string_view reason, io::source_position pos, std::string_view text,
                  std::size_t original_bytes = 0) {
    if (!options_.strict) {
      // Counted and dead-lettered by the device thread with the batch it belongs to.
      pending_bad_.push_back({std::string(reason), pos, std::string(text), original_bytes});
      return;
    }
    bad_.fetch_add(1, std::memory_order_relaxed);
    const auto [source, where] = locate(pos);
    dead_letter_.write(reason, source, where, text, original_bytes);
    {
      const std::string at = consumer_ ? fmt::format("{}[{}]", source, where.partition) : source;
      throw std::runtime_error(
          fmt::format("bad record at {}:{} ({}) and --strict is set", at, where.offset, reason));
    }
  }

  std::string source_name() const {
    return config_.source.type == source_type::file        ? config_.source.path
           : config_.source.type == source_type::synthetic ? "synthetic"
                                                           : "stdin";
  }

  /// The source and position a dead letter names: for Kafka the topic and (partition, offset),
  /// translated from the row's source-partition id.
  std::pair<std::string, io::source_position> locate(io::source_position pos) const {
    if (!consumer_) return {source_name(), pos};
    return {consumer_->topic_of(pos.partition),
            {io::kafka_consumer::partition_of(pos.partition), pos.offset}};
  }

  // ---- Kafka source
  // -------------------------------------------------------------------------------
  void read_kafka() {
    const auto& k = config_.source.kafka;
    io::kafka_consumer_options co;
    co.brokers = source_brokers_;
    co.topics = k.topics;
    co.group_id = k.group_id;
    co.start = k.start == kafka_start::earliest ? io::kafka_start_from::earliest
               : k.start == kafka_start::latest ? io::kafka_start_from::latest
                                                : io::kafka_start_from::committed;
    co.exit_at_end = k.exit_at_end;
    co.properties = k.properties;
    // A checkpoint's offsets are authoritative: a partition starts there, whatever was committed.
    for (const auto& [where, next] : kafka_next_) co.resume_offsets[where] = next;
    try {
      consumer_ = std::make_unique<io::kafka_consumer>(co);
    } catch (const std::invalid_argument& e) {
      throw logic_error(e.what());
    }
    // Before partitions move to another member, commit what is durable: the new owner then
    // re-reads as little as possible.
    consumer_->on_revoke([this] { commit_durable(); });
    const bool csv = config_.source.format == data_format::csv;
    io::json_decoder json(config_.schema, config_.source.max_record_bytes);
    io::csv_decoder csvd(config_.schema, config_.source.max_record_bytes);
    if (csv) {
      // A message is one CSV record without a header: fields in schema order.
      std::string header;
      for (const auto& field : config_.schema.fields) {
        if (!header.empty()) header += ',';
        header += field.name;
      }
      const auto r = csvd.set_header(header);
      if (!r.ok()) throw logic_error("CSV header from the schema: " + r.reason);
    }
    io::host_batch* batch = fresh_batch();
    auto opened = clock_type::now();
    auto last_commit = clock_type::now();
    bool announced = false;
    const std::uint64_t max_bytes = config_.source.max_record_bytes;
    auto handle = [&](const io::kafka_record& record) {
      if (!batch) return;
      if (record.payload.empty()) {
        bad_record("empty message", record.position, record.payload);
        return;
      }
      if (record.payload.size() > max_bytes) {
        bad_record(fmt::format("record too long: {} bytes > max_record_bytes ({})",
                               record.payload.size(), max_bytes),
                   record.position, record.payload.substr(0, max_bytes), record.payload.size());
        return;
      }
      if (!decode_into(record.payload, record.position, csv ? &csvd : nullptr, json, batch,
                       opened)) {
        return;
      }
      if (batch->full()) {
        if (!push_batch(batch, opened))
          batch = nullptr;
        else
          batch = fresh_batch();
      }
    };
    while (batch && !stop_flag.load(std::memory_order_relaxed)) {
      const std::size_t room = std::max<std::size_t>(1, batch->capacity() - batch->size());
      consumer_->poll(std::min<std::size_t>(room, 65'536), poll_timeout_ms(batch, opened), handle);
      if (!batch) return;
      if (!announced && consumer_->assigned()) {
        announced = true;
        for (auto* observer : options_.observers) observer->on_source_ready();
      }
      if (lingered(batch, opened)) {
        if (!push_batch(batch, opened) || !(batch = fresh_batch())) return;
      }
      const auto now = clock_type::now();
      if (now - last_commit >= std::chrono::seconds(1)) {
        last_commit = now;
        commit_durable();
        if (!options_.observers.empty()) {
          for (const auto& lag : consumer_->lags()) {
            for (auto* observer : options_.observers) {
              observer->on_partition_lag(lag.topic, lag.partition, lag.lag);
            }
          }
        }
      }
      if (k.exit_at_end && consumer_->at_end()) break;
    }
    hand_over_last(batch, opened);
  }

  void read_source() {
    if (config_.source.type == source_type::synthetic) {
      read_synthetic();
    } else if (config_.source.type == source_type::file ||
               config_.source.type == source_type::stdin_stream) {
      read_lines();
    } else {
      read_kafka();
    }
    // Only an exhausted input moves the watermark to +infinity; a stopped one must not emit its
    // open (partial) windows as final.
    batch_item end;
    end.end = true;
    end.interrupted = stop_flag.load();
    ready_.push(std::move(end));
  }

  void read_lines() {
    io::line_reader_options lo;
    lo.max_line_bytes = config_.source.max_record_bytes;
    lo.cancel = &stop_flag;  // a signal or an error elsewhere ends a blocked read of stdin
    io::line_reader reader(config_.source.type == source_type::file ? config_.source.path : "-",
                           lo);
    const bool csv = config_.source.format == data_format::csv;
    io::json_decoder json(config_.schema, config_.source.max_record_bytes);
    io::csv_decoder csvd(config_.schema, config_.source.max_record_bytes);
    if (restored_ && restored_->source.file_line > 0) {
      if (csv) {  // the header lies before the checkpoint's position: read it first
        io::line_reader head(config_.source.path, lo);
        io::line first;
        while (head.next(first)) {
          if (first.text.find_first_not_of(" \t\r") == std::string_view::npos) continue;
          const auto r = csvd.set_header(first.text);
          if (!r.ok()) throw logic_error("CSV header of " + source_name() + ": " + r.reason);
          break;
        }
      }
      reader.resume_at(restored_->source.file_offset, restored_->source.file_line);
      spdlog::info("source: resuming '{}' at line {} (byte {})", config_.source.path,
                   restored_->source.file_line + 1, restored_->source.file_offset);
    }
    for (auto* observer : options_.observers) observer->on_source_ready();
    io::host_batch* batch = fresh_batch();
    auto opened = clock_type::now();
    io::line line;
    std::uint64_t since_check = 0;
    // mark_: the position after the last line handled (in a batch, pending, or skipped); a batch
    // handed over before the current line is decoded ends there.
    auto handled = [&] {
      mark_.file_offset = reader.offset();
      mark_.file_line = reader.line_number();
    };
    while (batch && !stop_flag.load(std::memory_order_relaxed)) {
      if (!reader.next(line)) {
        if (!reader.idle()) break;  // end of input
        // A quiet pipe: a batch that has waited for `linger` goes to the device now, so results
        // keep flowing when the producer is slow.
        if (lingered(batch, opened)) {
          if (!push_batch(batch, opened) || !(batch = fresh_batch())) return;
        }
        continue;
      }
      const io::source_position pos{0, static_cast<std::int64_t>(line.number)};
      // Blank lines (empty or only whitespace) are not records.
      if (line.text.find_first_not_of(" \t\r") == std::string_view::npos) {
        handled();
        continue;
      }
      if (csv && !csvd.has_header()) {
        const auto r = csvd.set_header(line.text);
        if (!r.ok()) throw logic_error("CSV header of " + source_name() + ": " + r.reason);
        handled();
        continue;
      }
      if (line.overlong()) {
        bad_record(fmt::format("record too long: {} bytes > max_record_bytes ({})", line.length,
                               config_.source.max_record_bytes),
                   pos, line.text, line.length);
        handled();
        continue;
      }
      if (!decode_into(line.text, pos, csv ? &csvd : nullptr, json, batch, opened)) return;
      handled();
      if (batch->full() || (++since_check % 1024 == 0 && lingered(batch, opened))) {
        if (!push_batch(batch, opened) || !(batch = fresh_batch())) return;
      }
    }
    hand_over_last(batch, opened);
  }

  void read_synthetic() {
    const io::synthetic_options o = to_synthetic_options(config_.source.synthetic);
    io::synthetic_generator gen(o);
    // Resuming: the events before the checkpoint are generated again and dropped (same seed, same
    // events); pacing counts from here.
    const std::uint64_t resumed = restored_ ? restored_->source.generated : 0;
    if (resumed > 0) gen.skip(resumed);
    mark_.generated = resumed;
    for (auto* observer : options_.observers) observer->on_source_ready();
    const auto start = clock_type::now();
    schedule_start_ = start;
    double fill_seconds = 0;  // generator time of the current batch (pacing sleeps excluded)
    io::host_batch* batch = fresh_batch();
    auto opened = clock_type::now();
    while (batch && !gen.done() && !stop_flag.load(std::memory_order_relaxed)) {
      std::size_t room = batch->capacity() - batch->size();
      if (o.rate > 0) {  // pace to the offered rate: never run ahead of the schedule
        const double elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
        const auto due = static_cast<std::uint64_t>(elapsed * o.rate) + 1;
        const std::uint64_t produced = gen.produced() - resumed;
        const std::uint64_t ahead = due > produced ? due - produced : 0;
        room = std::min<std::size_t>(room, ahead);
        if (room == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      if (room > 0) {
        const auto fill_start = clock_type::now();
        if (batch->size() == 0) opened = fill_start;
        gen.fill(*batch, room);
        mark_.generated = gen.produced();
        fill_seconds += std::chrono::duration<double>(clock_type::now() - fill_start).count();
      }
      if (batch->full() || lingered(batch, opened)) {
        if (!push_batch(batch, opened, fill_seconds) || !(batch = fresh_batch())) return;
        fill_seconds = 0;
      }
    }
    hand_over_last(batch, opened, fill_seconds);
  }

  // ---- device stage (this thread) ---------------------------------------------------------------
  /// The next batch for the device: the one already prefetched, else from the queue.
  std::optional<batch_item> next_item() {
    if (prefetched_) {
      std::optional<batch_item> item = std::move(prefetched_);
      prefetched_.reset();
      return item;
    }
    return ready_.pop();
  }

  void process() {
    while (auto item = next_item()) {
      // Where batches are copied to the device (CUDA), the next one's H2D copy starts now on a
      // second stream and overlaps this batch's kernels.
      if (!item->end && stage_.uploads() && (prefetched_ = ready_.try_pop()) && !prefetched_->end) {
        stage_.prefetch(*prefetched_->batch);
      }
      const auto now = clock_type::now();
      item->report.ready_queue_depth = ready_.size();
      item->report.device_begin = now;
      if (item->end) {
        if (!item->interrupted) {
          watermark_.finish();
          account(stage_.close_windows(watermark_.current(now)), nullptr);
        }
        break;
      }
      // A revoked partition is not forgotten here: if it comes back, records it still holds must
      // not be late; if it moved for good, idle_timeout releases the watermark.
      for (std::int32_t partition : item->assigned) watermark_.expect(partition, now);
      const std::int64_t before = watermark_.current(now);
      for (const auto& [partition, max_ts] : item->partition_max) {
        watermark_.observe(partition, max_ts, now);
        if (max_ts > max_event_time_) max_event_time_ = max_ts;
      }
      const std::int64_t after = watermark_.current(now);
      // The source's bad records of this batch, in order, before its rows' own dead letters.
      for (const pending_bad& b : item->bad) {
        const auto [source, where] = locate(b.position);
        dead_letter_.write(b.reason, source, where, b.text, b.original_bytes);
      }
      bad_.fetch_add(item->bad.size(), std::memory_order_relaxed);
      if (consumer_ && !coordinator_) {
        tracker_.add(item->offsets, durable_at(item->partition_max));
      }
      step_output out = stage_.process(*item->batch, before, after);
      item->report.device_end = clock_type::now();
      item->report.seq = stats_.batches;
      item->report.h2d_seconds = stage_.timings().h2d;
      item->report.kernel_seconds = stage_.timings().kernels;
      item->report.extract_seconds = stage_.timings().extract;
      item->report.rows_out = out.rows.rows;
      account(std::move(out), item->batch, &item->report);
      if (consumer_ && !coordinator_ && last_sink_seq_ != no_sink_seq) {
        tracker_.emitted(after, last_sink_seq_);
      }
      ++stats_.batches;
      if (coordinator_) {
        note_for_checkpoint(*item);
        if (coordinator_->due(clock_type::now())) cut_checkpoint();
      }
      free_.push(item->batch);
      progress(false);
      if (!options_.observers.empty()) {
        const run_stats now_stats = counted();
        const state_report state = state_now();
        for (auto* o : options_.observers) o->on_progress(now_stats, state);
      }
    }
    if (stop_flag.load()) {
      // Interrupted: windows the watermark already closed are emitted; open ones are not (they
      // would be partial). Without checkpoints their state is lost; say so.
      account(stage_.close_windows(watermark_.current(clock_type::now())), nullptr);
      stats_.open_groups = stage_.agg_stats().entries;
      if (stats_.open_groups) {
        spdlog::warn(
            "stopped before the end of the input: {} open groups of windows not yet "
            "closed by the watermark were not emitted (their offsets are not committed, so a "
            "Kafka source re-reads them at the next start; a finite input run to its end, or "
            "source.exit_at_end, emits every window)",
            stats_.open_groups);
      }
    }
    bool failed = false;
    {
      std::lock_guard lock(error_mutex_);
      failed = error_ != nullptr;
    }
    if (coordinator_ && !failed) {
      // The final cut: a restart continues exactly here (after a complete input: emits nothing
      // again; after a signal: the open windows continue).
      coordinator_->wait_idle();
      cut_checkpoint();
    }
    stats_ = counted();
    progress(true);
    if (!options_.observers.empty()) {
      const state_report state = state_now();
      for (auto* o : options_.observers) o->on_progress(stats_, state);
    }
  }

  /// Counts a step's statuses, dead-letters its bad and late rows and queues its rows for the sink
  /// (with the batch's report, when there is a batch).
  void account(step_output&& out, const io::host_batch* batch,
               const batch_report* report = nullptr) {
    stats_.accepted += out.status_counts[kernels::status_accepted];
    stats_.duplicate += out.status_counts[kernels::status_duplicate];
    stats_.late += out.status_counts[kernels::status_late];
    stats_.filtered += out.status_counts[kernels::status_filtered];
    bad_.fetch_add(out.status_counts[kernels::status_bad], std::memory_order_relaxed);
    stats_.windows_emitted += out.windows_emitted;
    stats_.rows_out += out.rows.rows;
    stats_.watermark = watermark_.current(clock_type::now());
    if (batch) {
      for (std::uint32_t row : out.bad_rows) {
        const auto [source, where] = locate(batch->positions()[row]);
        dead_letter_.write(fmt::format("event time out of range [{}, {}] ms",
                                       kernels::min_event_time, kernels::max_event_time),
                           source, where, row_as_json(*batch, row));
      }
      for (std::uint32_t row : out.late_rows) {
        const auto [source, where] = locate(batch->positions()[row]);
        dead_letter_.write(fmt::format("late: every window of the record was already emitted "
                                       "(watermark {})",
                                       stats_.watermark),
                           source, where, row_as_json(*batch, row));
      }
    }
    // Every batch passes through the sink queue (its report travels with its rows), even
    // without rows; the sink skips empty ones.
    if (report || out.rows.rows > 0 || (config_.sink.format == data_format::csv && !sent_any_)) {
      sent_any_ = true;
      sink_item item{std::move(out.rows), report ? *report : batch_report{}, report != nullptr,
                     sink_seq_};
      if (out_.push(std::move(item))) last_sink_seq_ = sink_seq_++;
    }
  }

  /// The stats with `bad` (counted on two threads) and `in` filled in: the accounting identity.
  run_stats counted() const {
    run_stats s = stats_;
    s.bad = bad_.load();
    s.in = s.accepted + s.duplicate + s.late + s.filtered + s.bad;
    return s;
  }

  state_report state_now() {
    state_report state;
    state.dedup = stage_.dedup_stats();
    state.agg = stage_.agg_stats();
    state.watermark = stats_.watermark;
    state.max_event_time = max_event_time_;
    state.ready_queue_depth = ready_.size();
    state.out_queue_depth = out_.size();
    state.free_buffers = free_.size();
    if (coordinator_) {
      const checkpoint_stats cs = coordinator_->stats();
      state.checkpoint.enabled = true;
      state.checkpoint.written = cs.written;
      state.checkpoint.delayed = cs.delayed;
      state.checkpoint.last_id = cs.last_id;
      state.checkpoint.last_bytes = cs.last_bytes;
      state.checkpoint.last_write_seconds = cs.last_write_seconds;
      state.checkpoint.last_cut_seconds = cs.last_cut_seconds;
      state.checkpoint.in_flight = coordinator_->in_flight();
    }
    return state;
  }

  void progress(bool final) {
    if (options_.quiet) return;
    const auto now = clock_type::now();
    if (!final && now - last_progress_ < std::chrono::milliseconds(config_.progress_interval_ms)) {
      return;
    }
    const double seconds = std::chrono::duration<double>(now - last_progress_).count();
    const std::uint64_t in = stats_.accepted + stats_.duplicate + stats_.late + stats_.filtered +
                             bad_.load(std::memory_order_relaxed);
    if (!final) {
      spdlog::info(
          "in {} (+{:.0f}/s)  accepted {}  duplicate {}  late {}  bad {}  rows out {}  "
          "watermark {}",
          in, seconds > 0 ? static_cast<double>(in - last_in_) / seconds : 0.0, stats_.accepted,
          stats_.duplicate, stats_.late, bad_.load(), stats_.rows_out, stats_.watermark);
    }
    last_progress_ = now;
    last_in_ = in;
  }

  // ---- sink stage -------------------------------------------------------------------------------
  void write_sink() {
    io::result_sink_options so;
    so.kind = config_.sink.type == sink_type::kafka  ? io::sink_kind::kafka
              : config_.sink.type == sink_type::file ? io::sink_kind::file
                                                     : io::sink_kind::stdout_stream;
    so.csv = config_.sink.format == data_format::csv;
    so.path = config_.sink.path;
    so.kafka.brokers = sink_brokers_;  // `embedded` resolved
    so.kafka.topic = config_.sink.kafka.topic;
    so.kafka.properties = config_.sink.kafka.properties;
    so.key_columns = config_.sink.kafka.key;
    if (restored_) so.resume_length = restored_->sink_length;
    so.durable = coordinator_ != nullptr;
    if (exactly_once_) {
      const auto set = so.kafka.properties.find("transactional.id");
      so.kafka.transactional_id =
          set != so.kafka.properties.end() ? set->second : "trove-" + config_.source.kafka.group_id;
      so.kafka.properties.erase("transactional.id");
      // A transaction stays open for one checkpoint interval (more when a write is slow): the
      // broker must not time it out first.
      so.kafka.transaction_timeout_ms = static_cast<int>(std::min<std::int64_t>(
          std::max<std::int64_t>(60'000, 3 * config_.checkpoint->interval_ms), 15 * 60'000));
      spdlog::info(
          "sink: exactly-once, one Kafka transaction per checkpoint (transactional.id "
          "'{}')",
          so.kafka.transactional_id);
    }
    std::unique_ptr<io::result_sink> opened;
    try {
      opened = std::make_unique<io::result_sink>(so);
    } catch (const std::invalid_argument& e) {
      throw logic_error(e.what());
    }
    io::result_sink& sink = *opened;
    while (auto item = out_.pop()) {
      if (item->checkpoint) {
        // Every row before the cut is written: make it (and the dead letters) durable, then the
        // writer thread makes the checkpoint durable.
        sink.flush();
        sink.sync();
        dead_letter_.sync();
        item->checkpoint->sink_length = sink.length();
        const std::uint64_t id = item->checkpoint->id;
        std::vector<io::source_offset> offsets;
        if (exactly_once_) offsets = consumer_offsets(item->checkpoint->source);
        coordinator_->submit(std::move(item->checkpoint), item->cut_seconds);
        tracker_.flushed(item->seq);
        if (exactly_once_) {
          // The rows since the previous checkpoint commit only once this checkpoint, which
          // continues after them, is durable; until then it is pending (never restored).
          coordinator_->wait_idle();
          if (coordinator_->failed()) return;  // the run stops with the write's error
          sink.commit(offsets, consumer_.get());
          store_->mark_committed(id);
          transactions_committed_.fetch_add(1);
        }
        continue;
      }
      auto& report = item->report;
      report.out_queue_depth = out_.size();
      sink.write(item->rows, report.encode_seconds, report.sink_seconds);
      // Results leave the process as soon as nothing else is waiting: a downstream reader of a
      // slow stream sees each batch's rows then, not when a stdio buffer happens to fill.
      if (out_.size() == 0) {
        const auto begin = clock_type::now();
        sink.flush();
        report.sink_seconds += std::chrono::duration<double>(clock_type::now() - begin).count();
        tracker_.flushed(item->seq);
      }
      if (item->has_report) {
        report.sink_done = clock_type::now();
        report.result_rows = &item->rows;
        for (auto* o : options_.observers) o->on_batch(report);
        report.result_rows = nullptr;
      }
    }
    sink.flush();
    sink_flushed_all_ = true;
  }

  const pipeline_config& config_;
  const run_options& options_;
  selected_backend selected_;
  backend_allocator allocator_;
  device_stage stage_;
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
      const std::vector<std::pair<std::int32_t, std::int64_t>>& partition_max) const {
    std::int64_t latest = INT64_MIN;
    for (const auto& [partition, max_ts] : partition_max) latest = std::max(latest, max_ts);
    if (latest == INT64_MIN) return INT64_MIN;
    // Out-of-range event times are bad rows (classify): they never close, so the batch becomes
    // committable only at the end of the input.
    if (latest < kernels::min_event_time || latest > kernels::max_event_time) return INT64_MAX;
    const kernels::window_spec window{config_.window.size_ms,
                                      config_.window.type == window_type::hopping
                                          ? config_.window.slide_ms
                                          : config_.window.size_ms};
    return window.last_start(latest) + window.size_ms;  // is_late's window end
  }

  std::unique_ptr<io::dev_broker> dev_broker_;  // `brokers: embedded`
  std::string source_brokers_;
  std::string sink_brokers_;
  std::unique_ptr<io::kafka_consumer> consumer_;  // Kafka source (created by the source thread)
  // Checkpoints (checkpoint section): the store, the writer, the checkpoint restored at start.
  std::unique_ptr<checkpoint_store> store_;
  std::unique_ptr<checkpoint_coordinator> coordinator_;
  std::optional<checkpoint_state> restored_;
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
  clock_type::time_point fill_begin_;
  clock_type::time_point schedule_start_;  // source thread: synthetic pacing's time of event 0
  std::int64_t max_event_time_ =
      INT64_MIN;  // device thread  // source thread: when the current batch was taken
  std::atomic<std::uint64_t> bad_{0};
  run_stats stats_;
  bool sent_any_ = false;
  clock_type::time_point last_progress_;
  std::uint64_t last_in_ = 0;
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

}  // namespace

void request_stop() noexcept {
  stop_requested.store(true);
  stop_flag.store(true);
}

std::string run_stats::to_json() const {
  std::string device_json;
  io::append_json_string(device_json, device);
  return fmt::format(
      "{{\"in\":{},\"accepted\":{},\"duplicate\":{},\"late\":{},\"filtered\":{},\"bad\":{},"
      "\"rows_out\":{},\"windows_emitted\":{},\"batches\":{},\"seconds\":{:.6f},"
      "\"events_per_second\":{:.1f},\"device\":{},\"watermark\":{},\"open_groups\":{},"
      "\"interrupted\":{},\"checkpoints\":{},\"restored_checkpoint\":{},"
      "\"restore_seconds\":{:.6f},\"checkpoints_delayed\":{},\"checkpoint_bytes\":{},"
      "\"checkpoint_max_cut_seconds\":{:.6f},\"checkpoint_max_write_seconds\":{:.6f},"
      "\"transactions_committed\":{},\"transactions_aborted\":{}}}",
      in, accepted, duplicate, late, filtered, bad, rows_out, windows_emitted, batches, seconds,
      events_per_second, device_json, watermark, open_groups, interrupted ? "true" : "false",
      checkpoints, restored_checkpoint, restore_seconds, checkpoints_delayed, checkpoint_bytes,
      checkpoint_max_cut_seconds, checkpoint_max_write_seconds, transactions_committed,
      transactions_aborted);
}

run_stats run_pipeline(const pipeline_config& config, const run_options& options) {
  stop_requested = false;
  // exactly_once: an aborted transaction discarded the rows since the last committed
  // checkpoint; the run starts again from that checkpoint (state, offsets, dead letters), so
  // they are produced once more, in a new transaction. A producer that is fenced, or aborts
  // that keep coming without a commit in between, end the run.
  constexpr int max_aborts_in_a_row = 5;
  std::uint64_t aborted = 0;
  int in_a_row = 0;
  for (;;) {
    stop_flag = false;
    std::uint64_t committed = 0;
    try {
      pipeline p(config, options);
      try {
        run_stats stats = p.run();
        stats.transactions_aborted = aborted;
        return stats;
      } catch (const io::kafka_transaction_error&) {
        committed = p.transactions_committed();
        throw;
      }
    } catch (const io::kafka_transaction_error& e) {
      const bool embedded =
          config.source.type == source_type::kafka && config.source.kafka.brokers == "embedded";
      in_a_row = committed > 0 ? 1 : in_a_row + 1;
      if (!e.abortable() || stop_requested.load() || embedded || in_a_row > max_aborts_in_a_row) {
        throw;
      }
      ++aborted;
      spdlog::warn("{}; starting again from the last committed checkpoint ({} aborted so far)",
                   e.what(), aborted);
    }
  }
}

}  // namespace trove::host
