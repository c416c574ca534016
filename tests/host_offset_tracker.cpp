/// @file host_offset_tracker.cpp
/// @brief The at-least-once commit rule: a batch's offsets are committable only once its windows
/// were emitted, the sink flushed that emission, and every earlier batch is committable — checked
/// against a plain model on random schedules, plus the edge cases by hand.

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <vector>

#include "host/offset_tracker.hpp"

namespace {

using trove::host::offset_tracker;

std::map<std::int32_t, std::int64_t> as_map(const std::vector<trove::io::source_offset>& v) {
  std::map<std::int32_t, std::int64_t> out;
  for (const auto& o : v) {
    EXPECT_FALSE(out.count(o.source_partition)) << "partition listed twice";
    out[o.source_partition] = o.next_offset;
  }
  return out;
}

TEST(OffsetTracker, NothingIsCommittableBeforeEmissionAndFlush) {
  offset_tracker t;
  t.add({{0, 0, 9}}, 1000);
  EXPECT_TRUE(t.take_committable().empty());
  t.emitted(999, 0);  // watermark short of the window end
  t.flushed(0);
  EXPECT_TRUE(t.take_committable().empty());
  t.emitted(1000, 1);  // emitted into sink item 1, not yet flushed
  EXPECT_TRUE(t.take_committable().empty());
  t.flushed(1);
  EXPECT_EQ(as_map(t.take_committable()), (std::map<std::int32_t, std::int64_t>{{0, 10}}));
  EXPECT_TRUE(t.take_committable().empty()) << "taken once";
  EXPECT_EQ(t.pending(), 0u);
}

TEST(OffsetTracker, ALaterBatchNeverCommitsPastAnEarlierPendingOne) {
  offset_tracker t;
  t.add({{0, 0, 9}}, 5000);  // a far-future event: its window closes late
  t.add({{0, 10, 19}, {1, 0, 4}}, 1000);
  t.emitted(1000, 0);
  t.flushed(0);
  EXPECT_TRUE(t.take_committable().empty());
  EXPECT_EQ(t.pending(), 2u);
  t.emitted(5000, 1);
  t.flushed(1);
  EXPECT_EQ(as_map(t.take_committable()), (std::map<std::int32_t, std::int64_t>{{0, 20}, {1, 5}}));
}

TEST(OffsetTracker, MatchesAModelOnRandomSchedules) {
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    std::mt19937_64 rng(seed);
    offset_tracker t;
    struct model_batch {
      std::vector<offset_tracker::range> ranges;
      std::int64_t durable_at;
      std::uint64_t emitted_in = UINT64_MAX;
    };
    std::vector<model_batch> batches;
    std::size_t committed = 0;                  // model: batches [0, committed) are taken
    std::map<std::int32_t, std::int64_t> next;  // per partition next offset to give out
    std::map<std::int32_t, std::int64_t> expect_committed;
    std::uint64_t sink_seq = 0;
    std::uint64_t flushed = UINT64_MAX;
    std::int64_t watermark = 0;
    for (int step = 0; step < 300; ++step) {
      switch (rng() % 4) {
        case 0: {  // a batch with 1-3 partitions
          model_batch b;
          for (std::int32_t p = 0; p < 3; ++p) {
            if (rng() % 2 == 0) continue;
            const std::int64_t first = next[p];
            const std::int64_t last = first + static_cast<std::int64_t>(rng() % 5);
            next[p] = last + 1;
            b.ranges.push_back({p, first, last});
          }
          b.durable_at = watermark + static_cast<std::int64_t>(rng() % 100);
          t.add(b.ranges, b.durable_at);
          batches.push_back(b);
          break;
        }
        case 1: {  // the watermark advances, an emission goes to the sink
          watermark += static_cast<std::int64_t>(rng() % 40);
          t.emitted(watermark, sink_seq);
          for (auto& b : batches) {
            if (b.emitted_in == UINT64_MAX && b.durable_at <= watermark) b.emitted_in = sink_seq;
          }
          ++sink_seq;
          break;
        }
        case 2:  // the sink flushes what it has
          if (sink_seq > 0) {
            flushed = sink_seq - 1;
            t.flushed(flushed);
          }
          break;
        default: {  // the source commits
          std::map<std::int32_t, std::int64_t> want;
          while (committed < batches.size() && batches[committed].emitted_in != UINT64_MAX &&
                 flushed != UINT64_MAX && batches[committed].emitted_in <= flushed) {
            for (const auto& r : batches[committed].ranges) want[r.partition] = r.last + 1;
            ++committed;
          }
          ASSERT_EQ(as_map(t.take_committable()), want) << "seed " << seed << " step " << step;
          for (const auto& [p, o] : want) {
            ASSERT_GT(o, expect_committed[p]) << "commits only move forward";
            expect_committed[p] = o;
          }
        }
      }
    }
    EXPECT_EQ(t.pending(), batches.size() - committed);
  }
}

}  // namespace
