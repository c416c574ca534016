/// @file host_e2e_forward.cpp
/// @brief A pipeline without a window forwards the deduplicated events themselves, tested through
/// the real binary: each record's bytes exactly as received (unknown fields, spacing and field
/// order kept), the first copy of each dedup key only, in arrival order; bad records dead-lettered
/// and never forwarded; the filter applied; CSV records under their header; generated events as
/// JSON; killed with SIGKILL at random points and restarted, every record forwarded exactly once.
/// Expected outputs are computed here from the input lines, not from trove.

#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "e2e_util.hpp"

namespace {

namespace e2e = trove::test::e2e;

/// An input line with its event_id (0 for a bad line).
struct input_line {
  std::string text;
  std::uint64_t event_id = 0;
  bool purchase = false;
};

/// Events whose lines differ in spacing, field order and unknown fields (which must survive
/// forwarding byte for byte), with re-sends up to ~3000 lines later and a few bad lines.
std::vector<input_line> make_lines(std::uint64_t seed, int events) {
  std::mt19937_64 rng(seed);
  std::vector<input_line> lines;
  std::vector<std::size_t> sent;
  constexpr std::int64_t start = 1'700'000'000'000;
  for (int i = 0; i < events; ++i) {
    if (!sent.empty() && rng() % 10 == 0) {
      lines.push_back(
          lines[sent[sent.size() - 1 - rng() % std::min<std::size_t>(sent.size(), 3000)]]);
      continue;
    }
    if (rng() % 500 == 0) {
      lines.push_back({"{\"event_id\": " + std::to_string(i + 1) + ", \"ts\": oops}", 0});
      continue;
    }
    const std::uint64_t id = static_cast<std::uint64_t>(i) + 1;
    const std::int64_t ts = start + i * 10 + static_cast<std::int64_t>(rng() % 2000);
    const bool purchase = rng() % 4 == 0;
    const std::string type = purchase ? "purchase" : "view";
    std::string text;
    switch (rng() % 3) {
      case 0:
        text = "{\"event_id\":" + std::to_string(id) + ",\"type\":\"" + type +
               "\",\"ts\":" + std::to_string(ts) + "}";
        break;
      case 1:
        text = "{ \"ts\": " + std::to_string(ts) + ", \"event_id\": " + std::to_string(id) +
               ", \"type\": \"" + type + "\", \"extra\": {\"nested\": [1, 2.5, \"x\"]} }";
        break;
      default:
        text = "{\"type\":\"" + type +
               "\",\"note\":\"caf\\u00e9 \\\"quoted\\\"\",\"event_id\":" + std::to_string(id) +
               ",\"ts\":" + std::to_string(ts) + "}";
        break;
    }
    sent.push_back(lines.size());
    lines.push_back({text, id, purchase});
  }
  return lines;
}

std::string join(const std::vector<input_line>& lines) {
  std::string text;
  for (const auto& line : lines) text += line.text + "\n";
  return text;
}

/// What a forwarding pipeline must write: the first copy of each event_id, in input order (the
/// TTL, 10 minutes, is far longer than any re-send's distance), optionally purchases only.
std::string expected_output(const std::vector<input_line>& lines, bool purchases_only = false) {
  std::set<std::uint64_t> seen;
  std::string out;
  for (const auto& line : lines) {
    if (line.event_id == 0 || !seen.insert(line.event_id).second) continue;
    if (purchases_only && !line.purchase) continue;
    out += line.text + "\n";
  }
  return out;
}

/// Empty when equal; else where the first line differs (outputs of MBs: no full diff printed).
std::string difference(const std::string& got, const std::string& want) {
  if (got == want) return {};
  const std::vector<std::string> a = e2e::split_lines(got);
  const std::vector<std::string> b = e2e::split_lines(want);
  std::size_t line = 0;
  while (line < a.size() && line < b.size() && a[line] == b[line]) ++line;
  return "lines " + std::to_string(a.size()) + " vs " + std::to_string(b.size()) +
         " expected; first difference at line " + std::to_string(line + 1) + ": got '" +
         (line < a.size() ? a[line] : "(end)") + "', expected '" +
         (line < b.size() ? b[line] : "(end)") + "'";
}

std::string config_for(const std::string& input, const std::string& out, const std::string& dead,
                       const std::string& extra = {}) {
  return "source: {type: file, path: \"" + input +
         "\"}\n"
         "schema: {event_id: u64, type: string, ts: timestamp_ms}\n"
         "event_time: ts\n"
         "dedup: {key: [event_id], ttl: 10m}\n"
         "sink: {type: file, path: \"" +
         out + "\"}\n" + "dead_letter: {path: \"" + dead + "\"}\n" + "batch: {max_events: 1000}\n" +
         extra;
}

TEST(E2eForward, ForwardsTheFirstCopyOfEachEventAsReceivedInArrivalOrder) {
  e2e::temp_dir dir;
  const std::vector<input_line> lines = make_lines(1, 40'000);
  e2e::write_file(dir.file("in.jsonl"), join(lines));
  e2e::write_file(dir.file("p.yaml"),
                  config_for(dir.file("in.jsonl"), dir.file("out.jsonl"), dir.file("dead.jsonl")));
  const auto run =
      e2e::trove({"run", "-c", dir.file("p.yaml"), "-q", "--stats-json", dir.file("s.json")});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::string expected = expected_output(lines);
  EXPECT_EQ(difference(e2e::read_file(dir.file("out.jsonl")), expected), "");

  std::size_t bad = 0;
  for (const auto& line : lines) bad += line.event_id == 0;
  const std::size_t accepted = e2e::split_lines(expected).size();
  const e2e::json_row stats = e2e::read_stats(dir.file("s.json"));
  EXPECT_EQ(e2e::as_i64(stats.at("in")), static_cast<std::int64_t>(lines.size()));
  EXPECT_EQ(e2e::as_i64(stats.at("accepted")), static_cast<std::int64_t>(accepted));
  EXPECT_EQ(e2e::as_i64(stats.at("rows_out")), static_cast<std::int64_t>(accepted));
  EXPECT_EQ(e2e::as_i64(stats.at("bad")), static_cast<std::int64_t>(bad));
  EXPECT_EQ(e2e::as_i64(stats.at("duplicate")),
            static_cast<std::int64_t>(lines.size() - accepted - bad));
  EXPECT_EQ(e2e::as_i64(stats.at("late")), 0);
  EXPECT_EQ(e2e::split_lines(e2e::read_file(dir.file("dead.jsonl"))).size(), bad);
}

TEST(E2eForward, TheFilterKeepsOnlyMatchingEvents) {
  e2e::temp_dir dir;
  const std::vector<input_line> lines = make_lines(2, 10'000);
  e2e::write_file(dir.file("in.jsonl"), join(lines));
  e2e::write_file(dir.file("p.yaml"),
                  config_for(dir.file("in.jsonl"), dir.file("out.jsonl"), dir.file("dead.jsonl"),
                             "filter: [{field: type, op: \"==\", value: purchase}]\n"));
  const auto run =
      e2e::trove({"run", "-c", dir.file("p.yaml"), "-q", "--stats-json", dir.file("s.json")});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::string expected = expected_output(lines, true);
  ASSERT_GT(e2e::split_lines(expected).size(), 100u);
  EXPECT_EQ(difference(e2e::read_file(dir.file("out.jsonl")), expected), "");
  const e2e::json_row stats = e2e::read_stats(dir.file("s.json"));
  EXPECT_EQ(e2e::as_i64(stats.at("rows_out")), e2e::as_i64(stats.at("accepted")));
  EXPECT_GT(e2e::as_i64(stats.at("filtered")), 0);
}

TEST(E2eForward, CsvRecordsAreForwardedUnderTheirHeader) {
  e2e::temp_dir dir;
  std::string text = "ts,event_id,type,comment\n";
  std::string expected = text;
  std::set<int> seen;
  std::mt19937_64 rng(4);
  for (int i = 0; i < 3000; ++i) {
    const int id = 1 + static_cast<int>(rng() % 2000);
    const std::string line = std::to_string(1'700'000'000'000 + i) + "," + std::to_string(id) +
                             ",view,\"a, quoted \"\"field\"\"\"";
    text += line + "\n";
    if (seen.insert(id).second) expected += line + "\n";
  }
  e2e::write_file(dir.file("in.csv"), text);
  e2e::write_file(dir.file("p.yaml"),
                  config_for(dir.file("in.csv"), dir.file("out.csv"), dir.file("dead.jsonl")));
  const auto run = e2e::trove({"run", "-c", dir.file("p.yaml"), "-q"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(difference(e2e::read_file(dir.file("out.csv")), expected), "");
}

TEST(E2eForward, GeneratedEventsAreForwardedAsJsonOfTheirFields) {
  e2e::temp_dir dir;
  e2e::write_file(dir.file("p.yaml"),
                  "source: {type: synthetic, events: 20000, keys: 500, duplicate_ratio: 0.1}\n"
                  "schema: {event_id: u64, user_id: u64, type: string, ts: timestamp_ms, "
                  "amount: f64}\n"
                  "event_time: ts\n"
                  "dedup: {key: [event_id], ttl: 1h}\n"
                  "sink: {type: file, path: \"" +
                      dir.file("out.jsonl") + "\"}\n");
  const auto run =
      e2e::trove({"run", "-c", dir.file("p.yaml"), "-q", "--stats-json", dir.file("s.json")});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::vector<e2e::json_row> rows = e2e::read_json_lines(dir.file("out.jsonl"));
  const e2e::json_row stats = e2e::read_stats(dir.file("s.json"));
  ASSERT_EQ(static_cast<std::int64_t>(rows.size()), e2e::as_i64(stats.at("accepted")));
  EXPECT_GT(e2e::as_i64(stats.at("duplicate")), 0);
  std::set<std::int64_t> ids;
  for (const auto& row : rows) {
    for (const char* field : {"event_id", "user_id", "type", "ts", "amount"}) {
      EXPECT_TRUE(row.has(field)) << field;
    }
    EXPECT_TRUE(ids.insert(e2e::as_i64(row.at("event_id"))).second) << "forwarded twice";
  }
}

TEST(E2eForward, KilledAtRandomPointsAndRestartedForwardsEveryRecordOnce) {
  const std::vector<input_line> lines = make_lines(3, 150'000);
  const std::string expected = expected_output(lines);
  std::mt19937_64 rng(6);
  int total_kills = 0;
  int cut_mid_output = 0;  // kills that left part of the output written
  for (int round = 0; round < 3; ++round) {
    e2e::temp_dir dir;
    e2e::write_file(dir.file("in.jsonl"), join(lines));
    e2e::write_file(dir.file("p.yaml"),
                    config_for(dir.file("in.jsonl"), dir.file("out.jsonl"), dir.file("dead.jsonl"),
                               "checkpoint: {dir: \"" + dir.file("state") +
                                   "\", interval: 20ms, retain: 2}\n"));
    // Each kill lands soon after the output grew past what the previous run had left: mid-stream,
    // between or during checkpoints (every 20 ms, batches of 1000 rows).
    const std::string out = dir.file("out.jsonl");
    std::size_t left = 0;
    auto size_of = [&] {
      std::error_code ec;
      const auto bytes = std::filesystem::file_size(out, ec);
      return ec ? std::size_t{0} : static_cast<std::size_t>(bytes);
    };
    auto grew = [&] { return size_of() > left; };
    int kills = 0;
    for (; kills < 12; ++kills) {
      const int code = e2e::run_trove_and_kill({"run", "-c", dir.file("p.yaml"), "-q"},
                                               static_cast<int>(rng() % 40), grew);
      left = size_of();
      if (code == 128 + SIGKILL && left > 0 && left < expected.size()) ++cut_mid_output;
      if (code == 0) break;
      ASSERT_EQ(code, 128 + SIGKILL);
    }
    total_kills += kills;
    const auto last =
        e2e::trove({"run", "-c", dir.file("p.yaml"), "-q", "--stats-json", dir.file("s.json")});
    ASSERT_EQ(last.exit_code, 0) << last.err;
    EXPECT_EQ(difference(e2e::read_file(dir.file("out.jsonl")), expected), "")
        << "round " << round << " after " << kills << " kills";
    const e2e::json_row stats = e2e::read_stats(dir.file("s.json"));
    EXPECT_EQ(e2e::as_i64(stats.at("in")), static_cast<std::int64_t>(lines.size()));
    EXPECT_EQ(e2e::as_i64(stats.at("rows_out")),
              static_cast<std::int64_t>(e2e::split_lines(expected).size()));
  }
  EXPECT_GE(total_kills, 2) << "too few runs were killed mid-stream to test anything";
  EXPECT_GE(cut_mid_output, 2) << "too few kills landed while the output was being written";
}

}  // namespace
