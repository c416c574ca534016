#pragma once
/// @file e2e_run_reference.hpp
/// @brief What the end-to-end runs of the aggregation pipeline share (tests/host_e2e_run.cpp,
/// tests/host_e2e_outputs.cpp): the event generator of the test schema, the per-record reference
/// written from the documented semantics, readers of the product's JSON/CSV rows and stats, and a
/// config builder. Each test file includes it into its own anonymous namespace.

#include <gtest/gtest.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "e2e_util.hpp"

// NOLINTBEGIN(google-build-namespaces): one copy per test file, like a file's own helpers.
namespace {

namespace e2e = trove::test::e2e;
constexpr std::int64_t second = 1000;
constexpr std::int64_t minute = 60 * second;
constexpr std::int64_t base_time = 1'700'000'000'000 + 1234;  // deliberately not window-aligned

// ---- input events -------------------------------------------------------------------------------

struct event {
  std::uint64_t event_id = 0;
  std::string event_key;              // the dedup key when the schema's event_id is a string
  std::optional<std::uint64_t> user;  // null only where the schema makes user_id optional
  std::string type;
  std::int64_t ts = 0;
  std::optional<double> amount;
  bool resend = false;       // a copy of an earlier event
  bool omit_amount = false;  // a null amount is written as a missing key rather than null
};

struct shape {
  std::size_t events = 2000;
  std::uint64_t users = 20;
  std::vector<std::string> types = {"click", "view", "purchase"};
  double resend_ratio = 0.1;
  std::size_t resend_lag = 30;  // a re-send copies one of the last resend_lag originals
  std::int64_t start = base_time;
  std::int64_t step_ms = 100;
  std::int64_t disorder_ms = 0;  // event time moved back by up to this much
  double null_amount = 0;
  double null_user = 0;
};

/// Events with re-sends; amounts are multiples of 0.25, so sums are exact in any order.
std::vector<event> make_events(const shape& s, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<event> events;
  std::vector<std::size_t> originals;
  for (std::size_t i = 0; i < s.events; ++i) {
    if (!originals.empty() && unit(rng) < s.resend_ratio) {
      const std::size_t window = std::min(s.resend_lag, originals.size());
      event copy = events[originals[originals.size() - 1 - rng() % window]];
      copy.resend = true;
      events.push_back(copy);
      continue;
    }
    event e;
    e.event_id = 1000 + i * 7;
    e.event_key = "evt-" + std::to_string(e.event_id);
    e.user = rng() % s.users;
    if (unit(rng) < s.null_user) e.user.reset();
    e.type = s.types[rng() % s.types.size()];
    e.ts = s.start + static_cast<std::int64_t>(i) * s.step_ms;
    if (s.disorder_ms > 0) {
      e.ts -= static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(s.disorder_ms + 1));
    }
    e.amount = static_cast<double>(static_cast<std::int64_t>(rng() % 4000) - 400) / 4.0;
    if (unit(rng) < s.null_amount) {
      e.amount.reset();
      e.omit_amount = rng() % 2 == 0;
    }
    originals.push_back(events.size());
    events.push_back(e);
  }
  return events;
}

/// How far the event time of a record trails the largest one before it, at most.
std::int64_t max_behind(const std::vector<event>& events) {
  std::int64_t max_ts = std::numeric_limits<std::int64_t>::min();
  std::int64_t behind = 0;
  for (const event& e : events) {
    if (max_ts != std::numeric_limits<std::int64_t>::min()) {
      behind = std::max(behind, max_ts - e.ts);
    }
    max_ts = std::max(max_ts, e.ts);
  }
  return behind;
}

std::size_t count_resends(const std::vector<event>& events) {
  return static_cast<std::size_t>(
      std::count_if(events.begin(), events.end(), [](const event& e) { return e.resend; }));
}

std::string number_text(double value) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

/// JSON lines; the schema is `event_id: u64|string, user_id, type, ts, amount`.
std::string to_json_lines(const std::vector<event>& events, bool string_ids = false) {
  std::string out;
  for (const event& e : events) {
    out += "{\"event_id\":";
    out += string_ids ? e2e::json_quote(e.event_key) : std::to_string(e.event_id);
    out += ",\"user_id\":";
    out += e.user ? std::to_string(*e.user) : "null";
    out += ",\"type\":" + e2e::json_quote(e.type);
    out += ",\"ts\":" + std::to_string(e.ts);
    if (e.amount) {
      out += ",\"amount\":" + number_text(*e.amount);
    } else if (!e.omit_amount) {
      out += ",\"amount\":null";
    }
    out += ",\"ignored_extra\":[1,{\"x\":2}]}\n";
  }
  return out;
}

std::string csv_quote(const std::string& text) {
  if (text.find_first_of(",\"") == std::string::npos && !text.empty()) return text;
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

/// CSV with a header in another order than the schema and an ignored column.
std::string to_csv(const std::vector<event>& events) {
  std::string out = "ts,type,unused,amount,user_id,event_id\n";
  for (const event& e : events) {
    out += std::to_string(e.ts) + "," + csv_quote(e.type) + ",zzz," +
           (e.amount ? number_text(*e.amount) : "") + "," + std::to_string(*e.user) + "," +
           std::to_string(e.event_id) + "\n";
  }
  return out;
}

// ---- the reference ------------------------------------------------------------------------------

enum class group_field { user, type };

struct ref_options {
  std::int64_t size_ms = minute;
  std::int64_t slide_ms = minute;
  std::int64_t lateness_ms = 5 * second;
  std::optional<std::int64_t> ttl_ms = 10 * minute;  // nullopt: no dedup section
  bool string_ids = false;
  std::vector<group_field> group = {group_field::user, group_field::type};
  std::vector<std::string> aggregates = {"count", "sum", "min", "max", "avg"};  // over amount
  std::function<bool(const event&)> keep;  // the filter; empty keeps everything
};

using group_values = std::vector<std::optional<std::string>>;

struct row_key {
  group_values group;
  std::int64_t window_start = 0;
  auto operator<=>(const row_key&) const = default;
};

struct summary {
  std::uint64_t count = 0;
  std::uint64_t non_null = 0;
  double sum = 0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
};

struct ref_group {
  std::int64_t window_end = 0;
  std::vector<std::optional<double>> values;  // amounts of its accepted records, arrival order

  [[nodiscard]] summary prefix(std::size_t n) const {
    summary s;
    for (std::size_t i = 0; i < n; ++i) {
      ++s.count;
      if (!values[i]) continue;
      ++s.non_null;
      s.sum += *values[i];
      s.min = std::min(s.min, *values[i]);
      s.max = std::max(s.max, *values[i]);
    }
    return s;
  }
};

struct ref_result {
  std::uint64_t in = 0, accepted = 0, duplicate = 0, late = 0, filtered = 0;
  std::vector<std::size_t> late_records;  // indices into the input
  std::map<row_key, ref_group> rows;
  [[nodiscard]] std::size_t windows() const {
    std::set<std::int64_t> starts;
    for (const auto& [key, group] : rows) starts.insert(key.window_start);
    return starts.size();
  }
};

std::int64_t floor_to(std::int64_t t, std::int64_t step) {
  std::int64_t q = t / step;
  if (t % step != 0 && t < 0) --q;
  return q * step;
}

group_values group_of(const event& e, const std::vector<group_field>& fields) {
  group_values out;
  for (group_field f : fields) {
    if (f == group_field::user) {
      out.push_back(e.user ? std::optional<std::string>(std::to_string(*e.user)) : std::nullopt);
    } else {
      out.emplace_back(e.type);
    }
  }
  return out;
}

/// Per-record semantics as documented (README); the watermark is max event time seen -
/// allowed_lateness, windows ending at or before it are emitted after each record, +infinity at the
/// end.
ref_result reference(const std::vector<event>& events, const ref_options& o) {
  constexpr std::int64_t minus_infinity = std::numeric_limits<std::int64_t>::min();
  ref_result r;
  std::int64_t max_ts = minus_infinity;
  std::int64_t watermark = minus_infinity;  // also the end up to which windows were emitted
  std::map<std::string, std::int64_t> first_seen;
  for (std::size_t i = 0; i < events.size(); ++i) {
    const event& e = events[i];
    ++r.in;
    const std::int64_t last_start = floor_to(e.ts, o.slide_ms);
    // Duplicate is decided before late: a re-send of an accepted record is a duplicate whether
    // or not its window was emitted; a late record never enters the dedup set.
    const bool late = last_start + o.size_ms <= watermark;
    bool duplicate = false;
    if (o.ttl_ms && !(o.keep && !o.keep(e))) {
      const std::string key = o.string_ids ? e.event_key : std::to_string(e.event_id);
      const auto it = first_seen.find(key);
      duplicate = it != first_seen.end() &&
                  !(watermark != minus_infinity && watermark >= it->second + *o.ttl_ms);
      if (!duplicate && !late) first_seen[key] = e.ts;
    }
    if (o.keep && !o.keep(e)) {
      ++r.filtered;
    } else if (duplicate) {
      ++r.duplicate;
    } else if (late) {
      ++r.late;
      r.late_records.push_back(i);
    } else {
      {
        ++r.accepted;
        for (std::int64_t start = last_start; start > e.ts - o.size_ms; start -= o.slide_ms) {
          if (start + o.size_ms <= watermark) break;  // that window was already emitted
          ref_group& g = r.rows[row_key{group_of(e, o.group), start}];
          g.window_end = start + o.size_ms;
          g.values.push_back(e.amount);
        }
      }
    }
    max_ts = std::max(max_ts, e.ts);
    watermark = std::max(watermark, max_ts - o.lateness_ms);
  }
  return r;
}

// ---- reading the product's output ---------------------------------------------------------------

struct actual_row {
  row_key key;
  std::int64_t window_end = 0;
  std::map<std::string, std::optional<double>> aggregates;  // output column → value
};

std::string group_name(group_field f) {
  return f == group_field::user ? "user_id" : "type";
}

std::string agg_column(const std::string& fn) {
  return fn == "count" ? fn : fn + "_amount";
}

std::vector<std::string> expected_columns(const ref_options& o) {
  std::vector<std::string> columns;
  for (group_field f : o.group) columns.push_back(group_name(f));
  columns.emplace_back("window_start");
  columns.emplace_back("window_end");
  for (const auto& fn : o.aggregates) columns.push_back(agg_column(fn));
  return columns;
}

std::vector<actual_row> rows_from_json(const std::vector<e2e::json_row>& rows,
                                       const ref_options& o) {
  std::vector<actual_row> out;
  const std::vector<std::string> columns = expected_columns(o);
  for (const e2e::json_row& row : rows) {
    EXPECT_EQ(row.keys, columns);
    actual_row a;
    for (group_field f : o.group) {
      const e2e::json_scalar& v = row.at(group_name(f));
      if (e2e::is_null(v)) {
        a.key.group.emplace_back(std::nullopt);
      } else if (f == group_field::user) {
        a.key.group.emplace_back(std::to_string(e2e::as_i64(v)));
      } else {
        a.key.group.emplace_back(e2e::as_string(v));
      }
    }
    a.key.window_start = e2e::as_i64(row.at("window_start"));
    a.window_end = e2e::as_i64(row.at("window_end"));
    for (const auto& fn : o.aggregates) {
      const e2e::json_scalar& v = row.at(agg_column(fn));
      a.aggregates[agg_column(fn)] =
          e2e::is_null(v) ? std::nullopt : std::optional<double>(e2e::as_double(v));
    }
    out.push_back(std::move(a));
  }
  return out;
}

std::vector<actual_row> rows_from_csv(const std::string& text, const ref_options& o) {
  std::vector<actual_row> out;
  const std::vector<std::string> lines = e2e::split_lines(text);
  if (lines.empty()) {
    ADD_FAILURE() << "CSV output has no header";
    return out;
  }
  std::vector<std::string> header;
  for (const auto& f : e2e::parse_csv_line(lines[0])) header.push_back(f.text);
  EXPECT_EQ(header, expected_columns(o));
  for (std::size_t line = 1; line < lines.size(); ++line) {
    const std::vector<e2e::csv_field> fields = e2e::parse_csv_line(lines[line]);
    if (fields.size() != header.size()) {
      ADD_FAILURE() << "CSV line " << line + 1 << " has " << fields.size() << " fields";
      continue;
    }
    std::map<std::string, e2e::csv_field> by_name;
    for (std::size_t c = 0; c < header.size(); ++c) by_name[header[c]] = fields[c];
    actual_row a;
    for (group_field f : o.group) {
      const e2e::csv_field& v = by_name[group_name(f)];
      if (v.text.empty() && !v.quoted) {
        a.key.group.emplace_back(std::nullopt);
      } else {
        a.key.group.emplace_back(v.text);
      }
    }
    a.key.window_start = std::stoll(by_name["window_start"].text);
    a.window_end = std::stoll(by_name["window_end"].text);
    for (const auto& fn : o.aggregates) {
      const std::string& v = by_name[agg_column(fn)].text;
      a.aggregates[agg_column(fn)] = v.empty() ? std::nullopt : std::optional<double>(std::stod(v));
    }
    out.push_back(std::move(a));
  }
  return out;
}

std::string describe(const row_key& key) {
  std::string out = "{";
  for (const auto& g : key.group) out += (g ? "\"" + *g + "\"" : std::string("null")) + ",";
  return out + "window_start=" + std::to_string(key.window_start) + "}";
}

bool close_enough(double expected, double actual, double tolerance) {
  if (tolerance == 0) return expected == actual;
  return std::abs(expected - actual) <= tolerance * std::max(1.0, std::abs(expected));
}

/// One output row against the aggregates of a reference group's first n records.
void expect_row_equals(const actual_row& a, const ref_group& g, std::size_t n, const ref_options& o,
                       double tolerance) {
  const summary s = g.prefix(n);
  EXPECT_EQ(a.window_end, g.window_end) << describe(a.key);
  for (const auto& fn : o.aggregates) {
    const std::optional<double>& v = a.aggregates.at(agg_column(fn));
    if (fn == "count") {
      EXPECT_EQ(v, std::optional<double>(static_cast<double>(s.count))) << describe(a.key);
      continue;
    }
    if (s.non_null == 0) {  // every amount of the group was null
      EXPECT_FALSE(v.has_value()) << fn << " of " << describe(a.key) << " should be null";
      continue;
    }
    if (!v) {
      ADD_FAILURE() << fn << " of " << describe(a.key) << " is null";
      continue;
    }
    const double expected = fn == "sum"   ? s.sum
                            : fn == "min" ? s.min
                            : fn == "max" ? s.max
                                          : s.sum / static_cast<double>(s.non_null);
    const double tol = (fn == "min" || fn == "max") ? 0 : e2e::float_sum_tolerance(tolerance);
    EXPECT_TRUE(close_enough(expected, *v, tol))
        << fn << " of " << describe(a.key) << ": expected " << number_text(expected) << ", got "
        << number_text(*v);
  }
}

/// Final mode: exactly one row per reference group, with its aggregates.
void expect_final_rows(const std::vector<actual_row>& rows, const ref_result& ref,
                       const ref_options& o, double tolerance = 0) {
  EXPECT_EQ(rows.size(), ref.rows.size());
  std::set<row_key> seen;
  for (const actual_row& a : rows) {
    if (!seen.insert(a.key).second) {
      ADD_FAILURE() << "group emitted twice: " << describe(a.key);
      continue;
    }
    const auto it = ref.rows.find(a.key);
    if (it == ref.rows.end()) {
      ADD_FAILURE() << "unexpected group " << describe(a.key);
      continue;
    }
    expect_row_equals(a, it->second, it->second.values.size(), o, tolerance);
  }
  for (const auto& [key, group] : ref.rows) {
    if (!seen.count(key)) ADD_FAILURE() << "missing group " << describe(key);
  }
}

std::uint64_t stat(const e2e::json_row& stats, const std::string& key) {
  return static_cast<std::uint64_t>(e2e::as_i64(stats.at(key)));
}

void expect_identity(const e2e::json_row& stats) {
  EXPECT_EQ(stat(stats, "in"), stat(stats, "accepted") + stat(stats, "duplicate") +
                                   stat(stats, "late") + stat(stats, "filtered") +
                                   stat(stats, "bad"));
}

void expect_stats(const e2e::json_row& stats, const ref_result& ref) {
  expect_identity(stats);
  EXPECT_EQ(stat(stats, "in"), ref.in);
  EXPECT_EQ(stat(stats, "accepted"), ref.accepted);
  EXPECT_EQ(stat(stats, "duplicate"), ref.duplicate);
  EXPECT_EQ(stat(stats, "late"), ref.late);
  EXPECT_EQ(stat(stats, "filtered"), ref.filtered);
  EXPECT_EQ(stat(stats, "bad"), 0u);
}

// ---- running the product ------------------------------------------------------------------------

/// The YAML of a pipeline over the test schema; paths are absolute.
struct pipeline_spec {
  std::string input;
  std::string input_format = "json";
  std::string output;
  std::string output_format = "json";
  std::string dead_letter;
  std::string schema = "{event_id: u64, user_id: u64, type: string, ts: timestamp_ms, amount: f64}";
  std::string dedup = "{key: [event_id], ttl: 10m}";  // empty: no dedup section
  std::string window = "{type: tumbling, size: 1m, allowed_lateness: 5s}";
  std::string group_by = "[user_id, type]";
  std::string aggregates = "[count, sum(amount), min(amount), max(amount), avg(amount)]";
  std::string emit = "final";
  std::string late = "drop";
  std::string extra;  // more top-level YAML lines

  [[nodiscard]] std::string yaml() const {
    std::string y;
    y += "source: {type: file, path: \"" + input + "\", format: " + input_format + "}\n";
    y += "schema: " + schema + "\n";
    y += "event_time: ts\n";
    if (!dedup.empty()) y += "dedup: " + dedup + "\n";
    y += "window: " + window + "\n";
    y += "group_by: " + group_by + "\n";
    y += "aggregates: " + aggregates + "\n";
    y += "emit: " + emit + "\n";
    y += "late: " + late + "\n";
    y += "sink: {type: file, path: \"" + output + "\", format: " + output_format + "}\n";
    if (!dead_letter.empty()) y += "dead_letter: {path: \"" + dead_letter + "\"}\n";
    y += extra;
    return y;
  }
};

struct run_result {
  e2e::command_result command;
  e2e::json_row stats;
};

/// Writes the config, runs `trove run` on it and reads the stats (exit code checked by callers).
run_result run_trove(const e2e::temp_dir& dir, const std::string& yaml,
                     std::vector<std::string> extra_args = {}) {
  const std::string config = dir.file("pipeline.yaml");
  const std::string stats = dir.file("stats.json");
  e2e::write_file(config, yaml);
  std::vector<std::string> args = {"run", "-c", config, "--quiet", "--stats-json", stats};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  run_result r;
  r.command = e2e::trove(args);
  if (r.command.exit_code == 0) r.stats = e2e::read_stats(stats);
  return r;
}

#define ASSERT_RAN(result) \
  ASSERT_EQ((result).command.exit_code, 0) << "stderr:\n" << (result).command.err.substr(0, 4000)

/// A default spec reading dir/events.jsonl (written from events) into dir/out.jsonl.
pipeline_spec json_spec(const e2e::temp_dir& dir, const std::vector<event>& events,
                        bool string_ids = false) {
  pipeline_spec spec;
  spec.input = dir.file("events.jsonl");
  spec.output = dir.file("out.jsonl");
  e2e::write_file(spec.input, to_json_lines(events, string_ids));
  return spec;
}

}  // namespace
// NOLINTEND(google-build-namespaces)
