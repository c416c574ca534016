/// @file bench_partition_move.cpp
/// @brief What a partition move costs on the CPU backend, outside the Kafka group protocol: the
/// previous owner's final checkpoint of its whole state (copy-out of the open groups, then the
/// background write with fsync), and the new owner's take-over of half of the partitions (claim,
/// load and verify the checkpoint, select the partitions' entries and groups, bulk insert into
/// fresh tables) — from the revoke to the moment the first batch could run.
///
/// State: 1M open groups (one u64 key, a sum, a tumbling 1 h window) and 5M dedup entries, spread
/// over 32 partitions; 2% of the entries are new since the last periodic checkpoint (the final
/// checkpoint writes those and the open groups; the rest is in the periodic one's segment). Run:
/// build/bench/bench_partition_move (checkpoint files go to $TMPDIR).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "host/checkpoint/ownership.hpp"
#include "host/checkpoint/partition_restore.hpp"
#include "host/checkpoint/store.hpp"
#include "kernels/agg_table.hpp"
#include "kernels/backend.hpp"
#include "kernels/dedup_set.hpp"
#include "kernels/row_status.hpp"
#include "kernels/xxhash64.hpp"

namespace {

using namespace trove;
namespace fs = std::filesystem;

constexpr std::size_t groups = 1'000'000;
constexpr std::size_t entries = 5'000'000;
constexpr std::int32_t partitions = 32;
constexpr std::int64_t base_time = 1'700'000'000'000;

kernels::agg_options agg_options() {
  kernels::agg_options o;
  o.key_is_string = {false};
  o.fields = {kernels::value_kind::f64};
  o.field_nullable = {false};
  o.window = {3'600'000, 3'600'000};
  o.initial_capacity = std::size_t{1} << 21;
  return o;
}

kernels::dedup_options dedup_options() {
  kernels::dedup_options o;
  o.ttl_ms = 3'600'000;
  o.exact_64bit_keys = true;
  return o;
}

/// The previous owner's state: its open groups as a snapshot, its dedup entries as records.
struct owner_state {
  kernels::agg_snapshot groups;
  std::vector<host::dedup_record> entries;
  double snapshot_seconds = 0;  // the device thread's pause of the cut (copy-out)
};

const owner_state& shared_state() {
  static const owner_state state = [] {
    owner_state s;
    auto be = kernels::make_cpu_backend();
    auto table = be->make_agg_table(agg_options(), {});
    std::vector<std::uint64_t> users(groups);
    std::vector<std::int64_t> times(groups, base_time);
    std::vector<double> amounts(groups, 1.0);
    std::vector<std::uint8_t> status(groups, kernels::status_accepted);
    std::vector<std::int32_t> partition(groups);
    for (std::size_t i = 0; i < groups; ++i) {
      users[i] = kernels::mix64(i + 1);
      partition[i] = static_cast<std::int32_t>(i % partitions);
    }
    kernels::agg_input in;
    in.num_rows = groups;
    in.keys.count = 1;
    in.keys.columns[0].d_values = users.data();
    in.d_event_time = times.data();
    in.d_status = status.data();
    in.fields[0].d_values = reinterpret_cast<const std::uint64_t*>(amounts.data());
    in.d_partition = partition.data();
    table->aggregate(in, {});
    const auto begin = std::chrono::steady_clock::now();
    s.groups = table->snapshot({});
    s.snapshot_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    s.entries.resize(entries);
    for (std::size_t i = 0; i < entries; ++i) {
      s.entries[i] = {base_time + static_cast<std::int64_t>(i % 1000), kernels::mix64(i + 7), 0,
                      static_cast<std::int32_t>(i % partitions), 0};
    }
    return s;
  }();
  return state;
}

fs::path fresh_dir(const char* name) {
  const fs::path dir = fs::temp_directory_path() / name;
  fs::remove_all(dir);
  return dir;
}

/// The previous owner's checkpoints of all 32 partitions: a periodic one holding the dedup
/// entries of the intervals before (untimed), then the final one — the open groups in full and the
/// entries accepted since (`fresh` of them), as a cut on revoke writes them.
void write_periodic(host::partition_ownership& owner, const owner_state& s,
                    host::checkpoint_state& st) {
  st.id = 1;
  st.emitted_watermark = base_time - 1;
  st.watermark = base_time;
  for (std::int32_t p = 0; p < partitions; ++p) {
    st.source.kafka.push_back({"events", p, 1'000'000, owner.claim("events", p)});
    st.partitions.push_back({p, base_time, base_time - 1});
  }
  const std::size_t fresh = entries / 50;
  st.new_entries = {std::span<const host::dedup_record>(s.entries).first(entries - fresh)};
  host::checkpoint_store store(owner.member_dir());
  store.write(st, 3);
}
void write_final(host::partition_ownership& owner, const owner_state& s,
                 host::checkpoint_state& st) {
  st.id = 2;
  st.agg = s.groups;
  const std::size_t fresh = entries / 50;
  st.new_entries = {std::span<const host::dedup_record>(s.entries).last(fresh)};
  host::checkpoint_store store(owner.member_dir());
  store.write(st, 3);
}

// The cut's copy-out (the data-path pause) plus the background write of the final checkpoint.
void BM_FinalCheckpoint(benchmark::State& state) {
  const owner_state& s = shared_state();
  for (auto _ : state) {
    const fs::path dir = fresh_dir("trove-bench-move-final");
    host::partition_ownership owner(dir, "");
    host::checkpoint_state st;
    write_periodic(owner, s, st);
    const auto begin = std::chrono::steady_clock::now();
    write_final(owner, s, st);
    state.SetIterationTime(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count() +
        s.snapshot_seconds);
  }
  state.counters["groups"] = static_cast<double>(s.groups.rows);
  state.counters["dedup_entries"] = static_cast<double>(entries);
  state.counters["new_entries"] = static_cast<double>(entries / 50);
  state.counters["copy_out_s"] = s.snapshot_seconds;
}
BENCHMARK(BM_FinalCheckpoint)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(3);

// The new owner's take-over of 16 of the 32 partitions: claim, load, select, bulk insert.
void BM_TakeOverHalfThePartitions(benchmark::State& state) {
  const owner_state& s = shared_state();
  const fs::path pristine = fresh_dir("trove-bench-move-take");
  {
    host::partition_ownership owner(pristine, "previous");
    host::checkpoint_state st;
    write_periodic(owner, s, st);
    write_final(owner, s, st);
  }
  const fs::path dir = fresh_dir("trove-bench-move-take-run");
  std::vector<host::partition_to_load> half;
  for (std::int32_t p = 0; p < partitions; p += 2) half.push_back({"events", p, p});
  auto be = kernels::make_cpu_backend();
  std::size_t loaded_groups = 0;
  std::size_t loaded_entries = 0;
  for (auto _ : state) {
    state.PauseTiming();  // every take-over starts from the previous owner's directory
    fs::remove_all(dir);
    fs::copy(pristine, dir, fs::copy_options::recursive);
    state.ResumeTiming();
    host::partition_ownership next(dir, "");
    const auto begin = std::chrono::steady_clock::now();
    const host::partitions_state ps =
        host::load_partitions(next, half, [](const host::checkpoint_state&) {});
    std::vector<kernels::dedup_entry> restored(ps.entries.size());
    for (std::size_t i = 0; i < restored.size(); ++i) {
      restored[i].key = {ps.entries[i].key_hi, ps.entries[i].key_lo};
      restored[i].first_seen = ps.entries[i].first_seen;
    }
    auto dedup = be->make_dedup_set(dedup_options(), {});
    auto agg = be->make_agg_table(agg_options(), {});
    dedup->insert_entries(restored.data(), restored.size(), ps.watermark, {});
    agg->restore(ps.groups, ps.emitted_watermark, {});
    state.SetIterationTime(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count());
    loaded_groups = agg->stats().entries;
    loaded_entries = dedup->stats().entries;
  }
  state.counters["groups"] = static_cast<double>(loaded_groups);
  state.counters["dedup_entries"] = static_cast<double>(loaded_entries);
}
BENCHMARK(BM_TakeOverHalfThePartitions)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);

}  // namespace

BENCHMARK_MAIN();
