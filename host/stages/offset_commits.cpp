/// @file offset_commits.cpp
/// @brief Kafka offset commits: only offsets whose effects are durable (a durable checkpoint, or
/// without checkpoints the emitted and flushed results) are committed.
#include "host/stages/pipeline_run.hpp"

namespace trove::host::detail {

/// After the stages stopped: commits what became durable (everything, after a complete run
/// whose sink flushed) and leaves the consumer group.
void pipeline::finish_consumer() {
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
void pipeline::commit_durable() {
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

/// Watermark at which every window of a batch is emitted: the end of the latest window of its
/// latest event.
std::int64_t pipeline::durable_at(
    const std::vector<std::pair<std::int32_t, std::int64_t>>& partition_max) const {
  std::int64_t latest = INT64_MIN;
  for (const auto& [partition, max_ts] : partition_max) latest = std::max(latest, max_ts);
  if (latest == INT64_MIN) return INT64_MIN;
  // Out-of-range event times are bad rows (classify): they never close, so the batch becomes
  // committable only at the end of the input.
  if (latest < kernels::min_event_time || latest > kernels::max_event_time) return INT64_MAX;
  if (config_.outputs.empty()) {
    const kernels::window_spec window{config_.window.size_ms,
                                      config_.window.type == window_type::hopping
                                          ? config_.window.slide_ms
                                          : config_.window.size_ms};
    return window.last_start(latest) + window.size_ms;  // is_late's window end
  }
  // `outputs`: the shared watermark at which every aggregating output emitted the batch's latest
  // window. An output's own watermark runs ahead of the shared one by the lateness it allows
  // less than the largest (Bug, review: the 1 ms shared window made a batch committable long
  // before its windows closed, so a crash lost its records).
  std::int64_t at = latest;  // forwarding outputs write the records at once
  for (const output_config& o : config_.outputs) {
    if (o.forward) continue;
    const kernels::window_spec window{o.window.size_ms, o.window.type == window_type::hopping
                                                            ? o.window.slide_ms
                                                            : o.window.size_ms};
    const std::int64_t ahead = config_.window.allowed_lateness_ms - o.window.allowed_lateness_ms;
    at = std::max(at, window.last_start(latest) + window.size_ms - ahead);
  }
  return at;
}

}  // namespace trove::host::detail
