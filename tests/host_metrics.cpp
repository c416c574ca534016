/// @file host_metrics.cpp
/// @brief The metrics registry (exposition format checked by Prometheus' own parser), readiness
/// rules, the HTTP endpoint, listen addresses and the JSON log format.

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <simdjson.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include "e2e_util.hpp"
#include "host/metrics.hpp"
#include "host/metrics_server.hpp"
#include "host/pipeline.hpp"
#include "host/sidecar.hpp"

namespace trove::host {
namespace {

using namespace std::chrono_literals;
namespace e2e = trove::test::e2e;

/// Samples as Prometheus' reference parser reads them: `name{sorted labels}` → value.
using samples = std::map<std::string, double>;

/// Parses exposition text with python3-prometheus-client (tests/tools/parse_prometheus.py);
/// a failure when it does not parse.
samples parse_with_prometheus(const std::string& text) {
  e2e::temp_dir dir;
  const std::string path = dir.file("metrics.txt");
  e2e::write_file(path, text);
  const e2e::command_result r =
      e2e::run_command({"/usr/bin/python3",
                        std::string(TROVE_SOURCE_DIR) + "/tests/tools/parse_prometheus.py", path});
  EXPECT_EQ(r.exit_code, 0) << "the Prometheus parser rejected the exposition: " << r.err
                            << "\n---\n"
                            << text;
  samples out;
  for (const std::string& line : e2e::split_lines(r.out)) {
    const std::size_t space = line.rfind(' ');
    if (space == std::string::npos) continue;
    out[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return out;
}

double at(const samples& s, const std::string& key) {
  const auto it = s.find(key);
  if (it == s.end()) {
    ADD_FAILURE() << "no sample " << key;
    return -1;
  }
  return it->second;
}

/// A registry that has seen one batch of 10 records (5 accepted, 2 duplicate, 1 late, 1
/// filtered, 1 bad), closed 3 ms and opened 10 ms before its rows reached the sink.
void feed(metrics_registry& m) {
  m.on_device_ready("cpu (test \"quoted\")");
  m.on_source_ready();
  run_stats stats;
  stats.in = 10;
  stats.accepted = 5;
  stats.duplicate = 2;
  stats.late = 1;
  stats.filtered = 1;
  stats.bad = 1;
  stats.rows_out = 4;
  stats.windows_emitted = 2;
  stats.batches = 1;
  state_report state;
  state.dedup = {7, 8, 16, 256, 3, 1};  // 3 rebuilds, 1 of them at once
  state.agg = {3, 4, 32, 1024, 0};
  state.watermark = 1'700'000'055'000;
  state.max_event_time = 1'700'000'060'000;
  state.ready_queue_depth = 2;
  state.out_queue_depth = 1;
  state.free_buffers = 1;
  state.checkpoint.enabled = true;
  state.checkpoint.written = 4;
  state.checkpoint.delayed = 1;
  state.checkpoint.last_id = 9;
  state.checkpoint.last_bytes = 4096;
  state.checkpoint.last_write_seconds = 0.25;
  state.checkpoint.last_cut_seconds = 0.125;
  state.checkpoint.last_groups = 321;
  state.checkpoint.updates_only = 3;
  state.checkpoint.transactional = true;
  state.checkpoint.transactions_committed = 7;
  state.checkpoint.transactions_aborted = 2;
  m.on_progress(stats, state);
  batch_report report;
  report.seq = 0;
  report.rows = 10;
  report.sink_done = observer_clock::now();
  report.closed = report.sink_done - 3ms;
  report.opened = report.sink_done - 10ms;
  report.decode_seconds = 0.25;
  report.kernel_seconds = 0.5;
  m.on_batch(report);
  m.on_partition_lag("events", 0, 42);
  m.on_partition_lag("events", 3, 0);
}

TEST(Metrics, ExpositionParsesAndCarriesTheCounters) {
  metrics_registry m;
  feed(m);
  const std::string text = m.render(observer_clock::now(), 1'700'000'065'000);
  const samples s = parse_with_prometheus(text);
  EXPECT_EQ(at(s, "trove_records_in_total{}"), 10);
  EXPECT_EQ(at(s, "trove_records_total{status=\"accepted\"}"), 5);
  EXPECT_EQ(at(s, "trove_records_total{status=\"duplicate\"}"), 2);
  EXPECT_EQ(at(s, "trove_records_total{status=\"late\"}"), 1);
  EXPECT_EQ(at(s, "trove_records_total{status=\"filtered\"}"), 1);
  EXPECT_EQ(at(s, "trove_records_total{status=\"bad\"}"), 1);
  EXPECT_EQ(at(s, "trove_rows_out_total{}"), 4);
  EXPECT_EQ(at(s, "trove_windows_emitted_total{}"), 2);
  EXPECT_EQ(at(s, "trove_batches_total{stage=\"device\"}"), 1);
  EXPECT_EQ(at(s, "trove_batches_total{stage=\"sink\"}"), 1);
  EXPECT_EQ(at(s, "trove_table_entries{table=\"dedup\"}"), 7);
  EXPECT_EQ(at(s, "trove_table_entries{table=\"aggregation\"}"), 3);
  EXPECT_DOUBLE_EQ(at(s, "trove_table_load_factor{table=\"dedup\"}"), 0.5);
  EXPECT_DOUBLE_EQ(at(s, "trove_table_load_factor{table=\"aggregation\"}"), 0.125);
  EXPECT_EQ(at(s, "trove_table_bytes{table=\"aggregation\"}"), 1024);
  EXPECT_EQ(at(s, "trove_table_rebuilds_total{table=\"dedup\"}"), 3);
  EXPECT_EQ(at(s, "trove_table_blocking_rebuilds_total{table=\"dedup\"}"), 1);
  EXPECT_EQ(at(s, "trove_device_memory_bytes{}"), 1280);
  EXPECT_EQ(at(s, "trove_queue_depth{queue=\"ready\"}"), 2);
  EXPECT_EQ(at(s, "trove_queue_depth{queue=\"out\"}"), 1);
  EXPECT_EQ(at(s, "trove_free_buffers{}"), 1);
  EXPECT_EQ(at(s, "trove_checkpoints_total{}"), 4);
  EXPECT_EQ(at(s, "trove_checkpoints_delayed_total{}"), 1);
  EXPECT_EQ(at(s, "trove_checkpoint_last_id{}"), 9);
  EXPECT_EQ(at(s, "trove_checkpoint_last_bytes{}"), 4096);
  EXPECT_DOUBLE_EQ(at(s, "trove_checkpoint_last_seconds{phase=\"cut\"}"), 0.125);
  EXPECT_DOUBLE_EQ(at(s, "trove_checkpoint_last_seconds{phase=\"write\"}"), 0.25);
  EXPECT_EQ(at(s, "trove_checkpoint_in_flight{}"), 0);
  EXPECT_EQ(at(s, "trove_checkpoint_last_groups{}"), 321);
  EXPECT_EQ(at(s, "trove_checkpoints_updates_only_total{}"), 3);
  EXPECT_EQ(at(s, "trove_kafka_transactions_total{result=\"committed\"}"), 7);
  EXPECT_EQ(at(s, "trove_kafka_transactions_total{result=\"aborted\"}"), 2);
  EXPECT_EQ(at(s, "trove_kafka_consumer_lag{partition=\"0\",topic=\"events\"}"), 42);
  EXPECT_EQ(at(s, "trove_kafka_consumer_lag{partition=\"3\",topic=\"events\"}"), 0);
  EXPECT_DOUBLE_EQ(at(s, "trove_watermark_lag_seconds{clock=\"event\"}"), 5.0);
  EXPECT_DOUBLE_EQ(at(s, "trove_watermark_lag_seconds{clock=\"wall\"}"), 10.0);
  EXPECT_DOUBLE_EQ(at(s, "trove_watermark_seconds{}"), 1'700'000'055.0);
  EXPECT_DOUBLE_EQ(at(s, "trove_stage_seconds_total{stage=\"decode\"}"), 0.25);
  EXPECT_DOUBLE_EQ(at(s, "trove_stage_seconds_total{stage=\"kernels\"}"), 0.5);
  // The label value with quotes survives escaping and parsing.
  EXPECT_EQ(at(s, "trove_device_info{device=\"cpu (test \\\"quoted\\\")\"}"), 1);
  EXPECT_EQ(at(s, "trove_ready{}"), 1);

  // 3 ms lies in the bucket (1.6 ms, 3.2 ms]; 10 ms in (6.4 ms, 12.8 ms].
  EXPECT_EQ(at(s, "trove_batch_latency_seconds_bucket{le=\"0.0016\"}"), 0);
  EXPECT_EQ(at(s, "trove_batch_latency_seconds_bucket{le=\"0.0032\"}"), 1);
  EXPECT_EQ(at(s, "trove_batch_latency_seconds_bucket{le=\"+Inf\"}"), 1);
  EXPECT_EQ(at(s, "trove_batch_latency_seconds_count{}"), 1);
  EXPECT_NEAR(at(s, "trove_batch_latency_seconds_sum{}"), 0.003, 1e-6);
  EXPECT_EQ(at(s, "trove_end_to_end_latency_seconds_bucket{le=\"0.0064\"}"), 0);
  EXPECT_EQ(at(s, "trove_end_to_end_latency_seconds_bucket{le=\"0.0128\"}"), 1);
  EXPECT_NEAR(at(s, "trove_end_to_end_latency_seconds_sum{}"), 0.010, 1e-6);
}

// A partition that moved to another member is that member's to report: after a revoke the stale
// series are gone (a sum over members would count them twice), and new reports come back.
TEST(Metrics, APartitionsLagIsForgottenWhenItIsRevoked) {
  metrics_registry m;
  feed(m);
  m.on_partitions_revoked();
  std::string text = m.render(observer_clock::now(), 1'700'000'065'000);
  EXPECT_EQ(text.find("trove_kafka_consumer_lag{"), std::string::npos) << text;
  m.on_partition_lag("events", 5, 7);
  text = m.render(observer_clock::now(), 1'700'000'065'000);
  EXPECT_EQ(
      at(parse_with_prometheus(text), "trove_kafka_consumer_lag{partition=\"5\",topic=\"events\"}"),
      7);
}

TEST(Metrics, EveryFamilyHasHelpAndTypeBeforeItsSamples) {
  metrics_registry m;
  feed(m);
  const std::string text = m.render();
  std::map<std::string, int> typed;
  for (const std::string& line : e2e::split_lines(text)) {
    if (line.rfind("# TYPE ", 0) == 0) {
      const std::string name = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_EQ(typed.count(name), 0u) << "family typed twice: " << name;
      typed[name] = 1;
      continue;
    }
    if (line.rfind("# HELP ", 0) == 0) continue;
    ASSERT_FALSE(line.empty());
    ASSERT_NE(line[0], '#') << line;
    std::string name = line.substr(0, line.find_first_of("{ "));
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string base = name.substr(0, name.size() - std::strlen(suffix));
      if (name.size() > std::strlen(suffix) && name.ends_with(suffix) && typed.count(base)) {
        name = base;
      }
    }
    EXPECT_EQ(typed.count(name), 1u) << "sample before its # TYPE line: " << line;
  }
}

TEST(Metrics, EmptyRegistryRendersNaNWatermarkAndParses) {
  metrics_registry m;
  const samples s = parse_with_prometheus(m.render());
  EXPECT_TRUE(std::isnan(at(s, "trove_watermark_seconds{}")));
  EXPECT_EQ(at(s, "trove_records_in_total{}"), 0);
  EXPECT_EQ(at(s, "trove_ready{}"), 0);
  EXPECT_EQ(at(s, "trove_batch_latency_seconds_count{}"), 0);
  EXPECT_EQ(s.count("trove_device_info{device=\"\"}"), 0u);  // no device yet: no info sample
}

// `outputs`: each output's accounting under its `output` label; none of these series without.
TEST(Metrics, EachOutputHasItsOwnSeries) {
  metrics_registry m;
  run_stats stats;
  stats.in = 10;
  stats.accepted = 8;
  stats.duplicate = 2;
  stats.outputs.push_back(output_stats{.name = "per_user",
                                       .accepted = 8,
                                       .emitted_into = 6,
                                       .filtered = 0,
                                       .late = 2,
                                       .rows_out = 3,
                                       .windows_emitted = 1,
                                       .routes_rewritten = 0});
  stats.outputs.push_back(output_stats{.name = "cl\"ean",
                                       .accepted = 8,
                                       .emitted_into = 5,
                                       .filtered = 3,
                                       .late = 0,
                                       .rows_out = 5,
                                       .windows_emitted = 0,
                                       .routes_rewritten = 4});
  m.on_progress(stats, state_report{});
  const samples s = parse_with_prometheus(m.render());
  for (const char* output : {"per_user", "cl\\\"ean"}) {
    const std::string label = std::string("output=\"") + output + "\"";
    double sum = 0;
    for (const char* status : {"emitted_into", "filtered", "late"}) {
      sum += at(s, "trove_output_records_total{" + label + ",status=\"" + status + "\"}");
    }
    EXPECT_EQ(sum, at(s, "trove_records_total{status=\"accepted\"}")) << output;
  }
  EXPECT_EQ(at(s, "trove_output_records_total{output=\"per_user\",status=\"late\"}"), 2);
  EXPECT_EQ(at(s, "trove_output_rows_out_total{output=\"per_user\"}"), 3);
  EXPECT_EQ(at(s, "trove_output_windows_emitted_total{output=\"per_user\"}"), 1);
  EXPECT_EQ(at(s, "trove_output_routes_rewritten_total{output=\"cl\\\"ean\"}"), 4);
  metrics_registry single;
  single.on_progress(run_stats{}, state_report{});
  EXPECT_EQ(single.render().find("trove_output_"), std::string::npos);
}

TEST(Metrics, LabelValuesAreEscaped) {
  EXPECT_EQ(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  metrics_registry m;
  m.on_partition_lag("we\"ird\\topic\n", 1, 5);
  const samples s = parse_with_prometheus(m.render());
  EXPECT_EQ(at(s, R"(trove_kafka_consumer_lag{partition="1",topic="we\"ird\\topic\n"})"), 5);
}

/// The value of a sample line `name value` in exposition text (-1 when absent).
double sample_value(const std::string& text, const std::string& name) {
  const std::size_t at = text.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + name.size() + 2));
}

TEST(Metrics, ScrapesDuringUpdatesKeepTheAccountingIdentity) {
  // The device thread reports after every batch while scrapes render: a scrape must never mix
  // two reports' counters.
  metrics_registry m;
  std::atomic<bool> done{false};
  std::thread feeder([&] {
    run_stats stats;
    for (std::uint64_t b = 1; !done.load(); ++b) {
      stats.accepted = 3 * b;
      stats.duplicate = b;
      stats.late = b / 2;
      stats.filtered = b / 3;
      stats.bad = b / 5;
      stats.in = stats.accepted + stats.duplicate + stats.late + stats.filtered + stats.bad;
      m.on_progress(stats, state_report{});
    }
  });
  for (int scrape = 0; scrape < 300; ++scrape) {
    const std::string text = m.render();
    const double in = sample_value(text, "trove_records_in_total");
    double sum = 0;
    for (const char* status : {"accepted", "duplicate", "late", "filtered", "bad"}) {
      sum += sample_value(text, fmt::format("trove_records_total{{status=\"{}\"}}", status));
    }
    ASSERT_EQ(in, sum) << "scrape " << scrape << " mixed two reports";
  }
  done = true;
  feeder.join();
}

TEST(Metrics, LatencyBoundsLieOnTheHistogramGrid) {
  const auto& bounds = metrics_registry::latency_bounds();
  ASSERT_FALSE(bounds.empty());
  EXPECT_DOUBLE_EQ(bounds.front(), 1e-4);
  EXPECT_GT(bounds.back(), 60.0);  // a minute-long stall still lands in a finite bucket
  for (std::size_t k = 1; k < bounds.size(); ++k) EXPECT_DOUBLE_EQ(bounds[k], 2 * bounds[k - 1]);
}

// ---- readiness
// -----------------------------------------------------------------------------------

TEST(MetricsReadiness, NeedsDeviceThenSource) {
  metrics_registry m(1s);
  readiness r = m.ready();
  EXPECT_FALSE(r.ready);
  EXPECT_NE(r.reason.find("device"), std::string::npos) << r.reason;
  m.on_device_ready("cpu");
  r = m.ready();
  EXPECT_FALSE(r.ready);
  EXPECT_NE(r.reason.find("source"), std::string::npos) << r.reason;
  m.on_source_ready();
  EXPECT_TRUE(m.ready().ready);
  m.on_finished(run_stats{});
  r = m.ready();
  EXPECT_FALSE(r.ready);
  EXPECT_NE(r.reason.find("finished"), std::string::npos) << r.reason;
}

TEST(MetricsReadiness, QuietWithNothingWaitingIsIdleNotStalled) {
  metrics_registry m(1s);
  m.on_device_ready("cpu");
  m.on_source_ready();
  m.on_progress(run_stats{}, state_report{});
  EXPECT_TRUE(m.ready(observer_clock::now() + 1h).ready);
}

TEST(MetricsReadiness, QueuedBatchesWithoutProgressAreStalled) {
  metrics_registry m(1s);
  m.on_device_ready("cpu");
  m.on_source_ready();
  state_report state;
  state.ready_queue_depth = 3;
  m.on_progress(run_stats{}, state);
  const auto now = observer_clock::now();
  EXPECT_TRUE(m.ready(now).ready);  // within stall_timeout
  const readiness r = m.ready(now + 2s);
  EXPECT_FALSE(r.ready);
  EXPECT_NE(r.reason.find("stalled"), std::string::npos) << r.reason;
  EXPECT_NE(r.reason.find("metrics.stall_timeout"), std::string::npos) << r.reason;
}

// Found by tests/fuzz (fuzz_metrics): a stall_timeout of a million days (the config accepts any
// int64 ms) overflowed the nanoseconds ready() compares in, wrapped negative and reported the run
// stalled at once.
TEST(MetricsReadiness, HugeStallTimeoutDoesNotOverflowIntoStalled) {
  for (const std::chrono::milliseconds stall :
       {std::chrono::milliseconds(86'400'000'000), std::chrono::milliseconds::max()}) {
    metrics_registry m(stall);
    m.on_device_ready("cpu");
    m.on_source_ready();
    state_report state;
    state.ready_queue_depth = 3;
    m.on_progress(run_stats{}, state);
    const readiness r = m.ready(observer_clock::now() + 24h);
    EXPECT_TRUE(r.ready) << stall.count() << " ms: " << r.reason;
  }
}

TEST(MetricsReadiness, BatchProcessedButNotWrittenIsWaitingInput) {
  metrics_registry m(1s);
  m.on_device_ready("cpu");
  m.on_source_ready();
  run_stats stats;
  stats.batches = 2;  // the device processed two batches, the sink wrote one
  m.on_progress(stats, state_report{});
  batch_report report;
  report.seq = 0;
  m.on_batch(report);
  EXPECT_FALSE(m.ready(observer_clock::now() + 2s).ready);
  report.seq = 1;
  m.on_batch(report);  // caught up: nothing waits any more
  EXPECT_TRUE(m.ready(observer_clock::now() + 2s).ready);
}

TEST(MetricsReadiness, KafkaLagWithoutProgressIsStalled) {
  metrics_registry m(1s);
  m.on_device_ready("cpu");
  m.on_source_ready();
  m.on_partition_lag("events", 0, 0);
  EXPECT_TRUE(m.ready(observer_clock::now() + 2s).ready);
  m.on_partition_lag("events", 1, 100);
  EXPECT_FALSE(m.ready(observer_clock::now() + 2s).ready);
  m.on_partition_lag("events", 1, 0);
  EXPECT_TRUE(m.ready(observer_clock::now() + 2s).ready);
}

TEST(MetricsReadiness, StopSignalMakesItNotReady) {
  metrics_registry m(1s);
  m.on_device_ready("cpu");
  m.on_source_ready();
  m.on_stop_requested();
  const readiness r = m.ready();
  EXPECT_FALSE(r.ready);
  EXPECT_NE(r.reason.find("stopping"), std::string::npos) << r.reason;
}

TEST(MetricsReadiness, FailureIsReportedWithItsReason) {
  metrics_registry m(1s);
  m.on_device_ready("cpu");
  m.on_source_ready();
  m.on_failed("sink: disk full");
  const readiness r = m.ready();
  EXPECT_FALSE(r.ready);
  EXPECT_NE(r.reason.find("disk full"), std::string::npos) << r.reason;
}

// ---- listen addresses and the endpoint ----------------------------------------------------------

TEST(MetricsServer, ParsesListenAddresses) {
  listen_address a;
  std::string why;
  ASSERT_TRUE(parse_listen_address("0.0.0.0:9464", a, why));
  EXPECT_EQ(a.host, "0.0.0.0");
  EXPECT_EQ(a.port, 9464);
  ASSERT_TRUE(parse_listen_address(":9464", a, why));
  EXPECT_EQ(a.host, "0.0.0.0");
  ASSERT_TRUE(parse_listen_address("[::1]:80", a, why));
  EXPECT_EQ(a.host, "::1");
  EXPECT_EQ(a.port, 80);
  ASSERT_TRUE(parse_listen_address("localhost:0", a, why));
  EXPECT_EQ(a.port, 0);
  EXPECT_FALSE(parse_listen_address("localhost", a, why));
  EXPECT_FALSE(parse_listen_address("host:99999", a, why));
  EXPECT_FALSE(parse_listen_address("host:12a", a, why));
  EXPECT_FALSE(parse_listen_address("host:", a, why));
}

TEST(MetricsServer, ServesMetricsHealthAndReadiness) {
  metrics_registry m;
  metrics_server server("127.0.0.1:0", m);
  ASSERT_GT(server.port(), 0);
  const std::string address = "127.0.0.1:" + std::to_string(server.port());
  probe_result r = probe(address, "/healthz", 5s);
  EXPECT_EQ(r.status, 200) << r.error;
  r = probe(address, "/readyz", 5s);
  EXPECT_EQ(r.status, 503) << r.error;
  EXPECT_NE(r.body.find("device"), std::string::npos) << r.body;
  feed(m);
  r = probe(address, "/readyz", 5s);
  EXPECT_EQ(r.status, 200) << r.body;
  r = probe(address, "/metrics", 5s);
  ASSERT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(at(parse_with_prometheus(r.body), "trove_records_in_total{}"), 10);
  r = probe(address, "/nothing", 5s);
  EXPECT_EQ(r.status, 404);
  server.stop();
  r = probe(address, "/healthz", 2s);
  EXPECT_EQ(r.status, 0) << "still serving after stop()";
}

TEST(MetricsServer, BindConflictNamesTheKey) {
  metrics_registry m;
  metrics_server first("127.0.0.1:0", m);
  const std::string taken = "127.0.0.1:" + std::to_string(first.port());
  try {
    metrics_server second(taken, m);
    FAIL() << "a second server bound " << taken;
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("metrics.listen"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(taken), std::string::npos) << e.what();
  }
}

TEST(MetricsServer, HealthcheckExitCodes) {
  metrics_registry m;
  metrics_server server("127.0.0.1:0", m);
  const std::string address = "127.0.0.1:" + std::to_string(server.port());
  EXPECT_EQ(run_healthcheck(address, "/healthz", 5s), 0);
  EXPECT_EQ(run_healthcheck(address, "/readyz", 5s), 1);  // no device yet
  server.stop();
  EXPECT_EQ(run_healthcheck(address, "/healthz", 1s), 1);
}

// ---- logs
// ----------------------------------------------------------------------------------------

TEST(MetricsLogs, JsonFormatEscapesEveryMessage) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  spdlog::logger logger("json_test", sink);
  logger.set_formatter(make_log_formatter(log_format::json));
  const std::string message = "path \"a\\b\"\nnext\tline \x01 done";
  logger.warn("{}", message);
  logger.info("plain");
  const std::vector<std::string> lines = e2e::split_lines(out.str());
  ASSERT_EQ(lines.size(), 2u) << out.str();
  simdjson::dom::parser parser;
  const auto row = e2e::parse_json_object(parser, lines[0], "log line");
  ASSERT_TRUE(row);
  EXPECT_EQ(e2e::as_string(row->at("msg")), message);
  EXPECT_EQ(e2e::as_string(row->at("level")), "warning");
  EXPECT_TRUE(row->has("time"));
  ASSERT_TRUE(e2e::parse_json_object(parser, lines[1], "log line"));
}

}  // namespace
}  // namespace trove::host
