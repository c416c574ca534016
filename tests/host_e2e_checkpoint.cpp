/// @file host_e2e_checkpoint.cpp
/// @brief Checkpoints and recovery, tested by killing the real binary: a file → file job killed
/// with SIGKILL at random points and restarted until it finishes produces byte for byte what an
/// uninterrupted run produces (each (group, window) once, re-sends after a restart still
/// duplicates, cumulative counters); a corrupt newest checkpoint falls back to the previous one;
/// an incompatible configuration, stdin with checkpoints and an unwritable checkpoint.dir are
/// refused with the key named.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "e2e_util.hpp"

namespace {

namespace e2e = trove::test::e2e;
namespace fs = std::filesystem;

std::string config_for(const std::string& dir, const std::string& input, const std::string& out,
                       const std::string& state, const std::string& extra = {}) {
  return "source: {type: file, path: \"" + input +
         "\", format: json}\n"
         "schema: {event_id: u64, user_id: u64, type: string, ts: timestamp_ms, amount: f64}\n"
         "event_time: ts\n"
         "dedup: {key: [event_id], ttl: 10m}\n"
         "window: {type: tumbling, size: 10s, allowed_lateness: 2s}\n"
         "group_by: [user_id, type]\n"
         "aggregates: [count, sum(amount), max(amount)]\n"
         "sink: {type: file, path: \"" +
         out + "\", format: json}\n" + "dead_letter: {path: \"" + dir +
         "/dead.jsonl\"}\n"
         "batch: {max_events: 2000}\n"
         "checkpoint: {dir: \"" +
         state + "\", interval: 20ms, retain: 2}\n" + extra;
}

/// Events with re-sends up to ~30 s later, 2 s disorder and a few bad records.
std::string make_input(std::uint64_t seed, int events) {
  std::mt19937_64 rng(seed);
  std::string text;
  std::vector<std::string> sent;
  constexpr std::int64_t start = 1'700'000'000'000;
  for (int i = 0; i < events; ++i) {
    if (!sent.empty() && rng() % 20 == 0) {  // a re-send of a recent event
      const std::size_t back = std::min<std::size_t>(sent.size(), 3000);
      text += sent[sent.size() - 1 - rng() % back];
      continue;
    }
    if (rng() % 997 == 0) {
      text += "{\"event_id\": broken\n";
      continue;
    }
    const std::int64_t ts = start + i * 10 + static_cast<std::int64_t>(rng() % 2000);
    std::string line = "{\"event_id\":" + std::to_string(i + 1) +
                       ",\"user_id\":" + std::to_string(rng() % 50) + ",\"type\":\"" +
                       (rng() % 3 ? "click" : "view") + "\",\"ts\":" + std::to_string(ts) +
                       ",\"amount\":" + std::to_string(rng() % 1000) + "}\n";
    sent.push_back(line);
    text += line;
  }
  return text;
}

struct job {
  e2e::temp_dir dir;
  std::string input = dir.file("events.jsonl");
  std::string config = dir.file("p.yaml");
  std::string out = dir.file("out.jsonl");
  std::string state = dir.file("state");
  std::string stats = dir.file("stats.json");
  explicit job(const std::string& text, const std::string& extra = {}) {
    e2e::write_file(input, text);
    e2e::write_file(config, config_for(dir.path().string(), input, out, state, extra));
  }
};

TEST(E2eCheckpoint, KilledAtRandomPointsAndRestartedEqualsAnUninterruptedRun) {
  const std::string text = make_input(11, 150'000);
  job reference(text);
  const auto full =
      e2e::trove({"run", "-c", reference.config, "-q", "--stats-json", reference.stats});
  ASSERT_EQ(full.exit_code, 0) << full.err;
  const std::string expected = e2e::read_file(reference.out);
  const std::string expected_dead = e2e::read_file(reference.dir.file("dead.jsonl"));
  ASSERT_GT(e2e::split_lines(expected).size(), 100u);

  std::mt19937_64 rng(5);
  int total_kills = 0;
  for (int round = 0; round < 3; ++round) {
    job j(text);
    int kills = 0;
    for (; kills < 12; ++kills) {
      const int code = e2e::run_trove_and_kill({"run", "-c", j.config, "-q"},
                                               15 + static_cast<int>(rng() % 200));
      if (code == 0) break;  // finished before the kill
      ASSERT_EQ(code, 128 + SIGKILL);
    }
    total_kills += kills;
    const auto last = e2e::trove({"run", "-c", j.config, "-q", "--stats-json", j.stats});
    ASSERT_EQ(last.exit_code, 0) << last.err;
    EXPECT_EQ(e2e::read_file(j.out), expected)
        << "round " << round << " after " << kills << " kills";
    std::string dead = e2e::read_file(j.dir.file("dead.jsonl"));
    for (std::size_t at; (at = dead.find(j.input)) != std::string::npos;) {
      dead.replace(at, j.input.size(), reference.input);
    }
    EXPECT_EQ(dead, expected_dead) << "round " << round;
    const e2e::json_row s = e2e::read_stats(j.stats);
    const e2e::json_row r = e2e::read_stats(reference.stats);
    for (const char* counter : {"in", "accepted", "duplicate", "late", "bad", "rows_out"}) {
      EXPECT_EQ(e2e::as_i64(s.at(counter)), e2e::as_i64(r.at(counter)))
          << counter << ", round " << round;
    }
  }
  EXPECT_GE(total_kills, 3) << "too few runs were killed mid-stream to test anything";
}

/// Three outputs of one dedup pass (an aggregation, a filtered hopping one and a filtered forward
/// of the accepted records), each to its own file.
std::string outputs_config(const std::string& dir, const std::string& input,
                           const std::string& state, int batch_events = 2000) {
  return "source: {type: file, path: \"" + input +
         "\", format: json}\n"
         "schema: {event_id: u64, user_id: u64, type: string, ts: timestamp_ms, amount: f64}\n"
         "event_time: ts\n"
         "dedup: {key: [event_id], ttl: 10m}\n"
         "dead_letter: {path: \"" +
         dir +
         "/dead.jsonl\"}\n"
         "batch: {max_events: " +
         std::to_string(batch_events) +
         "}\n"
         "checkpoint: {dir: \"" +
         state +
         "\", interval: 20ms, retain: 2}\n"
         "outputs:\n"
         "  - name: per_user\n"
         "    window: {type: tumbling, size: 10s, allowed_lateness: 2s}\n"
         "    group_by: [user_id, type]\n"
         "    aggregates: [count, sum(amount), max(amount)]\n"
         "    sink: {type: file, path: \"" +
         dir +
         "/per_user.jsonl\"}\n"
         "  - name: views\n"
         "    filter: [{field: type, op: \"==\", value: view}]\n"
         "    window: {type: hopping, size: 10s, slide: 5s, allowed_lateness: 500ms}\n"
         "    aggregates: [count, max(amount)]\n"
         "    late: dead_letter\n"
         "    sink: {type: file, path: \"" +
         dir +
         "/views.csv\", format: csv}\n"
         "  - name: clean\n"
         "    filter: [{field: amount, op: \">=\", value: 500}]\n"
         "    sink: {type: file, path: \"" +
         dir + "/clean.jsonl\"}\n";
}

TEST(E2eCheckpoint, SeveralOutputsKilledAtRandomPointsAndRestartedEqualAnUninterruptedRun) {
  const std::string text = make_input(12, 120'000);
  e2e::temp_dir reference;
  const std::string input = reference.file("events.jsonl");
  e2e::write_file(input, text);
  e2e::write_file(reference.file("p.yaml"),
                  outputs_config(reference.path().string(), input, reference.file("state")));
  const auto full = e2e::trove(
      {"run", "-c", reference.file("p.yaml"), "-q", "--stats-json", reference.file("s.json")});
  ASSERT_EQ(full.exit_code, 0) << full.err;
  const char* files[] = {"per_user.jsonl", "views.csv", "clean.jsonl", "dead.jsonl"};
  for (const char* f : files) {
    ASSERT_GT(e2e::split_lines(e2e::read_file(reference.file(f))).size(), 20u) << f;
  }
  const std::string reference_stats = e2e::read_file(reference.file("s.json"));

  std::mt19937_64 rng(6);
  int total_kills = 0;
  for (int round = 0; round < 2; ++round) {
    e2e::temp_dir dir;
    e2e::write_file(dir.file("p.yaml"),
                    outputs_config(dir.path().string(), input, dir.file("state")));
    int kills = 0;
    for (; kills < 12; ++kills) {
      const int code = e2e::run_trove_and_kill({"run", "-c", dir.file("p.yaml"), "-q"},
                                               15 + static_cast<int>(rng() % 200));
      if (code == 0) break;
      ASSERT_EQ(code, 128 + SIGKILL);
    }
    total_kills += kills;
    // Not quiet: a checkpoint that cannot be used is a warning.
    const auto last =
        e2e::trove({"run", "-c", dir.file("p.yaml"), "--stats-json", dir.file("s.json")});
    ASSERT_EQ(last.exit_code, 0) << last.err;
    // The newest checkpoint loads (Bug, review: one holding only the first output's groups
    // changed since the previous one was refused, and an older one or a fresh start was used).
    EXPECT_EQ(last.err.find("cannot be used"), std::string::npos) << last.err;
    for (const char* f : files) {
      EXPECT_EQ(e2e::read_file(dir.file(f)), e2e::read_file(reference.file(f)))
          << f << ", round " << round << " after " << kills << " kills";
    }
    // Every counter, per output too, continues across the restarts (the times differ).
    const e2e::json_row s = e2e::read_stats(dir.file("s.json"));
    const e2e::json_row r = e2e::read_stats(reference.file("s.json"));
    for (const char* counter :
         {"in", "accepted", "duplicate", "late", "filtered", "bad", "rows_out", "outputs"}) {
      EXPECT_EQ(s.at(counter), r.at(counter)) << counter << ", round " << round;
    }
  }
  EXPECT_GE(total_kills, 2) << "too few runs were killed mid-stream to test anything";
}

// Bug (review): with outputs, a checkpoint holding only the first output's groups changed since
// the previous one recorded the shared 1 ms window and every output's open groups, so it could
// never be loaded: a restart fell back to an older checkpoint (or started fresh).
TEST(E2eCheckpoint, SeveralOutputsRestoreTheNewestCheckpointOfAChainOfUpdates) {
  // Many users: thousands of open groups, most not updated between two cuts.
  const auto generated = e2e::trove({"gen", "-n", "1000000", "--span", "20m", "--seed", "3"});
  ASSERT_EQ(generated.exit_code, 0) << generated.err;
  e2e::temp_dir dir;
  const std::string input = dir.file("events.jsonl");
  e2e::write_file(input, generated.out);
  // Small batches: few groups change between two cuts, so most cuts write only those.
  e2e::write_file(dir.file("p.yaml"),
                  outputs_config(dir.path().string(), input, dir.file("state"), 300));
  auto ids = [&](std::string_view prefix) {
    std::vector<std::uint64_t> out;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir.file("state"), ec)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind(prefix, 0) == 0 && name.find(".tmp") == std::string::npos) {
        out.push_back(std::stoull(name.substr(prefix.size())));
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  // Killed once checkpoints continue a chain (two group segments live, past the first cuts,
  // which write every group while the table fills).
  const int code = e2e::run_trove_and_kill({"run", "-c", dir.file("p.yaml"), "-q"}, 0, [&] {
    const std::vector<std::uint64_t> m = ids("checkpoint-");
    return !m.empty() && m.back() >= 12 && ids("groups-").size() >= 2;
  });
  ASSERT_EQ(code, 128 + SIGKILL) << "the run ended before its checkpoints formed a chain";
  const std::vector<std::uint64_t> manifests = ids("checkpoint-");
  ASSERT_FALSE(manifests.empty());
  const auto last =
      e2e::trove({"run", "-c", dir.file("p.yaml"), "--stats-json", dir.file("s.json")});
  ASSERT_EQ(last.exit_code, 0) << last.err;
  EXPECT_EQ(last.err.find("cannot be used"), std::string::npos) << last.err;
  const e2e::json_row stats = e2e::read_stats(dir.file("s.json"));
  // The newest durable one (a kill may land between a manifest's rename and the next cut).
  EXPECT_GE(e2e::as_i64(stats.at("restored_checkpoint")),
            static_cast<std::int64_t>(manifests.back()) - 1);
}

// Bug (CI, sanitizer build): a run killed after its dead letters reached the file but before
// its first checkpoint was durable left them there; the restart, starting fresh, appended them
// again. Long bad lines at the start overflow the dead-letter buffer, so they are on disk long
// before the (hourly) first checkpoint.
TEST(E2eCheckpoint, DeadLettersOfARunKilledBeforeItsFirstCheckpointAreWrittenOnce) {
  std::string text;
  constexpr int bad_lines = 24;
  for (int i = 0; i < bad_lines; ++i) text += "{\"event_id\": " + std::string(70'000, 'x') + "\n";
  text += make_input(16, 400'000);
  job j(text);
  std::string config = e2e::read_file(j.config);
  config.replace(config.find("interval: 20ms"), 14, "interval: 1h");
  e2e::write_file(j.config, config);
  const std::string dead_path = j.dir.file("dead.jsonl");
  const int code = e2e::run_trove_and_kill({"run", "-c", j.config, "-q"}, 0, [&] {
    return fs::exists(dead_path) && fs::file_size(dead_path) > 0;
  });
  if (code == 0) GTEST_SKIP() << "the run finished before it could be killed";
  ASSERT_EQ(code, 128 + SIGKILL);
  const auto last = e2e::trove({"run", "-c", j.config, "-q", "--stats-json", j.stats});
  ASSERT_EQ(last.exit_code, 0) << last.err;
  const auto lines = e2e::split_lines(e2e::read_file(dead_path));
  const e2e::json_row s = e2e::read_stats(j.stats);
  EXPECT_EQ(static_cast<std::int64_t>(lines.size()), e2e::as_i64(s.at("bad")))
      << "every bad record is dead-lettered once";
  EXPECT_GE(lines.size(), static_cast<std::size_t>(bad_lines));
}

TEST(E2eCheckpoint, ACorruptNewestCheckpointFallsBackToThePreviousOne) {
  const std::string text = make_input(12, 30'000);
  job reference(text);
  ASSERT_EQ(e2e::trove({"run", "-c", reference.config, "-q"}).exit_code, 0);
  job j(text);
  // SIGINT part-way: the run drains and writes a final checkpoint (open windows kept).
  const auto stopped = e2e::trove({"run", "-c", j.config, "-q"}, std::nullopt, 150);
  ASSERT_EQ(stopped.exit_code, 0) << stopped.err;
  std::vector<fs::path> manifests;
  for (const auto& entry : fs::directory_iterator(j.state)) {
    if (entry.path().extension() == ".ckpt") manifests.push_back(entry.path());
  }
  std::sort(manifests.begin(), manifests.end());
  if (manifests.size() < 2) GTEST_SKIP() << "the run finished before a second checkpoint";
  {  // flip a byte in the middle of the newest one
    std::string bytes = e2e::read_file(manifests.back());
    bytes[bytes.size() / 2] ^= 0x5A;
    e2e::write_file(manifests.back(), bytes);
  }
  // `trove checkpoint list` shows the corrupt one as INVALID, the older ones with their position.
  const auto listing = e2e::trove({"checkpoint", "list", j.state});
  EXPECT_EQ(listing.exit_code, 0) << listing.err;
  EXPECT_NE(listing.out.find("INVALID"), std::string::npos) << listing.out;
  EXPECT_NE(listing.out.find(manifests.back().string()), std::string::npos) << listing.out;
  EXPECT_NE(listing.out.find("line "), std::string::npos) << listing.out;
  const auto resumed = e2e::trove({"run", "-c", j.config});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find(manifests.back().filename().string()), std::string::npos)
      << "the warning names the corrupt file: " << resumed.err;
  EXPECT_EQ(e2e::read_file(j.out), e2e::read_file(reference.out));
}

TEST(E2eCheckpoint, ATruncatedCheckpointIsNeverLoaded) {
  const std::string text = make_input(13, 20'000);
  job reference(text);
  ASSERT_EQ(e2e::trove({"run", "-c", reference.config, "-q"}).exit_code, 0);
  job j(text);
  const auto stopped = e2e::trove({"run", "-c", j.config, "-q"}, std::nullopt, 100);
  ASSERT_EQ(stopped.exit_code, 0) << stopped.err;
  for (const auto& entry : fs::directory_iterator(j.state)) {  // every file torn
    const std::string bytes = e2e::read_file(entry.path());
    e2e::write_file(entry.path(), bytes.substr(0, bytes.size() / 2));
  }
  // Nothing loadable: the run starts fresh (and rewrites the sink from the beginning).
  const auto resumed = e2e::trove({"run", "-c", j.config});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("cannot be used"), std::string::npos) << resumed.err;
  EXPECT_EQ(e2e::read_file(j.out), e2e::read_file(reference.out));
}

/// The job's config with sketches instead of the plain aggregates: per (type, 10 s) a few hundred
/// distinct event ids and amounts, so every group's HyperLogLog and DDSketch are past their
/// inline entries (in the sketch arena) when a checkpoint cuts.
void use_sketches(const job& j) {
  std::string text = e2e::read_file(j.config);
  const std::string plain =
      "group_by: [user_id, type]\naggregates: [count, sum(amount), max(amount)]\n";
  const std::size_t at = text.find(plain);
  ASSERT_NE(at, std::string::npos);
  text.replace(at, plain.size(),
               "group_by: [type]\naggregates: [count, approx_count_distinct(event_id), "
               "approx_count_distinct(user_id), p50(amount), p99(amount)]\n");
  e2e::write_file(j.config, text);
}

TEST(E2eCheckpoint, SketchesKilledAtRandomPointsAndRestartedEqualAnUninterruptedRun) {
  const std::string text = make_input(23, 200'000);
  job reference(text);
  use_sketches(reference);
  const auto full = e2e::trove({"run", "-c", reference.config, "-q"});
  ASSERT_EQ(full.exit_code, 0) << full.err;
  const std::string expected = e2e::read_file(reference.out);
  ASSERT_GT(e2e::split_lines(expected).size(), 100u);
  ASSERT_NE(expected.find("approx_count_distinct_event_id"), std::string::npos);
  std::mt19937_64 rng(8);
  int total_kills = 0;
  for (int round = 0; round < 2; ++round) {
    job j(text);
    use_sketches(j);
    int kills = 0;
    for (; kills < 10; ++kills) {
      const int code = e2e::run_trove_and_kill({"run", "-c", j.config, "-q"},
                                               15 + static_cast<int>(rng() % 150));
      if (code == 0) break;
      ASSERT_EQ(code, 128 + SIGKILL);
    }
    total_kills += kills;
    const auto last = e2e::trove({"run", "-c", j.config, "-q"});
    ASSERT_EQ(last.exit_code, 0) << last.err;
    EXPECT_EQ(e2e::read_file(j.out), expected)
        << "round " << round << " after " << kills << " kills";
  }
  EXPECT_GE(total_kills, 2) << "too few runs were killed mid-stream to test anything";
  // Another precision or accuracy would misread the saved sketches: refused, naming the key.
  for (const char* key : {"sketch.hll_precision=12", "sketch.quantile_accuracy=0.02"}) {
    const auto changed = e2e::trove({"run", "-c", reference.config, "--set", key});
    EXPECT_EQ(changed.exit_code, 2) << changed.err;
    const std::string name = std::string(key).substr(0, std::string(key).find('='));
    EXPECT_NE(changed.err.find(name), std::string::npos) << changed.err;
  }
}

TEST(E2eCheckpoint, AnIncompatibleConfigIsRefusedNamingTheKey) {
  job j(make_input(14, 5'000));
  ASSERT_EQ(e2e::trove({"run", "-c", j.config, "-q"}).exit_code, 0);
  const auto changed = e2e::trove({"run", "-c", j.config, "--set", "group_by=[user_id]"});
  EXPECT_EQ(changed.exit_code, 2) << changed.err;
  EXPECT_NE(changed.err.find("group_by"), std::string::npos) << changed.err;
  EXPECT_NE(changed.err.find("empty directory"), std::string::npos) << changed.err;
  const auto window = e2e::trove({"run", "-c", j.config, "--set", "window.size=20s"});
  EXPECT_EQ(window.exit_code, 2) << window.err;
  EXPECT_NE(window.err.find("window.size"), std::string::npos) << window.err;
  // Harmless changes are accepted.
  const auto harmless = e2e::trove({"run", "-c", j.config, "-q", "--set", "batch.max_events=500",
                                    "--set", "window.allowed_lateness=3s"});
  EXPECT_EQ(harmless.exit_code, 0) << harmless.err;
}

TEST(E2eCheckpoint, StdinWithCheckpointsIsAConfigError) {
  e2e::temp_dir dir;
  e2e::write_file(dir.file("p.yaml"),
                  "source: {type: stdin, format: json}\n"
                  "schema: {ts: timestamp_ms}\nevent_time: ts\n"
                  "window: {type: tumbling, size: 1m}\n"
                  "checkpoint: {dir: \"" +
                      dir.file("state") + "\"}\n");
  const auto run = e2e::trove({"validate", "-c", dir.file("p.yaml")});
  EXPECT_EQ(run.exit_code, 2) << run.err;
  EXPECT_NE((run.err + run.out).find("checkpoint"), std::string::npos) << run.err;
  EXPECT_NE((run.err + run.out).find("stdin"), std::string::npos) << run.err;
}

TEST(E2eCheckpoint, AnUnwritableCheckpointDirStopsTheRunNamingIt) {
  if (::geteuid() == 0) {
    // root writes anywhere: a path under a regular file cannot be a directory for anyone.
  }
  job j(make_input(15, 2'000));
  e2e::write_file(j.dir.file("plain"), "x");
  const auto run = e2e::trove(
      {"run", "-c", j.config, "--set", "checkpoint.dir=" + j.dir.file("plain") + "/state"});
  EXPECT_EQ(run.exit_code, 1) << run.err;
  EXPECT_NE(run.err.find("checkpoint.dir"), std::string::npos) << run.err;
}

}  // namespace
