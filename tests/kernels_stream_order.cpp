/// @file kernels_stream_order.cpp
/// @brief Streams belong to the work: a table built for a stream allocates, zeroes, runs its
/// kernels and frees on that stream only. On CUDA a table zeroed on the legacy default stream
/// while its kernels ran on a non-blocking one raced (nothing orders the two); the CPU runs every
/// call at once, so the order itself is not observable here, but the stream each operation was
/// issued on is: a recording CPU backend logs it, with distinct handles per stream. Both CPU
/// strategies, with every growth path (blocking and incremental dedup rebuilds, the aggregation
/// table's prefilled rebuilds), updates, snapshots and restores, and results checked against the
/// reference so that the run is a real one.

#include <gtest/gtest.h>

#include <bit>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernel_driver.hpp"
#include "kernels/error.hpp"

namespace trove::test {
namespace {

/// A recording CPU backend; the fixture runs its copies and the driver's work on a stream of its
/// own (not the default stream, whose handle is null).
template <kernels::cpu_strategy Strategy>
struct recording_param {
  static constexpr const char* name =
      Strategy == kernels::cpu_strategy::owned ? "RecordingCpu" : "RecordingCpuAtomic";
  static constexpr bool own_stream = true;
  static inline std::unique_ptr<kernels::backend_op_log> log;
  static std::unique_ptr<kernels::backend> make(std::string&) {
    log = std::make_unique<kernels::backend_op_log>();
    return kernels::make_cpu_backend(Strategy, log.get());
  }
};
using recording_backends = ::testing::Types<recording_param<kernels::cpu_strategy::owned>,
                                            recording_param<kernels::cpu_strategy::atomic>>;

const char* kind_name(kernels::backend_op::kind kind) {
  switch (kind) {
    case kernels::backend_op::kind::allocate:
      return "allocate";
    case kernels::backend_op::kind::deallocate:
      return "deallocate";
    case kernels::backend_op::kind::fill:
      return "fill";
    case kernels::backend_op::kind::copy:
      return "copy";
    case kernels::backend_op::kind::allocate_host:
      return "allocate_host";
    case kernels::backend_op::kind::deallocate_host:
      return "deallocate_host";
    default:
      return "kernel";
  }
}

template <class P>
class StreamOrderTest : public backend_test<P> {};
TYPED_TEST_SUITE(StreamOrderTest, recording_backends, backend_names);

TYPED_TEST(StreamOrderTest, TablesAllocateZeroRunAndFreeOnlyOnTheirWorkStream) {
  const kernels::stream_view work = this->stream();
  ASSERT_NE(work.handle, nullptr) << "the recording backend must hand out a stream of its own";
  event_shape shape;
  shape.events = 20'000;
  shape.users = 3000;
  shape.duplicate_ratio = 0.2;
  shape.step_ms = 37;
  shape.disorder_ms = 10'000;
  const std::vector<ref_event> events = make_events(shape, 7);
  driver_options options;
  options.ttl_ms = 30'000;
  options.size_ms = 60'000;
  options.slide_ms = 20'000;  // hopping: three windows per event
  options.lateness_ms = 5'000;
  options.dedup_capacity = 1024;  // grows many times
  options.agg_capacity = 1024;
  options.track_updates = true;
  options.dedup_incremental_min_slots = 0;  // incremental rebuilds (count, fill, migrate)
  options.agg_prefill_min_slots = 0;        // the next table allocated and zeroed ahead
  std::size_t rebuilds = 0;
  {
    kernel_driver<StreamOrderTest<TypeParam>> driver(*this, options);
    driver.collect(true);
    reference ref(options.ttl_ms, options.size_ms, options.slide_ms, true, false);
    std::int64_t watermark = INT64_MIN;
    std::int64_t max_ts = INT64_MIN;
    for (std::size_t begin = 0; begin < events.size(); begin += 700) {
      const std::size_t end = std::min(events.size(), begin + 700);
      const std::vector<ref_event> batch(events.begin() + static_cast<std::ptrdiff_t>(begin),
                                         events.begin() + static_cast<std::ptrdiff_t>(end));
      ASSERT_EQ(ref.process(batch, watermark), driver.process(batch, watermark)) << begin;
      for (const auto& e : batch) max_ts = std::max(max_ts, e.ts);
      watermark = max_ts - options.lateness_ms;
      driver.table().extract_updated(work);
      expect_same_rows(ref.extract_closed(watermark),
                       to_rows(driver.table().extract_closed(watermark, work)),
                       "batch at " + std::to_string(begin));
      if (::testing::Test::HasFatalFailure()) return;
    }
    // A checkpoint's copy out and restore, into tables on the same stream.
    const kernels::agg_snapshot groups = driver.table().snapshot(work);
    EXPECT_GT(groups.rows, 0u);
    kernel_driver<StreamOrderTest<TypeParam>> restored(*this, options);
    restored.dedup()->insert_entries(driver.collected().data(), driver.collected().size(),
                                     watermark, work);
    restored.table().restore(groups, driver.table().emitted_watermark(), work);
    expect_same_rows(to_rows(driver.table().extract_closed(INT64_MAX, work)),
                     to_rows(restored.table().extract_closed(INT64_MAX, work)), "restored");
    rebuilds = driver.table().stats().rebuilds + driver.dedup()->stats().rebuilds;
    EXPECT_GT(driver.dedup()->stats().rebuilds, driver.dedup()->stats().blocking_rebuilds)
        << "no incremental dedup rebuild ran";
  }  // the tables free everything here
  this->release_columns();
  EXPECT_GT(rebuilds, 3u);

  std::map<std::string, std::size_t> seen;
  std::size_t elsewhere = 0;
  for (const kernels::backend_op& op : TypeParam::log->ops()) {
    ++seen[kind_name(op.what)];
    const bool host_memory = op.what == kernels::backend_op::kind::allocate_host ||
                             op.what == kernels::backend_op::kind::deallocate_host;
    if (!host_memory && op.stream != work.handle) {
      if (++elsewhere <= 10) {
        ADD_FAILURE() << kind_name(op.what) << " of " << op.memory << " on stream " << op.stream
                      << ", not on the work stream " << work.handle;
      }
    }
  }
  EXPECT_EQ(elsewhere, 0u) << "operations issued on another stream than the work's";
  // Not vacuous: every kind of operation was seen, the frees included.
  for (const char* kind : {"allocate", "deallocate", "fill", "copy", "kernel"}) {
    EXPECT_GT(seen[kind], 0u) << kind;
  }
  EXPECT_EQ(seen["allocate"], seen["deallocate"]) << "every allocation is freed, on the stream";
}

// Rows an extraction returns and the counters read after every batch come back into the table's
// staging memory from allocate_host (pinned on CUDA: an asynchronous DMA, not a staged copy into
// pageable memory), kept across calls: every device → host copy of aggregate, extract_closed and
// extract_updated lands inside a block allocate_host handed out and had not taken back.
TYPED_TEST(StreamOrderTest, ResultsAndCountersLandInHostStagingMemory) {
  const kernels::stream_view work = this->stream();
  kernels::agg_options a;
  a.key_is_string = {false};
  a.fields = {kernels::value_kind::f64};
  a.window = {10'000, 10'000};
  a.track_updates = true;
  std::mt19937_64 rng(11);
  std::size_t rows = 0;
  std::size_t first_op = 0;
  {
    auto table = this->be().make_agg_table(a, work);
    std::int64_t t = 0;
    for (int batch = 0; batch < 12; ++batch) {
      const std::size_t n = 500;
      std::vector<std::uint64_t> keys(n), times(n), amounts(n);
      for (std::size_t i = 0; i < n; ++i) {
        keys[i] = rng() % 300;
        t += static_cast<std::int64_t>(rng() % 100);
        times[i] = static_cast<std::uint64_t>(t);
        amounts[i] = std::bit_cast<std::uint64_t>(static_cast<double>(rng() % 1000));
      }
      kernels::agg_input in;
      in.num_rows = n;
      in.keys.count = 1;
      in.keys.columns[0] = this->fixed_column(keys);
      in.d_event_time = reinterpret_cast<const std::int64_t*>(this->fixed_column(times).d_values);
      this->keep_.push_back(this->upload(std::vector<std::uint8_t>(n, kernels::status_accepted)));
      in.d_status = this->keep_.back().template as<std::uint8_t>();
      in.fields[0] = this->fixed_column(amounts);
      // Only the table's own copies count: the uploads above are the test's.
      if (batch == 0) first_op = TypeParam::log->ops().size();
      table->aggregate(in, work);
      rows += table->extract_updated(work).rows;
      rows += table->extract_closed(t - 1'000, work).rows;
    }
    rows += table->extract_closed(INT64_MAX, work).rows;
  }
  this->release_columns();
  ASSERT_GT(rows, 0u);
  std::map<const unsigned char*, std::size_t> staging;  // live allocate_host blocks
  std::size_t to_host = 0;
  std::size_t outside = 0;
  const std::vector<kernels::backend_op> ops = TypeParam::log->ops();
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const kernels::backend_op& op = ops[i];
    const auto* at = static_cast<const unsigned char*>(op.memory);
    if (op.what == kernels::backend_op::kind::allocate_host) staging[at] = op.bytes;
    if (op.what == kernels::backend_op::kind::deallocate_host) staging.erase(at);
    if (i < first_op || op.what != kernels::backend_op::kind::copy || !op.to_host ||
        op.bytes == 0) {
      continue;
    }
    ++to_host;
    auto block = staging.upper_bound(at);
    const bool inside =
        block != staging.begin() && (--block, at + op.bytes <= block->first + block->second);
    if (!inside && ++outside <= 5) {
      ADD_FAILURE() << "a copy of " << op.bytes << " bytes to host memory at " << op.memory
                    << " outside the staging blocks";
    }
  }
  EXPECT_GT(to_host, 0u);
  EXPECT_EQ(outside, 0u);
}

// The precondition that keeps the work on one stream: a call on another stream than the table's
// is refused before anything runs.
TYPED_TEST(StreamOrderTest, ACallOnAnotherStreamIsRefused) {
  kernels::agg_options a;
  a.key_is_string = {false};
  a.window = {60'000, 60'000};
  auto table = this->be().make_agg_table(a, this->stream());
  kernels::dedup_options d;
  auto set = this->be().make_dedup_set(d, this->stream());
  EXPECT_THROW(table->extract_closed(0, kernels::stream_view{}), trove::logic_error);
  EXPECT_THROW(table->snapshot(kernels::stream_view{}), trove::logic_error);
  EXPECT_THROW(set->insert_entries(nullptr, 1, 0, kernels::stream_view{}), trove::logic_error);
  EXPECT_NO_THROW(table->extract_closed(0, this->stream()));
}

}  // namespace
}  // namespace trove::test
