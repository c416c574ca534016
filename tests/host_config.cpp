// Tests of the pipeline configuration: durations and sizes, the shipped examples, every default,
// every error (each names its key, and all errors come back at once), --set overrides, hopping
// window rules and the effective-config writer.

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "host/config.hpp"
#include "host/duration.hpp"

#ifndef TROVE_SOURCE_DIR
#define TROVE_SOURCE_DIR "."
#endif

namespace trove::host {
namespace {

// The text of examples/clickstream.yaml; the example must stay exactly this.
constexpr std::string_view clickstream_yaml =
    R"(source:    { type: file, path: events.jsonl, format: json }   # file | stdin | synthetic (kafka comes next)
schema:    { event_id: u64, user_id: u64, type: string, ts: timestamp_ms, amount: f64 }
event_time: ts
dedup:     { key: [event_id], ttl: 10m }
window:    { type: tumbling, size: 1m, allowed_lateness: 5s }      # hopping adds slide:
group_by:  [user_id, type]
aggregates: [count, sum(amount), min(amount), max(amount), avg(amount)]
emit:      final                                                   # final | update
sink:      { type: file, path: out.jsonl, format: json }            # file | stdout; format json | csv
dead_letter: { path: bad.jsonl }
)";

// The smallest valid config: every other key takes its default.
constexpr std::string_view minimal_yaml = R"(
source: { type: stdin }
schema: { ts: timestamp_ms }
event_time: ts
window: { type: tumbling, size: 1m }
)";

constexpr std::string_view synthetic_yaml = R"(
source: { type: synthetic }
schema: { event_id: u64, user_id: u64, type: string, ts: timestamp_ms, amount: f64 }
event_time: ts
window: { type: tumbling, size: 1m }
)";

constexpr std::string_view kafka_yaml = R"(
source: { type: kafka, brokers: "broker-1:9092,broker-2:9092", topics: [clicks] }
schema: { event_id: u64, user_id: u64, type: string, ts: timestamp_ms, amount: f64 }
event_time: ts
window: { type: tumbling, size: 1m }
group_by: [user_id]
sink: { type: kafka, topic: results }
)";

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string messages(const std::vector<config_error>& errors) {
  std::string text;
  for (const auto& error : errors) text += error.message() + "\n";
  return text;
}

pipeline_config parse_ok(std::string_view yaml, const std::vector<std::string>& overrides = {}) {
  std::vector<config_error> errors;
  pipeline_config config = load_config_string(yaml, overrides, errors);
  EXPECT_TRUE(errors.empty()) << messages(errors);
  return config;
}

std::vector<config_error> parse_errors(std::string_view yaml,
                                       const std::vector<std::string>& overrides = {}) {
  std::vector<config_error> errors;
  load_config_string(yaml, overrides, errors);
  return errors;
}

// Compares everything, the schema field by field (io::field has no operator==).
void expect_same(const pipeline_config& a, const pipeline_config& b) {
  EXPECT_EQ(a.source, b.source);
  ASSERT_EQ(a.schema.fields.size(), b.schema.fields.size());
  for (std::size_t index = 0; index < a.schema.fields.size(); ++index) {
    EXPECT_EQ(a.schema.fields[index].name, b.schema.fields[index].name);
    EXPECT_EQ(a.schema.fields[index].type, b.schema.fields[index].type);
    EXPECT_EQ(a.schema.fields[index].required, b.schema.fields[index].required);
  }
  EXPECT_EQ(a.event_time, b.event_time);
  EXPECT_EQ(a.dedup, b.dedup);
  EXPECT_EQ(a.forward, b.forward);
  EXPECT_EQ(a.window, b.window);
  EXPECT_EQ(a.group_by, b.group_by);
  EXPECT_EQ(a.aggregates, b.aggregates);
  EXPECT_EQ(a.filter, b.filter);
  EXPECT_EQ(a.emit, b.emit);
  EXPECT_EQ(a.late, b.late);
  EXPECT_EQ(a.sink, b.sink);
  EXPECT_EQ(a.outputs, b.outputs);
  EXPECT_EQ(a.dead_letter, b.dead_letter);
  EXPECT_EQ(a.batch, b.batch);
  EXPECT_EQ(a.device, b.device);
  EXPECT_EQ(a.metrics, b.metrics);
  EXPECT_EQ(a.log, b.log);
  EXPECT_EQ(a.shutdown_timeout_ms, b.shutdown_timeout_ms);
  EXPECT_EQ(a.progress_interval_ms, b.progress_interval_ms);
  EXPECT_EQ(a.checkpoint, b.checkpoint);
}

void expect_round_trip(const pipeline_config& config) {
  const std::string text = to_yaml(config);
  SCOPED_TRACE(text);
  expect_same(parse_ok(text), config);
  EXPECT_EQ(to_yaml(parse_ok(text)), text);
}

// ---- durations ---------------------------------------------------------------------------------

std::int64_t duration_ms(std::string_view text) {
  std::int64_t ms = -1;
  std::string reason;
  EXPECT_TRUE(parse_duration(text, ms, reason)) << text << ": " << reason;
  return ms;
}

std::string duration_error(std::string_view text) {
  std::int64_t ms = -7;
  std::string reason;
  EXPECT_FALSE(parse_duration(text, ms, reason)) << text << " parsed as " << ms;
  EXPECT_EQ(ms, -7) << "the output must stay untouched on failure";
  EXPECT_FALSE(reason.empty()) << text;
  return reason;
}

TEST(HostDuration, ParsesEveryUnit) {
  EXPECT_EQ(duration_ms("500ms"), 500);
  EXPECT_EQ(duration_ms("10s"), 10'000);
  EXPECT_EQ(duration_ms("10m"), 600'000);
  EXPECT_EQ(duration_ms("1h"), 3'600'000);
  EXPECT_EQ(duration_ms("1d"), 86'400'000);
  EXPECT_EQ(duration_ms("2000us"), 2);
  EXPECT_EQ(duration_ms("3000000ns"), 3);
}

TEST(HostDuration, PlainIntegerIsMilliseconds) {
  EXPECT_EQ(duration_ms("0"), 0);
  EXPECT_EQ(duration_ms("250"), 250);
  EXPECT_EQ(duration_ms("0ms"), 0);
  EXPECT_EQ(duration_ms("0s"), 0);
  EXPECT_EQ(duration_ms("9223372036854775807"), std::numeric_limits<std::int64_t>::max());
}

TEST(HostDuration, CombinedFractionsAndSpaces) {
  EXPECT_EQ(duration_ms("1m30s"), 90'000);
  EXPECT_EQ(duration_ms("1h30m"), 5'400'000);
  EXPECT_EQ(duration_ms("1d2h3m4s5ms"), 93'784'005);
  EXPECT_EQ(duration_ms("1.5s"), 1'500);
  EXPECT_EQ(duration_ms("0.25h"), 900'000);
  EXPECT_EQ(duration_ms(".5s"), 500);
  EXPECT_EQ(duration_ms(" 10s "), 10'000);
  EXPECT_EQ(duration_ms("1m 30s"), 90'000);
  EXPECT_EQ(duration_ms("1.0"), 1);
}

TEST(HostDuration, RejectsSubMillisecond) {
  EXPECT_NE(duration_error("250us").find("sub-millisecond"), std::string::npos);
  EXPECT_NE(duration_error("0.5ms").find("sub-millisecond"), std::string::npos);
  EXPECT_NE(duration_error("1500us").find("sub-millisecond"), std::string::npos);
  EXPECT_NE(duration_error("1.5").find("sub-millisecond"), std::string::npos);
  EXPECT_NE(duration_error("1ns").find("sub-millisecond"), std::string::npos);
}

TEST(HostDuration, RejectsNegativeOverflowAndJunk) {
  EXPECT_NE(duration_error("-5s").find("negative"), std::string::npos);
  EXPECT_NE(duration_error("-0").find("negative"), std::string::npos);
  EXPECT_NE(duration_error("9223372036854775808").find("too large"), std::string::npos);
  EXPECT_NE(duration_error("106751991168d").find("too large"), std::string::npos);
  EXPECT_EQ(duration_ms("106751991167d"), 106'751'991'167 * 86'400'000);
  EXPECT_NE(duration_error("99999999999999999999999999999999999999d").find("too large"),
            std::string::npos);
  EXPECT_NE(duration_error("5x").find("unknown unit 'x'"), std::string::npos);
  EXPECT_NE(duration_error("10M").find("unknown unit 'M'"), std::string::npos);
  EXPECT_NE(duration_error("1s1m").find("largest to smallest"), std::string::npos);
  EXPECT_NE(duration_error("1m1m").find("largest to smallest"), std::string::npos);
  EXPECT_NE(duration_error("1m30").find("unit"), std::string::npos);
  duration_error("");
  duration_error("   ");
  duration_error("s");
  duration_error("ten seconds");
  duration_error("1.s");
  duration_error("+5s");
}

TEST(HostDuration, FormatsShortestExactText) {
  EXPECT_EQ(format_duration(0), "0ms");
  EXPECT_EQ(format_duration(500), "500ms");
  EXPECT_EQ(format_duration(1'500), "1s500ms");
  EXPECT_EQ(format_duration(90'000), "1m30s");
  EXPECT_EQ(format_duration(3'600'000), "1h");
  EXPECT_EQ(format_duration(86'400'000), "1d");
  EXPECT_EQ(format_duration(-1'500), "-1s500ms");
  EXPECT_EQ(format_duration(std::numeric_limits<std::int64_t>::min()).front(), '-');
}

TEST(HostDuration, FormatParsesBack) {
  std::mt19937_64 random(7);
  for (int round = 0; round < 2000; ++round) {
    const auto ms = static_cast<std::int64_t>(random() >> (1 + round % 62));
    EXPECT_EQ(duration_ms(format_duration(ms)), ms) << format_duration(ms);
  }
  EXPECT_EQ(duration_ms(format_duration(std::numeric_limits<std::int64_t>::max())),
            std::numeric_limits<std::int64_t>::max());
}

// ---- sizes -------------------------------------------------------------------------------------

std::uint64_t size_bytes(std::string_view text) {
  std::uint64_t bytes = 0;
  std::string reason;
  EXPECT_TRUE(parse_size(text, bytes, reason)) << text << ": " << reason;
  return bytes;
}

std::string size_error(std::string_view text) {
  std::uint64_t bytes = 7;
  std::string reason;
  EXPECT_FALSE(parse_size(text, bytes, reason)) << text << " parsed as " << bytes;
  EXPECT_EQ(bytes, 7u);
  EXPECT_FALSE(reason.empty()) << text;
  return reason;
}

TEST(HostSize, ParsesBinaryDecimalAndPlain) {
  EXPECT_EQ(size_bytes("512MiB"), 512ull << 20);
  EXPECT_EQ(size_bytes("4GiB"), 4ull << 30);
  EXPECT_EQ(size_bytes("1GB"), 1'000'000'000ull);
  EXPECT_EQ(size_bytes("1024"), 1024u);
  EXPECT_EQ(size_bytes("0"), 0u);
  EXPECT_EQ(size_bytes("64KiB"), 65'536u);
  EXPECT_EQ(size_bytes("1KB"), 1'000u);
  EXPECT_EQ(size_bytes("10B"), 10u);
  EXPECT_EQ(size_bytes("1.5GiB"), 3ull << 29);
  EXPECT_EQ(size_bytes("1 MiB"), 1ull << 20);
  EXPECT_EQ(size_bytes("4gib"), 4ull << 30);
  EXPECT_EQ(size_bytes("2Gi"), 2ull << 30);
  EXPECT_EQ(size_bytes("1TiB"), 1ull << 40);
  EXPECT_EQ(size_bytes("18446744073709551615"), std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(size_bytes("15PiB"), 15ull << 50);
}

TEST(HostSize, RejectsNegativeOverflowAndJunk) {
  EXPECT_NE(size_error("-1").find("negative"), std::string::npos);
  EXPECT_NE(size_error("18446744073709551616").find("too large"), std::string::npos);
  EXPECT_NE(size_error("16384PiB").find("too large"), std::string::npos);
  EXPECT_NE(size_error("1.5B").find("whole number of bytes"), std::string::npos);
  EXPECT_NE(size_error("5x").find("unknown unit 'x'"), std::string::npos);
  EXPECT_NE(size_error("1EiB").find("unknown unit"), std::string::npos);
  size_error("");
  size_error("GiB");
  size_error("1GiB extra");
}

TEST(HostSize, FormatsShortestExactText) {
  EXPECT_EQ(format_size(0), "0");
  EXPECT_EQ(format_size(4ull << 30), "4GiB");
  EXPECT_EQ(format_size(1'000'000'000), "1GB");
  EXPECT_EQ(format_size(1ull << 20), "1MiB");
  EXPECT_EQ(format_size(1'000'001), "1000001");
  EXPECT_EQ(format_size(1536), "1536");
  std::mt19937_64 random(11);
  for (int round = 0; round < 2000; ++round) {
    const std::uint64_t bytes = random() >> (round % 64);
    EXPECT_EQ(size_bytes(format_size(bytes)), bytes) << format_size(bytes);
  }
}

// ---- the shipped examples ----------------------------------------------------------------------

TEST(HostConfig, ClickstreamExampleIsShippedVerbatim) {
  EXPECT_EQ(read_text(TROVE_SOURCE_DIR "/examples/clickstream.yaml"), clickstream_yaml);
}

TEST(HostConfig, ClickstreamExampleParses) {
  std::vector<config_error> errors;
  const pipeline_config config =
      load_config_file(TROVE_SOURCE_DIR "/examples/clickstream.yaml", {}, errors);
  ASSERT_TRUE(errors.empty()) << messages(errors);

  // source: { type: file, path: events.jsonl, format: json }
  EXPECT_EQ(config.source.type, source_type::file);
  EXPECT_EQ(config.source.path, "events.jsonl");
  EXPECT_EQ(config.source.format, data_format::json);
  // schema: { event_id: u64, user_id: u64, type: string, ts: timestamp_ms, amount: f64 }
  const std::vector<std::pair<std::string, io::field_type>> fields = {
      {"event_id", io::field_type::u64},
      {"user_id", io::field_type::u64},
      {"type", io::field_type::string},
      {"ts", io::field_type::timestamp_ms},
      {"amount", io::field_type::f64}};
  ASSERT_EQ(config.schema.fields.size(), fields.size());
  for (std::size_t index = 0; index < fields.size(); ++index) {
    EXPECT_EQ(config.schema.fields[index].name, fields[index].first);
    EXPECT_EQ(config.schema.fields[index].type, fields[index].second);
    EXPECT_TRUE(config.schema.fields[index].required);
  }
  // event_time: ts
  EXPECT_EQ(config.event_time, "ts");
  // dedup: { key: [event_id], ttl: 10m }
  ASSERT_TRUE(config.dedup.has_value());
  EXPECT_EQ(config.dedup->key, std::vector<std::string>{"event_id"});
  EXPECT_EQ(config.dedup->ttl_ms, 10 * 60'000);
  // window: { type: tumbling, size: 1m, allowed_lateness: 5s }
  EXPECT_EQ(config.window.type, window_type::tumbling);
  EXPECT_EQ(config.window.size_ms, 60'000);
  EXPECT_EQ(config.window.slide_ms, 60'000);
  EXPECT_EQ(config.window.allowed_lateness_ms, 5'000);
  // group_by: [user_id, type]
  EXPECT_EQ(config.group_by, (std::vector<std::string>{"user_id", "type"}));
  // aggregates: [count, sum(amount), min(amount), max(amount), avg(amount)]
  const std::vector<aggregate_spec> aggregates = {{aggregate_fn::count, ""},
                                                  {aggregate_fn::sum, "amount"},
                                                  {aggregate_fn::min, "amount"},
                                                  {aggregate_fn::max, "amount"},
                                                  {aggregate_fn::avg, "amount"}};
  EXPECT_EQ(config.aggregates, aggregates);
  // emit: final
  EXPECT_EQ(config.emit, emit_mode::final);
  // sink: { type: file, path: out.jsonl, format: json }
  EXPECT_EQ(config.sink.type, sink_type::file);
  EXPECT_EQ(config.sink.path, "out.jsonl");
  EXPECT_EQ(config.sink.format, data_format::json);
  // dead_letter: { path: bad.jsonl }
  EXPECT_EQ(config.dead_letter.path, "bad.jsonl");

  EXPECT_EQ(output_columns(config),
            (std::vector<std::string>{"user_id", "type", "window_start", "window_end", "count",
                                      "sum_amount", "min_amount", "max_amount", "avg_amount"}));
}

TEST(HostConfig, EveryShippedExampleParsesAndRoundTrips) {
  int examples = 0;
  for (const auto& entry : std::filesystem::directory_iterator(TROVE_SOURCE_DIR "/examples")) {
    if (entry.path().extension() != ".yaml") continue;
    SCOPED_TRACE(entry.path().string());
    ++examples;
    std::vector<config_error> errors;
    const pipeline_config config = load_config_file(entry.path().string(), {}, errors);
    EXPECT_TRUE(errors.empty()) << messages(errors);
    expect_round_trip(config);
  }
  EXPECT_GE(examples, 3);
}

TEST(HostConfig, SyntheticExample) {
  std::vector<config_error> errors;
  const pipeline_config config =
      load_config_file(TROVE_SOURCE_DIR "/examples/synthetic.yaml", {}, errors);
  ASSERT_TRUE(errors.empty()) << messages(errors);
  EXPECT_EQ(config.source.type, source_type::synthetic);
  EXPECT_EQ(config.source.synthetic.disorder_ms, 2'000);
  EXPECT_EQ(config.source.synthetic.span_ms, 600'000);
  EXPECT_EQ(config.sink.type, sink_type::stdout_stream);
  EXPECT_EQ(config.group_by, (std::vector<std::string>{"user_id", "type"}));
  ASSERT_TRUE(config.dedup.has_value());
}

TEST(HostConfig, HoppingExample) {
  std::vector<config_error> errors;
  const pipeline_config config =
      load_config_file(TROVE_SOURCE_DIR "/examples/hopping.yaml", {}, errors);
  ASSERT_TRUE(errors.empty()) << messages(errors);
  EXPECT_EQ(config.window.type, window_type::hopping);
  EXPECT_EQ(config.window.size_ms, 5 * 60'000);
  EXPECT_EQ(config.window.slide_ms, 60'000);
  EXPECT_EQ(config.emit, emit_mode::update);
  EXPECT_EQ(config.sink.type, sink_type::file);
  EXPECT_EQ(config.sink.format, data_format::csv);
  EXPECT_FALSE(config.schema.fields.back().required);  // amount: f64?
}

// ---- defaults ----------------------------------------------------------------------------------

TEST(HostConfig, EveryDefault) {
  const pipeline_config config = parse_ok(minimal_yaml);
  EXPECT_EQ(config.source.type, source_type::stdin_stream);
  EXPECT_EQ(config.source.format, data_format::json);
  EXPECT_EQ(config.source.max_record_bytes, 1'048'576u);
  EXPECT_FALSE(config.dedup.has_value());
  EXPECT_EQ(config.window.allowed_lateness_ms, 0);
  EXPECT_EQ(config.window.idle_timeout_ms, 30'000);
  EXPECT_TRUE(config.group_by.empty());
  EXPECT_EQ(config.aggregates,
            (std::vector<aggregate_spec>{aggregate_spec{aggregate_fn::count, ""}}));
  EXPECT_TRUE(config.filter.empty());
  EXPECT_EQ(config.emit, emit_mode::final);
  EXPECT_EQ(config.late, late_policy::drop);
  EXPECT_EQ(config.sink.type, sink_type::stdout_stream);
  EXPECT_EQ(config.sink.format, data_format::json);
  EXPECT_TRUE(config.dead_letter.path.empty());
  EXPECT_EQ(config.batch.max_events, 262'144u);
  EXPECT_EQ(config.batch.linger_ms, 50);
  EXPECT_EQ(config.batch.buffers, 4u);
  EXPECT_EQ(config.batch.max_string_bytes, 32u * 262'144u);
  EXPECT_EQ(config.device, device_choice::automatic);
  EXPECT_TRUE(config.metrics.listen.empty());
  EXPECT_EQ(config.log.format, log_format::text);
  EXPECT_EQ(config.log.level, log_level::info);
  EXPECT_EQ(config.shutdown_timeout_ms, 30'000);
  EXPECT_EQ(config.progress_interval_ms, 5'000);
  // A default-constructed config holds the same defaults.
  pipeline_config defaults;
  EXPECT_EQ(config.batch, defaults.batch);
  EXPECT_EQ(config.log, defaults.log);
}

TEST(HostConfig, DedupDefaults) {
  const pipeline_config config = parse_ok(minimal_yaml, {"dedup={key: ts, ttl: 1h}"});
  ASSERT_TRUE(config.dedup.has_value());
  EXPECT_EQ(config.dedup->key, std::vector<std::string>{"ts"});  // a single name is a list
  EXPECT_EQ(config.dedup->ttl_ms, 3'600'000);
  EXPECT_EQ(config.dedup->max_bytes, 4ull << 30);
  EXPECT_EQ(config.dedup->initial_capacity, 1u << 20);
  EXPECT_TRUE(config.dedup->incremental_rebuild);
  EXPECT_FALSE(parse_ok(minimal_yaml, {"dedup={key: ts, ttl: 1h, incremental_rebuild: false}"})
                   .dedup->incremental_rebuild);
  const pipeline_config sized =
      parse_ok(minimal_yaml, {"dedup={key: [ts], ttl: 1h, max_bytes: 512MiB}"});
  EXPECT_EQ(sized.dedup->max_bytes, 512ull << 20);
  EXPECT_EQ(parse_ok(minimal_yaml, {"dedup.key=ts", "dedup.ttl=1h", "dedup.max_bytes=1GB"})
                .dedup->max_bytes,
            1'000'000'000u);
}

TEST(HostConfig, AggregationTableSizing) {
  const pipeline_config defaults = parse_ok(minimal_yaml, {});
  EXPECT_EQ(defaults.window.initial_capacity, 1u << 16);
  EXPECT_EQ(defaults.window.max_bytes, 8ull << 30);
  const pipeline_config sized =
      parse_ok(minimal_yaml, {"window.initial_capacity=4000000", "window.max_bytes=2GiB"});
  EXPECT_EQ(sized.window.initial_capacity, 4'000'000u);
  EXPECT_EQ(sized.window.max_bytes, 2ull << 30);
  // The effective config carries both, and reading it back gives the same config.
  std::vector<config_error> errors;
  const pipeline_config again = load_config_string(to_yaml(sized), {}, errors);
  ASSERT_TRUE(errors.empty()) << errors.front().message();
  EXPECT_EQ(again.window, sized.window);
}

TEST(HostConfig, BatchStringBytesFollowMaxEvents) {
  EXPECT_EQ(parse_ok(minimal_yaml, {"batch.max_events=1000"}).batch.max_string_bytes, 32'000u);
  EXPECT_EQ(parse_ok(minimal_yaml, {"batch.max_events=1000", "batch.max_string_bytes=1MiB"})
                .batch.max_string_bytes,
            1u << 20);
}

TEST(HostConfig, SyntheticDefaults) {
  const pipeline_config config = parse_ok(synthetic_yaml);
  const synthetic_source_config& syn = config.source.synthetic;
  EXPECT_EQ(syn.events, 1'000'000u);
  EXPECT_EQ(syn.rate, 0.0);
  EXPECT_EQ(syn.keys, 100'000u);
  EXPECT_DOUBLE_EQ(syn.zipf, 1.1);
  EXPECT_DOUBLE_EQ(syn.duplicate_ratio, 0.05);
  EXPECT_EQ(syn.disorder_ms, 0);
  EXPECT_EQ(syn.types, 4u);
  EXPECT_EQ(syn.span_ms, 600'000);
  EXPECT_EQ(syn.seed, 42u);
  EXPECT_EQ(syn.start_time_ms, 1'700'000'000'000);
  EXPECT_EQ(syn, synthetic_source_config{});
  // `windows` is another name for `span`.
  EXPECT_EQ(parse_ok(synthetic_yaml, {"source.windows=1h"}).source.synthetic.span_ms, 3'600'000);
  const pipeline_config set =
      parse_ok(synthetic_yaml,
               {"source.events=0", "source.rate=2.5e6", "source.zipf=0", "source.duplicate_ratio=1",
                "source.seed=7", "source.start_time=0", "source.disorder=1s", "source.types=9"});
  EXPECT_EQ(set.source.synthetic.events, 0u);
  EXPECT_EQ(set.source.synthetic.rate, 2.5e6);
  EXPECT_EQ(set.source.synthetic.zipf, 0.0);
  EXPECT_EQ(set.source.synthetic.duplicate_ratio, 1.0);
  EXPECT_EQ(set.source.synthetic.seed, 7u);
  EXPECT_EQ(set.source.synthetic.start_time_ms, 0);
  EXPECT_EQ(set.source.synthetic.disorder_ms, 1'000);
  EXPECT_EQ(set.source.synthetic.types, 9u);
}

TEST(HostConfig, KafkaDefaults) {
  const pipeline_config config = parse_ok(kafka_yaml);
  const kafka_source_config& kafka = config.source.kafka;
  EXPECT_EQ(kafka.brokers, "broker-1:9092,broker-2:9092");
  EXPECT_EQ(kafka.topics, std::vector<std::string>{"clicks"});
  EXPECT_EQ(kafka.group_id, "trove");
  EXPECT_EQ(kafka.start, kafka_start::committed);
  EXPECT_FALSE(kafka.exit_at_end);
  EXPECT_EQ(kafka.idle_timeout_ms, 30'000);
  EXPECT_TRUE(kafka.properties.empty());
  EXPECT_EQ(config.source.format, data_format::json);
  // The sink inherits the source's brokers and keys its messages by group_by.
  EXPECT_EQ(config.sink.type, sink_type::kafka);
  EXPECT_EQ(config.sink.kafka.brokers, kafka.brokers);
  EXPECT_EQ(config.sink.kafka.topic, "results");
  EXPECT_EQ(config.sink.kafka.key, std::vector<std::string>{"user_id"});

  const pipeline_config set = parse_ok(
      kafka_yaml, {"source.brokers=embedded", "source.topics=a", "source.group_id=g",
                   "source.start=earliest", "source.exit_at_end=true", "source.idle_timeout=1m",
                   "source.properties={security.protocol: SSL}", "sink.brokers=other:9092",
                   "sink.key=[user_id, window_start]", "sink.properties={acks: all}"});
  EXPECT_EQ(set.source.kafka.brokers, "embedded");
  EXPECT_EQ(set.source.kafka.topics, std::vector<std::string>{"a"});
  EXPECT_EQ(set.source.kafka.group_id, "g");
  EXPECT_EQ(set.source.kafka.start, kafka_start::earliest);
  EXPECT_TRUE(set.source.kafka.exit_at_end);
  EXPECT_EQ(set.source.kafka.idle_timeout_ms, 60'000);
  EXPECT_EQ(set.source.kafka.properties,
            (std::map<std::string, std::string>{{"security.protocol", "SSL"}}));
  EXPECT_EQ(set.sink.kafka.brokers, "other:9092");
  EXPECT_EQ(set.sink.kafka.key, (std::vector<std::string>{"user_id", "window_start"}));
  EXPECT_EQ(set.sink.kafka.properties, (std::map<std::string, std::string>{{"acks", "all"}}));
}

TEST(HostConfig, FormatDefaultsFromExtension) {
  EXPECT_EQ(parse_ok(clickstream_yaml, {"source={type: file, path: in.csv}"}).source.format,
            data_format::csv);
  EXPECT_EQ(parse_ok(clickstream_yaml, {"source={type: file, path: IN.CSV}"}).source.format,
            data_format::csv);
  EXPECT_EQ(parse_ok(clickstream_yaml, {"source={type: file, path: in.jsonl}"}).source.format,
            data_format::json);
  EXPECT_EQ(parse_ok(clickstream_yaml, {"source={type: file, path: in}"}).source.format,
            data_format::json);
  // An explicit format wins over the extension.
  EXPECT_EQ(
      parse_ok(clickstream_yaml, {"source={type: file, path: in.csv, format: json}"}).source.format,
      data_format::json);
  EXPECT_EQ(parse_ok(clickstream_yaml, {"sink={type: file, path: out.csv}"}).sink.format,
            data_format::csv);
  EXPECT_EQ(parse_ok(clickstream_yaml, {"sink={type: stdout, format: csv}"}).sink.format,
            data_format::csv);
  EXPECT_EQ(parse_ok(clickstream_yaml, {"sink.path=out.txt", "sink.format="}).sink.format,
            data_format::json);
}

// ---- schema, aggregates, filters ---------------------------------------------------------------

TEST(HostConfig, SchemaOptionalFieldsAndOrder) {
  const pipeline_config config = parse_ok(R"(
source: { type: stdin }
schema:
  zeta: u64
  amount: f64?
  flag: { type: bool, required: false }
  name: { type: string }
  ts: timestamp_ms
  delta: i64
  quoted: "string?"
event_time: ts
window: { type: tumbling, size: 1m }
)");
  ASSERT_EQ(config.schema.fields.size(), 7u);
  const std::vector<std::string> names = {"zeta", "amount", "flag",  "name",
                                          "ts",   "delta",  "quoted"};
  const std::vector<bool> required = {true, false, false, true, true, true, false};
  for (std::size_t index = 0; index < names.size(); ++index) {
    EXPECT_EQ(config.schema.fields[index].name, names[index]);
    EXPECT_EQ(config.schema.fields[index].required, required[index]) << names[index];
  }
  EXPECT_EQ(config.schema.fields[2].type, io::field_type::boolean);
  EXPECT_EQ(config.schema.fields[5].type, io::field_type::i64);
  expect_round_trip(config);
}

TEST(HostConfig, EventTimeMayBeIntegerField) {
  EXPECT_EQ(parse_ok(clickstream_yaml, {"event_time=event_id"}).event_time, "event_id");
  EXPECT_EQ(parse_ok(clickstream_yaml, {"schema.t=i64", "event_time=t"}).event_time, "t");
}

TEST(HostConfig, AggregateNamesAndColumns) {
  const pipeline_config config =
      parse_ok(clickstream_yaml, {"aggregates=[count(*), \"sum( amount )\", avg(event_id)]"});
  const std::vector<aggregate_spec> expected = {
      {aggregate_fn::count, ""}, {aggregate_fn::sum, "amount"}, {aggregate_fn::avg, "event_id"}};
  EXPECT_EQ(config.aggregates, expected);
  EXPECT_EQ(output_column(expected[0]), "count");
  EXPECT_EQ(output_column(expected[1]), "sum_amount");
  EXPECT_EQ(to_string(expected[1]), "sum(amount)");
  EXPECT_EQ(to_string(expected[0]), "count");
  // A single aggregate may be written without a list; an absent list means [count].
  EXPECT_EQ(parse_ok(clickstream_yaml, {"aggregates=max(amount)"}).aggregates,
            (std::vector<aggregate_spec>{{aggregate_fn::max, "amount"}}));
  EXPECT_EQ(parse_ok(clickstream_yaml, {"aggregates="}).aggregates,
            (std::vector<aggregate_spec>{{aggregate_fn::count, ""}}));
  // An empty group_by is one global group per window.
  const pipeline_config global = parse_ok(clickstream_yaml, {"group_by=[]"});
  EXPECT_TRUE(global.group_by.empty());
  EXPECT_EQ(output_columns(global).front(), "window_start");
}

TEST(HostConfig, FilterPredicates) {
  const pipeline_config config = parse_ok(R"(
source: { type: stdin }
schema: { id: u64, delta: i64, amount: f64, flag: bool, type: string, ts: timestamp_ms }
event_time: ts
window: { type: tumbling, size: 1m }
filter:
  - { field: id, op: ">=", value: 10 }
  - { field: delta, op: "<", value: -5 }
  - { field: amount, op: gt, value: 0.5 }
  - { field: flag, op: "==", value: yes }
  - { field: type, op: !=, value: "view" }
  - { field: ts, op: le, value: 1700000000000 }
)");
  ASSERT_EQ(config.filter.size(), 6u);
  EXPECT_EQ(config.filter[0], (filter_predicate{"id", compare_op::ge, std::uint64_t{10}}));
  EXPECT_EQ(config.filter[1], (filter_predicate{"delta", compare_op::lt, std::int64_t{-5}}));
  EXPECT_EQ(config.filter[2], (filter_predicate{"amount", compare_op::gt, 0.5}));
  EXPECT_EQ(config.filter[3], (filter_predicate{"flag", compare_op::eq, true}));
  EXPECT_EQ(config.filter[4], (filter_predicate{"type", compare_op::ne, std::string("view")}));
  EXPECT_EQ(config.filter[5],
            (filter_predicate{"ts", compare_op::le, std::int64_t{1'700'000'000'000}}));
  expect_round_trip(config);
}

// ---- errors ------------------------------------------------------------------------------------

struct error_case {
  std::string_view base;
  std::string override_text;
  std::string key;
  std::string message_part;
};

TEST(HostConfigErrors, EachMistakeNamesItsKey) {
  const std::vector<error_case> cases = {
      // source
      {clickstream_yaml, "source.type=ftp", "source.type", "file, stdin, synthetic or kafka"},
      {clickstream_yaml, "source.type=", "source.type", "required but missing"},
      {clickstream_yaml, "source.path=", "source.path", "required but missing"},
      {clickstream_yaml, "source.path=[a, b]", "source.path", "a file path"},
      {clickstream_yaml, "source.format=xml", "source.format", "json or csv"},
      {clickstream_yaml, "source.max_record_bytes=1x", "source.max_record_bytes", "a size like"},
      {clickstream_yaml, "source.max_record_bytes=0", "source.max_record_bytes", "at least"},
      {clickstream_yaml, "source=file", "source", "a map like"},
      {clickstream_yaml, "source.rate=5", "source.rate", "applies to source type synthetic"},
      {synthetic_yaml, "source.events=-5", "source.events", "non-negative integer"},
      {synthetic_yaml, "source.events=1e6", "source.events", "non-negative integer"},
      {synthetic_yaml, "source.events=99999999999999999999", "source.events", "too large"},
      {synthetic_yaml, "source.rate=-1", "source.rate", "events per second"},
      {synthetic_yaml, "source.keys=0", "source.keys", "an integer >= 1"},
      {synthetic_yaml, "source.zipf=-0.5", "source.zipf", "Zipf exponent"},
      {synthetic_yaml, "source.duplicate_ratio=1.5", "source.duplicate_ratio", "from 0 to 1"},
      {synthetic_yaml, "source.disorder=1us", "source.disorder", "sub-millisecond"},
      {synthetic_yaml, "source.types=0", "source.types", "an integer from 1"},
      {synthetic_yaml, "source.span=0", "source.span", "greater than 0"},
      {synthetic_yaml, "source.seed=x", "source.seed", "non-negative integer"},
      {synthetic_yaml, "source.start_time=-1", "source.start_time", "non-negative integer"},
      {synthetic_yaml, "source.path=x", "source.path", "applies to source type file"},
      {kafka_yaml, "source.brokers=", "source.brokers", "required but missing"},
      {kafka_yaml, "source.topics=[]", "source.topics", "non-empty list"},
      {kafka_yaml, "source.topics=", "source.topics", "required but missing"},
      {kafka_yaml, "source.group_id=\"\"", "source.group_id", "consumer group id"},
      {kafka_yaml, "source.start=beginning", "source.start", "committed, earliest or latest"},
      {kafka_yaml, "source.exit_at_end=maybe", "source.exit_at_end", "true or false"},
      {kafka_yaml, "source.idle_timeout=x", "source.idle_timeout", "a duration like"},
      {kafka_yaml, "source.properties=[a]", "source.properties", "a map of name: value"},
      {kafka_yaml, "source.properties={a: [1]}", "source.properties.a", "a string value"},
      // schema and event time
      {clickstream_yaml, "schema.amount=float", "schema.amount", "a type: u64, i64, f64"},
      {clickstream_yaml, "schema.ts=timestamp", "schema.ts", "did you mean 'timestamp_ms'?"},
      {clickstream_yaml, "schema.amount={type: f64, required: perhaps}", "schema.amount.required",
       "true or false"},
      {clickstream_yaml, "schema.amount={type: \"f64?\", required: true}", "schema.amount.required",
       "says optional"},
      {clickstream_yaml, "schema.amount={required: false}", "schema.amount.type",
       "required but missing"},
      {clickstream_yaml, "schema={}", "schema", "a map of field: type"},
      {clickstream_yaml, "schema=", "schema", "required but missing"},
      {clickstream_yaml, "event_time=amount", "event_time", "'amount' is f64"},
      {clickstream_yaml, "event_time=tss", "event_time", "did you mean 'ts'?"},
      {clickstream_yaml, "event_time=", "event_time", "required but missing"},
      {clickstream_yaml, "schema.ts=timestamp_ms?", "event_time", "must be required"},
      // dedup
      {clickstream_yaml, "dedup.key=[]", "dedup.key", "non-empty list"},
      {clickstream_yaml, "dedup.key=[evnt_id]", "dedup.key[0]", "did you mean 'event_id'?"},
      {clickstream_yaml, "dedup.key=[event_id, event_id]", "dedup.key[1]", "listed twice"},
      {clickstream_yaml, "dedup.key=", "dedup.key", "required but missing"},
      {clickstream_yaml, "dedup.ttl=0", "dedup.ttl", "greater than 0"},
      {clickstream_yaml, "dedup.ttl=abc", "dedup.ttl", "a duration like"},
      {clickstream_yaml, "dedup.ttl=", "dedup.ttl", "required but missing"},
      {clickstream_yaml, "dedup.max_bytes=4XB", "dedup.max_bytes", "a size like 512MiB"},
      {clickstream_yaml, "dedup.initial_capacity=0", "dedup.initial_capacity", ">= 1"},
      {clickstream_yaml, "dedup.incremental_rebuild=maybe", "dedup.incremental_rebuild",
       "true or false"},
      {clickstream_yaml, "dedup=[event_id]", "dedup", "a map like"},
      // window
      {clickstream_yaml, "window.type=sliding", "window.type", "tumbling or hopping"},
      {clickstream_yaml, "window.size=0s", "window.size", "greater than 0"},
      {clickstream_yaml, "window.size=", "window.size", "required but missing"},
      {clickstream_yaml, "window.allowed_lateness=-5s", "window.allowed_lateness", "negative"},
      {clickstream_yaml, "window.idle_timeout=forever", "window.idle_timeout", "a duration like"},
      {clickstream_yaml, "window=", "window", "required but missing"},
      {clickstream_yaml, "window.initial_capacity=0", "window.initial_capacity", ">= 1"},
      {clickstream_yaml, "window.max_bytes=lots", "window.max_bytes", "a size like 512MiB"},
      // group_by, aggregates, filter
      {clickstream_yaml, "group_by=[user_id, user_id]", "group_by[1]", "listed twice"},
      {clickstream_yaml, "group_by=[usr_id]", "group_by[0]", "did you mean 'user_id'?"},
      {clickstream_yaml, "group_by={a: b}", "group_by", "a list of field names"},
      {clickstream_yaml, "aggregates=[]", "aggregates", "non-empty list"},
      {clickstream_yaml, "aggregates=[median(amount)]", "aggregates[0]", "count, sum(field)"},
      {clickstream_yaml, "aggregates=[sum]", "aggregates[0]", "sum needs a field"},
      {clickstream_yaml, "aggregates=[count(amount)]", "aggregates[0]", "count takes no field"},
      {clickstream_yaml, "aggregates=[\"sum(amount\"]", "aggregates[0]", "missing ')'"},
      {clickstream_yaml, "aggregates=[sum(type)]", "aggregates[0]", "'type' is string"},
      {clickstream_yaml, "aggregates=[min(ts)]", "aggregates[0]", "'ts' is timestamp_ms"},
      {clickstream_yaml, "aggregates=[avg(amont)]", "aggregates[0]", "did you mean 'amount'?"},
      {clickstream_yaml, "aggregates=[count, count]", "aggregates[1]", "already used by count"},
      {clickstream_yaml, "filter=[{field: amount, op: \"~\", value: 1}]", "filter[0].op",
       "==, !=, <, <=, > or >="},
      {clickstream_yaml, "filter=[{field: amount, op: \">\", value: abc}]", "filter[0].value",
       "a number"},
      {clickstream_yaml, "filter=[{field: event_id, op: \">\", value: -1}]", "filter[0].value",
       "a non-negative integer"},
      {clickstream_yaml, "filter=[{field: ts, op: \">\", value: 1.5}]", "filter[0].value",
       "an integer"},
      {clickstream_yaml, "filter=[{field: nope, op: \"==\", value: 1}]", "filter[0].field",
       "a field declared in schema"},
      {clickstream_yaml, "filter=[{field: type, op: \"<\", value: a}]", "filter[0].op", "== or !="},
      {clickstream_yaml, "filter=[{field: amount, op: \">\"}]", "filter[0].value",
       "required but missing"},
      {clickstream_yaml, "filter=[{field: amount, op: \">\", value: [1]}]", "filter[0].value",
       "a constant"},
      {clickstream_yaml, "filter=[{field: amount, op: \">\", value: 1, vale: 2}]", "filter[0].vale",
       "did you mean 'filter[0].value'?"},
      {clickstream_yaml, "filter=amount > 0", "filter", "a list of predicates"},
      // emit, late, sink, dead letter
      {clickstream_yaml, "emit=never", "emit", "final or update"},
      {clickstream_yaml, "late=keep", "late", "drop or dead_letter"},
      {clickstream_yaml, "sink.type=s3", "sink.type", "file, stdout or kafka"},
      {clickstream_yaml, "sink.format=parquet", "sink.format", "json or csv"},
      {clickstream_yaml, "sink.path=", "sink.path", "required but missing"},
      {clickstream_yaml, "sink.topic=t", "sink.topic", "applies to sink type kafka"},
      {clickstream_yaml, "sink={type: kafka, topic: t}", "sink.brokers", "required but missing"},
      {kafka_yaml, "sink.topic=", "sink.topic", "required but missing"},
      {kafka_yaml, "sink.key=[amount]", "sink.key[0]", "a group_by field, window_start"},
      {clickstream_yaml, "dead_letter.path=[a]", "dead_letter.path", "a file path"},
      {clickstream_yaml, "dead_letter=bad.jsonl", "dead_letter", "a map like {path: bad.jsonl}"},
      // batch and the rest
      {clickstream_yaml, "batch.max_events=0", "batch.max_events", "an integer from 1"},
      {clickstream_yaml, "batch.buffers=1", "batch.buffers", "an integer from 2"},
      {clickstream_yaml, "batch.linger=1h1h", "batch.linger", "largest to smallest"},
      {clickstream_yaml, "batch.max_string_bytes=8GiB", "batch.max_string_bytes", "at most"},
      {clickstream_yaml, "device=gpu", "device", "auto, cpu or cuda"},
      {clickstream_yaml, "metrics.listen=localhost", "metrics.listen", "host:port"},
      {clickstream_yaml, "metrics.listen=host:99999", "metrics.listen", "host:port"},
      {clickstream_yaml, "log.format=xml", "log.format", "text or json"},
      {clickstream_yaml, "log.level=warning", "log.level", "did you mean 'warn'?"},
      {clickstream_yaml, "shutdown_timeout=soon", "shutdown_timeout", "a duration like"},
      {clickstream_yaml, "progress_interval=-1s", "progress_interval", "negative"},
      // unknown keys
      {clickstream_yaml, "windw.size=1m", "windw", "did you mean 'window'?"},
      {clickstream_yaml, "window.sise=1m", "window.sise", "did you mean 'window.size'?"},
      {clickstream_yaml, "window.slide=30s", "window.slide", "applies to window type hopping"},
      {clickstream_yaml, "dedup.tll=1m", "dedup.tll", "did you mean 'dedup.ttl'?"},
      {clickstream_yaml, "zzz=1", "zzz", "expected one of source, schema"},
  };
  for (const auto& test : cases) {
    SCOPED_TRACE(test.override_text);
    const std::vector<config_error> errors = parse_errors(test.base, {test.override_text});
    ASSERT_EQ(errors.size(), 1u) << messages(errors);
    EXPECT_EQ(errors[0].key, test.key) << errors[0].message();
    EXPECT_NE(errors[0].message().find(test.key), std::string::npos) << errors[0].message();
    EXPECT_NE(errors[0].message().find(test.message_part), std::string::npos)
        << errors[0].message();
    const std::string set_key = test.override_text.substr(0, test.override_text.find('='));
    if (errors[0].key.rfind(set_key, 0) == 0) {
      EXPECT_EQ(errors[0].line, 0) << "an error in a --set value has no line in the file";
    }
  }
}

TEST(HostConfigErrors, MessageReadsKeyGotExpected) {
  const std::vector<config_error> errors = parse_errors(clickstream_yaml, {"window.size=5x"});
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].key, "window.size");
  EXPECT_EQ(errors[0].value, "5x");
  EXPECT_EQ(errors[0].expected, "a duration like 500ms, 10s, 5m, 1h");
  EXPECT_EQ(errors[0].message().rfind(
                "window.size: got \"5x\", expected a duration like 500ms, 10s, 5m, 1h", 0),
            0u)
      << errors[0].message();
}

TEST(HostConfigErrors, DedupKeyMustBeRequired) {
  const std::vector<config_error> errors = parse_errors(clickstream_yaml, {"schema.event_id=u64?"});
  ASSERT_EQ(errors.size(), 1u) << messages(errors);
  EXPECT_EQ(errors[0].key, "dedup.key[0]");
  EXPECT_NE(errors[0].message().find("optional"), std::string::npos);
}

TEST(HostConfigErrors, AllErrorsAtOnce) {
  const std::vector<config_error> errors = parse_errors(R"(
source:    { type: file, path: events.jsonl, format: xml }
schema:    { event_id: u64, user_id: u64, type: string, ts: timestamp_ms, amount: f64 }
event_time: ts
window:    { type: tumbling, size: 5x }
group_by:  [user_id, typ]
)");
  ASSERT_EQ(errors.size(), 3u) << messages(errors);
  EXPECT_EQ(errors[0].key, "source.format");
  EXPECT_EQ(errors[1].key, "window.size");
  EXPECT_EQ(errors[2].key, "group_by[1]");
  EXPECT_EQ(errors[0].line, 2);
  EXPECT_EQ(errors[1].line, 5);
  EXPECT_EQ(errors[2].line, 6);
  EXPECT_EQ(errors[1].located_message("c.yaml").rfind("c.yaml:5: window.size: got \"5x\"", 0), 0u);
}

TEST(HostConfigErrors, ManyErrorsInOneFile) {
  const std::vector<config_error> errors = parse_errors(R"(
source: { type: file, path: events.jsonl, rate: 5 }
schema: { event_id: u64, user_id: u64, ts: timestamp, amount: f64 }
event_time: amount
dedup: { key: [event_id], ttl: 250us }
window: { type: hopping, size: 5m, slide: 2m }
aggregates: [count, sum(amont)]
emit: finale
log: { level: verbose }
sinc: { type: stdout }
)");
  std::vector<std::string> keys;
  for (const auto& error : errors) keys.push_back(error.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"source.rate", "schema.ts", "event_time", "dedup.ttl",
                                            "window.slide", "aggregates[1]", "emit", "log.level",
                                            "sinc"}))
      << messages(errors);
}

TEST(HostConfigErrors, UnknownKeySuggestsTheClosest) {
  const std::vector<config_error> errors = parse_errors(R"(
source: { type: stdin }
schema: { ts: timestamp_ms }
event_time: ts
windw: { type: tumbling, size: 1m }
)");
  // The misspelt section is one error, not also "window: required but missing".
  ASSERT_EQ(errors.size(), 1u) << messages(errors);
  EXPECT_EQ(errors[0].what, config_error::kind::unknown_key);
  EXPECT_EQ(errors[0].message(), "unknown key 'windw' (did you mean 'window'?)");
  EXPECT_EQ(errors[0].line, 5);

  const std::vector<config_error> far = parse_errors(minimal_yaml, {"colour=red"});
  ASSERT_EQ(far.size(), 1u);
  EXPECT_EQ(far[0].message().rfind("unknown key 'colour', expected one of source, schema", 0), 0u)
      << far[0].message();
}

TEST(HostConfigErrors, AnUnknownKeyFarLongerThanEveryNameIsSuggestedOnlyByItsPrefix) {
  // Keys whose length differs from a name's by more than the edits allowed skip the edit
  // distance (the fuzz target's long keys made it most of the loader's time); the prefix rule
  // still holds for them.
  const std::string yaml = R"(
source: { type: stdin }
schema: { ts: timestamp_ms }
event_time: ts
window)" + std::string(200, 'w') +
                           R"(: { type: tumbling, size: 1m }
)" + std::string(300, 'z') +
                           R"(: 1
)";
  const std::vector<config_error> errors = parse_errors(yaml);
  ASSERT_EQ(errors.size(), 2u) << messages(errors);
  EXPECT_EQ(errors[0].message(),
            "unknown key 'window" + std::string(200, 'w') + "' (did you mean 'window'?)");
  EXPECT_EQ(errors[1].what, config_error::kind::unknown_key);
  EXPECT_EQ(errors[1].message().find("did you mean"), std::string::npos) << errors[1].message();
}

TEST(HostConfigErrors, MissingRequiredSections) {
  const std::vector<config_error> errors = parse_errors("");
  std::vector<std::string> keys;
  for (const auto& error : errors) {
    keys.push_back(error.key);
    EXPECT_EQ(error.what, config_error::kind::missing_key);
  }
  // No window (nor group_by, aggregates, emit, late) is a forwarding pipeline, not an error.
  EXPECT_EQ(keys, (std::vector<std::string>{"source", "schema", "event_time"}));
}

TEST(HostConfigErrors, DuplicateKeys) {
  const std::vector<config_error> errors = parse_errors(R"(
source: { type: stdin, type: file }
schema: { ts: timestamp_ms, ts: u64 }
event_time: ts
window: { type: tumbling, size: 1m }
window: { type: tumbling, size: 2m }
)");
  ASSERT_EQ(errors.size(), 3u) << messages(errors);
  EXPECT_EQ(errors[0].key, "window");
  EXPECT_EQ(errors[1].key, "source.type");
  EXPECT_EQ(errors[2].key, "schema.ts");
  for (const auto& error : errors) {
    EXPECT_EQ(error.what, config_error::kind::duplicate_key);
    EXPECT_NE(error.message().find("duplicate key"), std::string::npos);
  }
}

TEST(HostConfigErrors, UnreadableFileAndInvalidYaml) {
  std::vector<config_error> errors;
  load_config_file("/nonexistent/trove.yaml", {}, errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].what, config_error::kind::unreadable);
  EXPECT_NE(errors[0].message().find("/nonexistent/trove.yaml"), std::string::npos);

  errors.clear();
  load_config_string("source: { type: file\nschema: [", {}, errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message().find("invalid YAML"), std::string::npos) << errors[0].message();

  // yaml-cpp cannot read `f64?` inside {...}; the error says to quote it.
  errors.clear();
  load_config_string("schema: { amount: f64?, ts: timestamp_ms }\n", {}, errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message().find("\"f64?\""), std::string::npos) << errors[0].message();
  errors.clear();
  load_config_string(clickstream_yaml, {"schema.amount={type: f64?}"}, errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].key, "schema.amount");
  EXPECT_NE(errors[0].message().find("\"f64?\""), std::string::npos) << errors[0].message();

  errors.clear();
  load_config_string("- a\n- b\n", {}, errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message().find("a map of sections"), std::string::npos);
}

// ---- hopping windows ---------------------------------------------------------------------------

TEST(HostConfigWindow, HoppingRules) {
  const std::vector<std::string> hopping = {"window={type: hopping, size: 5m, slide: 1m}"};
  const pipeline_config config = parse_ok(clickstream_yaml, hopping);
  EXPECT_EQ(config.window.size_ms, 300'000);
  EXPECT_EQ(config.window.slide_ms, 60'000);
  // slide == size is a tumbling window written as hopping.
  EXPECT_EQ(
      parse_ok(clickstream_yaml, {"window={type: hopping, size: 5m, slide: 5m}"}).window.slide_ms,
      300'000);

  auto single_error = [](const std::string& override_text) {
    const std::vector<config_error> errors = parse_errors(clickstream_yaml, {override_text});
    EXPECT_EQ(errors.size(), 1u) << messages(errors);
    return errors.empty() ? config_error{} : errors[0];
  };
  config_error error = single_error("window={type: hopping, size: 5m}");
  EXPECT_EQ(error.key, "window.slide");
  EXPECT_EQ(error.what, config_error::kind::missing_key);

  error = single_error("window={type: hopping, size: 5m, slide: 2m}");
  EXPECT_EQ(error.key, "window.slide");
  EXPECT_NE(error.message().find("window.size must be a multiple of slide"), std::string::npos)
      << error.message();

  error = single_error("window={type: hopping, size: 5m, slide: 10m}");
  EXPECT_EQ(error.key, "window.slide");
  EXPECT_NE(error.message().find("no longer than window.size (5m)"), std::string::npos)
      << error.message();

  error = single_error("window={type: hopping, size: 5m, slide: 0}");
  EXPECT_EQ(error.key, "window.slide");
  EXPECT_NE(error.message().find("greater than 0"), std::string::npos);

  error = single_error("window={type: tumbling, size: 5m, slide: 1m}");
  EXPECT_EQ(error.key, "window.slide");
  EXPECT_EQ(error.what, config_error::kind::unknown_key);
  EXPECT_NE(error.message().find("hopping"), std::string::npos);

  // A bad size is reported once; the slide rules are not checked against it.
  error = single_error("window={type: hopping, size: 5x, slide: 1m}");
  EXPECT_EQ(error.key, "window.size");
}

// ---- overrides ---------------------------------------------------------------------------------

TEST(HostConfigOverrides, ScalarListAndNewKeys) {
  const pipeline_config config = parse_ok(
      clickstream_yaml,
      {"window.size=5m", "--set source.path=x.jsonl", "--set=dedup.key=[event_id,user_id]",
       "metrics.listen=0.0.0.0:9464", "batch.max_events=1024", "log={format: json, level: debug}"});
  EXPECT_EQ(config.window.size_ms, 300'000);
  EXPECT_EQ(config.source.path, "x.jsonl");
  EXPECT_EQ(config.dedup->key, (std::vector<std::string>{"event_id", "user_id"}));
  EXPECT_EQ(config.metrics.listen, "0.0.0.0:9464");  // creates the metrics map
  EXPECT_EQ(config.batch.max_events, 1024u);         // creates the batch map
  EXPECT_EQ(config.log.format, log_format::json);
  EXPECT_EQ(config.log.level, log_level::debug);
  // Later overrides win; the other keys of a section stay.
  const pipeline_config twice = parse_ok(clickstream_yaml, {"window.size=5m", "window.size=2m"});
  EXPECT_EQ(twice.window.size_ms, 120'000);
  EXPECT_EQ(twice.window.allowed_lateness_ms, 5'000);
}

TEST(HostConfigOverrides, CreatesIntermediateMaps) {
  YAML::Node root = YAML::Load("source: {type: stdin}\n");
  std::vector<config_error> errors;
  ASSERT_TRUE(apply_override(root, "a.b.c=1", errors));
  ASSERT_TRUE(apply_override(root, "source.properties.x=y", errors));
  EXPECT_TRUE(errors.empty());
  EXPECT_EQ(root["a"]["b"]["c"].as<int>(), 1);
  EXPECT_EQ(root["source"]["type"].as<std::string>(), "stdin");
  EXPECT_EQ(root["source"]["properties"]["x"].as<std::string>(), "y");

  YAML::Node empty;
  ASSERT_TRUE(apply_override(empty, "window.size=5m", errors));
  EXPECT_EQ(empty["window"]["size"].as<std::string>(), "5m");
}

TEST(HostConfigOverrides, MalformedOverrides) {
  std::vector<config_error> errors;
  YAML::Node root = YAML::Load(std::string(clickstream_yaml));
  EXPECT_FALSE(apply_override(root, "window.size", errors));
  EXPECT_FALSE(apply_override(root, "=5m", errors));
  EXPECT_FALSE(apply_override(root, "window..size=5m", errors));
  EXPECT_FALSE(apply_override(root, "window.size.x=1", errors));  // size is not a map
  EXPECT_FALSE(apply_override(root, "window.size=[5m", errors));  // not YAML
  ASSERT_EQ(errors.size(), 5u);
  EXPECT_EQ(errors[0].key, "--set");
  EXPECT_EQ(errors[3].key, "window.size.x");
  EXPECT_NE(errors[3].message().find("window.size is not a map"), std::string::npos);
  EXPECT_EQ(errors[4].key, "window.size");
  // The document is unchanged by the failed overrides.
  std::vector<config_error> parse;
  const pipeline_config config = parse_config(root, parse);
  EXPECT_TRUE(parse.empty()) << messages(parse);
  EXPECT_EQ(config.window.size_ms, 60'000);

  // Override errors and file errors come back together.
  const std::vector<config_error> all =
      parse_errors(clickstream_yaml, {"nonsense", "window.size=5x"});
  ASSERT_EQ(all.size(), 2u) << messages(all);
  EXPECT_EQ(all[0].key, "--set");
  EXPECT_EQ(all[1].key, "window.size");
}

TEST(HostConfigOverrides, FileAndOverrides) {
  std::vector<config_error> errors;
  const pipeline_config config = load_config_file(
      TROVE_SOURCE_DIR "/examples/clickstream.yaml",
      {"window={type: hopping, size: 5m, slide: 1m}", "emit=update", "sink.path=out.csv"}, errors);
  ASSERT_TRUE(errors.empty()) << messages(errors);
  EXPECT_EQ(config.window.type, window_type::hopping);
  EXPECT_EQ(config.emit, emit_mode::update);
  EXPECT_EQ(config.sink.path, "out.csv");
  EXPECT_EQ(config.sink.format, data_format::json);  // format: json is written in the file
}

// ---- writing -----------------------------------------------------------------------------------

TEST(HostConfigYaml, RoundTripsEveryKind) {
  expect_round_trip(parse_ok(clickstream_yaml));
  expect_round_trip(parse_ok(minimal_yaml));
  expect_round_trip(parse_ok(synthetic_yaml, {"source.rate=1234.5", "source.zipf=0.99",
                                              "source.disorder=1m30s", "source.windows=1h"}));
  expect_round_trip(parse_ok(kafka_yaml, {"source.properties={security.protocol: SSL}",
                                          "sink.properties={acks: all}", "sink.format=csv"}));
  expect_round_trip(parse_ok(
      clickstream_yaml, {"window={type: hopping, size: 5m, slide: 1m}", "dedup.max_bytes=1GB",
                         "metrics.listen=:9464", "batch={max_events: 1000, buffers: 8}",
                         "device=cpu", "late=dead_letter", "source={type: stdin, format: csv}"}));
  const std::string text = to_yaml(parse_ok(clickstream_yaml));
  EXPECT_NE(text.find("max_bytes: 4GiB"), std::string::npos) << text;
  EXPECT_NE(text.find("ttl: 10m"), std::string::npos) << text;
  EXPECT_NE(text.find("aggregates: [count, sum(amount)"), std::string::npos) << text;
}

// ---- forwarding (no window) --------------------------------------------------------------------

constexpr std::string_view forward_yaml = R"(
source: { type: file, path: events.jsonl }
schema: { event_id: u64, type: string, ts: timestamp_ms }
event_time: ts
dedup: { key: [event_id], ttl: 10m }
sink: { type: kafka, brokers: embedded, topic: clean }
)";

TEST(ConfigForward, NoWindowNoGroupingNoAggregatesForwardsTheAcceptedEvents) {
  const pipeline_config config = parse_ok(forward_yaml);
  EXPECT_TRUE(config.forward);
  EXPECT_TRUE(config.aggregates.empty());
  EXPECT_TRUE(config.group_by.empty());
  EXPECT_TRUE(output_columns(config).empty());
  EXPECT_TRUE(config.sink.kafka.key.empty());
  // Written out without an aggregation, and read back the same.
  const std::string text = to_yaml(config);
  EXPECT_EQ(text.find("window:"), std::string::npos) << text;
  EXPECT_EQ(text.find("aggregates:"), std::string::npos) << text;
  EXPECT_EQ(text.find("emit:"), std::string::npos) << text;
  expect_round_trip(config);
  // Each of these asks for an aggregation, so the window is required again, named as missing.
  for (const char* aggregation :
       {"group_by=[type]", "aggregates=[count]", "emit=update", "late=dead_letter"}) {
    const std::vector<config_error> errors = parse_errors(forward_yaml, {aggregation});
    ASSERT_EQ(errors.size(), 1u) << aggregation << ": " << messages(errors);
    EXPECT_EQ(errors[0].key, "window") << aggregation;
    EXPECT_EQ(errors[0].what, config_error::kind::missing_key) << aggregation;
    EXPECT_NE(errors[0].message().find("forwarded"), std::string::npos) << errors[0].message();
  }
  EXPECT_FALSE(parse_ok(forward_yaml, {"window={type: tumbling, size: 1m}"}).forward);
}

TEST(ConfigForward, RecordsKeepTheirFormatAndKeyNamingTheKeyOtherwise) {
  // A file sink takes the source's format whatever its extension says.
  EXPECT_EQ(parse_ok(forward_yaml, {"sink={type: file, path: clean.csv}"}).sink.format,
            data_format::json);
  EXPECT_EQ(parse_ok(forward_yaml, {"source.format=csv", "sink={type: file, path: clean.jsonl}"})
                .sink.format,
            data_format::csv);
  const auto format = parse_errors(forward_yaml, {"sink.format=csv"});
  ASSERT_EQ(format.size(), 1u) << messages(format);
  EXPECT_EQ(format[0].key, "sink.format");
  EXPECT_NE(format[0].message().find("json (the source's format)"), std::string::npos)
      << format[0].message();
  const auto key = parse_errors(forward_yaml, {"sink.key=[event_id]"});
  ASSERT_EQ(key.size(), 1u) << messages(key);
  EXPECT_EQ(key[0].key, "sink.key");
}

TEST(ConfigRouting, TopicPlaceholdersNameFieldsARowHasAValueOf) {
  // Forwarded records: string or integer schema fields.
  const pipeline_config forward = parse_ok(forward_yaml, {"sink.topic=clean.{type}.{event_id}"});
  EXPECT_EQ(forward.sink.kafka.topic, "clean.{type}.{event_id}");
  EXPECT_EQ(forward.sink.kafka.max_topics, 1000u);
  expect_round_trip(parse_ok(forward_yaml, {"sink.topic=clean.{type}", "sink.max_topics=20"}));
  expect_round_trip(parse_ok(forward_yaml, {"sink.max_topics=20"}));  // kept, though unused
  EXPECT_NE(to_yaml(parse_ok(forward_yaml, {"sink.topic=c.{type}"})).find("max_topics"),
            std::string::npos);
  for (const auto& [override_text, why] : std::vector<std::pair<std::string, std::string>>{
           {"sink.topic=clean.{typo}", "schema"},
           {"sink.topic=clean.{type", "not closed"},
           {"sink.topic=clean.{}", "empty placeholder"},
           {"sink.max_topics=0", "from 1 to 100000"}}) {
    const auto errors = parse_errors(forward_yaml, {override_text});
    ASSERT_EQ(errors.size(), 1u) << override_text << ": " << messages(errors);
    EXPECT_EQ(errors[0].key, override_text.substr(0, override_text.find('=')));
    EXPECT_NE(errors[0].message().find(why), std::string::npos) << errors[0].message();
  }
  // Result rows: their group_by fields only, and no float or bool field anywhere.
  const std::string kafka_sink = "sink={type: kafka, brokers: embedded, topic: \"per.{type}\"}";
  EXPECT_EQ(parse_ok(clickstream_yaml, {kafka_sink}).sink.kafka.topic, "per.{type}");
  const auto not_grouped = parse_errors(
      clickstream_yaml, {"sink={type: kafka, brokers: embedded, topic: \"per.{event_id}\"}"});
  ASSERT_EQ(not_grouped.size(), 1u) << messages(not_grouped);
  EXPECT_EQ(not_grouped[0].key, "sink.topic");
  EXPECT_NE(not_grouped[0].message().find("group_by"), std::string::npos)
      << not_grouped[0].message();
  const auto float_field = parse_errors(
      R"(
source: { type: file, path: events.jsonl }
schema: { event_id: u64, amount: f64, ts: timestamp_ms }
event_time: ts
sink: { type: kafka, brokers: embedded, topic: "by.{amount}" }
)");
  ASSERT_EQ(float_field.size(), 1u) << messages(float_field);
  EXPECT_NE(float_field[0].message().find("string or integer"), std::string::npos)
      << float_field[0].message();
  // A file path is not routed (yet): said, naming the key.
  const auto path = parse_errors(forward_yaml, {"sink={type: file, path: \"out.{type}.jsonl\"}"});
  ASSERT_EQ(path.size(), 1u) << messages(path);
  EXPECT_EQ(path[0].key, "sink.path");
}

TEST(HostConfigYaml, EnumSpellings) {
  EXPECT_STREQ(to_string(source_type::stdin_stream), "stdin");
  EXPECT_STREQ(to_string(sink_type::stdout_stream), "stdout");
  EXPECT_STREQ(to_string(device_choice::automatic), "auto");
  EXPECT_STREQ(to_string(compare_op::ge), ">=");
  EXPECT_STREQ(to_string(late_policy::dead_letter), "dead_letter");
  EXPECT_STREQ(to_string(kafka_start::latest), "latest");
  EXPECT_EQ(format_from_path("a.csv"), data_format::csv);
  EXPECT_EQ(format_from_path("csv"), data_format::json);
}

TEST(ConfigCheckpoint, DefaultsRoundTripAndErrorsNameTheKey) {
  std::string yaml(clickstream_yaml);
  yaml += "checkpoint: {dir: /var/lib/trove}\n";
  const pipeline_config config = parse_ok(yaml);
  ASSERT_TRUE(config.checkpoint.has_value());
  EXPECT_EQ(config.checkpoint->dir, "/var/lib/trove");
  EXPECT_EQ(config.checkpoint->interval_ms, 10'000);
  EXPECT_EQ(config.checkpoint->retain, 3u);
  expect_round_trip(config);
  const pipeline_config tuned = parse_ok(yaml, {"checkpoint.interval=2s", "checkpoint.retain=5"});
  EXPECT_EQ(tuned.checkpoint->interval_ms, 2'000);
  EXPECT_EQ(tuned.checkpoint->retain, 5u);
  expect_round_trip(tuned);
  EXPECT_FALSE(parse_ok(clickstream_yaml).checkpoint.has_value());

  auto first_key = [](const std::vector<config_error>& errors) {
    return errors.empty() ? std::string("(none)") : errors.front().key;
  };
  EXPECT_EQ(first_key(parse_errors(std::string(clickstream_yaml) + "checkpoint: {interval: 1s}\n")),
            "checkpoint.dir");
  EXPECT_EQ(first_key(parse_errors(yaml, {"checkpoint.interval=0s"})), "checkpoint.interval");
  EXPECT_EQ(first_key(parse_errors(yaml, {"checkpoint.retain=0"})), "checkpoint.retain");
  EXPECT_EQ(first_key(parse_errors(yaml, {"checkpoint.dirr=x"})), "checkpoint.dirr");
  EXPECT_EQ(first_key(parse_errors(yaml, {"checkpoint=5"})), "checkpoint");
}

TEST(ConfigSketch, ApproxCountDistinctOfIntegersAndStringsWithItsPrecision) {
  std::string yaml(clickstream_yaml);
  const pipeline_config config =
      parse_ok(yaml, {"aggregates=[count, approx_count_distinct(user_id), "
                      "approx_count_distinct(type)]"});
  ASSERT_EQ(config.aggregates.size(), 3u);
  EXPECT_EQ(config.aggregates[1].fn, aggregate_fn::approx_count_distinct);
  EXPECT_EQ(config.aggregates[1].field, "user_id");
  EXPECT_EQ(output_column(config.aggregates[1]), "approx_count_distinct_user_id");
  EXPECT_EQ(output_column(config.aggregates[2]), "approx_count_distinct_type");
  EXPECT_EQ(config.sketch.hll_precision, 14u);  // the default
  expect_round_trip(config);
  const pipeline_config tuned = parse_ok(yaml, {"sketch.hll_precision=18"});
  EXPECT_EQ(tuned.sketch.hll_precision, 18u);
  expect_round_trip(tuned);

  auto first_key = [](const std::vector<config_error>& errors) {
    return errors.empty() ? std::string("(none)") : errors.front().key;
  };
  EXPECT_EQ(first_key(parse_errors(yaml, {"sketch.hll_precision=3"})), "sketch.hll_precision");
  EXPECT_EQ(first_key(parse_errors(yaml, {"sketch.hll_precision=19"})), "sketch.hll_precision");
  EXPECT_EQ(first_key(parse_errors(yaml, {"sketch.hll_precison=12"})), "sketch.hll_precison");
  EXPECT_EQ(first_key(parse_errors(yaml, {"sketch=5"})), "sketch");
  // A float's distinct bit patterns are not what a distinct count means.
  const auto errors = parse_errors(yaml, {"aggregates=[approx_count_distinct(amount)]"});
  EXPECT_EQ(first_key(errors), "aggregates[0]");
  EXPECT_NE(messages(errors).find("integer, timestamp or string"), std::string::npos)
      << messages(errors);
  EXPECT_EQ(first_key(parse_errors(yaml, {"aggregates=[approx_count_distinct]"})), "aggregates[0]");
}

TEST(ConfigSketch, QuantilesOfNumericFieldsWithTheirAccuracy) {
  std::string yaml(clickstream_yaml);
  const pipeline_config config =
      parse_ok(yaml, {"aggregates=[count, p50(amount), p90(amount), p95(amount), p99(amount), "
                      "p999(amount), p99(user_id)]"});
  ASSERT_EQ(config.aggregates.size(), 7u);
  EXPECT_EQ(config.aggregates[1].fn, aggregate_fn::p50);
  EXPECT_EQ(config.aggregates[5].fn, aggregate_fn::p999);
  EXPECT_EQ(output_column(config.aggregates[4]), "p99_amount");
  EXPECT_EQ(output_column(config.aggregates[5]), "p999_amount");
  EXPECT_EQ(output_column(config.aggregates[6]), "p99_user_id");
  EXPECT_EQ(config.sketch.quantile_accuracy, 0.01);  // the default
  expect_round_trip(config);
  const pipeline_config tuned = parse_ok(yaml, {"sketch.quantile_accuracy=0.002"});
  EXPECT_EQ(tuned.sketch.quantile_accuracy, 0.002);
  expect_round_trip(tuned);
  auto first_key = [](const std::vector<config_error>& errors) {
    return errors.empty() ? std::string("(none)") : errors.front().key;
  };
  EXPECT_EQ(first_key(parse_errors(yaml, {"sketch.quantile_accuracy=0.5"})),
            "sketch.quantile_accuracy");
  EXPECT_EQ(first_key(parse_errors(yaml, {"sketch.quantile_accuracy=0"})),
            "sketch.quantile_accuracy");
  EXPECT_EQ(first_key(parse_errors(yaml, {"aggregates=[p99(type)]"})), "aggregates[0]");
  EXPECT_EQ(first_key(parse_errors(yaml, {"aggregates=[p98(amount)]"})), "aggregates[0]");
}

TEST(ConfigCheckpoint, StdinCannotResume) {
  std::string yaml(clickstream_yaml);
  yaml += "checkpoint: {dir: state}\n";
  const auto errors = parse_errors(yaml, {"source.type=stdin", "source.path=null"});
  bool named = false;
  for (const auto& e : errors) {
    if (e.key == "checkpoint" && e.message().find("stdin") != std::string::npos) named = true;
  }
  EXPECT_TRUE(named) << messages(errors);
}

// With checkpoints a Kafka source's state moves with its partitions, a whole assignment per
// rebalance: a cooperative assignor is refused naming the property; an eager one, or the
// same property without checkpoints, is fine.
TEST(ConfigCheckpoint, ACooperativeAssignorWithCheckpointsIsRefusedNamingTheProperty) {
  const std::string with_checkpoints = std::string(kafka_yaml) + "checkpoint: {dir: state}\n";
  const std::string cooperative =
      "source.properties={partition.assignment.strategy: cooperative-sticky}";
  const auto refused = parse_errors(with_checkpoints, {cooperative});
  ASSERT_EQ(refused.size(), 1u) << messages(refused);
  EXPECT_EQ(refused.front().key, "source.properties.partition.assignment.strategy");
  EXPECT_NE(refused.front().message().find("eager"), std::string::npos) << messages(refused);
  EXPECT_TRUE(parse_errors(kafka_yaml, {cooperative}).empty());
  const auto eager =
      parse_errors(with_checkpoints,
                   {"source.properties={partition.assignment.strategy: \"range,roundrobin\"}"});
  EXPECT_TRUE(eager.empty()) << messages(eager);
}

TEST(ConfigCheckpoint, KafkaDeliveryExactlyOnceNeedsAKafkaSourceAndCheckpoints) {
  EXPECT_TRUE(parse_errors(kafka_yaml, {"sink.delivery=at_least_once"}).empty());
  const std::string with_checkpoints = std::string(kafka_yaml) + "checkpoint: {dir: state}\n";
  const auto ok = parse_errors(with_checkpoints, {"sink.delivery=exactly_once"});
  EXPECT_TRUE(ok.empty()) << messages(ok);
  const pipeline_config parsed = parse_ok(with_checkpoints, {"sink.delivery=exactly_once"});
  EXPECT_EQ(parsed.sink.kafka.delivery, delivery_mode::exactly_once);
  EXPECT_EQ(parse_ok(with_checkpoints).sink.kafka.delivery, delivery_mode::at_least_once);

  const auto no_checkpoint = parse_errors(kafka_yaml, {"sink.delivery=exactly_once"});
  ASSERT_EQ(no_checkpoint.size(), 1u) << messages(no_checkpoint);
  EXPECT_EQ(no_checkpoint.front().key, "sink.delivery");
  EXPECT_NE(no_checkpoint.front().message().find("checkpoint"), std::string::npos);

  const auto one_kept =
      parse_errors(with_checkpoints, {"sink.delivery=exactly_once", "checkpoint.retain=1"});
  ASSERT_EQ(one_kept.size(), 1u) << messages(one_kept);
  EXPECT_EQ(one_kept.front().key, "checkpoint.retain");

  std::string file_source = std::string(clickstream_yaml) + "checkpoint: {dir: state}\n";
  const auto from_file = parse_errors(
      file_source, {"sink.type=kafka", "sink.brokers=localhost:9092", "sink.topic=results",
                    "sink.path=null", "sink.format=json", "sink.delivery=exactly_once"});
  bool named = false;
  for (const auto& e : from_file) {
    if (e.key == "sink.delivery" && e.message().find("source") != std::string::npos) named = true;
  }
  EXPECT_TRUE(named) << messages(from_file);
  EXPECT_EQ(parse_errors(kafka_yaml, {"sink.delivery=sometimes"}).front().key, "sink.delivery");
}

TEST(ConfigKafkaSource, InstanceIdIsStaticMembershipAndRoundTrips) {
  EXPECT_TRUE(parse_ok(kafka_yaml).source.kafka.instance_id.empty());
  const pipeline_config config = parse_ok(kafka_yaml, {"source.instance_id=trove-0"});
  EXPECT_EQ(config.source.kafka.instance_id, "trove-0");
  const std::string effective = to_yaml(config);
  EXPECT_NE(effective.find("instance_id: trove-0"), std::string::npos) << effective;
  EXPECT_EQ(parse_ok(effective).source.kafka.instance_id, "trove-0");
  const auto empty = parse_errors(kafka_yaml, {"source.instance_id=\"\""});
  ASSERT_EQ(empty.size(), 1u) << messages(empty);
  EXPECT_EQ(empty.front().key, "source.instance_id");
}

// ---- outputs -----------------------------------------------------------------------------------

// The contract example of `outputs`, verbatim. Its source is a file, so its Kafka sinks have no
// brokers to default to: the tests parse it with a Kafka source (source_kafka) in its place.
constexpr std::string_view contract_yaml = R"(
source: { type: file, path: events.jsonl, format: json }
schema: { event_id: u64, user_id: u64, type: string, ts: timestamp_ms, amount: f64 }
event_time: ts
dedup:   { key: [event_id], ttl: 10m }
outputs:
  - name: per_user
    window: { type: tumbling, size: 1m, allowed_lateness: 5s }
    group_by: [user_id, type]
    aggregates: [count, sum(amount), min(amount), max(amount), avg(amount)]
    sink: { type: file, path: per_user.jsonl, format: json }
  - name: purchases
    filter: [{ field: type, op: "==", value: purchase }]
    window: { type: hopping, size: 1m, slide: 10s, allowed_lateness: 5s }
    aggregates: [count, max(amount)]
    sink: { type: kafka, topic: purchases }
  - name: clean
    sink: { type: kafka, topic: "events.clean.{type}" }   # routed by a field
)";
const std::string source_kafka =
    "source={type: kafka, brokers: \"localhost:9092\", topics: [events]}";

// Everything but the outputs: an outputs config is this followed by `outputs:` entries.
constexpr std::string_view outputs_head = R"(
source: { type: kafka, brokers: "b:9092", topics: [events] }
schema: { event_id: u64, user_id: u64, type: string, ts: timestamp_ms, amount: f64, ok: bool }
event_time: ts
dedup: { key: [event_id], ttl: 10m }
)";

std::string with_outputs(std::string_view entries, std::string_view extra = "") {
  return std::string(outputs_head) + std::string(extra) + "outputs:\n" + std::string(entries);
}

// Two valid entries; error cases append or replace entries.
constexpr std::string_view two_outputs = R"(  - name: per_user
    window: { type: tumbling, size: 1m }
    group_by: [user_id]
    sink: { type: file, path: per_user.jsonl }
  - name: clean
    sink: { type: kafka, topic: clean }
)";

TEST(ConfigOutputs, TheContractExampleParsesToItsOutputs) {
  const pipeline_config config = parse_ok(contract_yaml, {source_kafka});
  ASSERT_EQ(config.outputs.size(), 3u);

  output_config per_user;
  per_user.name = "per_user";
  per_user.window.type = window_type::tumbling;
  per_user.window.size_ms = per_user.window.slide_ms = 60'000;
  per_user.window.allowed_lateness_ms = 5'000;
  per_user.group_by = {"user_id", "type"};
  per_user.aggregates = {{aggregate_fn::count, ""},
                         {aggregate_fn::sum, "amount"},
                         {aggregate_fn::min, "amount"},
                         {aggregate_fn::max, "amount"},
                         {aggregate_fn::avg, "amount"}};
  per_user.sink.type = sink_type::file;
  per_user.sink.path = "per_user.jsonl";
  per_user.sink.format = data_format::json;
  EXPECT_EQ(config.outputs[0], per_user);

  output_config purchases;
  purchases.name = "purchases";
  purchases.filter = {{"type", compare_op::eq, filter_value(std::string("purchase"))}};
  purchases.window.type = window_type::hopping;
  purchases.window.size_ms = 60'000;
  purchases.window.slide_ms = 10'000;
  purchases.window.allowed_lateness_ms = 5'000;
  purchases.aggregates = {{aggregate_fn::count, ""}, {aggregate_fn::max, "amount"}};
  purchases.sink.type = sink_type::kafka;
  purchases.sink.kafka.brokers = "localhost:9092";  // the source's
  purchases.sink.kafka.topic = "purchases";
  EXPECT_EQ(config.outputs[1], purchases);

  output_config clean;
  clean.name = "clean";
  clean.forward = true;
  clean.aggregates.clear();
  clean.window.size_ms = clean.window.slide_ms = 1;
  clean.sink.type = sink_type::kafka;
  clean.sink.format = data_format::json;  // the source's
  clean.sink.kafka.brokers = "localhost:9092";
  clean.sink.kafka.topic = "events.clean.{type}";
  EXPECT_EQ(config.outputs[2], clean);

  // The spelled-out fields the comparisons above rest on.
  EXPECT_EQ(config.outputs[1].window.slide_ms, 10'000);
  EXPECT_TRUE(config.outputs[2].forward);
  EXPECT_FALSE(config.outputs[0].forward);
  EXPECT_EQ(config.outputs[1].filter.size(), 1u);
  EXPECT_EQ(std::get<std::string>(config.outputs[1].filter[0].value), "purchase");

  // The top level: no aggregation of its own; the shared watermark's lateness is the largest.
  EXPECT_FALSE(config.forward);
  EXPECT_EQ(config.window.size_ms, 1);
  EXPECT_EQ(config.window.slide_ms, 1);
  EXPECT_EQ(config.window.allowed_lateness_ms, 5'000);
  EXPECT_EQ(config.window.idle_timeout_ms, 30'000);
  EXPECT_TRUE(config.aggregates.empty());
  EXPECT_TRUE(config.group_by.empty());
  EXPECT_TRUE(config.filter.empty());
  EXPECT_EQ(config.sink, sink_config{});

  const std::vector<output_config> outputs = outputs_of(config);
  ASSERT_EQ(outputs.size(), 3u);
  EXPECT_EQ(outputs[1].name, "purchases");
  EXPECT_EQ(output_columns(config, outputs[0]),
            (std::vector<std::string>{"user_id", "type", "window_start", "window_end", "count",
                                      "sum_amount", "min_amount", "max_amount", "avg_amount"}));
  EXPECT_EQ(output_columns(config, outputs[1]),
            (std::vector<std::string>{"window_start", "window_end", "count", "max_amount"}));
  EXPECT_TRUE(output_columns(config, outputs[2]).empty());
}

TEST(ConfigOutputs, TheContractExampleAsWrittenNamesItsKafkaSinksWithoutBrokers) {
  // A file source has no brokers for a Kafka sink to default to: the rule of the top level.
  const std::vector<config_error> errors = parse_errors(contract_yaml);
  ASSERT_EQ(errors.size(), 2u) << messages(errors);
  EXPECT_EQ(errors[0].key, "outputs[1].sink.brokers");
  EXPECT_EQ(errors[1].key, "outputs[2].sink.brokers");
  EXPECT_EQ(errors[0].what, config_error::kind::missing_key);
  EXPECT_NE(errors[0].message().find("outputs[1].sink.brokers: required but missing"),
            std::string::npos)
      << errors[0].message();
  // Brokers written in the entries: it parses with its file source.
  std::string with_brokers(contract_yaml);
  for (const std::string topic : {"topic: purchases", "topic: \"events.clean.{type}\""}) {
    with_brokers.replace(with_brokers.find(topic), topic.size(), "brokers: embedded, " + topic);
  }
  const pipeline_config config = parse_ok(with_brokers);
  ASSERT_EQ(config.outputs.size(), 3u);
  EXPECT_EQ(config.outputs[1].sink.kafka.brokers, "embedded");
  EXPECT_EQ(config.source.type, source_type::file);
}

TEST(ConfigOutputs, TheShippedExampleIsTheContractWithAKafkaSource) {
  std::vector<config_error> errors;
  const pipeline_config example =
      load_config_file(TROVE_SOURCE_DIR "/examples/outputs.yaml", {}, errors);
  ASSERT_TRUE(errors.empty()) << messages(errors);
  EXPECT_EQ(example.outputs, parse_ok(contract_yaml, {source_kafka}).outputs);
  EXPECT_EQ(example.dead_letter.path, "bad.jsonl");
}

TEST(ConfigOutputs, TheSingleFormHasNoOutputsAndOneOutputOfItsTopLevel) {
  const pipeline_config config = parse_ok(clickstream_yaml);
  EXPECT_TRUE(config.outputs.empty());
  const std::vector<output_config> outputs = outputs_of(config);
  ASSERT_EQ(outputs.size(), 1u);
  EXPECT_EQ(outputs[0].name, "");
  EXPECT_TRUE(outputs[0].filter.empty());
  EXPECT_FALSE(outputs[0].forward);
  EXPECT_EQ(outputs[0].window, config.window);
  EXPECT_EQ(outputs[0].window.size_ms, 60'000);
  EXPECT_EQ(outputs[0].group_by, config.group_by);
  EXPECT_EQ(outputs[0].aggregates, config.aggregates);
  EXPECT_EQ(outputs[0].sink, config.sink);
  EXPECT_EQ(outputs[0].sink.path, "out.jsonl");
  EXPECT_EQ(output_columns(config, outputs[0]), output_columns(config));

  const pipeline_config forward = parse_ok(forward_yaml);
  EXPECT_TRUE(forward.outputs.empty());
  ASSERT_EQ(outputs_of(forward).size(), 1u);
  EXPECT_TRUE(outputs_of(forward)[0].forward);
  EXPECT_TRUE(outputs_of(forward)[0].aggregates.empty());
  EXPECT_TRUE(outputs_of(parse_ok(minimal_yaml))[0].group_by.empty());
  // The single form is written as before: no outputs key.
  EXPECT_EQ(to_yaml(config).find("outputs"), std::string::npos);
}

TEST(ConfigOutputs, TheSharedWindowHasTheLargestLatenessAndTheSmallestIdleTimeout) {
  const pipeline_config config = parse_ok(with_outputs(R"(  - name: a
    window: { type: tumbling, size: 1m, allowed_lateness: 5s, idle_timeout: 1m }
    sink: { type: file, path: a.jsonl }
  - name: b
    window: { type: hopping, size: 10m, slide: 1m, allowed_lateness: 20s, idle_timeout: 10s }
    emit: update
    late: dead_letter
    sink: { type: file, path: b.csv }
  - name: c
    sink: { type: file, path: c.jsonl }
)"));
  ASSERT_EQ(config.outputs.size(), 3u);
  EXPECT_EQ(config.window.allowed_lateness_ms, 20'000);
  EXPECT_EQ(config.window.idle_timeout_ms, 10'000);
  EXPECT_EQ(config.window.size_ms, 1);
  EXPECT_EQ(config.window.slide_ms, 1);
  EXPECT_EQ(config.window.type, window_type::tumbling);
  EXPECT_EQ(config.outputs[0].aggregates,
            std::vector<aggregate_spec>{aggregate_spec{}});  // [count]
  EXPECT_EQ(config.outputs[1].emit, emit_mode::update);
  EXPECT_EQ(config.outputs[1].late, late_policy::dead_letter);
  EXPECT_EQ(config.outputs[1].sink.format, data_format::csv);  // from the extension
  EXPECT_TRUE(config.outputs[2].forward);
  EXPECT_EQ(config.outputs[2].window.idle_timeout_ms, 30'000);  // not counted: it forwards

  // Only forwarding outputs: nothing is late, and the default idle timeout.
  const pipeline_config forwards = parse_ok(with_outputs(R"(  - name: x
    sink: { type: file, path: x.jsonl }
  - name: y
    filter: [{ field: amount, op: ">", value: 10 }]
    sink: { type: kafka, topic: "y.{user_id}" }
)"));
  EXPECT_EQ(forwards.window.allowed_lateness_ms, 0);
  EXPECT_EQ(forwards.window.idle_timeout_ms, 30'000);
  EXPECT_FALSE(forwards.forward);
  EXPECT_TRUE(forwards.outputs[0].forward && forwards.outputs[1].forward);
  EXPECT_EQ(forwards.outputs[1].sink.kafka.brokers, "b:9092");
  EXPECT_EQ(forwards.outputs[1].filter[0].op, compare_op::gt);
  EXPECT_EQ(std::get<double>(forwards.outputs[1].filter[0].value), 10.0);
}

TEST(ConfigOutputs, TheTopLevelFilterStaysAndAppliesBeforeDedup) {
  const pipeline_config config =
      parse_ok(with_outputs(two_outputs, "filter: [{ field: amount, op: \">=\", value: 0 }]\n"));
  ASSERT_EQ(config.filter.size(), 1u);
  EXPECT_EQ(config.filter[0].field, "amount");
  EXPECT_EQ(config.filter[0].op, compare_op::ge);
  EXPECT_TRUE(config.outputs[0].filter.empty());
  ASSERT_TRUE(config.dedup.has_value());
  expect_round_trip(config);
}

struct outputs_error_case {
  std::string yaml;
  std::string key;
  std::string message_part;
};

TEST(ConfigOutputs, EachMistakeNamesItsKeyUnderOutputs) {
  const std::string name_65(65, 'n');
  std::string seventeen;
  for (int index = 0; index < 17; ++index) {
    seventeen +=
        fmt::format("  - name: o{0}\n    sink: {{ type: file, path: o{0}.jsonl }}\n", index);
  }
  const std::vector<outputs_error_case> cases = {
      // the list itself
      {std::string(outputs_head) + "outputs: []\n", "outputs", "a non-empty list of outputs"},
      {std::string(outputs_head) + "outputs: all\n", "outputs", "a non-empty list of outputs"},
      {std::string(outputs_head) + "outputs: {name: a}\n", "outputs", "a non-empty list"},
      {with_outputs("  - all\n"), "outputs[0]", "a map like {name:"},
      {with_outputs(seventeen), "outputs", "at most 16 outputs (17 given)"},
      // keys of an entry
      {with_outputs(std::string(two_outputs) + "  - name: c\n    windw: { type: tumbling, size: "
                                               "1m }\n    sink: { type: file, path: c.jsonl }\n"),
       "outputs[2].windw", "did you mean 'outputs[2].window'?"},
      {with_outputs("  - name: a\n    window: { type: tumbling, size: 5x }\n    sink: { type: "
                    "stdout }\n"),
       "outputs[0].window.size", "a duration like"},
      {with_outputs("  - name: a\n    window: { type: tumbling }\n    sink: { type: stdout }\n"),
       "outputs[0].window.size", "required but missing"},
      {with_outputs("  - name: a\n    window: { type: hopping, size: 1m, slide: 7s }\n    sink: { "
                    "type: stdout }\n"),
       "outputs[0].window.slide", "divides window.size"},
      {with_outputs("  - name: a\n    window: { type: tumbling, size: 1m, slide: 7s }\n    sink: "
                    "{ type: stdout }\n"),
       "outputs[0].window.slide", "applies to window type hopping"},
      {with_outputs("  - name: a\n    window: tumbling\n    sink: { type: stdout }\n"),
       "outputs[0].window", "a map like {type: tumbling, size: 1m}"},
      {with_outputs("  - name: a\n    group_by: [user_id]\n    sink: { type: stdout }\n"),
       "outputs[0].window", "required but missing"},
      {with_outputs("  - name: a\n    emit: update\n    sink: { type: stdout }\n"),
       "outputs[0].window", "required but missing"},
      {with_outputs("  - name: a\n    window: { type: tumbling, size: 1m }\n    group_by: "
                    "[user]\n    sink: { type: stdout }\n"),
       "outputs[0].group_by[0]", "did you mean 'user_id'?"},
      {with_outputs("  - name: a\n    window: { type: tumbling, size: 1m }\n    group_by: "
                    "[user_id, user_id]\n    sink: { type: stdout }\n"),
       "outputs[0].group_by[1]", "listed twice"},
      {with_outputs("  - name: a\n    window: { type: tumbling, size: 1m }\n    aggregates: "
                    "[count, sum(type)]\n    sink: { type: stdout }\n"),
       "outputs[0].aggregates[1]", "'type' is string"},
      {with_outputs("  - name: a\n    window: { type: tumbling, size: 1m }\n    aggregates: []\n  "
                    "  sink: { type: stdout }\n"),
       "outputs[0].aggregates", "a non-empty list like [count, sum(amount)]"},
      {with_outputs("  - name: a\n    filter: [{ field: typ, op: \"==\", value: x }]\n    sink: { "
                    "type: stdout }\n"),
       "outputs[0].filter[0].field", "did you mean 'type'?"},
      {with_outputs("  - name: a\n    filter: [{ field: type, op: \">\", value: x }]\n    sink: { "
                    "type: stdout }\n"),
       "outputs[0].filter[0].op", "== or !="},
      {with_outputs("  - name: a\n    filter: { field: ok, op: \"==\", value: maybe }\n    sink: "
                    "{ type: stdout }\n"),
       "outputs[0].filter.value", "true or false"},
      {with_outputs("  - name: a\n    window: { type: tumbling, size: 1m }\n    emit: sometimes\n  "
                    "  sink: { type: stdout }\n"),
       "outputs[0].emit", "final or update"},
      {with_outputs("  - name: a\n    window: { type: tumbling, size: 1m }\n    late: keep\n    "
                    "sink: { type: stdout }\n"),
       "outputs[0].late", "drop or dead_letter"},
      // name
      {with_outputs("  - window: { type: tumbling, size: 1m }\n    sink: { type: stdout }\n"),
       "outputs[0].name", "required but missing"},
      {with_outputs("  - name: per user\n    sink: { type: stdout }\n"), "outputs[0].name",
       "only letters, digits, _ and -"},
      {with_outputs("  - name: \"\"\n    sink: { type: stdout }\n"), "outputs[0].name",
       "a name of 1 to 64 letters"},
      {with_outputs("  - name: " + name_65 + "\n    sink: { type: stdout }\n"), "outputs[0].name",
       "65 bytes long"},
      {with_outputs("  - name: [a]\n    sink: { type: stdout }\n"), "outputs[0].name",
       "a name of 1 to 64"},
      {with_outputs(std::string(two_outputs) +
                    "  - name: per_user\n    sink: { type: file, path: other.jsonl }\n"),
       "outputs[2].name", "outputs[0] is already named 'per_user'"},
      // sink
      {with_outputs("  - name: a\n    window: { type: tumbling, size: 1m }\n"), "outputs[0].sink",
       "required but missing"},
      {with_outputs("  - name: a\n    sink: stdout\n"), "outputs[0].sink", "a map like {type:"},
      {with_outputs("  - name: a\n    sink: { type: kafak, topic: t }\n"), "outputs[0].sink.type",
       "did you mean 'kafka'?"},
      {with_outputs(std::string(two_outputs) + "  - name: c\n    sink: { type: kafka }\n"),
       "outputs[2].sink.topic", "required but missing"},
      {with_outputs("  - name: a\n    sink: { type: file }\n"), "outputs[0].sink.path",
       "required but missing"},
      {with_outputs("  - name: a\n    sink: { type: file, path: \"out.{type}.jsonl\" }\n"),
       "outputs[0].sink.path", "without { }"},
      {with_outputs("  - name: a\n    sink: { type: stdout, path: x }\n"), "outputs[0].sink.path",
       "applies to sink type file"},
      {with_outputs("  - name: a\n    window: { type: tumbling, size: 1m }\n    group_by: "
                    "[user_id]\n    sink: { type: kafka, topic: \"per.{event_id}\" }\n"),
       "outputs[0].sink.topic", "not a group_by field"},
      {with_outputs("  - name: a\n    sink: { type: kafka, topic: \"by.{amount}\" }\n"),
       "outputs[0].sink.topic", "string or integer"},
      {with_outputs("  - name: a\n    sink: { type: kafka, topic: \"by.{typo}\" }\n"),
       "outputs[0].sink.topic", "schema"},
      {with_outputs("  - name: a\n    window: { type: tumbling, size: 1m }\n    sink: { type: "
                    "kafka, topic: t, key: [user_id] }\n"),
       "outputs[0].sink.key[0]", "a group_by field, window_start or window_end"},
      {with_outputs("  - name: a\n    sink: { type: file, path: a.csv, format: csv }\n"),
       "outputs[0].sink.format", "json (the source's format)"},
      {with_outputs("  - name: a\n    sink: { type: kafka, topic: t, key: [event_id] }\n"),
       "outputs[0].sink.key", "forwarded records keep their Kafka message key"},
      {with_outputs("  - name: a\n    window: { type: tumbling, size: 1m }\n    sink: { type: "
                    "kafka, topic: t, delivery: exactly_once }\n"),
       "outputs[0].sink.delivery", "outputs do not yet share one"},
      {with_outputs(std::string(two_outputs) +
                    "  - name: again\n    sink: { type: file, path: ./per_user.jsonl }\n"),
       "outputs[2].sink.path", "outputs[0] (per_user) writes per_user.jsonl already"},
      {with_outputs("  - name: a\n    sink: { type: stdout }\n  - name: b\n    sink: { type: "
                    "stdout }\n"),
       "outputs[1].sink.type", "and outputs[0] (a) does already"},
      {with_outputs("  - name: a\n    sink: { type: stdout }\n  - name: b\n    sink: {}\n"),
       "outputs[1].sink", "one output at most writes to stdout"},
      // the top level with outputs
      {with_outputs(two_outputs, "checkpoint: { dir: state }\n"), "checkpoint",
       "with a Kafka source, checkpoints do not yet cover outputs (file and synthetic sources "
       "do)"},
      {std::string(contract_yaml), "outputs[1].sink.brokers",
       "required when the source is not "
       "kafka"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.yaml);
    const std::vector<config_error> errors = parse_errors(c.yaml);
    ASSERT_FALSE(errors.empty()) << c.key;
    if (c.key != "outputs[1].sink.brokers") {  // the contract example names two sinks
      EXPECT_EQ(errors.size(), 1u) << messages(errors);
    }
    EXPECT_EQ(errors[0].key, c.key) << messages(errors);
    EXPECT_NE(errors[0].message().find(c.key), std::string::npos) << errors[0].message();
    EXPECT_NE(errors[0].message().find(c.message_part), std::string::npos) << errors[0].message();
    EXPECT_GT(errors[0].line, 0) << errors[0].message();
  }
}

TEST(ConfigOutputs, TheTopLevelAggregationKeysAreRefusedNamingTheKey) {
  const std::vector<std::pair<std::string, std::string>> keys = {
      {"window", "window: { type: tumbling, size: 1m }\n"},
      {"group_by", "group_by: [user_id]\n"},
      {"aggregates", "aggregates: [count]\n"},
      {"emit", "emit: final\n"},
      {"late", "late: drop\n"},
      {"sink", "sink: { type: stdout }\n"}};
  for (const auto& [key, line] : keys) {
    const std::vector<config_error> errors = parse_errors(with_outputs(two_outputs, line));
    ASSERT_EQ(errors.size(), 1u) << key << ": " << messages(errors);
    EXPECT_EQ(errors[0].key, key);
    EXPECT_EQ(errors[0].message(), "unknown key '" + key +
                                       "' (with outputs, each output has its own " + key +
                                       "; move it into an entry of outputs)");
    EXPECT_EQ(errors[0].line, 6);  // after the five lines of outputs_head
  }
  // A misspelt top-level key still gets its suggestion, and is not taken for one of those.
  const auto typo = parse_errors(with_outputs(two_outputs, "dedp: { key: [event_id] }\n"));
  ASSERT_EQ(typo.size(), 1u) << messages(typo);
  EXPECT_EQ(typo[0].message(), "unknown key 'dedp' (did you mean 'dedup'?)");
  const auto output_typo = parse_errors(std::string(outputs_head) + "output: []\n");
  ASSERT_EQ(output_typo.size(), 1u) << messages(output_typo);
  EXPECT_EQ(output_typo[0].message(), "unknown key 'output' (did you mean 'outputs'?)");
}

TEST(ConfigOutputs, RoundTripsEveryEntryWithItsDefaultsWritten) {
  const pipeline_config contract = parse_ok(contract_yaml, {source_kafka});
  expect_round_trip(contract);
  const std::string text = to_yaml(contract);
  // Top level: no aggregation keys of its own, no sink; every entry with its defaults.
  for (const char* key :
       {"\nwindow:", "\ngroup_by:", "\naggregates:", "\nemit:", "\nlate:", "\nsink:"}) {
    EXPECT_EQ(text.find(key), std::string::npos) << key << "\n" << text;
  }
  EXPECT_NE(text.find("\noutputs:\n  - name: per_user\n"), std::string::npos) << text;
  EXPECT_NE(text.find("    window:\n      type: hopping\n      size: 1m\n      slide: 10s\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("idle_timeout: 30s"), std::string::npos) << text;
  EXPECT_NE(text.find("    emit: final\n    late: drop\n"), std::string::npos) << text;
  EXPECT_NE(text.find("      brokers: localhost:9092\n      topic: events.clean.{type}\n      "
                      "max_topics: 1000\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("    group_by: []\n    aggregates: [count, max(amount)]\n"),
            std::string::npos)
      << text;

  expect_round_trip(parse_ok(with_outputs(
      R"(  - name: per-user_1
    filter: [{ field: ok, op: "!=", value: false }, { field: user_id, op: ">=", value: 7 }]
    window: { type: hopping, size: 10m, slide: 1m, allowed_lateness: 20s, idle_timeout: 10s,
              initial_capacity: 1024, max_bytes: 1GiB }
    group_by: [type, user_id]
    aggregates: [count, p99(amount), approx_count_distinct(user_id)]
    emit: update
    late: dead_letter
    sink: { type: kafka, topic: "per.{type}", key: [type, window_start], max_topics: 50,
            properties: { acks: all }, format: csv }
  - name: "2"
    filter: [{ field: type, op: ne, value: "a: b" }]
    sink: { type: file, path: out/clean.jsonl }
  - name: csv
    window: { type: tumbling, size: 1h }
    sink: { type: stdout, format: csv }
)",
      "filter: [{ field: amount, op: \"<\", value: 1e9 }]\n")));
  // Names YAML would read as something else unquoted are written so that they read back.
  std::string odd_names;
  for (const char* name : {"null", "Null", "true", "off", "y", "-", "--", "-1", "1e3", "0x10"}) {
    odd_names +=
        fmt::format("  - name: \"{0}\"\n    sink: {{ type: file, path: \"f{0}\" }}\n", name);
  }
  const pipeline_config odd = parse_ok(with_outputs(odd_names));
  ASSERT_EQ(odd.outputs.size(), 10u);
  EXPECT_EQ(odd.outputs[0].name, "null");
  EXPECT_EQ(odd.outputs[5].name, "-");
  expect_round_trip(odd);
  expect_round_trip(
      parse_ok(with_outputs(two_outputs),
               {"source={type: kafka, brokers: \"x:1\", topics: [a, b], format: csv}"}));
  EXPECT_EQ(parse_ok(with_outputs(two_outputs), {"source.format=csv"}).outputs[1].sink.format,
            data_format::csv);  // forwarded records keep the source's format
}

TEST(ConfigOutputs, ListEntriesCannotBeOverriddenWithSet) {
  const std::string yaml = with_outputs(two_outputs);
  const auto indexed = parse_errors(yaml, {"outputs[0].sink.path=x.jsonl"});
  ASSERT_EQ(indexed.size(), 1u) << messages(indexed);
  EXPECT_EQ(indexed[0].key, "outputs[0].sink.path");
  EXPECT_NE(indexed[0].message().find("list entries (like outputs[0]) cannot be overridden with "
                                      "--set"),
            std::string::npos)
      << indexed[0].message();
  const auto dotted = parse_errors(yaml, {"outputs.0.name=x"});
  ASSERT_EQ(dotted.size(), 1u) << messages(dotted);
  EXPECT_EQ(dotted[0].key, "outputs.0.name");
  EXPECT_NE(dotted[0].message().find("outputs is not a map"), std::string::npos)
      << dotted[0].message();
  EXPECT_NE(dotted[0].message().find("cannot be overridden with --set"), std::string::npos)
      << dotted[0].message();
  // The whole list can be set.
  const pipeline_config replaced =
      parse_ok(yaml, {"outputs=[{name: only, sink: {type: file, path: only.jsonl}}]"});
  ASSERT_EQ(replaced.outputs.size(), 1u);
  EXPECT_EQ(replaced.outputs[0].name, "only");
  EXPECT_TRUE(replaced.outputs[0].forward);
  // Top-level keys still can, and the document keeps its outputs.
  EXPECT_EQ(parse_ok(yaml, {"dedup.ttl=1m"}).dedup->ttl_ms, 60'000);
  EXPECT_EQ(parse_ok(yaml, {"dedup.ttl=1m"}).outputs.size(), 2u);
}

}  // namespace
}  // namespace trove::host
