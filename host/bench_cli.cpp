#include "host/bench_cli.hpp"

#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "host/cli.hpp"
#include "host/config.hpp"
#include "host/duration.hpp"
#include "host/load_harness.hpp"

namespace trove::host {
namespace {

/// The command line of `trove bench`, owned by the run function.
struct bench_args {
  std::string config_path;
  std::vector<std::string> sets;
  std::string device;
  std::string rates;
  bool sweep = false;
  std::string sweep_start = "250k";
  std::string sweep_max = "16M";
  int bisect = 3;
  std::string duration = "10s";
  std::string warmup = "0s";
  std::string p99_bound = "250ms";
  double min_achieved = 0.95;
  std::string out;
  std::uint64_t baseline_events = 10'000'000;
  std::string source = "synthetic";
  int partitions = 32;
  std::uint64_t raw_events = 1'000'000;
  bool size_tables = false;
  std::string checkpoint_interval;
  std::string checkpoint_dir;
  std::string emit;
  bool quiet = false;
};

int fail(const std::string& message) {
  fmt::print(stderr, "trove bench: {}\n", message);
  return exit_config_error;
}

int run_bench(const bench_args& a) {
  std::vector<std::string> overrides = a.sets;
  if (!a.device.empty()) overrides.push_back("device=" + a.device);
  if (!a.emit.empty()) overrides.push_back("emit=" + a.emit);
  if (!a.checkpoint_interval.empty()) {
    // Each run checkpoints into its own empty subdirectory (removed afterwards).
    const std::string dir =
        a.checkpoint_dir.empty()
            ? (std::filesystem::temp_directory_path() / "trove-bench-checkpoints").string()
            : a.checkpoint_dir;
    overrides.push_back("checkpoint.dir=\"" + dir + "\"");
    overrides.push_back("checkpoint.interval=" + a.checkpoint_interval);
  }
  std::vector<config_error> errors;
  load_options options;
  const std::string name = a.config_path.empty() ? "(built-in W1 config)" : a.config_path;
  options.config = a.config_path.empty()
                       ? load_config_string(default_load_config_yaml(), overrides, errors)
                       : load_config_file(a.config_path, overrides, errors);
  if (!errors.empty()) {
    for (const auto& e : errors) fmt::print(stderr, "{}\n", e.located_message(name));
    return fail(fmt::format("{} configuration error{} in {}", errors.size(),
                            errors.size() == 1 ? "" : "s", name));
  }
  if (!a.rates.empty()) {
    std::string_view rest = a.rates;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const std::string_view item = rest.substr(0, comma);
      double rate = 0;
      if (!parse_rate(item, rate)) {
        return fail(fmt::format("--rates: got \"{}\", expected rates like 250k,500k,1M", item));
      }
      options.rates.push_back(rate);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
  }
  if (a.sweep && !options.rates.empty()) return fail("--sweep and --rates exclude each other");
  if (!parse_rate(a.sweep_start, options.sweep_start))
    return fail("--sweep-start: expected a rate");
  if (!parse_rate(a.sweep_max, options.sweep_max)) return fail("--sweep-max: expected a rate");
  std::int64_t duration_ms = 0;
  std::int64_t bound_ms = 0;
  std::string why;
  if (!parse_duration(a.duration, duration_ms, why) || duration_ms <= 0) {
    return fail("--duration: " + (why.empty() ? "must be > 0" : why));
  }
  if (!parse_duration(a.p99_bound, bound_ms, why) || bound_ms <= 0) {
    return fail("--p99-bound: " + (why.empty() ? "must be > 0" : why));
  }
  std::int64_t warmup_ms = 0;
  if (!parse_duration(a.warmup, warmup_ms, why) || warmup_ms < 0) {
    return fail("--warmup: " + (why.empty() ? "must be >= 0" : why));
  }
  options.duration_s = static_cast<double>(duration_ms) / 1000;
  options.warmup_s = static_cast<double>(warmup_ms) / 1000;
  options.p99_bound_ms = static_cast<double>(bound_ms);
  options.bisect_steps = a.bisect;
  options.min_achieved_ratio = a.min_achieved;
  options.baseline_events = a.baseline_events;
  options.source = a.source;
  options.kafka_partitions = a.partitions;
  options.raw_consume_events = a.raw_events;
  options.size_tables = a.size_tables;
  options.progress = a.quiet ? nullptr : stderr;

  // The pipeline logs to stderr like `trove run`, warnings only: progress lines are the harness's.
  auto logger = spdlog::get("trove");
  if (!logger) logger = spdlog::stderr_color_mt("trove");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("trove %H:%M:%S.%e %^%l%$ %v");
  spdlog::set_level(spdlog::level::warn);

  const load_report report = run_load(options);
  fmt::print("{}", to_markdown(report));
  if (!a.out.empty()) {
    for (const auto& warning : write_load_outputs(report, a.out)) {
      fmt::print(stderr, "trove bench: warning: {}\n", warning);
    }
    fmt::print(stderr, "trove bench: wrote results.json, results.md and the plots to {}\n", a.out);
  }
  for (const auto& run : report.runs) {
    if (!run.error.empty()) return exit_runtime_error;
  }
  return exit_ok;
}

}  // namespace

bench_command add_bench_command(CLI::App& app) {
  auto args = std::make_shared<bench_args>();
  auto* bench = app.add_subcommand(
      "bench",
      "Load harness: run the pipeline at offered rates (open loop), report throughput, latency "
      "percentiles, per-stage times and the max sustainable rate vs the absl baseline");
  bench->add_option("-c,--config", args->config_path,
                    "Pipeline to load (its source is replaced by the synthetic generator); "
                    "default: the built-in W1 job (emit update, rows to /dev/null)");
  bench->add_option("--set", args->sets, "Override a configuration key (repeatable)");
  bench->add_option("--device", args->device, "Backend: auto, cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  bench->add_option("--emit", args->emit, "Override emit: update or final")
      ->check(CLI::IsMember({"update", "final"}));
  bench->add_option("--rates", args->rates, "Offered rates to run, e.g. 250k,500k,1M,2M");
  bench->add_flag("--sweep", args->sweep,
                  "Find the max sustainable rate: double from --sweep-start, then bisect "
                  "(the default without --rates)");
  bench->add_option("--sweep-start", args->sweep_start, "First rate of the sweep")
      ->capture_default_str();
  bench->add_option("--sweep-max", args->sweep_max, "Highest rate the sweep tries")
      ->capture_default_str();
  bench->add_option("--bisect", args->bisect, "Bisections after the first unsustainable rate")
      ->capture_default_str();
  bench->add_option("--duration", args->duration, "Length of each run (duration)")
      ->capture_default_str();
  bench
      ->add_option("--warmup", args->warmup,
                   "Run this long first at each rate without recording latencies (duration)")
      ->capture_default_str();
  bench->add_option("--p99-bound", args->p99_bound, "Sustainable: p99 latency at most this")
      ->capture_default_str();
  bench
      ->add_option("--min-achieved", args->min_achieved,
                   "Sustainable: achieved ≥ this fraction of the offered rate")
      ->capture_default_str();
  bench
      ->add_option("--baseline-events", args->baseline_events,
                   "Events for the absl baseline (0 = skip it)")
      ->capture_default_str();
  bench
      ->add_option("--source", args->source,
                   "synthetic: the generator in the pipeline's source thread; kafka: produced "
                   "open loop into the embedded broker and consumed by the Kafka source")
      ->check(CLI::IsMember({"synthetic", "kafka"}))
      ->capture_default_str();
  bench->add_option("--partitions", args->partitions, "kafka: partitions of the topic")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  bench
      ->add_option("--raw-events", args->raw_events,
                   "kafka: events for the raw-consume baseline (0 = skip it)")
      ->capture_default_str();
  bench->add_option("--checkpoint-interval", args->checkpoint_interval,
                    "Checkpoint every this long (duration, e.g. 2s) while under load; each run "
                    "writes into its own empty directory under --checkpoint-dir");
  bench->add_option("--checkpoint-dir", args->checkpoint_dir,
                    "Where --checkpoint-interval writes (default: the temp directory; use the disk "
                    "a deployment would)");
  bench->add_flag("--size-tables", args->size_tables,
                  "Size the dedup set and aggregation table for each run's events up front (a "
                  "deployment whose tables have grown): no growth pauses in the measurement");
  bench->add_option("--out", args->out,
                    "Write results.json, results.md and latency/stages/timeline.png here");
  bench->add_flag("-q,--quiet", args->quiet, "No progress lines");
  return {bench, [args] { return run_bench(*args); }};
}

}  // namespace trove::host
