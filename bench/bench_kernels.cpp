// Kernel throughput on W1-shaped data (see bench_data.hpp): the per-kernel cost and the whole
// step (classify → dedup → aggregate → extract), against the baseline a user would write by hand
// (single-threaded absl::flat_hash_set + absl::flat_hash_map) in the same binary and run.
//
//   build/bench/bench_kernels --benchmark_counters_tabular=true
//
// The "vs_absl" counter of the trove benchmarks is its events/s divided by the baseline's events/s
// measured earlier in the same process (run the baseline first: it is registered first).

#include <benchmark/benchmark.h>

#include <algorithm>
#include <memory>
#include <string_view>

#include "bench_data.hpp"
#include "host/absl_baseline.hpp"
#include "kernels/agg_table.hpp"
#include "kernels/backend.hpp"
#include "kernels/classify.hpp"
#include "kernels/dedup_set.hpp"
#include "kernels/row_status.hpp"

namespace trove::bench {
namespace {

constexpr std::int64_t window_ms = 60'000;
double baseline_events_per_second = 0;

/// The baseline: what a user writes by hand, single-threaded (host/absl_baseline.hpp, shared
/// with the load harness).
void BM_absl_baseline(benchmark::State& state) {
  const w1_data& d = shared_w1();
  const std::size_t n = d.size();
  for (auto _ : state) {
    host::absl_baseline baseline(window_ms);
    baseline.process(d.event_id.data(), d.user_id.data(), d.type_offsets.data(),
                     d.type_chars.data(), d.ts.data(), d.amount.data(), n);
    benchmark::DoNotOptimize(baseline.groups());
    state.counters["groups"] = static_cast<double>(baseline.groups());
  }
  const double events = static_cast<double>(state.iterations()) * static_cast<double>(n);
  state.SetItemsProcessed(static_cast<std::int64_t>(events));
  state.SetBytesProcessed(static_cast<std::int64_t>(events * d.bytes_per_event()));
  state.counters["events_per_s"] = benchmark::Counter(events, benchmark::Counter::kIsRate);
}

/// The W1 columns on a backend's device (host memory on the CPU backend), allocated, copied and
/// freed on `stream`.
struct device_w1 {
  device_w1(kernels::backend& be, kernels::stream_view stream) {
    const w1_data& d = shared_w1();
    n = d.size();
    auto put = [&](const void* src, std::size_t bytes) {
      kernels::device_buffer b(be, std::max<std::size_t>(bytes, 1), stream);
      be.copy_to_device(b.data(), src, bytes, stream);
      return b;
    };
    event_id = put(d.event_id.data(), n * 8);
    user_id = put(d.user_id.data(), n * 8);
    type_offsets = put(d.type_offsets.data(), (n + 1) * 4);
    type_chars = put(d.type_chars.data(), d.type_chars.size());
    ts = put(d.ts.data(), n * 8);
    amount = put(d.amount.data(), n * 8);
    status = kernels::device_buffer(be, n, stream);
    keys = kernels::device_buffer(be, n * sizeof(kernels::hash128), stream);
    be.synchronize(stream);
    type_bytes = d.type_chars.size();
  }
  /// Views of rows [begin, begin + rows).
  kernels::column_view fixed(const kernels::device_buffer& b, std::size_t begin) const {
    kernels::column_view v;
    v.d_values = b.as<std::uint64_t>() + begin;
    return v;
  }
  kernels::column_view type_column(std::size_t begin) const {
    kernels::column_view v;
    v.is_string = true;
    v.d_offsets = type_offsets.as<std::uint32_t>() + begin;  // offsets are absolute: fine
    v.d_chars = type_chars.as<char>();
    return v;
  }
  std::size_t n = 0;
  std::size_t type_bytes = 0;
  kernels::device_buffer event_id, user_id, type_offsets, type_chars, ts, amount, status, keys;
};

/// Which backend, and on the CPU which strategy, a benchmark runs: the CPU's owned passes (the
/// default), its atomic strategy (the GPU's rows-in-parallel kernels), or CUDA.
enum class target { cpu_owned, cpu_atomic, cuda };

std::unique_ptr<kernels::backend> make_backend(target t) {
  if (t == target::cpu_owned) return kernels::make_cpu_backend(kernels::cpu_strategy::owned);
  if (t == target::cpu_atomic) return kernels::make_cpu_backend(kernels::cpu_strategy::atomic);
  const auto probe = kernels::probe_cuda();
  if (!probe.usable()) return nullptr;
  return kernels::make_cuda_backend(probe.devices.front().ordinal);
}

/// A backend and the stream its work runs on (as the runtime does: tables are made for a
/// created stream, never the legacy default stream), destroyed together.
struct bench_device {
  explicit bench_device(target t) : be(make_backend(t)) {
    if (be) stream = be->create_stream();
  }
  ~bench_device() {
    if (be) {
      be->synchronize(stream);
      be->destroy_stream(stream);
    }
  }
  bench_device(const bench_device&) = delete;
  bench_device& operator=(const bench_device&) = delete;
  std::unique_ptr<kernels::backend> be;
  kernels::stream_view stream{};
};

kernels::classify_input classify_for(const device_w1& w, std::size_t begin, std::size_t rows,
                                     std::int64_t emitted) {
  kernels::classify_input in;
  in.num_rows = rows;
  in.d_event_time = w.ts.as<std::int64_t>() + begin;
  in.window = {window_ms, window_ms};
  in.emitted_watermark = emitted;
  in.dedup_keys.count = 1;
  in.dedup_keys.columns[0] = w.fixed(w.event_id, begin);
  return in;
}

kernels::agg_options w1_agg_options() {
  kernels::agg_options a;
  a.key_is_string = {false, true};
  a.fields = {kernels::value_kind::f64};
  a.field_nullable = {false};  // amount is a required field in W1
  a.window = {window_ms, window_ms};
  a.initial_capacity = 1 << 20;
  return a;
}

kernels::agg_input agg_for(const device_w1& w, std::size_t begin, std::size_t rows) {
  kernels::agg_input in;
  in.num_rows = rows;
  in.keys.count = 2;
  in.keys.columns[0] = w.fixed(w.user_id, begin);
  in.keys.columns[1] = w.type_column(begin);
  in.d_event_time = w.ts.as<std::int64_t>() + begin;
  in.d_status = w.status.as<std::uint8_t>() + begin;
  in.fields[0] = w.fixed(w.amount, begin);
  in.key_string_bytes = w.type_bytes;  // an upper bound for any slice
  return in;
}

void report(benchmark::State& state, std::size_t n, const char* name) {
  const double events = static_cast<double>(state.iterations()) * static_cast<double>(n);
  state.SetItemsProcessed(static_cast<std::int64_t>(events));
  state.SetBytesProcessed(static_cast<std::int64_t>(events * shared_w1().bytes_per_event()));
  state.counters["events_per_s"] = benchmark::Counter(events, benchmark::Counter::kIsRate);
  if (baseline_events_per_second > 0) {
    state.counters["vs_absl"] =
        benchmark::Counter(events / baseline_events_per_second, benchmark::Counter::kIsRate);
  }
  state.SetLabel(name);
}

/// The whole per-batch step, as the runtime runs it, over all events in batches of range(0).
void BM_trove_step(benchmark::State& state, target t) {
  bench_device dev(t);
  if (!dev.be) {
    state.SkipWithError("no usable CUDA device");
    return;
  }
  kernels::backend* be = dev.be.get();
  const kernels::stream_view stream = dev.stream;
  device_w1 w(*be, stream);
  const auto batch = static_cast<std::size_t>(state.range(0));
  const w1_data& d = shared_w1();
  for (auto _ : state) {
    kernels::dedup_options dopt;
    dopt.ttl_ms = 600'000;
    dopt.initial_capacity = 1 << 22;
    dopt.exact_64bit_keys = true;  // event_id: one required u64, as the runtime configures it
    auto dedup = be->make_dedup_set(dopt, stream);
    auto agg = be->make_agg_table(w1_agg_options(), stream);
    std::int64_t watermark = INT64_MIN;
    std::int64_t max_ts = INT64_MIN;
    std::size_t rows_out = 0;
    for (std::size_t begin = 0; begin < w.n; begin += batch) {
      const std::size_t rows = std::min(batch, w.n - begin);
      auto* d_status = w.status.as<std::uint8_t>() + begin;
      auto* d_keys = w.keys.as<kernels::hash128>() + begin;
      be->classify(classify_for(w, begin, rows, agg->emitted_watermark()), d_status, d_keys,
                   stream);
      dedup->apply(d_keys, w.ts.as<std::int64_t>() + begin, d_status, rows, watermark, stream);
      agg->aggregate(agg_for(w, begin, rows), stream);
      max_ts = std::max(max_ts, d.ts[begin + rows - 1]);  // host knows it from decoding
      watermark = max_ts - 5'000;
      rows_out += agg->extract_closed(watermark, stream).rows;
    }
    rows_out += agg->extract_closed(INT64_MAX, stream).rows;
    state.counters["rows_out"] = static_cast<double>(rows_out);
  }
  report(state, w.n, be->description().c_str());
}

void BM_trove_classify(benchmark::State& state, target t) {
  bench_device dev(t);
  if (!dev.be) {
    state.SkipWithError("no usable CUDA device");
    return;
  }
  kernels::backend* be = dev.be.get();
  const kernels::stream_view stream = dev.stream;
  device_w1 w(*be, stream);
  for (auto _ : state) {
    be->classify(classify_for(w, 0, w.n, INT64_MIN), w.status.as<std::uint8_t>(),
                 w.keys.as<kernels::hash128>(), stream);
    be->synchronize(stream);
  }
  report(state, w.n, "classify (filter, late, dedup key)");
}

void BM_trove_dedup(benchmark::State& state, target t) {
  bench_device dev(t);
  if (!dev.be) {
    state.SkipWithError("no usable CUDA device");
    return;
  }
  kernels::backend* be = dev.be.get();
  const kernels::stream_view stream = dev.stream;
  device_w1 w(*be, stream);
  const auto batch = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    state.PauseTiming();
    be->classify(classify_for(w, 0, w.n, INT64_MIN), w.status.as<std::uint8_t>(),
                 w.keys.as<kernels::hash128>(), stream);
    kernels::dedup_options dopt;
    dopt.ttl_ms = 600'000;
    dopt.initial_capacity = 1 << 22;
    dopt.exact_64bit_keys = true;  // event_id: one required u64, as the runtime configures it
    auto dedup = be->make_dedup_set(dopt, stream);
    be->synchronize(stream);
    state.ResumeTiming();
    for (std::size_t begin = 0; begin < w.n; begin += batch) {
      const std::size_t rows = std::min(batch, w.n - begin);
      dedup->apply(w.keys.as<kernels::hash128>() + begin, w.ts.as<std::int64_t>() + begin,
                   w.status.as<std::uint8_t>() + begin, rows, INT64_MIN, stream);
    }
    be->synchronize(stream);
  }
  report(state, w.n, ("dedup set, " + be->description()).c_str());
}

void BM_trove_aggregate(benchmark::State& state, target t) {
  bench_device dev(t);
  if (!dev.be) {
    state.SkipWithError("no usable CUDA device");
    return;
  }
  kernels::backend* be = dev.be.get();
  const kernels::stream_view stream = dev.stream;
  device_w1 w(*be, stream);
  be->fill_bytes(w.status.data(), kernels::status_accepted, w.n, stream);
  const auto batch = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    state.PauseTiming();
    auto agg = be->make_agg_table(w1_agg_options(), stream);
    be->synchronize(stream);
    state.ResumeTiming();
    for (std::size_t begin = 0; begin < w.n; begin += batch) {
      agg->aggregate(agg_for(w, begin, std::min(batch, w.n - begin)), stream);
    }
    be->synchronize(stream);
  }
  report(state, w.n, ("aggregation table, " + be->description()).c_str());
}

/// @brief Per-aggregate cost: the aggregation step over W1's (user_id, type) groups with one
/// aggregate besides the count. range(0): 0 count only, 1 sum(amount), 2 min(amount) + max(amount),
/// 3 approx_count_distinct(event_id), 4 p50..p999(amount) (one DDSketch). Compare the rates of one
/// run: the difference to 0 is the aggregate's cost per event.
void BM_trove_aggregate_kind(benchmark::State& state, target t) {
  bench_device dev(t);
  if (!dev.be) {
    state.SkipWithError("no usable CUDA device");
    return;
  }
  kernels::backend* be = dev.be.get();
  const kernels::stream_view stream = dev.stream;
  device_w1 w(*be, stream);
  be->fill_bytes(w.status.data(), kernels::status_accepted, w.n, stream);
  const std::size_t batch = std::size_t{1} << 20;
  const auto which = state.range(0);
  kernels::agg_options o = w1_agg_options();
  using kernels::acc_bit;
  using kernels::acc_kind;
  const char* names[] = {"count", "sum(amount)", "min+max(amount)",
                         "approx_count_distinct(event_id)", "p50..p999(amount)"};
  o.field_accumulators = {0};
  switch (which) {
    case 0:
      o.fields.clear();
      o.field_nullable.clear();
      o.field_accumulators.clear();
      break;
    case 1:
      o.field_accumulators = {acc_bit(acc_kind::sum)};
      break;
    case 2:
      o.field_accumulators = {
          static_cast<std::uint8_t>(acc_bit(acc_kind::min) | acc_bit(acc_kind::max))};
      break;
    case 3:
      o.fields = {kernels::value_kind::u64};
      o.field_accumulators = {acc_bit(acc_kind::hll)};
      break;
    default:
      o.field_accumulators = {acc_bit(acc_kind::ddsketch)};
      break;
  }
  for (auto _ : state) {
    state.PauseTiming();
    auto agg = be->make_agg_table(o, stream);
    be->synchronize(stream);
    state.ResumeTiming();
    for (std::size_t begin = 0; begin < w.n; begin += batch) {
      kernels::agg_input in = agg_for(w, begin, std::min(batch, w.n - begin));
      if (which == 3) in.fields[0] = w.fixed(w.event_id, begin);
      agg->aggregate(in, stream);
    }
    be->synchronize(stream);
  }
  report(state, w.n,
         (std::string("aggregation table, count + ") + names[which] + ", " + be->description())
             .c_str());
}

}  // namespace
}  // namespace trove::bench

using namespace trove::bench;

// The baseline runs first so the others can report their ratio to it.
BENCHMARK(BM_absl_baseline)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
// Each step on the CPU's owned strategy (the default), on its atomic strategy (the GPU's
// rows-in-parallel kernels with atomics, TROVE_CPU_STRATEGY=atomic) and on CUDA when present.
BENCHMARK_CAPTURE(BM_trove_step, cpu, target::cpu_owned)
    ->Arg(1 << 16)
    ->Arg(1 << 20)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_trove_step, cpu_atomic, target::cpu_atomic)
    ->Arg(1 << 20)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_trove_classify, cpu, target::cpu_owned)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_trove_dedup, cpu, target::cpu_owned)
    ->Arg(1 << 20)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_trove_dedup, cpu_atomic, target::cpu_atomic)
    ->Arg(1 << 20)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_trove_aggregate, cpu, target::cpu_owned)
    ->Arg(1 << 20)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_trove_aggregate, cpu_atomic, target::cpu_atomic)
    ->Arg(1 << 20)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_trove_aggregate_kind, cpu, target::cpu_owned)
    ->DenseRange(0, 4)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_trove_step, cuda, target::cuda)
    ->Arg(1 << 20)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3)
    ->UseRealTime();

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  // Capture the baseline's rate for the ratio counters: run it through a reporter hook.
  class ratio_reporter : public benchmark::ConsoleReporter {
   public:
    void ReportRuns(const std::vector<Run>& runs) override {
      for (const auto& run : runs) {
        if (run.run_name.function_name == "BM_absl_baseline" && !run.error_occurred) {
          auto it = run.counters.find("events_per_s");
          if (it != run.counters.end()) baseline_events_per_second = it->second.value;
        }
      }
      ConsoleReporter::ReportRuns(runs);
    }
  } reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
