/// @file device_loop.cpp
/// @brief The device thread: takes batches through the device stage (kernels), advances the
/// watermark, counts every record once, dead-letters bad and late rows, and queues results for the
/// sink.
#include "host/stages/pipeline_run.hpp"

namespace trove::host::detail {

/// Per row of a batch, its partition's frontier where partitions are ahead of the table (empty
/// otherwise, the common case); partitions the table's frontier has passed are forgotten.
std::span<const std::int64_t> pipeline::row_frontiers(const io::host_batch& batch) {
  const std::int64_t table = stage_.emitted_watermark();
  std::erase_if(partition_frontier_, [&](const auto& p) { return p.second <= table; });
  if (partition_frontier_.empty()) return {};
  row_frontier_.resize(batch.size());
  const io::source_position* pos = batch.positions();
  std::int32_t run = -1;
  std::int64_t frontier = INT64_MIN;
  for (std::size_t row = 0; row < batch.size(); ++row) {
    if (pos[row].partition != run) {  // rows come in runs of one partition
      run = pos[row].partition;
      const auto it = partition_frontier_.find(run);
      frontier = it == partition_frontier_.end() ? INT64_MIN : it->second;
    }
    row_frontier_[row] = frontier;
  }
  return row_frontier_;
}

/// The next batch for the device: the one already prefetched, else from the queue.
std::optional<batch_item> pipeline::next_item() {
  if (prefetched_) {
    std::optional<batch_item> item = std::move(prefetched_);
    prefetched_.reset();
    return item;
  }
  return ready_.pop();
}

void pipeline::process() {
  while (auto item = next_item()) {
    // Where batches are copied to the device (CUDA), the next one's H2D copy starts now on a
    // second stream and overlaps this batch's kernels.
    if (item->change) {
      apply_change(*item->change);
      continue;
    }
    if (!item->end && stage_.uploads() && (prefetched_ = ready_.try_pop()) && !prefetched_->end &&
        prefetched_->batch) {
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
    step_output out = stage_.process(*item->batch, before, after, row_frontiers(*item->batch));
    item->report.device_end = clock_type::now();
    item->report.seq = stats_.batches;
    item->report.h2d_seconds = stage_.timings().h2d;
    item->report.kernel_seconds = stage_.timings().kernels;
    item->report.extract_seconds = stage_.timings().extract;
    item->report.rows_out = 0;
    for (const output_step& step : out.outputs) item->report.rows_out += step.rows.rows;
    account(std::move(out), item->batch, &item->report);
    if (consumer_ && !coordinator_ && last_sink_seq_ != no_sink_seq) {
      tracker_.emitted(after, last_sink_seq_);
    }
    ++stats_.batches;
    if (!warned_cross_partition_ && consumer_ && stage_.cross_partition_rows() > 0) {
      warned_cross_partition_ = true;
      spdlog::warn(
          "input: a group received rows from more than one source partition (counted in "
          "trove_input_cross_partition_rows_total): the topic is not partitioned by the group "
          "key, so with several instances in the group each emits part of such a group; key "
          "the input by a group-by field (e.g. user_id)");
    }
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

namespace {
/// A row as a dead letter shows it: its record as received where the batch keeps records (a
/// forwarding output), else its fields as JSON.
std::string record_text(const io::host_batch& batch, std::uint32_t row) {
  return batch.has_records() ? std::string(batch.record(row)) : io::row_as_json(batch, row);
}
}  // namespace

/// Counts a step's statuses, dead-letters its bad and late rows and queues its rows for the sink
/// (with the batch's report, when there is a batch).
void pipeline::account(step_output&& out, const io::host_batch* batch, const batch_report* report) {
  stats_.accepted += out.status_counts[kernels::status_accepted];
  stats_.duplicate += out.status_counts[kernels::status_duplicate];
  stats_.late += out.status_counts[kernels::status_late];
  stats_.filtered += out.status_counts[kernels::status_filtered];
  bad_.fetch_add(out.status_counts[kernels::status_bad], std::memory_order_relaxed);
  const bool several = !config_.outputs.empty();
  std::uint64_t rows = 0;
  for (std::size_t o = 0; o < out.outputs.size(); ++o) {
    output_step& step = out.outputs[o];
    stats_.windows_emitted += step.windows_emitted;
    stats_.rows_out += step.rows.rows;
    rows += step.rows.rows;
    routers_[o].route(step.rows, batch, step.forwarded_rows);
    if (several) {
      output_stats& s = stats_.outputs[o];
      s.accepted += out.status_counts[kernels::status_accepted];
      s.emitted_into += step.emitted_into;
      s.filtered += step.filtered;
      s.late += step.late;
      s.rows_out += step.rows.rows;
      s.windows_emitted += step.windows_emitted;
    }
  }
  stats_.watermark = watermark_.current(clock_type::now());
  if (batch) {
    for (std::uint32_t row : out.bad_rows) {
      const auto [source, where] = locate(batch->positions()[row]);
      dead_letter_.write(fmt::format("event time out of range [{}, {}] ms", kernels::min_event_time,
                                     kernels::max_event_time),
                         source, where, record_text(*batch, row));
    }
    for (std::size_t o = 0; o < out.outputs.size(); ++o) {
      const std::string of_output =
          several ? fmt::format(" of output '{}'", stage_.outputs()[o].name) : std::string();
      // The watermark the output emitted its windows up to (with `outputs`, its own).
      const std::int64_t watermark = several ? stage_.emitted_watermark(o) : stats_.watermark;
      for (std::uint32_t row : out.outputs[o].late_rows) {
        const auto [source, where] = locate(batch->positions()[row]);
        dead_letter_.write(fmt::format("late: every window{} of the record was already emitted "
                                       "(watermark {})",
                                       of_output, watermark),
                           source, where, record_text(*batch, row));
      }
    }
  }
  // Every batch passes through the sink queue (its report travels with its rows), even
  // without rows; the sink skips empty ones.
  const bool csv =
      std::any_of(stage_.outputs().begin(), stage_.outputs().end(),
                  [](const output_config& o) { return o.sink.format == data_format::csv; });
  if (report || rows > 0 || (csv && !sent_any_)) {
    sent_any_ = true;
    sink_item item;
    item.rows.reserve(out.outputs.size());
    for (output_step& step : out.outputs) item.rows.push_back(std::move(step.rows));
    item.report = report ? *report : batch_report{};
    item.has_report = report != nullptr;
    item.seq = sink_seq_;
    if (out_.push(std::move(item))) last_sink_seq_ = sink_seq_++;
  }
}

/// The stats with `bad` (counted on two threads) and `in` filled in: the accounting identity.
run_stats pipeline::counted() const {
  run_stats s = stats_;
  s.bad = bad_.load();
  s.routes_rewritten = 0;
  for (std::size_t o = 0; o < routers_.size(); ++o) {
    s.routes_rewritten += routers_[o].rewritten();
    if (o < s.outputs.size()) s.outputs[o].routes_rewritten = routers_[o].rewritten();
  }
  s.in = s.accepted + s.duplicate + s.late + s.filtered + s.bad;
  return s;
}

state_report pipeline::state_now() {
  state_report state;
  state.dedup = stage_.dedup_stats();
  state.agg = stage_.agg_stats();
  state.watermark = stats_.watermark;
  state.max_event_time = max_event_time_;
  state.ready_queue_depth = ready_.size();
  state.out_queue_depth = out_.size();
  state.free_buffers = free_.size();
  state.cross_partition_rows = stage_.cross_partition_rows();
  if (coordinator_) {
    const checkpoint_stats cs = coordinator_->stats();
    state.checkpoint.enabled = true;
    state.checkpoint.written = cs.written;
    state.checkpoint.delayed = cs.delayed;
    state.checkpoint.last_id = cs.last_id;
    state.checkpoint.last_bytes = cs.last_bytes;
    state.checkpoint.last_write_seconds = cs.last_write_seconds;
    state.checkpoint.last_cut_seconds = cs.last_cut_seconds;
    state.checkpoint.last_groups = cs.last_groups;
    state.checkpoint.updates_only = cs.group_updates_written;
    state.checkpoint.in_flight = coordinator_->in_flight();
    state.checkpoint.transactional = exactly_once_;
    state.checkpoint.transactions_committed = transactions_committed_total.load();
    state.checkpoint.transactions_aborted = transactions_aborted_total.load();
  }
  return state;
}

void pipeline::progress(bool final) {
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

}  // namespace trove::host::detail
