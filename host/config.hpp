#pragma once
/// @file config.hpp
/// @brief The pipeline configuration: a plain struct with a default for every optional key, the
/// YAML parser that validates every key (collecting every error, not only the first), `--set`
/// overrides, and the writer of the effective configuration.
///
/// A config file looks like examples/clickstream.yaml:
/// @code{.yaml}
/// source:    { type: file, path: events.jsonl, format: json }
/// schema:    { event_id: u64, user_id: u64, type: string, ts: timestamp_ms, amount: f64 }
/// event_time: ts
/// dedup:     { key: [event_id], ttl: 10m }
/// window:    { type: tumbling, size: 1m, allowed_lateness: 5s }
/// group_by:  [user_id, type]
/// aggregates: [count, sum(amount), min(amount), max(amount), avg(amount)]
/// emit:      final
/// sink:      { type: file, path: out.jsonl, format: json }
/// dead_letter: { path: bad.jsonl }
/// @endcode
///
/// Several outputs of one deduplicated stream: `outputs`, a list of up to 16 entries, each with
/// its own name, filter (applied after dedup; the top-level `filter` applies before), window,
/// group_by, aggregates, emit, late and sink (examples/outputs.yaml). An entry with none of
/// window, group_by, aggregates, emit and late forwards the accepted events. With `outputs` the
/// top-level window, group_by, aggregates, emit, late and sink are refused, and so (for now) is
/// `checkpoint`:
/// @code{.yaml}
/// source:    { type: kafka, brokers: "broker:9092", topics: [events] }
/// schema:    { event_id: u64, user_id: u64, type: string, ts: timestamp_ms, amount: f64 }
/// event_time: ts
/// dedup:     { key: [event_id], ttl: 10m }
/// outputs:
///   - name: per_user
///     window: { type: tumbling, size: 1m, allowed_lateness: 5s }
///     group_by: [user_id, type]
///     aggregates: [count, sum(amount)]
///     sink: { type: file, path: per_user.jsonl }
///   - name: purchases
///     filter: [{ field: type, op: "==", value: purchase }]
///     window: { type: hopping, size: 1m, slide: 10s }
///     aggregates: [count, max(amount)]
///     sink: { type: kafka, topic: purchases }            # brokers: the source's
///   - name: clean                                        # forwards, routed by a field
///     sink: { type: kafka, topic: "events.clean.{type}" }
/// @endcode
///
/// Schema types are `u64`, `i64`, `f64`, `timestamp_ms`, `bool` and `string`. A trailing `?`
/// (`amount: f64?`) or the long form `amount: {type: f64, required: false}` marks a field
/// optional: a record without it is accepted with a null value (null values are skipped by
/// aggregates and never match a filter), while a record without a required field is bad.
/// Inside a flow map `{...}` quote such a type (`{amount: "f64?"}`): yaml-cpp cannot read a plain
/// scalar that ends in `?` there; in block style (`amount: f64?`) no quotes are needed.
///
/// Filter ops `<`, `<=`, `>`, `>=` must be quoted in YAML (`op: ">="`: a bare `>` starts a folded
/// block scalar); `==` and `!=` may be bare, and the aliases eq, ne, lt, le, gt, ge need no quotes.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "io/batch.hpp"
#include "io/synthetic.hpp"

namespace YAML {
class Node;
}

namespace trove::host {

/// @brief Text encoding of records read from a source or written to a sink.
enum class data_format : std::uint8_t { json, csv };
/// @brief Where events come from.
enum class source_type : std::uint8_t { file, stdin_stream, synthetic, kafka };
/// @brief Where a Kafka consumer starts when it joins: its group's committed offsets (falling back
/// to earliest), the earliest or the latest offsets.
enum class kafka_start : std::uint8_t { committed, earliest, latest };
/// @brief Window assigner: tumbling(size) or hopping(size, slide), aligned to the epoch.
enum class window_type : std::uint8_t { tumbling, hopping };
/// @brief Aggregate function over a numeric field (count takes none).
enum class aggregate_fn : std::uint8_t {
  count,
  sum,
  min,
  max,
  avg,
  approx_count_distinct,
  p50,
  p90,
  p95,
  p99,
  p999
};

/// @brief Whether an aggregate is a quantile (p50 ... p999: one DDSketch per field).
constexpr bool is_quantile(aggregate_fn fn) noexcept {
  return fn >= aggregate_fn::p50 && fn <= aggregate_fn::p999;
}
/// @brief Which of the sketch's quantiles a quantile aggregate reads (0 = p50 ... 4 = p999).
constexpr std::uint32_t quantile_index(aggregate_fn fn) noexcept {
  return static_cast<std::uint32_t>(fn) - static_cast<std::uint32_t>(aggregate_fn::p50);
}
/// @brief Comparison of a filter predicate (field op value).
enum class compare_op : std::uint8_t { eq, ne, lt, le, gt, ge };
/// @brief When results are written: once per closed window, or as a changelog after every batch.
enum class emit_mode : std::uint8_t { final, update };
/// @brief What happens to a record for a window that was already emitted.
enum class late_policy : std::uint8_t { drop, dead_letter };
/// @brief Where results go.
enum class sink_type : std::uint8_t { file, stdout_stream, kafka };
/// @brief Which backend runs the kernels: cuda when usable (auto), or the one named.
enum class device_choice : std::uint8_t { automatic, cpu, cuda };
/// @brief Log line format.
enum class log_format : std::uint8_t { text, json };
/// @brief Least severe log level written.
enum class log_level : std::uint8_t { trace, debug, info, warn, error };

/// @brief Config spelling: "json", "csv".
const char* to_string(data_format value) noexcept;
/// @brief Config spelling: "file", "stdin", "synthetic", "kafka".
const char* to_string(source_type value) noexcept;
/// @brief Config spelling: "committed", "earliest", "latest".
const char* to_string(kafka_start value) noexcept;
/// @brief Config spelling: "tumbling", "hopping".
const char* to_string(window_type value) noexcept;
/// @brief Config spelling: "count", "sum", "min", "max", "avg".
const char* to_string(aggregate_fn value) noexcept;
/// @brief Config spelling: "==", "!=", "<", "<=", ">", ">=".
const char* to_string(compare_op value) noexcept;
/// @brief Config spelling: "final", "update".
const char* to_string(emit_mode value) noexcept;
/// @brief Config spelling: "drop", "dead_letter".
const char* to_string(late_policy value) noexcept;
/// @brief Config spelling: "file", "stdout", "kafka".
const char* to_string(sink_type value) noexcept;
/// @brief Config spelling: "auto", "cpu", "cuda".
const char* to_string(device_choice value) noexcept;
/// @brief Config spelling: "text", "json".
const char* to_string(log_format value) noexcept;
/// @brief Config spelling: "trace", "debug", "info", "warn", "error".
const char* to_string(log_level value) noexcept;

/// @brief `source` keys of the built-in generator (type: synthetic): clickstream-like events.
struct synthetic_source_config {
  std::uint64_t events = 1'000'000;  ///< events to generate; 0 = unbounded
  double rate = 0;                   ///< events per second; 0 = as fast as possible
  std::uint64_t keys = 100'000;      ///< distinct users
  double zipf = 1.1;                 ///< key skew exponent (>= 0); 0 = uniform
  double duplicate_ratio = 0.05;     ///< fraction of events re-sent as duplicates (0..1)
  std::int64_t disorder_ms = 0;      ///< max event-time disorder (`disorder`)
  std::uint32_t types = 4;           ///< distinct event types
  std::int64_t span_ms = 600'000;    ///< event-time span covered (`span`, alias `windows`)
  std::uint64_t seed = 42;           ///< random seed: same seed, same events
  std::int64_t start_time_ms = 1'700'000'000'000;  ///< event time of the first event (epoch ms)

  bool operator==(const synthetic_source_config&) const = default;
};

/// @brief `source` keys of a Kafka consumer (type: kafka).
struct kafka_source_config {
  std::string brokers;              ///< bootstrap servers, or "embedded" (the dev broker); required
  std::vector<std::string> topics;  ///< required, non-empty
  std::string group_id = "trove";
  /// `instance_id`: static group membership (librdkafka `group.instance.id`): a member that
  /// restarts within the session timeout gets its partitions back without a rebalance. Empty:
  /// dynamic membership. Also names this instance's exactly-once transactional.id.
  std::string instance_id;
  kafka_start start = kafka_start::committed;
  bool exit_at_end = false;                       ///< stop at the end of every partition
  std::int64_t idle_timeout_ms = 30'000;          ///< `idle_timeout`
  std::map<std::string, std::string> properties;  ///< passed to librdkafka as is

  bool operator==(const kafka_source_config&) const = default;
};

/// @brief The `source` section.
struct source_config {
  source_type type = source_type::file;      ///< required
  std::string path;                          ///< file: required
  data_format format = data_format::json;    ///< file/stdin/kafka; file default: from the extension
  std::uint64_t max_record_bytes = 1 << 20;  ///< file/stdin/kafka: longer records are bad
  synthetic_source_config synthetic;         ///< synthetic only
  kafka_source_config kafka;                 ///< kafka only

  bool operator==(const source_config&) const = default;
};

/// @brief The optional `dedup` section (absent: no dedup).
struct dedup_config {
  std::vector<std::string> key;              ///< required schema fields, non-empty
  std::int64_t ttl_ms = 0;                   ///< `ttl`, required, > 0
  std::uint64_t max_bytes = 4ull << 30;      ///< memory cap of the dedup table
  std::uint64_t initial_capacity = 1 << 20;  ///< initial slots of the dedup table
  /// `incremental_rebuild`: tables of 1M+ slots grow (and drop expired keys) a slice per batch
  /// instead of pausing one batch for the whole rebuild.
  bool incremental_rebuild = true;

  bool operator==(const dedup_config&) const = default;
};

/// @brief The `window` section.
struct window_config {
  window_type type = window_type::tumbling;  ///< required
  std::int64_t size_ms = 0;                  ///< `size`, required, > 0
  /// `slide` (hopping only: 0 < slide <= size and size a multiple of slide); for tumbling windows
  /// the parser sets it to size_ms, so that every window is hopping(size, slide).
  std::int64_t slide_ms = 0;
  std::int64_t allowed_lateness_ms = 0;   ///< `allowed_lateness`
  std::int64_t idle_timeout_ms = 30'000;  ///< `idle_timeout`: an idle partition stops holding the
                                          ///< watermark back after this long
  /// `initial_capacity`: slots the aggregation table (every open group of every open window)
  /// starts with. The table grows 2-4x by a stop-the-world rehash when it fills; sizing it for
  /// the expected open groups up front keeps those pauses out of the latency tail.
  std::uint64_t initial_capacity = 1 << 16;
  std::uint64_t max_bytes = 8ull << 30;  ///< `max_bytes`: memory cap of the aggregation table

  bool operator==(const window_config&) const = default;
};

/// @brief One entry of `aggregates`: `count`, or `sum|min|max|avg(field)` of a numeric field.
struct aggregate_spec {
  aggregate_fn fn = aggregate_fn::count;
  std::string field;  ///< empty for count

  bool operator==(const aggregate_spec&) const = default;
};

/// @brief A filter constant; the alternative matches the field type (i64 also for timestamp_ms).
using filter_value = std::variant<std::int64_t, std::uint64_t, double, bool, std::string>;

/// @brief One entry of `filter`: `{field: f, op: ">=", value: v}`. A record is kept when it
/// matches every predicate; a null field matches none.
struct filter_predicate {
  std::string field;
  compare_op op = compare_op::eq;  ///< strings and bools: == and != only
  filter_value value;

  bool operator==(const filter_predicate&) const = default;
};

/// @brief `sink` keys of a Kafka producer (type: kafka).
/// @brief `sink.delivery` of a Kafka sink.
enum class delivery_mode : std::uint8_t {
  at_least_once,  ///< after a crash the rows since the last checkpoint are emitted again
  exactly_once,   ///< one Kafka transaction per checkpoint: rows and source offsets together
};

struct kafka_sink_config {
  std::string brokers;           ///< required unless the source is kafka (then its brokers)
  /// required; `{field}` placeholders route each row to the topic its values name (`events.{type}`:
  /// string or integer schema fields; for an aggregation, group_by fields only)
  std::string topic;
  std::uint32_t max_topics = 1000;  ///< `max_topics`: distinct routed topics a run may write
  std::vector<std::string> key;  ///< message key columns; default: group_by
  std::map<std::string, std::string> properties;
  delivery_mode delivery = delivery_mode::at_least_once;

  bool operator==(const kafka_sink_config&) const = default;
};

/// @brief The `sink` section.
struct sink_config {
  sink_type type = sink_type::stdout_stream;
  std::string path;                        ///< file: required
  data_format format = data_format::json;  ///< file default: from the extension
  kafka_sink_config kafka;                 ///< kafka only

  bool operator==(const sink_config&) const = default;
};

/// @brief The `dead_letter` section.
struct dead_letter_config {
  std::string path;  ///< empty: bad records are counted and logged only

  bool operator==(const dead_letter_config&) const = default;
};

/// @brief The `batch` section: micro-batch sizing.
struct batch_config {
  /// rows per batch; 262144 measured 5-10% faster end to end than 65536 on the W1 file (2 cores),
  /// and 1M only ~3% more (README, "Batch size"); slow sources close batches at `linger` anyway
  std::uint64_t max_events = 262'144;
  std::int64_t linger_ms = 50;  ///< `linger`: longest wait for a batch to fill
  std::uint32_t buffers = 4;    ///< pinned buffers in the pool (>= 2)
  /// bytes per string column per batch; default 32 x max_events (the parser fills it in)
  std::uint64_t max_string_bytes = 32 * 262'144;

  bool operator==(const batch_config&) const = default;
};

/// @brief The `metrics` section.
struct metrics_config {
  std::string listen;  ///< "host:port" of the metrics endpoint; empty: no endpoint
  /// `stall_timeout`: /readyz fails when input is waiting (queued batches, Kafka lag) and no batch
  /// has made progress for this long
  std::int64_t stall_timeout_ms = 60'000;

  bool operator==(const metrics_config&) const = default;
};

/// @brief The `sketch` section: parameters of the approximate aggregates.
struct sketch_config {
  /// `hll_precision`: approx_count_distinct keeps 2^p one-byte registers per group (past its
  /// first 6 distinct values); relative standard error 1.04 / sqrt(2^p), 0.81% at 14
  std::uint32_t hll_precision = 14;
  /// `quantile_accuracy`: p50 ... p999 are within this relative error of the exact value at their
  /// rank (DDSketch; 0.001 to 0.1)
  double quantile_accuracy = 0.01;

  bool operator==(const sketch_config&) const = default;
};

/// @brief The `log` section.
struct log_config {
  log_format format = log_format::text;
  log_level level = log_level::info;

  bool operator==(const log_config&) const = default;
};

/// @brief The optional `checkpoint` section (absent: no checkpoints, state lives only in memory).
struct checkpoint_config {
  std::string dir;                    ///< required: where checkpoints are written (created)
  std::int64_t interval_ms = 10'000;  ///< `interval`: time between checkpoints
  std::uint32_t retain = 3;           ///< checkpoints kept (older ones are deleted)
  bool operator==(const checkpoint_config&) const = default;
};

/// @brief One entry of `outputs`: what one output makes of the deduplicated stream. Either an
/// aggregation (`window`, `group_by`, `aggregates`, `emit`, `late`) or, with none of those, the
/// accepted events themselves forwarded as received (`forward`).
struct output_config {
  std::string name;  ///< required, unique: [A-Za-z0-9_-], 1-64 bytes (the metrics' `output` label)
  std::vector<filter_predicate> filter;  ///< applied after dedup (the top-level filter: before)
  bool forward = false;
  window_config window;  ///< aggregation only (forwarding: the 1 ms window, as at top level)
  std::vector<std::string> group_by;
  std::vector<aggregate_spec> aggregates{aggregate_spec{}};  ///< forwarding: empty
  emit_mode emit = emit_mode::final;
  late_policy late = late_policy::drop;
  sink_config sink;  ///< required

  bool operator==(const output_config&) const = default;
};

/// @brief The whole pipeline configuration, defaults filled in.
struct pipeline_config {
  source_config source;
  io::schema schema;       ///< fields in the order of the YAML map
  std::string event_time;  ///< a required timestamp_ms, i64 or u64 field
  std::optional<dedup_config> dedup;
  /// No `window`, `group_by`, `aggregates`, `emit` or `late`: the output is the accepted events
  /// themselves, each record's bytes as received, in arrival order (per source partition).
  bool forward = false;
  window_config window;
  std::vector<std::string> group_by;                         ///< empty: one global group per window
  std::vector<aggregate_spec> aggregates{aggregate_spec{}};  ///< default [count]
  std::vector<filter_predicate> filter;                      ///< before dedup (with `outputs`, too)
  emit_mode emit = emit_mode::final;
  late_policy late = late_policy::drop;
  sink_config sink;
  /// `outputs`: several outputs of one deduplicated stream. Empty: the single output described by
  /// the top-level window/group_by/aggregates/emit/late/sink (the form before `outputs`). With
  /// outputs the parser leaves those top-level keys at their defaults except: forward = false,
  /// aggregates empty, window.size_ms = slide_ms = 1, window.allowed_lateness_ms = the largest of
  /// the aggregating outputs' (the shared watermark, from which each output's own is derived; 0
  /// when none aggregates), window.idle_timeout_ms = the smallest (30 s when none aggregates).
  std::vector<output_config> outputs;
  dead_letter_config dead_letter;
  batch_config batch;
  device_choice device = device_choice::automatic;
  metrics_config metrics;
  sketch_config sketch;
  log_config log;
  std::optional<checkpoint_config> checkpoint;
  std::int64_t shutdown_timeout_ms = 30'000;  ///< `shutdown_timeout`
  std::int64_t progress_interval_ms = 5'000;  ///< `progress_interval`; 0 = no progress lines
};

/// @brief One problem found in a config: which key, what was written, what was expected.
struct config_error {
  /// @brief What went wrong; decides how message() reads.
  enum class kind : std::uint8_t {
    invalid_value,  ///< `key: got "value", expected ...`
    missing_key,    ///< `key: required but missing, expected ...`
    unknown_key,    ///< `unknown key 'key' (did you mean '...'?)`
    duplicate_key,  ///< `key: duplicate key`
    unreadable,     ///< the file could not be read or is not YAML (`value` holds the file)
  };
  std::string key;       ///< dotted path, e.g. "window.size", "group_by[1]"; "" for the document
  std::string value;     ///< the value as written ("" when missing)
  std::string expected;  ///< e.g. "a duration like 500ms, 10s, 5m, 1h"
  std::string detail;    ///< why, or a suggestion ("did you mean 'window'?"); may be empty
  kind what = kind::invalid_value;
  int line = 0;  ///< 1-based line in the YAML text; 0 when unknown (e.g. a --set override)

  /// @brief One line a user can act on, e.g.
  /// `window.size: got "5x", expected a duration like 500ms, 10s, 5m, 1h (unknown unit 'x' ...)`.
  [[nodiscard]] std::string message() const;
  /// @brief message() prefixed with `file:line: ` (or `file: ` when the line is unknown).
  [[nodiscard]] std::string located_message(std::string_view file) const;
};

/// @brief Validates a parsed YAML document and returns the configuration it describes.
/// Every problem is appended to errors (the parse goes on after each one); the returned config
/// is meaningful only when errors is empty.
pipeline_config parse_config(const YAML::Node& root, std::vector<config_error>& errors);

/// @brief Applies one override `key.path=value` (a leading "--set " is accepted) to a document:
/// the value is parsed as YAML (so `[a, b]` is a list) and missing intermediate maps are created.
/// @return false (with an error appended) when the override is malformed or its path runs
/// through a non-map value: list entries (`outputs[0].name`) cannot be overridden, only a whole
/// list (`outputs=[...]`)
bool apply_override(YAML::Node& root, std::string_view assignment,
                    std::vector<config_error>& errors);

/// @brief Reads a YAML file, applies the overrides in order, and parses the result.
pipeline_config load_config_file(const std::string& path, const std::vector<std::string>& overrides,
                                 std::vector<config_error>& errors);

/// @brief Like load_config_file, from YAML text already in memory.
pipeline_config load_config_string(std::string_view yaml, const std::vector<std::string>& overrides,
                                   std::vector<config_error>& errors);

/// @brief The effective configuration (every default written out) as YAML that parses back to
/// the same configuration; used by `trove validate --print` and benchmark reports.
[[nodiscard]] std::string to_yaml(const pipeline_config& config);

/// @brief The aggregate as written in a config: "count", "sum(amount)".
[[nodiscard]] std::string to_string(const aggregate_spec& aggregate);

/// @brief Output column of an aggregate: "count", or "<fn>_<field>" ("sum_amount").
[[nodiscard]] std::string output_column(const aggregate_spec& aggregate);

/// @brief The generator options a `source: {type: synthetic}` section describes.
[[nodiscard]] io::synthetic_options to_synthetic_options(const synthetic_source_config& config);

/// @brief Columns of an output row, in order: group_by fields, window_start, window_end, then
/// one column per aggregate (none for a forwarding pipeline: its rows are records as received).
[[nodiscard]] std::vector<std::string> output_columns(const pipeline_config& config);

/// @brief The outputs of a pipeline: `outputs`, or the one the top-level keys describe (named "",
/// with no filter of its own: the top-level filter applies before dedup).
[[nodiscard]] std::vector<output_config> outputs_of(const pipeline_config& config);

/// @brief Columns of one output's rows (as output_columns of a single-output pipeline).
[[nodiscard]] std::vector<std::string> output_columns(const pipeline_config& config,
                                                      const output_config& output);

/// @brief The format a path's extension implies: csv for ".csv", json otherwise.
[[nodiscard]] data_format format_from_path(std::string_view path) noexcept;

}  // namespace trove::host
