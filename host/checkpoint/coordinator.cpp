#include "host/checkpoint/coordinator.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace trove::host {

checkpoint_coordinator::checkpoint_coordinator(checkpoint_store& store, std::int64_t interval_ms,
                                               std::uint32_t retain, std::uint64_t next_id,
                                               std::vector<segment_ref> segments,
                                               durable_fn on_durable, failure_fn on_failure)
    : store_(store),
      interval_(std::chrono::milliseconds(interval_ms)),
      retain_(retain),
      on_durable_(std::move(on_durable)),
      on_failure_(std::move(on_failure)),
      next_id_(next_id),
      segments_(std::move(segments)),
      last_cut_(clock::now()) {
  thread_ = std::thread([this] { run(); });
}

checkpoint_coordinator::~checkpoint_coordinator() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void checkpoint_coordinator::share(before_write_fn before_write, pinned_fn pinned) {
  std::lock_guard lock(mutex_);
  before_write_ = std::move(before_write);
  pinned_ = std::move(pinned);
}

void checkpoint_coordinator::restart_chain() {
  std::unique_lock lock(mutex_);
  wake_.wait(lock, [this] { return !busy_ || failed_; });
  segments_.clear();
  group_chain_.clear();
  group_chain_valid_ = false;
  forced_ = true;
}

void checkpoint_coordinator::continue_groups(std::vector<group_segment_ref> chain) {
  std::lock_guard lock(mutex_);
  group_chain_ = std::move(chain);
  group_chain_valid_ = true;
}

bool checkpoint_coordinator::group_chain(std::vector<group_segment_ref>& chain) const {
  std::lock_guard lock(mutex_);
  chain = group_chain_;
  return group_chain_valid_;
}

bool checkpoint_coordinator::due(clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (failed_ || (!forced_ && now - last_cut_ < interval_)) return false;
  if (busy_) {
    // The previous checkpoint is still being written: this one waits (the data path does not).
    if (!delay_counted_) {
      delay_counted_ = true;
      ++stats_.delayed;
    }
    return false;
  }
  return true;
}

std::uint64_t checkpoint_coordinator::begin_cut(clock::time_point now, std::int64_t watermark,
                                                std::int64_t ttl_ms,
                                                std::vector<segment_ref>& segments) {
  std::lock_guard lock(mutex_);
  busy_ = true;
  forced_ = false;
  delay_counted_ = false;
  last_cut_ = now;
  segments.clear();
  for (const auto& seg : segments_) {
    // Every entry of the segment expired (t0 + ttl <= watermark, without overflow): drop it.
    const bool expired = watermark != INT64_MIN && watermark >= INT64_MIN + ttl_ms &&
                         seg.max_first_seen <= watermark - ttl_ms;
    if (!expired) segments.push_back(seg);
  }
  return next_id_++;
}

void checkpoint_coordinator::submit(std::unique_ptr<checkpoint_state> state, double cut_seconds) {
  {
    std::lock_guard lock(mutex_);
    pending_ = std::move(state);
    pending_cut_seconds_ = cut_seconds;
  }
  wake_.notify_all();
}

void checkpoint_coordinator::cancel_cut() {
  {
    std::lock_guard lock(mutex_);
    if (pending_ != nullptr) return;  // submitted: the writer finishes it
    busy_ = false;
  }
  wake_.notify_all();
}

void checkpoint_coordinator::wait_idle() {
  std::unique_lock lock(mutex_);
  wake_.wait(lock, [this] { return !busy_ || failed_; });
}

void checkpoint_coordinator::wait_durable(std::uint64_t id) {
  std::unique_lock lock(mutex_);
  wake_.wait(lock, [&] { return stats_.last_id >= id || failed_; });
}

bool checkpoint_coordinator::in_flight() const {
  std::lock_guard lock(mutex_);
  return busy_;
}

checkpoint_stats checkpoint_coordinator::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

bool checkpoint_coordinator::failed() const {
  std::lock_guard lock(mutex_);
  return failed_;
}

void checkpoint_coordinator::run() {
  for (;;) {
    std::unique_ptr<checkpoint_state> state;
    double cut_seconds = 0;
    before_write_fn before_write;
    pinned_fn pinned;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return pending_ != nullptr || stopping_; });
      if (!pending_) return;
      state = std::move(pending_);
      cut_seconds = pending_cut_seconds_;
      before_write = before_write_;
      pinned = pinned_;
    }
    const auto begin = clock::now();
    try {
      if (before_write) before_write(*state);
      store_.write(*state, retain_, pinned);
      const double seconds = std::chrono::duration<double>(clock::now() - begin).count();
      spdlog::debug(
          "checkpoint {} written: {} bytes, {} new dedup entries, {} open groups, {:.3f} s",
          state->id, state->manifest_bytes + state->segment_bytes, state->dedup_entries.size(),
          state->agg.rows, seconds);
      if (on_durable_) on_durable_(*state);
      std::lock_guard lock(mutex_);
      segments_ = state->segments;
      group_chain_ = state->group_segments;
      group_chain_valid_ = true;
      ++stats_.written;
      stats_.last_id = state->id;
      stats_.last_bytes = state->manifest_bytes + state->segment_bytes;
      stats_.last_write_seconds = seconds;
      stats_.last_cut_seconds = cut_seconds;
      stats_.max_cut_seconds = std::max(stats_.max_cut_seconds, cut_seconds);
      stats_.max_write_seconds = std::max(stats_.max_write_seconds, seconds);
      stats_.last_dedup_entries = state->segments.empty() || state->segments.back().id != state->id
                                      ? 0
                                      : state->segments.back().entries;
      stats_.last_groups = state->agg.rows;
      if (state->agg_updates_only) ++stats_.group_updates_written;
      busy_ = false;
    } catch (...) {
      {
        std::lock_guard lock(mutex_);
        failed_ = true;
        busy_ = false;
      }
      if (on_failure_) on_failure_(std::current_exception());
    }
    wake_.notify_all();
  }
}

}  // namespace trove::host
