/// @file partition_moves.cpp
/// @brief State that follows its Kafka partitions between instances sharing checkpoint.dir:
/// on revoke a final checkpoint and the state dropped; on assign the partitions claimed, their
/// newest state loaded and restored before any of their records; fencing of zombies.
///
/// Rebalancing is eager (every rebalance revokes the whole assignment, then assigns the new
/// one), so a change always starts from empty tables: a revoke drops everything after its final
/// checkpoint, and an assignment restores every partition it brings — the ones that stayed with
/// this instance from its own final checkpoint.
#include "host/stages/pipeline_run.hpp"

namespace trove::host::detail {

void pipeline::fail(std::exception_ptr error) {
  {
    std::lock_guard lock(error_mutex_);
    if (!error_) error_ = error;
  }
  stop_flag = true;
  ready_.close();
  free_.close();
  out_.close();
  if (coordinator_) coordinator_->cancel_cut();
}

void pipeline::hand_over(io::host_batch*& batch, clock_type::time_point& opened, bool lost) {
  try {
    const auto begin = clock_type::now();
    // The open batch holds records of the revoked partitions: it goes first.
    if (batch && (batch->size() > 0 || !pending_bad_.empty())) {
      if (!push_batch(batch, opened)) return;
      batch = fresh_batch();
      opened = clock_type::now();
      if (!batch) return;
    }
    auto change = std::make_shared<partition_change>();
    change->revoke = true;
    std::future<std::uint64_t> done = change->done.get_future();
    batch_item item;
    item.change = change;
    if (!ready_.push(std::move(item))) return;
    while (done.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready) {
      if (stop_flag.load()) return;
    }
    const std::uint64_t id = done.get();
    // With checkpoints, no final checkpoint (id 0) means the coordinator had failed (a fenced
    // or failed write) or the run is stopping: nothing is durable, so nothing is committed or
    // announced; the next owner continues from the checkpoint before. (Found under ASan: a
    // zombie whose periodic checkpoint was refused announced "final checkpoint 0 durable".)
    if (coordinator_ && id == 0) return;
    if (id > 0) {
      std::unique_lock lock(handover_mutex_);
      while (handed_over_id_ < id && !stop_flag.load()) {
        handover_cv_.wait_for(lock, std::chrono::milliseconds(50));
      }
      // The run is stopping (the write failed, e.g. fenced): nothing to commit or announce; the
      // next owner continues from the checkpoint before.
      if (handed_over_id_ < id) return;
    }
    commit_durable();
    for (auto* observer : options_.observers) observer->on_partitions_revoked();
    const double seconds = std::chrono::duration<double>(clock_type::now() - begin).count();
    if (id > 0) {
      spdlog::info(
          "kafka: partitions {}: final checkpoint {} durable in {:.3f} s; their state is "
          "dropped here and continues at their next owner",
          lost ? "lost" : "revoked", id, seconds);
    } else {
      spdlog::info("kafka: partitions {}: their state is dropped here ({:.3f} s)",
                   lost ? "lost" : "revoked", seconds);
    }
  } catch (...) {
    fail(std::current_exception());
  }
}

std::vector<std::int64_t> pipeline::take_over(const std::vector<io::topic_partition>& assigned) {
  std::vector<std::int64_t> starts(assigned.size(), io::kafka_default_offset);
  try {
    const auto begin = clock_type::now();
    std::vector<partition_to_load> which;
    for (const auto& tp : assigned) {
      which.push_back({tp.topic, tp.partition, consumer_->source_id_of(tp.topic, tp.partition)});
    }
    auto change = std::make_shared<partition_change>();
    change->state = load_partitions(*ownership_, which,
                                    [this](const checkpoint_state& st) { check_compat(st); });
    std::size_t found = 0;
    for (std::size_t i = 0; i < assigned.size(); ++i) {
      const loaded_partition& p = change->state.partitions[i];
      if (!p.found) continue;
      ++found;
      starts[i] = p.next_offset;
      spdlog::debug("kafka: {}[{}] epoch {}: from member '{}' checkpoint {} at offset {}",
                    p.which.topic, p.which.partition, p.epoch, p.member, p.checkpoint_id,
                    p.next_offset);
    }
    spdlog::info(
        "kafka: took over {} partition(s), {} with state from a checkpoint ({} dedup entries, "
        "{} open groups), in {:.3f} s",
        assigned.size(), found, change->state.entries.size(), change->state.groups.rows,
        std::chrono::duration<double>(clock_type::now() - begin).count());
    batch_item item;
    item.change = std::move(change);
    ready_.push(std::move(item));
  } catch (...) {
    fail(std::current_exception());
  }
  return starts;
}

void pipeline::apply_change(partition_change& change) {
  const auto now = clock_type::now();
  if (change.revoke) {
    std::uint64_t id = 0;
    if (coordinator_ && !stop_flag.load()) {
      coordinator_->wait_idle();
      if (!coordinator_->failed()) id = cut_checkpoint();
    }
    stage_.reset_state();
    watermark_.restore({}, watermark_.high(), now);
    kafka_next_.clear();
    epochs_.clear();
    partition_frontier_.clear();
    pending_entries_ = std::make_shared<record_log>();
    change.done.set_value(id);
    return;
  }
  const partitions_state& ps = change.state;
  // Every partition this instance holds now came with this change (eager rebalancing), so the
  // watermark and the emitted-window frontier are the loaded ones: the lowest of the sources.
  const std::int64_t high = ps.watermark;
  const std::int64_t emitted = ps.emitted_watermark;
  std::vector<kernels::dedup_entry> entries(ps.entries.size());
  auto log = std::make_shared<record_log>();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const dedup_record& r = ps.entries[i];
    entries[i].key = {r.key_hi, r.key_lo};
    entries[i].first_seen = r.first_seen;
    log->emplace() = r;  // the next checkpoint of this chain holds every live entry again
  }
  stage_.reset_state();
  stage_.restore(entries, high, ps.groups, emitted);
  std::vector<watermark_tracker::partition_mark> marks;
  for (const auto& m : ps.marks) marks.push_back({m.partition, m.max_event_time});
  watermark_.restore(marks, high, now);
  partition_frontier_.clear();
  for (const auto& m : ps.marks) {
    max_event_time_ = std::max(max_event_time_, m.max_event_time);
    // A partition whose previous owner was ahead keeps its frontier: rows of windows it emitted
    // there stay late here (row frontiers, until the table's frontier passes it).
    if (m.emitted_frontier > emitted) partition_frontier_[m.partition] = m.emitted_frontier;
  }
  for (const loaded_partition& p : ps.partitions) {
    epochs_[{p.which.topic, p.which.partition}] = p.epoch;
    if (p.found) kafka_next_[{p.which.topic, p.which.partition}] = p.next_offset;
  }
  pending_entries_ = std::move(log);
  // The state was rebuilt: the next checkpoint starts this chain again (its segment holds every
  // live entry), at once, so the previous owners' checkpoints are released soon.
  if (coordinator_) coordinator_->restart_chain();
}

void pipeline::handed_over(const std::vector<kafka_position>& positions, std::uint64_t id) {
  if (ownership_) {
    for (const auto& k : positions) {
      try {
        ownership_->release_older(k.topic, k.partition, k.epoch);
      } catch (const std::exception& e) {
        spdlog::warn("checkpoints: {} (an older claim stays; harmless)", e.what());
      }
    }
  }
  {
    std::lock_guard lock(handover_mutex_);
    handed_over_id_ = std::max(handed_over_id_, id);
  }
  handover_cv_.notify_all();
}

}  // namespace trove::host::detail
