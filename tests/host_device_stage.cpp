/// @file host_device_stage.cpp
/// @brief The device stage's upload path — batches copied into two reused staging slots, the next
/// batch prefetched on a second stream while the current one runs (what CUDA does) — gives
/// exactly the results of the in-place path, on the CPU backend where both can run: random
/// synthetic batches, both emit modes, hopping windows, filters, with and without prefetch. Both
/// paths hand the rows' source partitions to the aggregation (group tags, cross-partition rows).

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "host/config.hpp"
#include "host/device_select.hpp"
#include "host/device_stage.hpp"
#include "io/encoder.hpp"
#include "io/synthetic.hpp"

namespace {

using namespace trove;

host::pipeline_config make_config(const std::string& extra) {
  const std::string yaml =
      "source: {type: synthetic}\n"
      "schema: {event_id: u64, user_id: u64, type: string, ts: timestamp_ms, amount: \"f64?\", "
      "score: \"i64?\"}\n"
      "event_time: ts\n"
      "dedup: {key: [event_id], ttl: 2m}\n"
      "group_by: [user_id, type]\n"
      // score is never set by the generator: always null (validity bitmaps must travel)
      "aggregates: [count, sum(amount), min(amount), max(amount), avg(amount), max(score)]\n" +
      extra;
  std::vector<host::config_error> errors;
  auto config = host::load_config_string(yaml, {}, errors);
  for (const auto& e : errors) ADD_FAILURE() << e.message();
  return config;
}

/// Every row a stage emits over the batches (one JSON line per row, in emission order), and the
/// status counts.
struct run_output {
  std::string rows;
  std::uint64_t counts[kernels::status_count] = {};
};

run_output run(const host::pipeline_config& config, bool staged, bool prefetch, std::uint64_t seed,
               std::size_t batch_rows, kernels::backend* backend = nullptr) {
  auto selected = host::select_backend(host::device_choice::cpu);
  host::device_stage stage(config, backend ? *backend : *selected.backend, staged);
  EXPECT_EQ(stage.uploads(), staged);
  io::synthetic_options o;
  o.events = 6'000;
  o.keys = 300;
  o.duplicate_ratio = 0.1;
  o.disorder_ms = 3'000;
  o.span_ms = 5 * 60'000;
  o.seed = seed;
  io::synthetic_generator gen(o);
  const io::schema& schema = config.schema;
  // Three batches in flight, as the pipeline's pool would have them: the one processed, the one
  // prefetched, and one being filled (must not disturb the others).
  std::vector<std::unique_ptr<io::host_batch>> pool;
  for (int idx = 0; idx < 3; ++idx) {
    pool.push_back(std::make_unique<io::host_batch>(schema, batch_rows, batch_rows * 32));
  }
  run_output out;
  io::json_encoder encoder;
  auto account = [&](host::step_output&& step) {
    for (int s = 0; s < kernels::status_count; ++s) out.counts[s] += step.status_counts[s];
    encoder.encode(step.outputs.at(0).rows, out.rows);
  };
  std::int64_t watermark = INT64_MIN;
  std::int64_t max_ts = INT64_MIN;
  std::size_t current = 0;
  pool[current]->clear();
  gen.fill(*pool[current], batch_rows);
  while (pool[current]->size() > 0) {
    const std::size_t next = (current + 1) % pool.size();
    pool[next]->clear();
    gen.fill(*pool[next], batch_rows);
    if (prefetch) stage.prefetch(*pool[next]);
    // The third buffer is refilled while the current batch runs (then discarded).
    const std::size_t third = (current + 2) % pool.size();
    pool[third]->clear();
    const io::host_batch& batch = *pool[current];
    const auto* ts = reinterpret_cast<const std::int64_t*>(batch.fixed(schema.index_of("ts")));
    for (std::size_t row = 0; row < batch.size(); ++row) max_ts = std::max(max_ts, ts[row]);
    const std::int64_t before = watermark;
    watermark = std::max(watermark, max_ts - 5'000);
    account(stage.process(batch, before, watermark));
    current = next;
  }
  account(stage.close_windows(INT64_MAX));
  return out;
}

void expect_same(const run_output& a, const run_output& b, const std::string& what) {
  for (int s = 0; s < kernels::status_count; ++s) {
    EXPECT_EQ(a.counts[s], b.counts[s]) << what << " status " << s;
  }
  EXPECT_FALSE(a.rows.empty()) << what;
  EXPECT_EQ(a.rows.size(), b.rows.size()) << what;
  EXPECT_TRUE(a.rows == b.rows) << what << ": outputs differ";
}

TEST(DeviceStage, StagedUploadsWithPrefetchMatchInPlaceBatches) {
  const std::vector<std::string> shapes = {
      "window: {type: tumbling, size: 1m, allowed_lateness: 5s}\n",
      "window: {type: hopping, size: 2m, slide: 30s}\nemit: update\n",
      "window: {type: tumbling, size: 30s}\n"
      "filter: [{field: type, op: '!=', value: view}, {field: amount, op: '>', value: 10}]\n",
  };
  for (const auto& shape : shapes) {
    const auto config = make_config(shape);
    for (std::uint64_t seed = 1; seed <= 3; ++seed) {
      for (std::size_t rows : {7u, 257u, 4096u}) {
        const auto in_place = run(config, false, false, seed, rows);
        const std::string what =
            shape + " seed " + std::to_string(seed) + " rows " + std::to_string(rows);
        expect_same(in_place, run(config, true, true, seed, rows), "prefetch: " + what);
        expect_same(in_place, run(config, true, false, seed, rows), "staged: " + what);
      }
    }
  }
}

// Both paths give the aggregation each row's source partition: read in place from the batch's
// positions, or uploaded as a packed column. Compared with a plain model of the owner-partitioned
// CPU table: a group's tag is its first row's partition, and rows of another partition count.
TEST(DeviceStage, GroupsAreTaggedWithTheSourcePartitionOfTheirFirstRow) {
  const auto config = make_config("window: {type: tumbling, size: 1m}\n");
  const io::schema& schema = config.schema;
  const auto col = [&](const char* name) {
    return static_cast<std::size_t>(schema.index_of(name));
  };
  const std::size_t batch_rows = 700;
  std::mt19937_64 rng(11);
  std::vector<std::unique_ptr<io::host_batch>> batches;
  std::map<std::tuple<std::int64_t, std::uint64_t, std::string>, std::int32_t> creator;
  std::uint64_t cross = 0;
  const char* types[] = {"view", "click", "purchase"};
  for (int b = 0; b < 5; ++b) {
    auto batch = std::make_unique<io::host_batch>(schema, batch_rows, batch_rows * 32);
    for (std::size_t r = 0; r < batch_rows; ++r) {
      const std::uint64_t user = rng() % 60;
      const std::string type = types[rng() % 3];
      const auto ts = static_cast<std::int64_t>(rng() % 600'000);
      const auto partition = static_cast<std::int32_t>(rng() % 5);
      batch->set_u64(col("event_id"), static_cast<std::uint64_t>(b) * batch_rows + r);
      batch->set_u64(col("user_id"), user);
      ASSERT_TRUE(batch->set_string(col("type"), type));
      batch->set_i64(col("ts"), ts);
      batch->set_f64(col("amount"), 1.5);
      batch->set_null(col("score"));
      batch->commit_row({partition, static_cast<std::int64_t>(1000 * b + r)});
      const auto [it, created] = creator.try_emplace({ts - ts % 60'000, user, type}, partition);
      cross += it->second != partition ? 1 : 0;
    }
    batches.push_back(std::move(batch));
  }
  std::vector<std::int32_t> expected_tags;
  for (const auto& [id, p] : creator) expected_tags.push_back(p);
  std::sort(expected_tags.begin(), expected_tags.end());
  ASSERT_GT(cross, 0u);

  for (bool staged : {false, true}) {
    auto backend = kernels::make_cpu_backend(kernels::cpu_strategy::owned);
    host::device_stage stage(config, *backend, staged);
    for (std::size_t b = 0; b < batches.size(); ++b) {
      if (b + 1 < batches.size()) stage.prefetch(*batches[b + 1]);
      stage.process(*batches[b], INT64_MIN, INT64_MIN);  // no window closes
    }
    EXPECT_EQ(stage.cross_partition_rows(), cross) << (staged ? "staged" : "in place");
    kernels::agg_snapshot snap = stage.snapshot_groups();
    std::sort(snap.partitions.begin(), snap.partitions.end());
    EXPECT_EQ(snap.partitions, expected_tags) << (staged ? "staged" : "in place");
  }
}

// Streams belong to the work (the CUDA path's race: tables zeroed on the legacy default stream,
// staging buffers freed on the copy stream while the kernels' stream still read them): with a
// recording CPU backend, every kernel, every fill (the tables' zeroing) and every free of a run
// through the staged, prefetching path is issued on the kernels' stream; only the prefetch copies
// (and the allocations of the buffers they fill) use the copy stream.
TEST(DeviceStage, KernelsZeroingAndFreesAreOnTheKernelsStream) {
  const auto config = make_config(
      "window: {type: hopping, size: 2m, slide: 30s}\nemit: update\n"
      "filter: [{field: type, op: '!=', value: view}]\n");
  kernels::backend_op_log log;
  auto backend = kernels::make_cpu_backend(kernels::cpu_strategy::owned, &log);
  // Rows grow batch by batch, so the staging buffers are regrown (freed) mid-run too.
  const auto in_place = run(config, false, false, 3, 257);
  run_output recorded;
  for (std::size_t rows : {100u, 257u, 1500u}) {
    const auto out = run(config, true, true, 3, rows, backend.get());
    if (rows == 257) recorded = out;
  }
  expect_same(in_place, recorded, "recorded run");
  // Each run's stage creates two streams, in this order: its kernels' stream (odd fake handles
  // 1, 3, 5) and its copy stream (even ones); the default stream's handle is null.
  std::size_t counted[7] = {};
  std::size_t prefetch_copies = 0;
  for (const auto& op : log.ops()) {
    ++counted[static_cast<int>(op.what)];
    const auto id = reinterpret_cast<std::uintptr_t>(op.stream);
    const bool on_kernels_stream = id % 2 == 1;
    switch (op.what) {
      case kernels::backend_op::kind::copy:
        prefetch_copies += id != 0 && !on_kernels_stream;
        break;
      case kernels::backend_op::kind::allocate:
        break;  // on the stream of the buffer's first work (the copy stream for a prefetch)
      case kernels::backend_op::kind::allocate_host:
      case kernels::backend_op::kind::deallocate_host:
        break;  // host staging: no stream
      default:  // kernels, fills (the tables' zeroing) and frees
        EXPECT_TRUE(on_kernels_stream) << "operation " << static_cast<int>(op.what) << " on stream "
                                       << id << ", not the kernels' stream";
    }
  }
  for (auto kind : {kernels::backend_op::kind::kernel, kernels::backend_op::kind::fill,
                    kernels::backend_op::kind::deallocate}) {
    EXPECT_GT(counted[static_cast<int>(kind)], 0u) << static_cast<int>(kind);
  }
  EXPECT_EQ(counted[static_cast<int>(kernels::backend_op::kind::allocate)],
            counted[static_cast<int>(kernels::backend_op::kind::deallocate)]);
  EXPECT_GT(prefetch_copies, 0u) << "the prefetch never used the copy stream";
}

}  // namespace
