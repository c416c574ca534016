// The load harness (host/load_harness.hpp): rate parsing, the open-loop schedule arithmetic, the
// sweep's choice of rates, and short runs end to end (tiny rates and durations). Counts and the
// consistency of the report are asserted, never timings.

#include "host/load_harness.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "io/synthetic.hpp"
#include "kernels/error.hpp"

namespace trove::host {
namespace {

load_run run_with(double rate, bool sustainable) {
  load_run r;
  r.offered_rate = rate;
  r.sustainable = sustainable;
  return r;
}

TEST(LoadHarness, ParsesRates) {
  double r = 0;
  EXPECT_TRUE(parse_rate("250k", r));
  EXPECT_DOUBLE_EQ(r, 250'000);
  EXPECT_TRUE(parse_rate("1M", r));
  EXPECT_DOUBLE_EQ(r, 1'000'000);
  EXPECT_TRUE(parse_rate("1.5m", r));
  EXPECT_DOUBLE_EQ(r, 1'500'000);
  EXPECT_TRUE(parse_rate("4000000", r));
  EXPECT_DOUBLE_EQ(r, 4'000'000);
  for (const char* bad : {"", "k", "x", "-1", "0", "1q", "1.5.2M", "inf"}) {
    EXPECT_FALSE(parse_rate(bad, r)) << bad;
  }
}

TEST(LoadHarness, DefaultConfigIsTheW1JobWithUpdates) {
  const pipeline_config c = default_load_config();
  EXPECT_EQ(c.source.type, source_type::synthetic);
  EXPECT_EQ(c.emit, emit_mode::update);
  ASSERT_TRUE(c.dedup.has_value());
  EXPECT_EQ(c.dedup->key, std::vector<std::string>{"event_id"});
  EXPECT_EQ(c.window.size_ms, 60'000);
  EXPECT_EQ(c.group_by, (std::vector<std::string>{"user_id", "type"}));
  EXPECT_EQ(c.aggregates.size(), 5u);
  EXPECT_EQ(c.sink.path, "/dev/null");
}

TEST(LoadHarness, EventTimeFollowsTheOfferedSchedule) {
  // A run at rate r for d seconds offers r·d events, event k due at k/r s, and its event time
  // advances by 1000/r ms per event: window ends map onto the schedule (emit final latency).
  for (double rate : {1'000.0, 250'000.0, 4'000'000.0}) {
    const pipeline_config c = config_for_rate(default_load_config(), rate, 2.5);
    EXPECT_EQ(c.source.synthetic.events, static_cast<std::uint64_t>(std::llround(rate * 2.5)));
    EXPECT_EQ(c.source.synthetic.span_ms, 2500);
    EXPECT_DOUBLE_EQ(c.source.synthetic.rate, rate);
    io::synthetic_options o;
    o.events = c.source.synthetic.events;
    o.rate = rate;
    o.span_ms = c.source.synthetic.span_ms;
    o.start_time_ms = c.source.synthetic.start_time_ms;
    io::synthetic_generator gen(o);
    for (std::uint64_t k :
         {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{999}, o.events / 2, o.events - 1}) {
      const double due_ms = static_cast<double>(k) * 1000 / rate;
      EXPECT_NEAR(static_cast<double>(gen.scheduled_ns(k)) / 1e6, due_ms, 1e-6 * due_ms + 1e-6);
      EXPECT_NEAR(static_cast<double>(gen.base_time_ms(k) - o.start_time_ms), due_ms, 1.0) << k;
    }
  }
}

TEST(LoadHarness, SustainableNeedsBoundedP99FullRateAndFlatBacklog) {
  load_options o;
  o.p99_bound_ms = 100;
  o.min_achieved_ratio = 0.95;
  load_run r;
  r.offered_rate = 1000;
  r.achieved_rate = 990;
  r.p99_ms = 50;
  r.latency_samples = 10;
  EXPECT_TRUE(is_sustainable(r, o));
  load_run slow = r;
  slow.p99_ms = 101;
  EXPECT_FALSE(is_sustainable(slow, o));
  load_run behind = r;
  behind.achieved_rate = 900;
  EXPECT_FALSE(is_sustainable(behind, o));
  load_run growing = r;
  growing.backlog_growing = true;
  EXPECT_FALSE(is_sustainable(growing, o));
  load_run failed = r;
  failed.error = "boom";
  EXPECT_FALSE(is_sustainable(failed, o));
  load_run unmeasured = r;
  unmeasured.latency_samples = 0;
  EXPECT_FALSE(is_sustainable(unmeasured, o));
}

TEST(LoadHarness, SweepDoublesThenBisectsThenStops) {
  load_options o;
  o.sweep_start = 1000;
  o.sweep_max = 64'000;
  o.bisect_steps = 2;
  std::vector<load_run> runs;
  EXPECT_EQ(next_sweep_rates(runs, o), std::vector<double>{1000});
  runs.push_back(run_with(1000, true));
  EXPECT_EQ(next_sweep_rates(runs, o), std::vector<double>{2000});
  runs.push_back(run_with(2000, true));
  runs.push_back(run_with(4000, false));
  EXPECT_EQ(next_sweep_rates(runs, o), std::vector<double>{3000});  // bisect [2000, 4000]
  runs.push_back(run_with(3000, true));
  EXPECT_EQ(next_sweep_rates(runs, o), std::vector<double>{3500});  // gap/best 0.33 > 0.25
  runs.push_back(run_with(3500, false));
  EXPECT_TRUE(next_sweep_rates(runs, o).empty());  // gap/best 0.17 ≤ 2^-2
}

TEST(LoadHarness, SweepStopsAtTheMaximum) {
  load_options o;
  o.sweep_start = 1000;
  o.sweep_max = 3000;
  std::vector<load_run> runs{run_with(1000, true), run_with(2000, true)};
  EXPECT_EQ(next_sweep_rates(runs, o), std::vector<double>{3000});
  runs.push_back(run_with(3000, true));
  EXPECT_TRUE(next_sweep_rates(runs, o).empty());
}

TEST(LoadHarness, SweepHalvesWhenEvenTheFirstRateFails) {
  load_options o;
  o.sweep_start = 64'000;
  std::vector<load_run> runs{run_with(64'000, false)};
  EXPECT_EQ(next_sweep_rates(runs, o), std::vector<double>{32'000});
  for (double r = 32'000; r >= 1000; r /= 2) runs.push_back(run_with(r, false));
  EXPECT_TRUE(next_sweep_rates(runs, o).empty());  // not below sweep_start / 64
}

TEST(LoadHarness, PacedRunOffersEveryEventAndMeasuresEachOne) {
  load_options o;
  o.duration_s = 0.4;
  o.progress = nullptr;
  o.p99_bound_ms = 60'000;
  const double rate = 20'000;
  const load_run r = run_at_rate(default_load_config(), rate, o);
  ASSERT_TRUE(r.error.empty()) << r.error;
  EXPECT_EQ(r.events, 8000u);
  EXPECT_EQ(r.latency_samples, r.events);  // emit update: every event's latency is recorded
  EXPECT_EQ(r.accepted + r.duplicate + r.late, r.events);
  EXPECT_GT(r.duplicate, 0u);
  // The generator never runs ahead of the schedule: event N-1 is due at (N-1)/rate, so the
  // achieved rate is at most N/(N-1) × offered; a generous lower bound only.
  EXPECT_LE(r.achieved_rate, rate * 8000.0 / 7999.0 * (1 + 1e-9));
  EXPECT_GT(r.achieved_rate, rate * 0.2);
  EXPECT_GE(r.wall_s, 7999.0 / rate);
  EXPECT_LE(r.p50_ms, r.p90_ms);
  EXPECT_LE(r.p90_ms, r.p99_ms);
  EXPECT_LE(r.p99_ms, r.p999_ms);
  EXPECT_LE(r.p999_ms, r.max_ms);
  EXPECT_GT(r.batches, 0u);
  EXPECT_GT(r.peak_rss_bytes, 0u);
  EXPECT_GT(r.state_bytes_peak, 0u);
}

TEST(LoadHarness, WarmupEventsAreNotMeasured) {
  load_options o;
  o.duration_s = 0.3;
  o.warmup_s = 0.1;
  o.progress = nullptr;
  const load_run r = run_at_rate(default_load_config(), 10'000, o);
  ASSERT_TRUE(r.error.empty()) << r.error;
  EXPECT_EQ(r.events, 4000u);           // warm-up + measured
  EXPECT_EQ(r.latency_samples, 3000u);  // events 1000 .. 3999
}

TEST(LoadHarness, EmitFinalMeasuresWindowEndToEmission) {
  load_options o;
  o.duration_s = 0.5;
  o.progress = nullptr;
  o.config = default_load_config();
  o.config.emit = emit_mode::final;
  o.config.window.size_ms = 100;
  o.config.window.slide_ms = 100;
  o.config.window.allowed_lateness_ms = 0;
  const load_run r = run_at_rate(o.config, 10'000, o);
  ASSERT_TRUE(r.error.empty()) << r.error;
  EXPECT_GT(r.latency_samples, 0u);  // windows closed during the run were measured
  EXPECT_LE(r.p50_ms, r.p99_ms);
  EXPECT_LE(r.p99_ms, r.max_ms);
  EXPECT_GE(r.p50_ms, 0);
}

TEST(LoadHarness, UnknownSourceIsAConfigurationError) {
  load_options o;
  o.config = default_load_config();
  o.source = "pulsar";
  o.progress = nullptr;
  EXPECT_THROW(run_load(o), trove::logic_error);
}

TEST(LoadHarness, SizedTablesDoNotGrowDuringTheRun) {
  load_options o;
  o.duration_s = 0.5;
  o.progress = nullptr;
  pipeline_config base = default_load_config();
  base.dedup->initial_capacity = 1024;
  base.window.initial_capacity = 1024;
  const load_run grown = run_at_rate(base, 20'000, o);
  ASSERT_TRUE(grown.error.empty()) << grown.error;
  EXPECT_GT(grown.table_rebuilds, 0u);  // 10000 events do not fit 1024 slots
  o.size_tables = true;
  const load_run sized = run_at_rate(base, 20'000, o);
  ASSERT_TRUE(sized.error.empty()) << sized.error;
  EXPECT_EQ(sized.table_rebuilds, 0u);
  EXPECT_EQ(sized.accepted, grown.accepted);
  EXPECT_EQ(sized.duplicate, grown.duplicate);  // (rows_out of emit update follows the batching)
}

// Through the embedded broker: event k goes to partition k % P at offset k / P, and the observer
// maps every (partition, offset) span back to event indices. With a warm-up the exact number of
// measured events tells whether that mapping is right (offsets taken as event indices would
// leave 4 × (1500 - 1000) = 2000 instead of 5000).
TEST(LoadHarness, KafkaRunMeasuresEveryEventThroughTheBroker) {
  load_options o;
  o.source = "kafka";
  o.kafka_partitions = 4;
  o.duration_s = 0.5;
  o.warmup_s = 0.1;
  o.progress = nullptr;
  o.p99_bound_ms = 60'000;
  const load_run r = run_at_rate(default_load_config(), 10'000, o);
  ASSERT_TRUE(r.error.empty()) << r.error;
  EXPECT_EQ(r.events, 6000u);
  EXPECT_EQ(r.lost_events, 0u);
  EXPECT_EQ(r.accepted + r.duplicate + r.late, r.events);
  EXPECT_GT(r.duplicate, 0u);
  EXPECT_EQ(r.latency_samples, 5000u);  // events 1000 .. 5999
  EXPECT_GE(r.p50_ms, 0);
  EXPECT_LE(r.p50_ms, r.p99_ms);
  EXPECT_LE(r.p99_ms, r.max_ms);
  EXPECT_GT(r.batches, 0u);
}

TEST(LoadHarness, KafkaReportHasTheRawConsumeBaseline) {
  load_options o;
  o.config = default_load_config();
  o.source = "kafka";
  o.kafka_partitions = 2;
  o.rates = {5000, 8000};  // two runs: each gets a fresh broker and a clean stop
  o.duration_s = 0.3;
  o.baseline_events = 0;
  o.raw_consume_events = 5000;
  o.p99_bound_ms = 60'000;
  o.progress = nullptr;
  const load_report report = run_load(o);
  ASSERT_EQ(report.runs.size(), 2u);
  for (const auto& run : report.runs) {
    EXPECT_TRUE(run.error.empty()) << run.error;
    EXPECT_EQ(run.latency_samples, run.events);
  }
  EXPECT_EQ(report.raw_consume_events, 5000u);
  EXPECT_GT(report.raw_consume_events_per_second, 0);
  EXPECT_EQ(report.kafka_partitions, 2);
  const std::string json = to_json(report);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(json).get(doc), simdjson::SUCCESS);
  double raw = 0;
  ASSERT_EQ(doc["raw_consume_events_per_second"].get_double().get(raw), simdjson::SUCCESS);
  EXPECT_GT(raw, 0);
  EXPECT_NE(to_markdown(report).find("Raw consume baseline"), std::string::npos);
  EXPECT_NE(report.config_yaml.find("type: kafka"), std::string::npos);
}

TEST(LoadHarness, ShortSweepWritesAConsistentReport) {
  namespace fs = std::filesystem;
  load_options o;
  o.config = default_load_config();
  o.sweep_start = 4000;
  o.sweep_max = 16'000;
  o.bisect_steps = 1;
  o.duration_s = 0.3;
  o.p99_bound_ms = 5000;
  o.baseline_events = 20'000;
  o.progress = nullptr;
  const load_report report = run_load(o);
  ASSERT_FALSE(report.runs.empty());
  EXPECT_GT(report.baseline_events_per_second, 0);

  const fs::path dir = fs::path(testing::TempDir()) / "trove_load_harness_sweep";
  fs::remove_all(dir);
  const auto warnings = write_load_outputs(report, dir.string());
  for (const auto& w : warnings) ADD_FAILURE() << "warning: " << w;  // gnuplot is a dependency
  for (const char* name :
       {"results.json", "results.md", "latency.dat", "stages.dat", "latency.gp", "stages.gp",
        "latency.png", "stages.png", "timeline.dat", "timeline.gp", "timeline.png"}) {
    EXPECT_TRUE(fs::exists(dir / name)) << name;
  }

  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.load((dir / "results.json").string()).get(doc), simdjson::SUCCESS);
  double max_sustainable = -1;
  ASSERT_EQ(doc["max_sustainable_events_per_second"].get_double().get(max_sustainable),
            simdjson::SUCCESS);
  simdjson::dom::array runs;
  ASSERT_EQ(doc["runs"].get_array().get(runs), simdjson::SUCCESS);
  ASSERT_EQ(runs.size(), report.runs.size());
  bool max_is_a_rate = max_sustainable == 0;
  for (simdjson::dom::element run : runs) {
    double offered = 0, achieved = 0, p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;
    ASSERT_EQ(run["offered_rate"].get_double().get(offered), simdjson::SUCCESS);
    ASSERT_EQ(run["achieved_rate"].get_double().get(achieved), simdjson::SUCCESS);
    ASSERT_EQ(run["p50_ms"].get_double().get(p50), simdjson::SUCCESS);
    ASSERT_EQ(run["p90_ms"].get_double().get(p90), simdjson::SUCCESS);
    ASSERT_EQ(run["p99_ms"].get_double().get(p99), simdjson::SUCCESS);
    ASSERT_EQ(run["p999_ms"].get_double().get(p999), simdjson::SUCCESS);
    ASSERT_EQ(run["max_ms"].get_double().get(max), simdjson::SUCCESS);
    std::uint64_t events = 0;
    ASSERT_EQ(run["events"].get_uint64().get(events), simdjson::SUCCESS);
    EXPECT_LE(achieved, offered * (1 + 1.0 / static_cast<double>(events - 1)) * 1.001);
    EXPECT_LE(p50, p90);
    EXPECT_LE(p90, p99);
    EXPECT_LE(p99, p999);
    EXPECT_LE(p999, max + 1e-3);  // JSON keeps 3 decimals
    bool sustainable = false;
    ASSERT_EQ(run["sustainable"].get_bool().get(sustainable), simdjson::SUCCESS);
    if (sustainable) {
      EXPECT_LE(offered, max_sustainable);
    }
    if (offered == max_sustainable) max_is_a_rate = max_is_a_rate || sustainable;
  }
  EXPECT_TRUE(max_is_a_rate) << "max_sustainable must be a sustainable offered rate or 0";

  std::ifstream md(dir / "results.md");
  std::stringstream text;
  text << md.rdbuf();
  EXPECT_NE(text.str().find("| offered ev/s |"), std::string::npos);
  EXPECT_NE(text.str().find("Max sustainable"), std::string::npos);
}

}  // namespace
}  // namespace trove::host
