#pragma once
/// @file offset_tracker.hpp
/// @brief Which source offsets may be committed: the at-least-once rule without checkpoints.
///
/// A record's effects are durable once every window containing it has been emitted *and* the
/// rows of that emission are flushed to the sink (delivered, for a Kafka sink): until then they
/// live only in device memory and a crash would lose them. So a batch becomes committable when
/// (1) the watermark has passed the end of the latest window of its latest event
/// (`durable_at`), (2) the sink has flushed the result set of the step that emitted those
/// windows, and (3) every earlier batch is committable too — offsets are committed in order,
/// never past a batch that is still pending. Duplicates, late, filtered and bad records ride along
/// with their batch. After a crash the source re-reads from the last commit: nothing accepted is
/// lost, and records after the commit may be counted again (at-least-once; exactly-once needs
/// checkpoints).
///
/// Thread-safe: the device thread adds batches and reports emissions, the sink thread reports
/// flushes, the source thread takes what is committable.

#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <vector>

#include "io/kafka_consumer.hpp"

namespace trove::host {

/// @brief Tracks batches from consumption to durability and yields committable offsets.
class offset_tracker {
 public:
  /// @brief Offsets [first, last] of one source partition within a batch.
  struct range {
    std::int32_t partition = 0;
    std::int64_t first = 0;
    std::int64_t last = 0;
  };

  /// @brief A batch entered the device stage. `durable_at`: the watermark at which all its windows
  /// are emitted (end of the latest window of its latest event time).
  void add(std::vector<range> ranges, std::int64_t durable_at) {
    std::lock_guard lock(mutex_);
    pending_.push_back({std::move(ranges), durable_at, no_seq});
  }

  /// @brief Windows up to `watermark` were emitted into sink item `sink_seq` (device thread, after
  /// each step; sink items are numbered 0, 1, 2, ... in queue order).
  void emitted(std::int64_t watermark, std::uint64_t sink_seq) {
    std::lock_guard lock(mutex_);
    for (auto& entry : pending_) {
      if (entry.emitted_in == no_seq && entry.durable_at <= watermark) entry.emitted_in = sink_seq;
    }
  }

  /// @brief Sink items up to and including `sink_seq` are flushed (sink thread).
  void flushed(std::uint64_t sink_seq) {
    std::lock_guard lock(mutex_);
    if (flushed_ == no_seq || sink_seq > flushed_) flushed_ = sink_seq;
  }

  /// @brief Pops the batches that became committable, in order; returns the next offset to
  /// consume (last + 1) per partition, the highest among them.
  std::vector<io::source_offset> take_committable() {
    std::lock_guard lock(mutex_);
    std::map<std::int32_t, std::int64_t> next;
    while (!pending_.empty()) {
      const entry& front = pending_.front();
      if (front.emitted_in == no_seq || flushed_ == no_seq || front.emitted_in > flushed_) break;
      for (const range& r : front.ranges) {
        auto [it, inserted] = next.try_emplace(r.partition, r.last + 1);
        if (!inserted && r.last + 1 > it->second) it->second = r.last + 1;
      }
      pending_.pop_front();
    }
    std::vector<io::source_offset> out;
    out.reserve(next.size());
    for (const auto& [partition, offset] : next) out.push_back({partition, offset});
    return out;
  }

  /// @brief Batches not yet committable.
  [[nodiscard]] std::size_t pending() const {
    std::lock_guard lock(mutex_);
    return pending_.size();
  }

 private:
  static constexpr std::uint64_t no_seq = std::numeric_limits<std::uint64_t>::max();
  struct entry {
    std::vector<range> ranges;
    std::int64_t durable_at;
    std::uint64_t emitted_in;  // sink item holding the emission; no_seq while windows are open
  };
  mutable std::mutex mutex_;
  std::deque<entry> pending_;
  std::uint64_t flushed_ = no_seq;
};

}  // namespace trove::host
