/// @file host_e2e_outputs.cpp
/// @brief Several outputs of one pipeline (`outputs:`), through the real binary, against a
/// reference written here from the documented semantics: the top-level filter and dedup run once
/// for every output (a record accepted there is counted once, whatever the outputs make of it);
/// each output then applies its own filter, its own lateness (its watermark is the largest event
/// time seen minus its own allowed_lateness) and its own windows, or forwards the accepted
/// records byte for byte. Per-record batches make the per-batch watermark exact.

#include <gtest/gtest.h>

#include <simdjson.h>

#include <map>
#include <string>
#include <vector>

#include "e2e_run_reference.hpp"
#include "e2e_util.hpp"

namespace {

/// One output of the reference: an aggregation (o) or a forward of the accepted records.
struct output_spec {
  std::string name;
  ref_options o;  // windows, group, aggregates, lateness; o.keep is the output's own filter
  bool forward = false;
};

struct output_result {
  ref_result r;                        // r.accepted = emitted_into; r.filtered, r.late its own
  std::vector<std::size_t> forwarded;  // forward: input indices, in order
};

struct outputs_result {
  std::uint64_t in = 0, accepted = 0, duplicate = 0, filtered = 0;
  std::vector<output_result> outputs;
};

/// Per record: top-level filter, then dedup under the shared watermark (max event time - the
/// largest lateness: a key expires only once every output is past it); an accepted record enters
/// the dedup set even if every output finds it late. Then each output on its own.
outputs_result reference_outputs(const std::vector<event>& events, std::int64_t ttl_ms,
                                 const std::function<bool(const event&)>& keep,
                                 const std::vector<output_spec>& specs) {
  constexpr std::int64_t minus_infinity = std::numeric_limits<std::int64_t>::min();
  outputs_result r;
  r.outputs.resize(specs.size());
  std::int64_t largest = 0;
  for (const output_spec& s : specs) {
    if (!s.forward) largest = std::max(largest, s.o.lateness_ms);
  }
  std::int64_t max_ts = minus_infinity;
  std::int64_t shared = minus_infinity;
  std::vector<std::int64_t> watermark(specs.size(), minus_infinity);
  std::map<std::uint64_t, std::int64_t> first_seen;
  for (std::size_t i = 0; i < events.size(); ++i) {
    const event& e = events[i];
    ++r.in;
    bool counted = true;
    if (keep && !keep(e)) {
      ++r.filtered;
      counted = false;
    } else if (const auto it = first_seen.find(e.event_id);
               it != first_seen.end() &&
               !(shared != minus_infinity && shared >= it->second + ttl_ms)) {
      ++r.duplicate;
      counted = false;
    }
    if (counted) {
      first_seen[e.event_id] = e.ts;
      ++r.accepted;
      for (std::size_t o = 0; o < specs.size(); ++o) {
        const ref_options& opt = specs[o].o;
        output_result& out = r.outputs[o];
        const std::int64_t last_start = floor_to(e.ts, opt.slide_ms);
        if (opt.keep && !opt.keep(e)) {
          ++out.r.filtered;
        } else if (specs[o].forward) {
          ++out.r.accepted;
          out.forwarded.push_back(i);
        } else if (last_start + opt.size_ms <= watermark[o]) {
          ++out.r.late;
          out.r.late_records.push_back(i);
        } else {
          ++out.r.accepted;
          for (std::int64_t start = last_start; start > e.ts - opt.size_ms; start -= opt.slide_ms) {
            if (start + opt.size_ms <= watermark[o]) break;  // already emitted
            ref_group& g = out.r.rows[row_key{group_of(e, opt.group), start}];
            g.window_end = start + opt.size_ms;
            g.values.push_back(e.amount);
          }
        }
      }
    }
    max_ts = std::max(max_ts, e.ts);
    shared = std::max(shared, max_ts - largest);
    for (std::size_t o = 0; o < specs.size(); ++o) {
      watermark[o] = std::max(watermark[o], max_ts - specs[o].o.lateness_ms);
    }
  }
  return r;
}

/// The stats' `outputs` array, by output name.
std::map<std::string, e2e::json_row> output_stats(const e2e::json_row& stats) {
  std::map<std::string, e2e::json_row> out;
  if (!stats.has("outputs")) {
    ADD_FAILURE() << "stats have no outputs";
    return out;
  }
  const std::string text = e2e::as_string(stats.at("outputs"));
  simdjson::dom::parser parser;
  simdjson::dom::array array;
  if (parser.parse(text).get_array().get(array) != simdjson::SUCCESS) {
    ADD_FAILURE() << "outputs is not an array: " << text;
    return out;
  }
  simdjson::dom::parser inner;
  for (const auto element : array) {
    const std::string object = simdjson::minify(element);
    if (auto row = e2e::parse_json_object(inner, object, "outputs")) {
      out[e2e::as_string(row->at("name"))] = *row;
    }
  }
  return out;
}

/// One output's counters against the reference; accepted = emitted_into + filtered + late.
void expect_output_stats(const e2e::json_row& s, const outputs_result& ref,
                         const output_result& o) {
  EXPECT_EQ(stat(s, "accepted"), ref.accepted);
  EXPECT_EQ(stat(s, "emitted_into"), o.r.accepted);
  EXPECT_EQ(stat(s, "filtered"), o.r.filtered);
  EXPECT_EQ(stat(s, "late"), o.r.late);
  EXPECT_EQ(stat(s, "accepted"), stat(s, "emitted_into") + stat(s, "filtered") + stat(s, "late"));
}

std::vector<std::string> input_lines(const std::vector<event>& events) {
  std::vector<std::string> lines = e2e::split_lines(to_json_lines(events));
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

TEST(E2eOutputs, EachOutputMatchesTheReferenceAndDedupRunsOnce) {
  for (const std::uint64_t seed : {7u, 8u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    e2e::temp_dir dir;
    shape sh;
    sh.events = 1500;
    sh.step_ms = 150;
    sh.disorder_ms = 9 * second;  // late for every output now and then
    sh.resend_ratio = 0.15;
    sh.resend_lag = 200;
    sh.null_amount = 0.05;
    const std::vector<event> events = make_events(sh, seed);
    const std::string input = dir.file("events.jsonl");
    e2e::write_file(input, to_json_lines(events));

    std::vector<output_spec> specs(3);
    specs[0].name = "per_user";
    specs[0].o.lateness_ms = 5 * second;
    specs[1].name = "purchases";
    specs[1].o.size_ms = 10 * second;
    specs[1].o.slide_ms = 5 * second;
    specs[1].o.lateness_ms = 1 * second;
    specs[1].o.group = {};
    specs[1].o.aggregates = {"count", "max"};
    specs[1].o.keep = [](const event& e) { return e.type == "purchase"; };
    specs[2].name = "clean";
    specs[2].forward = true;
    specs[2].o.keep = [](const event& e) { return e.type != "view"; };
    // A null never matches a filter: a record without an amount is filtered.
    const auto keep = [](const event& e) { return e.amount && *e.amount >= -50; };

    const std::string per_user = dir.file("per_user.jsonl");
    const std::string purchases = dir.file("purchases.csv");
    const std::string clean = dir.file("clean.jsonl");
    const std::string yaml =
        "source: {type: file, path: \"" + input +
        "\", format: json}\n"
        "schema: {event_id: u64, user_id: u64, type: string, ts: timestamp_ms, amount: \"f64?\"}\n"
        "event_time: ts\n"
        "dedup: {key: [event_id], ttl: 10m}\n"
        "filter: [{field: amount, op: \">=\", value: -50}]\n"
        "outputs:\n"
        "  - name: per_user\n"
        "    window: {type: tumbling, size: 1m, allowed_lateness: 5s}\n"
        "    group_by: [user_id, type]\n"
        "    aggregates: [count, sum(amount), min(amount), max(amount), avg(amount)]\n"
        "    sink: {type: file, path: \"" +
        per_user +
        "\", format: json}\n"
        "  - name: purchases\n"
        "    filter: [{field: type, op: \"==\", value: purchase}]\n"
        "    window: {type: hopping, size: 10s, slide: 5s, allowed_lateness: 1s}\n"
        "    aggregates: [count, max(amount)]\n"
        "    sink: {type: file, path: \"" +
        purchases +
        "\", format: csv}\n"
        "  - name: clean\n"
        "    filter: [{field: type, op: \"!=\", value: view}]\n"
        "    sink: {type: file, path: \"" +
        clean + "\"}\n";
    const run_result run = run_trove(dir, yaml, {"--set", "batch.max_events=1"});
    ASSERT_RAN(run);

    const outputs_result ref = reference_outputs(events, 10 * minute, keep, specs);
    ASSERT_GT(ref.duplicate, 100u);
    ASSERT_GT(ref.filtered, 0u);
    ASSERT_GT(ref.outputs[0].r.late, 0u);
    ASSERT_GT(ref.outputs[1].r.late, 0u);
    ASSERT_GT(ref.outputs[1].r.filtered, 0u);
    ASSERT_GT(ref.outputs[2].r.filtered, 0u);
    // Global accounting: every record once; lateness is per output.
    expect_identity(run.stats);
    EXPECT_EQ(stat(run.stats, "in"), ref.in);
    EXPECT_EQ(stat(run.stats, "accepted"), ref.accepted);
    EXPECT_EQ(stat(run.stats, "duplicate"), ref.duplicate);
    EXPECT_EQ(stat(run.stats, "filtered"), ref.filtered);
    EXPECT_EQ(stat(run.stats, "late"), 0u);
    EXPECT_EQ(stat(run.stats, "bad"), 0u);
    const auto per_output = output_stats(run.stats);
    ASSERT_EQ(per_output.size(), 3u);
    for (std::size_t o = 0; o < specs.size(); ++o) {
      SCOPED_TRACE("output " + specs[o].name);
      ASSERT_TRUE(per_output.count(specs[o].name));
      expect_output_stats(per_output.at(specs[o].name), ref, ref.outputs[o]);
    }
    EXPECT_EQ(stat(per_output.at("per_user"), "rows_out"), ref.outputs[0].r.rows.size());
    EXPECT_EQ(stat(per_output.at("purchases"), "rows_out"), ref.outputs[1].r.rows.size());
    EXPECT_EQ(stat(per_output.at("clean"), "rows_out"), ref.outputs[2].forwarded.size());
    EXPECT_EQ(stat(run.stats, "rows_out"), ref.outputs[0].r.rows.size() +
                                               ref.outputs[1].r.rows.size() +
                                               ref.outputs[2].forwarded.size());

    expect_final_rows(rows_from_json(e2e::read_json_lines(per_user), specs[0].o), ref.outputs[0].r,
                      specs[0].o);
    expect_final_rows(rows_from_csv(e2e::read_file(purchases), specs[1].o), ref.outputs[1].r,
                      specs[1].o);
    // The forward output: the accepted records' lines exactly as received, in input order.
    const std::vector<std::string> lines = input_lines(events);
    std::string expected;
    for (std::size_t i : ref.outputs[2].forwarded) expected += lines[i] + "\n";
    EXPECT_EQ(e2e::read_file(clean), expected);
  }
}

// Batches of many records, and an output in `emit: update` beside one in `final`: read as an
// upsert (the last row per group and window) the changelog equals the reference, and the final
// output is exact. Disorder stays within every lateness, so batching cannot matter.
TEST(E2eOutputs, UpdateAndFinalOutputsOverLargeBatches) {
  e2e::temp_dir dir;
  shape sh;
  sh.events = 6000;
  sh.disorder_ms = 1500;
  const std::vector<event> events = make_events(sh, 9);
  std::vector<event> originals;  // re-sends are duplicates (decided before late)
  for (const event& e : events) {
    if (!e.resend) originals.push_back(e);
  }
  ASSERT_LT(max_behind(originals), 3 * second);
  const std::string input = dir.file("events.jsonl");
  e2e::write_file(input, to_json_lines(events));
  std::vector<output_spec> specs(2);
  specs[0].name = "changes";
  specs[0].o.lateness_ms = 5 * second;
  specs[1].name = "per_type";
  specs[1].o.size_ms = 10 * second;
  specs[1].o.slide_ms = 10 * second;
  specs[1].o.lateness_ms = 3 * second;
  specs[1].o.group = {group_field::type};
  specs[1].o.aggregates = {"count", "sum"};
  const std::string yaml =
      "source: {type: file, path: \"" + input +
      "\"}\n"
      "schema: {event_id: u64, user_id: u64, type: string, ts: timestamp_ms, amount: f64}\n"
      "event_time: ts\n"
      "dedup: {key: [event_id], ttl: 10m}\n"
      "outputs:\n"
      "  - name: changes\n"
      "    window: {type: tumbling, size: 1m, allowed_lateness: 5s}\n"
      "    group_by: [user_id, type]\n"
      "    aggregates: [count, sum(amount), min(amount), max(amount), avg(amount)]\n"
      "    emit: update\n"
      "    sink: {type: file, path: \"" +
      dir.file("changes.jsonl") +
      "\"}\n"
      "  - name: per_type\n"
      "    window: {type: tumbling, size: 10s, allowed_lateness: 3s}\n"
      "    group_by: [type]\n"
      "    aggregates: [count, sum(amount)]\n"
      "    sink: {type: file, path: \"" +
      dir.file("per_type.jsonl") + "\"}\n";
  const run_result run = run_trove(dir, yaml, {"--set", "batch.max_events=512"});
  ASSERT_RAN(run);
  const outputs_result ref = reference_outputs(events, 10 * minute, {}, specs);
  ASSERT_EQ(ref.outputs[0].r.late + ref.outputs[1].r.late, 0u);
  const std::vector<actual_row> changes =
      rows_from_json(e2e::read_json_lines(dir.file("changes.jsonl")), specs[0].o);
  ASSERT_GT(changes.size(), ref.outputs[0].r.rows.size());  // a changelog: more than one per group
  std::map<row_key, actual_row> last;
  for (const actual_row& row : changes) last[row.key] = row;
  std::vector<actual_row> upsert;
  for (auto& [key, row] : last) upsert.push_back(row);
  expect_final_rows(upsert, ref.outputs[0].r, specs[0].o);
  expect_final_rows(rows_from_json(e2e::read_json_lines(dir.file("per_type.jsonl")), specs[1].o),
                    ref.outputs[1].r, specs[1].o);
  const auto per_output = output_stats(run.stats);
  expect_output_stats(per_output.at("changes"), ref, ref.outputs[0]);
  expect_output_stats(per_output.at("per_type"), ref, ref.outputs[1]);
  EXPECT_EQ(stat(per_output.at("changes"), "rows_out"), changes.size());
}

// Late records go to the dead-letter file once per output that found them late, naming it.
TEST(E2eOutputs, LateRecordsAreDeadLetteredPerOutput) {
  e2e::temp_dir dir;
  const std::string input = dir.file("events.jsonl");
  // ts: 0 s, 70 s (closes [0, 60 s) for the output without lateness), 30 s (late for it only).
  e2e::write_file(
      input,
      "{\"event_id\":1,\"user_id\":1,\"type\":\"a\",\"ts\":1700000000000,\"amount\":1}\n"
      "{\"event_id\":2,\"user_id\":1,\"type\":\"a\",\"ts\":1700000070000,\"amount\":2}\n"
      "{\"event_id\":3,\"user_id\":1,\"type\":\"a\",\"ts\":1700000030000,\"amount\":4}\n");
  const std::string strict = dir.file("strict.jsonl");
  const std::string lenient = dir.file("lenient.jsonl");
  const std::string dead = dir.file("dead.jsonl");
  const std::string yaml =
      "source: {type: file, path: \"" + input +
      "\"}\n"
      "schema: {event_id: u64, user_id: u64, type: string, ts: timestamp_ms, amount: f64}\n"
      "event_time: ts\n"
      "dedup: {key: [event_id], ttl: 10m}\n"
      "dead_letter: {path: \"" +
      dead +
      "\"}\n"
      "outputs:\n"
      "  - name: strict\n"
      "    window: {type: tumbling, size: 1m, allowed_lateness: 0s}\n"
      "    aggregates: [count, sum(amount)]\n"
      "    late: dead_letter\n"
      "    sink: {type: file, path: \"" +
      strict +
      "\"}\n"
      "  - name: lenient\n"
      "    window: {type: tumbling, size: 1m, allowed_lateness: 1m}\n"
      "    aggregates: [count, sum(amount)]\n"
      "    late: dead_letter\n"
      "    sink: {type: file, path: \"" +
      lenient + "\"}\n";
  const run_result run = run_trove(dir, yaml, {"--set", "batch.max_events=1"});
  ASSERT_RAN(run);
  const auto per_output = output_stats(run.stats);
  EXPECT_EQ(stat(per_output.at("strict"), "late"), 1u);
  EXPECT_EQ(stat(per_output.at("lenient"), "late"), 0u);
  EXPECT_EQ(stat(run.stats, "accepted"), 3u);
  const std::vector<e2e::json_row> strict_rows = e2e::read_json_lines(strict);
  const std::vector<e2e::json_row> lenient_rows = e2e::read_json_lines(lenient);
  ASSERT_EQ(strict_rows.size(), 2u);
  ASSERT_EQ(lenient_rows.size(), 2u);
  EXPECT_EQ(e2e::as_double(strict_rows[0].at("sum_amount")), 1.0);   // without the late 4
  EXPECT_EQ(e2e::as_double(lenient_rows[0].at("sum_amount")), 5.0);  // 1 + 4
  const std::vector<e2e::json_row> letters = e2e::read_json_lines(dead);
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_NE(e2e::as_string(letters[0].at("reason")).find("output 'strict'"), std::string::npos);
}

}  // namespace
