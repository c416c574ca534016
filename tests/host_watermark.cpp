/// @file host_watermark.cpp
/// @brief The watermark tracker: minimum over active partitions of (max event time − lateness),
/// monotone, idle partitions released after idle_timeout, assigned-but-silent partitions holding
/// it back (Kafka), +infinity at the end — against a plain model on random observation sequences.

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "host/watermark.hpp"

namespace {

using trove::host::watermark_tracker;
using clock_type = watermark_tracker::clock;
using std::chrono::milliseconds;

TEST(Watermark, MinimumOverPartitionsMinusLatenessAndNeverBackwards) {
  watermark_tracker w(100, 30'000);
  const auto t0 = clock_type::now();
  EXPECT_EQ(w.current(t0), watermark_tracker::minus_infinity);
  w.observe(0, 1000, t0);
  EXPECT_EQ(w.current(t0), 900);
  w.observe(1, 500, t0);
  EXPECT_EQ(w.current(t0), 900) << "monotone: a slower partition does not move it back";
  w.observe(0, 5000, t0);
  EXPECT_EQ(w.current(t0), 900) << "held back by partition 1";
  w.observe(1, 3000, t0);
  EXPECT_EQ(w.current(t0), 2900);
  w.finish();
  EXPECT_EQ(w.current(t0), watermark_tracker::plus_infinity);
}

TEST(Watermark, IdlePartitionStopsHoldingItBack) {
  watermark_tracker w(0, 1000);
  const auto t0 = clock_type::now();
  w.observe(0, 100, t0);
  w.observe(1, 50, t0);
  EXPECT_EQ(w.current(t0), 50);
  w.observe(0, 400, t0 + milliseconds(1500));
  EXPECT_EQ(w.current(t0 + milliseconds(1500)), 400) << "partition 1 idle for 1.5 s > 1 s";
}

TEST(Watermark, AnAssignedSilentPartitionHoldsItBackUntilIdle) {
  watermark_tracker w(0, 1000);
  const auto t0 = clock_type::now();
  w.expect(7, t0);  // assigned, nothing delivered yet
  w.observe(0, 100, t0);
  EXPECT_EQ(w.current(t0), watermark_tracker::minus_infinity)
      << "records of partition 7 may still be older than 100";
  w.observe(7, 80, t0 + milliseconds(10));
  EXPECT_EQ(w.current(t0 + milliseconds(10)), 80);
  // expect() on a known partition changes nothing
  w.expect(7, t0 + milliseconds(20));
  EXPECT_EQ(w.current(t0 + milliseconds(20)), 80);
  watermark_tracker v(0, 1000);
  v.expect(3, t0);
  v.observe(0, 100, t0);
  EXPECT_EQ(v.current(t0 + milliseconds(1001)), watermark_tracker::minus_infinity)
      << "partition 0 itself is idle by then too";
  v.observe(0, 200, t0 + milliseconds(1001));
  EXPECT_EQ(v.current(t0 + milliseconds(1001)), 200) << "the silent partition is idle now";
}

TEST(Watermark, MatchesAModelOnRandomSequences) {
  for (std::uint64_t seed = 1; seed <= 30; ++seed) {
    std::mt19937_64 rng(seed);
    const std::int64_t lateness = static_cast<std::int64_t>(rng() % 50);
    const std::int64_t idle_ms = 100;
    watermark_tracker w(lateness, idle_ms);
    std::map<std::int32_t, std::pair<std::int64_t, std::int64_t>> model;  // max, last seen ms
    std::int64_t high = watermark_tracker::minus_infinity;
    const auto t0 = clock_type::now();
    std::int64_t now_ms = 0;
    for (int step = 0; step < 500; ++step) {
      now_ms += static_cast<std::int64_t>(rng() % 30);
      const auto partition = static_cast<std::int32_t>(rng() % 4);
      const std::int64_t ts = static_cast<std::int64_t>(rng() % 10'000);
      w.observe(partition, ts, t0 + milliseconds(now_ms));
      auto& m = model.try_emplace(partition, watermark_tracker::minus_infinity, 0).first->second;
      m.first = std::max(m.first, ts);
      m.second = now_ms;
      std::int64_t low = watermark_tracker::plus_infinity;
      bool any = false;
      for (const auto& [p, state] : model) {
        if (now_ms - state.second >= idle_ms && model.size() > 1) continue;
        any = true;
        low = std::min(low, state.first);
      }
      if (any && low != watermark_tracker::minus_infinity) high = std::max(high, low - lateness);
      ASSERT_EQ(w.current(t0 + milliseconds(now_ms)), high) << "seed " << seed << " step " << step;
    }
  }
}

}  // namespace
