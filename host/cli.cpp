#include "host/cli.hpp"

#include <algorithm>
#include <ctime>
#include <filesystem>

#include "host/checkpoint/store.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <unistd.h>
#include <csignal>
#include <fstream>

#include "host/bench_cli.hpp"
#include "host/config.hpp"
#include "host/device_select.hpp"
#include "host/duration.hpp"
#include "host/kafka_tools.hpp"
#include "host/metrics_server.hpp"
#include "host/pipeline.hpp"
#include "host/sidecar.hpp"
#include "host/version.hpp"
#include "io/synthetic.hpp"
#include "kernels/backend.hpp"
#include "kernels/error.hpp"

namespace trove::host {
namespace {

int cmd_devices() {
  const kernels::cuda_probe probe = kernels::probe_cuda();
  if (probe.usable()) {
    for (const auto& d : probe.devices) {
      fmt::print("cuda:{}  {}  {:.1f} GiB  compute capability {}.{}\n", d.ordinal, d.name,
                 static_cast<double>(d.total_memory) / (1u << 30), d.cc_major, d.cc_minor);
    }
  } else {
    fmt::print("cuda: no usable device: {}\n", probe.reason);
  }
  // A bad TROVE_CPU_STRATEGY is reported, not thrown: this command explains the machine.
  std::string strategy;
  try {
    strategy = std::string(kernels::to_string(cpu_strategy_from_env())) + " strategy";
  } catch (const trove::logic_error& e) {
    strategy = e.what();
  }
  fmt::print("cpu:  {} OpenMP threads (Thrust OpenMP system, {})\n", kernels::cpu_backend_threads(),
             strategy);
  const char* chosen = probe.usable() ? "cuda" : "cpu";
  fmt::print("--device auto would use: {}\n", chosen);
  return exit_ok;
}

/// Loads and validates a config; prints every error with its key; nullopt when invalid.
std::optional<pipeline_config> load(const std::string& path, const std::vector<std::string>& sets,
                                    const std::string& device) {
  std::vector<std::string> overrides = sets;
  if (!device.empty()) overrides.push_back("device=" + device);
  std::vector<config_error> errors;
  pipeline_config config = load_config_file(path, overrides, errors);
  if (!errors.empty()) {
    for (const auto& e : errors) fmt::print(stderr, "{}\n", e.located_message(path));
    fmt::print(stderr, "trove: {} configuration error{} in {}\n", errors.size(),
               errors.size() == 1 ? "" : "s", path);
    return std::nullopt;
  }
  return config;
}

extern "C" void on_signal(int) {
  static std::atomic<int> count{0};
  if (count.fetch_add(1) > 0) std::_Exit(exit_runtime_error);  // a second signal: exit at once
  note_stop_signal();  // arms the shutdown_timeout deadline (host/sidecar.cpp)
  request_stop();
}

int cmd_run(const std::string& path, const std::vector<std::string>& sets,
            const std::string& device, const run_options& options) {
  auto config = load(path, sets, device);
  if (!config) return exit_config_error;
  configure_logging(config->log, options.quiet);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  const run_stats stats = run_sidecar(*config, options);  // + metrics endpoint, shutdown deadline
  if (config->log.format == log_format::json) {  // log shippers get one JSON object per line
    fmt::print(stderr,
               "{{\"level\":\"info\",\"logger\":\"trove\",\"msg\":\"summary\",\"stats\":{}}}\n",
               stats.to_json());
  } else {
    fmt::print(
        stderr,
        "trove: in {}  accepted {}  duplicate {}  late {}  filtered {}  bad {}  rows out {}  "
        "windows {}  {:.3f} s  {:.0f} events/s  device {}\n",
        stats.in, stats.accepted, stats.duplicate, stats.late, stats.filtered, stats.bad,
        stats.rows_out, stats.windows_emitted, stats.seconds, stats.events_per_second,
        stats.device);
    for (const output_stats& o : stats.outputs) {
      fmt::print(stderr,
                 "trove:   output {}: accepted {}  emitted into {}  filtered {}  late {}  rows out "
                 "{}  windows {}\n",
                 o.name, o.accepted, o.emitted_into, o.filtered, o.late, o.rows_out,
                 o.windows_emitted);
    }
  }
  if (!options.stats_json.empty()) {
    std::ofstream out(options.stats_json);
    out << stats.to_json() << "\n";
    if (!out) throw std::runtime_error("cannot write --stats-json file " + options.stats_json);
  }
  return exit_ok;
}

int cmd_validate(const std::string& path, const std::vector<std::string>& sets, bool print) {
  auto config = load(path, sets, "");
  if (!config) return exit_config_error;
  if (print) fmt::print("{}", to_yaml(*config));
  fmt::print(stderr, "trove: {} is valid\n", path);
  return exit_ok;
}

int cmd_gen(const io::synthetic_options& options, const std::string& out_path) {
  io::synthetic_generator gen(options);
  std::FILE* out = stdout;
  if (!out_path.empty() && out_path != "-") {
    out = std::fopen(out_path.c_str(), "w");
    if (!out) throw std::runtime_error("cannot open " + out_path + ": " + std::strerror(errno));
  }
  std::string buffer;
  const auto start = std::chrono::steady_clock::now();
  while (!gen.done()) {
    buffer.clear();
    std::size_t chunk = 65536;
    if (options.rate > 0) {  // pace: write what is due, then sleep a little
      const double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const auto due = static_cast<std::uint64_t>(elapsed * options.rate) + 1;
      chunk = due > gen.produced() ? std::min<std::uint64_t>(due - gen.produced(), 65536) : 0;
      if (chunk == 0) {
        std::fflush(out);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
    }
    gen.write_json(chunk, buffer);
    if (std::fwrite(buffer.data(), 1, buffer.size(), out) != buffer.size()) {
      throw std::runtime_error("write failed: " + std::string(std::strerror(errno)));
    }
  }
  if (out != stdout)
    std::fclose(out);
  else
    std::fflush(out);
  return exit_ok;
}

}  // namespace

namespace {

/// The checkpoints of one chain (a directory of checkpoint-<id>.ckpt files), newest first.
void print_chain(const std::string& dir) {
  const checkpoint_store store(dir, /*read_only=*/true);
  const auto items = store.list();
  if (items.empty()) {
    fmt::print("no checkpoints in '{}'\n", dir);
    return;
  }
  fmt::print("{:>6}  {:<24}  {:>12}  {:>12}  {:>10}  {:>8}  {:<20}  {}\n", "id", "time (UTC)",
             "bytes", "dedup", "groups", "records", "watermark", "positions");
  for (const auto& item : items) {
    if (!item.valid) {
      fmt::print("{:>6}  INVALID: {} ({})\n", item.id, item.problem, item.path.string());
      continue;
    }
    const checkpoint_state& s = item.state;
    std::uint64_t entries = 0;
    for (const auto& seg : s.segments) entries += seg.entries;
    std::string positions;
    if (!s.source.kafka.empty()) {
      for (const auto& k : s.source.kafka) {
        positions += fmt::format("{}{}[{}]@{}", positions.empty() ? "" : " ", k.topic, k.partition,
                                 k.next_offset);
        if (k.epoch > 0) positions += fmt::format(" (epoch {})", k.epoch);
      }
    } else if (s.source.generated > 0) {
      positions = fmt::format("generated {}", s.source.generated);
    } else {
      positions = fmt::format("line {} byte {}", s.source.file_line, s.source.file_offset);
    }
    positions += fmt::format("; sink {} B, dead letters {} B", s.sink_length, s.dead_letter_length);
    if (item.transaction_pending) positions += "; transaction NOT committed (not restored)";
    const std::time_t seconds = static_cast<std::time_t>(s.created_ms / 1000);
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    const std::string watermark = s.watermark == INT64_MIN   ? "-inf"
                                  : s.watermark == INT64_MAX ? "+inf"
                                                             : std::to_string(s.watermark);
    fmt::print(
        "{:>6}  {:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}  {:>12}  {:>12}  {:>10}  {:>8}  {:<20}  "
        "{}\n",
        s.id, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
        s.created_ms % 1000, s.manifest_bytes + s.segment_bytes, entries, s.open_groups,
        s.counters.in(), watermark, positions);
  }
}

}  // namespace

/// `trove checkpoint list DIR`.
int cmd_checkpoint_list(const std::string& dir) {
  if (!std::filesystem::is_directory(dir)) {
    fmt::print(stderr, "trove checkpoint list: '{}' is not a directory\n", dir);
    return exit_config_error;
  }
  const std::filesystem::path members = std::filesystem::path(dir) / "members";
  if (!std::filesystem::is_directory(members)) {
    print_chain(dir);
    return exit_ok;
  }
  // A shared directory (Kafka source): one chain per instance of the group.
  std::vector<std::filesystem::path> chains;
  for (const auto& entry : std::filesystem::directory_iterator(members)) {
    if (entry.is_directory()) chains.push_back(entry.path());
  }
  std::sort(chains.begin(), chains.end());
  for (const auto& chain : chains) {
    fmt::print("member {}:\n", chain.filename().string());
    print_chain(chain.string());
  }
  return exit_ok;
}

int run_cli(int argc, char** argv) {
  CLI::App app{
      "trove: a GPU-accelerated stream processor sidecar. Exact deduplication and windowed "
      "aggregation of event streams on CUDA, or on the CPU when no GPU is present.",
      "trove"};
  app.set_version_flag("--version", std::string("trove ") + trove::version);
  app.require_subcommand(1);
  app.footer(
      "Exit codes: 0 ok, 1 runtime error (I/O, device, Kafka), 2 configuration or usage "
      "error.\nRun `trove <command> --help` for a command's options.");

  auto* devices = app.add_subcommand("devices",
                                     "List CUDA devices (or why none is usable) and "
                                     "the CPU backend's threads");

  std::string config_path;
  std::vector<std::string> sets;
  std::string device;
  run_options options;
  auto* run = app.add_subcommand("run", "Run a pipeline: read, deduplicate, aggregate, emit");
  run->add_option("-c,--config", config_path, "Pipeline configuration (YAML)")->required();
  run->add_option("--set", sets,
                  "Override a configuration key, e.g. --set window.size=5m (repeatable)");
  run->add_option("--device", device, "Backend: auto (CUDA when usable, else CPU), cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  run->add_option("--stats-json", options.stats_json,
                  "Write the run's counters to this file as JSON at exit");
  run->add_flag("-q,--quiet", options.quiet, "No progress lines (warnings and the summary only)");
  run->add_flag("--strict", options.strict,
                "Stop at the first bad record (exit code 1) instead of dead-lettering it");
  run->footer(
      "Exit codes:\n  0  the input was processed to its end (or stopped by SIGINT/SIGTERM after "
      "draining)\n  1  runtime error: I/O, device, memory cap, or a bad record with --strict;\n"
      "     also a drain longer than shutdown_timeout, or a second signal\n"
      "  2  configuration or command-line error (every problem is listed with its key)\n\n"
      "At exit a summary goes to stderr: in = accepted + duplicate + late + filtered + bad.");

  bool print = false;
  auto* validate = app.add_subcommand("validate", "Check a configuration and report every error");
  validate->add_option("-c,--config", config_path, "Pipeline configuration (YAML)")->required();
  validate->add_option("--set", sets, "Override a configuration key (repeatable)");
  validate->add_flag("--print", print, "Print the effective configuration, defaults included");

  io::synthetic_options gen_options;
  std::string gen_out;
  std::string disorder = "0ms";
  std::string span = "10m";
  auto* gen = app.add_subcommand(
      "gen",
      "Write synthetic events as JSON lines (test data) to a file, stdout or Kafka (--kafka)");
  gen->add_option("-n,--events", gen_options.events, "Events to write (0 = unbounded)")
      ->capture_default_str();
  gen->add_option("--rate", gen_options.rate, "Events per second (0 = as fast as possible)")
      ->capture_default_str();
  gen->add_option("--keys", gen_options.keys, "Distinct users")->capture_default_str();
  gen->add_option("--zipf", gen_options.zipf, "User skew exponent (0 = uniform)")
      ->capture_default_str();
  gen->add_option("--duplicates", gen_options.duplicate_ratio,
                  "Fraction of events that re-send an earlier event")
      ->capture_default_str();
  gen->add_option("--disorder", disorder, "Maximum event-time disorder (duration)")
      ->capture_default_str();
  gen->add_option("--span", span, "Event time covered by the run (duration)")
      ->capture_default_str();
  gen->add_option("--types", gen_options.types, "Distinct event types")->capture_default_str();
  gen->add_option("--seed", gen_options.seed, "Random seed (same seed, same events)")
      ->capture_default_str();
  gen->add_option("-o,--output", gen_out, "Output file (default: stdout)");
  std::string gen_kafka;
  std::string gen_topic = "events";
  bool gen_quiet = false;
  gen->add_option("--kafka", gen_kafka,
                  "Produce to Kafka instead (bootstrap servers, e.g. the address `trove broker` "
                  "prints); one JSON event per message, keyed by user_id");
  gen->add_option("--topic", gen_topic, "Topic for --kafka")->capture_default_str();
  gen->add_flag("-q,--quiet", gen_quiet, "No progress lines (--kafka)");

  int broker_partitions = 4;
  std::vector<std::string> broker_topics;
  auto* broker = app.add_subcommand(
      "broker",
      "Run the embedded development Kafka broker (librdkafka's mock cluster: real Kafka "
      "protocol on loopback, in memory, ~5 MiB kept per partition); prints its bootstrap "
      "address and serves until stopped");
  broker->add_option("--partitions", broker_partitions, "Partitions of each --topic")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  broker->add_option("--topic", broker_topics, "Topic to create (repeatable)");

  std::string checkpoint_dir;
  auto* checkpoint =
      app.add_subcommand("checkpoint", "Inspect the checkpoints of a checkpoint.dir");
  checkpoint->require_subcommand(1);
  auto* checkpoint_list = checkpoint->add_subcommand(
      "list", "Show each checkpoint: id, time, size, positions, watermark, entries (newest first)");
  checkpoint_list->add_option("dir", checkpoint_dir, "The checkpoint.dir")->required();

  const bench_command bench = add_bench_command(app);

  std::string probe_address = "127.0.0.1:9464";
  std::string probe_path = "/healthz";
  std::string probe_timeout = "2s";
  auto* healthcheck = app.add_subcommand(
      "healthcheck",
      "Probe a running trove's HTTP endpoint (metrics.listen): exit 0 when PATH answers 200, "
      "else 1 (for Docker HEALTHCHECK; no curl needed in the image)");
  healthcheck->add_option("address", probe_address, "host:port of metrics.listen")
      ->capture_default_str();
  healthcheck->add_option("--path", probe_path, "/healthz, /readyz or /metrics")
      ->capture_default_str();
  healthcheck->add_option("--timeout", probe_timeout, "Connect/read timeout (duration)")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? exit_ok : exit_config_error;
  }
  try {
    if (devices->parsed()) return cmd_devices();
    if (broker->parsed()) return run_dev_broker(broker_partitions, broker_topics);
    if (validate->parsed()) return cmd_validate(config_path, sets, print);
    if (checkpoint_list->parsed()) return cmd_checkpoint_list(checkpoint_dir);
    if (run->parsed()) return cmd_run(config_path, sets, device, options);
    if (bench.subcommand->parsed()) return bench.run();
    if (healthcheck->parsed()) {
      std::int64_t timeout_ms = 0;
      std::string why;
      if (!parse_duration(probe_timeout, timeout_ms, why)) {
        fmt::print(stderr, "trove healthcheck: --timeout: {}\n", why);
        return exit_config_error;
      }
      return run_healthcheck(probe_address, probe_path, std::chrono::milliseconds(timeout_ms));
    }
    if (gen->parsed()) {
      std::string why;
      if (!parse_duration(disorder, gen_options.disorder_ms, why) ||
          !parse_duration(span, gen_options.span_ms, why)) {
        fmt::print(stderr, "trove gen: {}\n", why);
        return exit_config_error;
      }
      if (!gen_kafka.empty())
        return produce_synthetic(gen_options, gen_kafka, gen_topic, gen_quiet);
      return cmd_gen(gen_options, gen_out);
    }
  } catch (const trove::logic_error& e) {
    fmt::print(stderr, "trove: configuration error: {}\n", e.what());
    return exit_config_error;
  } catch (const trove::cuda_error& e) {
    fmt::print(stderr, "trove: error: {}\n", e.what());
    return exit_runtime_error;
  } catch (const std::exception& e) {
    fmt::print(stderr, "trove: error: {}\n", e.what());
    return exit_runtime_error;
  }
  return exit_ok;
}

}  // namespace trove::host
