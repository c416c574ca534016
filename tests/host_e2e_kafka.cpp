/// @file host_e2e_kafka.cpp
/// @brief `trove run` from Kafka to Kafka against librdkafka's mock cluster (started in this
/// test process; trove runs as a child process and connects over loopback), compared with a
/// reference written here: dedup on event_id (re-sends are exact copies, so which copy wins does
/// not matter), tumbling windows, count/sum/min/max per (user_id, type, window). Inputs keep
/// every record within allowed_lateness of its partition's maximum, so consumption order across
/// partitions cannot make a record late, and amounts are multiples of 0.25 so float sums are
/// exact in any order. Faults (broker down, request errors, a rebalance) are injected mid-run.

#include <gtest/gtest.h>

#include <simdjson.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <future>
#include <iostream>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "e2e_util.hpp"
#include "io/dev_broker.hpp"
#include "io/kafka_consumer.hpp"
#include "io/kafka_producer.hpp"

namespace {

namespace e2e = trove::test::e2e;
using trove::io::dev_broker;

constexpr std::int64_t base_time = 1'700'000'000'000 + 777;
constexpr std::int64_t window_ms = 60'000;

struct event {
  std::uint64_t event_id;
  std::uint64_t user;
  std::string type;
  std::int64_t ts;
  double amount;
};

/// In event-time order, with re-sends of one of the last 20 originals (10%).
std::vector<event> make_events(std::size_t n, std::uint64_t users, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const std::vector<std::string> types = {"click", "view", "purchase"};
  std::vector<event> out;
  std::vector<std::size_t> originals;
  for (std::size_t idx = 0; idx < n; ++idx) {
    if (!originals.empty() && rng() % 10 == 0) {
      out.push_back(out[originals[originals.size() - 1 -
                                  rng() % std::min<std::size_t>(20, originals.size())]]);
      continue;
    }
    originals.push_back(out.size());
    out.push_back({1000 + idx, rng() % users, types[rng() % types.size()],
                   base_time + static_cast<std::int64_t>(idx) * 40,
                   static_cast<double>(rng() % 4000) * 0.25});
  }
  return out;
}

std::string to_json(const event& e) {
  return "{\"event_id\":" + std::to_string(e.event_id) + ",\"user_id\":" + std::to_string(e.user) +
         ",\"type\":\"" + e.type + "\",\"ts\":" + std::to_string(e.ts) +
         ",\"amount\":" + std::to_string(e.amount) + "}";
}

/// One sentinel event per partition, far in the future: it closes every real window (its own
/// group, user 999999 "sentinel", stays open and is not in the reference).
void produce_sentinels(trove::io::kafka_producer& producer, int partitions, std::int64_t last_ts) {
  for (int p = 0; p < partitions; ++p) {
    const event sentinel{900'000'000u + static_cast<std::uint64_t>(p), 999'999, "sentinel",
                         last_ts + 10 * window_ms, 0.0};
    producer.produce({}, to_json(sentinel), p);
  }
}

using group_key = std::tuple<std::uint64_t, std::string, std::int64_t>;  // user, type, start
struct aggregate {
  std::uint64_t count = 0;
  double sum = 0;
  double min = INFINITY;
  double max = -INFINITY;
};

std::map<group_key, aggregate> reference(const std::vector<event>& events) {
  std::map<group_key, aggregate> out;
  std::set<std::uint64_t> seen;
  for (const auto& e : events) {
    if (!seen.insert(e.event_id).second) continue;
    std::int64_t start = e.ts - (e.ts % window_ms);
    auto& a = out[{e.user, e.type, start}];
    ++a.count;
    a.sum += e.amount;
    a.min = std::min(a.min, e.amount);
    a.max = std::max(a.max, e.amount);
  }
  return out;
}

/// Produces events keyed by user_id (so the topic is partitioned by user).
void produce(const dev_broker& broker, const std::string& topic, const std::vector<event>& events) {
  trove::io::kafka_producer producer({.brokers = broker.bootstrap_servers(), .topic = topic});
  for (const auto& e : events) producer.produce(std::to_string(e.user), to_json(e));
  producer.flush();
}

struct message {
  std::string key;
  std::string value;
};

/// Every message of a topic (a fresh group, from the earliest offsets to the end).
std::vector<message> consume_all(const dev_broker& broker, const std::string& topic) {
  trove::io::kafka_consumer_options o;
  o.brokers = broker.bootstrap_servers();
  o.topics = {topic};
  o.group_id = "reader-" + topic;
  o.exit_at_end = true;
  o.properties = {{"session.timeout.ms", "6000"}, {"heartbeat.interval.ms", "500"}};
  trove::io::kafka_consumer consumer(o);
  std::vector<message> out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!consumer.at_end() && std::chrono::steady_clock::now() < deadline) {
    consumer.poll(1000, 100, [&](const trove::io::kafka_record& r) {
      out.push_back({std::string(r.key), std::string(r.payload)});
    });
  }
  EXPECT_TRUE(consumer.at_end()) << "could not read topic " << topic << " to its end";
  return out;
}

/// Calls f(key, aggregate, text) for every output row (a JSON object).
template <class F>
void for_each_row(const std::vector<std::string>& rows, F&& f) {
  simdjson::dom::parser parser;
  for (const auto& text : rows) {
    simdjson::dom::element row;
    if (parser.parse(text).get(row)) {
      ADD_FAILURE() << "not JSON: " << text;
      continue;
    }
    const group_key key{std::uint64_t(row["user_id"]), std::string(std::string_view(row["type"])),
                        std::int64_t(row["window_start"])};
    EXPECT_EQ(std::int64_t(row["window_end"]), std::get<2>(key) + window_ms) << text;
    aggregate a;
    a.count = std::uint64_t(row["count"]);
    a.sum = double(row["sum_amount"]);
    a.min = double(row["min_amount"]);
    a.max = double(row["max_amount"]);
    f(key, a, text);
  }
}

/// Output rows as aggregates by group; a duplicated group is a failure.
std::map<group_key, aggregate> parse_rows(const std::vector<std::string>& rows) {
  std::map<group_key, aggregate> out;
  for_each_row(rows, [&](const group_key& key, const aggregate& a, const std::string& text) {
    EXPECT_TRUE(out.emplace(key, a).second) << "group emitted twice: " << text;
  });
  return out;
}

void expect_matches(const std::map<group_key, aggregate>& got,
                    const std::map<group_key, aggregate>& want) {
  EXPECT_EQ(got.size(), want.size());
  std::size_t shown = 0;
  for (const auto& [key, a] : want) {
    const auto it = got.find(key);
    if (it == got.end()) {
      if (shown++ < 5)
        ADD_FAILURE() << "missing group user " << std::get<0>(key) << " " << std::get<1>(key)
                      << " window " << std::get<2>(key);
      continue;
    }
    if (it->second.count != a.count || it->second.sum != a.sum || it->second.min != a.min ||
        it->second.max != a.max) {
      if (shown++ < 5) {
        ADD_FAILURE() << "group user " << std::get<0>(key) << " " << std::get<1>(key) << " window "
                      << std::get<2>(key) << ": count " << it->second.count << " vs " << a.count
                      << ", sum " << it->second.sum << " vs " << a.sum;
      }
    }
  }
}

std::string config_text(const std::string& brokers, const std::string& group,
                        const std::string& sink, const std::string& extra_source = "") {
  return "source: {type: kafka, brokers: \"" + brokers +
         "\", topics: [events], group_id: " + group +
         ", exit_at_end: true, properties: {session.timeout.ms: \"6000\", "
         "heartbeat.interval.ms: \"500\"" +
         extra_source +
         "}}\n"
         "schema: {event_id: u64, user_id: u64, type: string, ts: timestamp_ms, amount: f64}\n"
         "event_time: ts\n"
         "dedup: {key: [event_id], ttl: 1h}\n"
         "window: {type: tumbling, size: 1m, allowed_lateness: 5s}\n"
         "group_by: [user_id, type]\n"
         "aggregates: [count, sum(amount), min(amount), max(amount)]\n"
         "batch: {max_events: 2000}\n" +
         sink + "\n";
}

void expect_identity(const e2e::json_row& stats, std::uint64_t in) {
  const auto get = [&](const char* name) { return e2e::as_i64(stats.at(name)); };
  EXPECT_EQ(get("in"), static_cast<std::int64_t>(in));
  EXPECT_EQ(get("in"),
            get("accepted") + get("duplicate") + get("late") + get("filtered") + get("bad"));
}

std::vector<std::string> values(const std::vector<message>& messages) {
  std::vector<std::string> out;
  for (const auto& m : messages) out.push_back(m.value);
  return out;
}

TEST(E2eKafka, KafkaToKafkaMatchesReference) {
  dev_broker broker(1, {{"events", 4}, {"results", 3}});
  const auto events = make_events(6000, 60, 1);
  produce(broker, "events", events);
  e2e::temp_dir dir;
  e2e::write_file(dir.file("k.yaml"), config_text(broker.bootstrap_servers(), "g-ref",
                                                  "sink: {type: kafka, topic: results}"));
  const auto r =
      e2e::trove({"run", "-c", dir.file("k.yaml"), "-q", "--stats-json", dir.file("stats.json")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto stats = e2e::read_stats(dir.file("stats.json"));
  expect_identity(stats, events.size());
  EXPECT_EQ(e2e::as_i64(stats.at("late")), 0);
  const auto messages = consume_all(broker, "results");
  EXPECT_EQ(static_cast<std::int64_t>(messages.size()), e2e::as_i64(stats.at("rows_out")));
  expect_matches(parse_rows(values(messages)), reference(events));
}

TEST(E2eKafka, MessageKeysAreTheGroupKeyAndCsvValuesHaveNoHeader) {
  dev_broker broker(1, {{"events", 2}, {"results", 2}});
  const auto events = make_events(500, 5, 2);
  produce(broker, "events", events);
  e2e::temp_dir dir;
  e2e::write_file(dir.file("k.yaml"),
                  config_text(broker.bootstrap_servers(), "g-keys",
                              "sink: {type: kafka, topic: results, format: csv}"));
  const auto r = e2e::trove({"run", "-c", dir.file("k.yaml"), "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // read keys too
  trove::io::kafka_consumer_options o;
  o.brokers = broker.bootstrap_servers();
  o.topics = {"results"};
  o.group_id = "reader-keys";
  o.exit_at_end = true;
  trove::io::kafka_consumer consumer(o);
  std::size_t rows = 0;
  const auto ref = reference(events);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!consumer.at_end() && std::chrono::steady_clock::now() < deadline) {
    consumer.poll(1000, 100, [&](const trove::io::kafka_record& rec) {
      ++rows;
      const auto fields = e2e::parse_csv_line(rec.payload);
      ASSERT_EQ(fields.size(), 8u) << rec.payload;
      EXPECT_NE(fields[0].text, "user_id") << "a CSV message carries no header";
      // the key is the group-by columns, encoded like the value
      EXPECT_EQ(rec.key, fields[0].text + "," + fields[1].text) << rec.payload;
    });
  }
  EXPECT_EQ(rows, ref.size());
}

/// The forwarding config of config_text(): its window, group_by and aggregates removed.
std::string forwarding_config(const std::string& brokers, const std::string& group,
                              const std::string& sink) {
  std::string config = config_text(brokers, group, sink);
  for (const std::string line :
       {"window: {type: tumbling, size: 1m, allowed_lateness: 5s}\n", "group_by: [user_id, type]\n",
        "aggregates: [count, sum(amount), min(amount), max(amount)]\n"}) {
    const auto at = config.find(line);
    EXPECT_NE(at, std::string::npos) << line;
    if (at != std::string::npos) config.erase(at, line.size());
  }
  return config;
}

TEST(E2eKafka, ForwardingKeepsEachFirstCopyItsKeyAndItsPartitionOrder) {
  // No window: the accepted events themselves go to the sink, each message as received, with its
  // key (user_id here, so the topic stays partitioned by user), the first copy of each event_id.
  dev_broker broker(1, {{"events", 4}, {"clean", 4}});
  const auto events = make_events(5000, 40, 9);
  produce(broker, "events", events);
  e2e::temp_dir dir;
  e2e::write_file(dir.file("k.yaml"), forwarding_config(broker.bootstrap_servers(), "g-forward",
                                                        "sink: {type: kafka, topic: clean}"));
  const auto r =
      e2e::trove({"run", "-c", dir.file("k.yaml"), "-q", "--stats-json", dir.file("stats.json")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Reference: per user (one input partition each), the first copies in production order.
  std::set<std::uint64_t> seen;
  std::map<std::string, std::vector<std::string>> expected;
  std::size_t accepted = 0;
  for (const auto& e : events) {
    if (!seen.insert(e.event_id).second) continue;
    expected[std::to_string(e.user)].push_back(to_json(e));
    ++accepted;
  }
  std::map<std::string, std::vector<std::string>> got;
  const std::vector<message> messages = consume_all(broker, "clean");
  for (const message& m : messages) got[m.key].push_back(m.value);
  EXPECT_EQ(messages.size(), accepted);
  EXPECT_EQ(got, expected);
  const auto stats = e2e::read_stats(dir.file("stats.json"));
  expect_identity(stats, events.size());
  EXPECT_EQ(e2e::as_i64(stats.at("rows_out")), static_cast<std::int64_t>(accepted));
}

TEST(E2eKafka, ForwardedEventsAreRoutedToTheTopicTheirTypeNames) {
  // Types "view" and "purchase" name their topics; "a/b" is rewritten by the rule (a_b), and so
  // counted; every event lands in exactly one topic, the first copy only.
  dev_broker broker(1, {{"events", 3}, {"clean.view", 1}, {"clean.purchase", 2}, {"clean.a_b", 1}});
  auto events = make_events(3000, 30, 12);
  for (auto& e : events) {
    if (e.type == "click") e.type = "a/b";
  }
  produce(broker, "events", events);
  e2e::temp_dir dir;
  e2e::write_file(dir.file("k.yaml"),
                  forwarding_config(broker.bootstrap_servers(), "g-route",
                                    "sink: {type: kafka, topic: \"clean.{type}\"}"));
  const auto r =
      e2e::trove({"run", "-c", dir.file("k.yaml"), "-q", "--stats-json", dir.file("stats.json")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::set<std::uint64_t> seen;
  std::map<std::string, std::multiset<std::string>> expected;
  std::size_t odd = 0;
  for (const auto& e : events) {
    if (!seen.insert(e.event_id).second) continue;
    const std::string topic = e.type == "a/b" ? "clean.a_b" : "clean." + e.type;
    odd += e.type == "a/b";
    expected[topic].insert(to_json(e));
  }
  ASSERT_GT(odd, 0u);
  std::map<std::string, std::multiset<std::string>> got;
  for (const char* topic : {"clean.view", "clean.purchase", "clean.a_b"}) {
    for (const message& m : consume_all(broker, topic)) got[topic].insert(m.value);
  }
  EXPECT_EQ(got, expected);
  const auto stats = e2e::read_stats(dir.file("stats.json"));
  EXPECT_EQ(e2e::as_i64(stats.at("routes_rewritten")), static_cast<std::int64_t>(odd));
  EXPECT_EQ(e2e::as_i64(stats.at("rows_out")), static_cast<std::int64_t>(seen.size()));
}

TEST(E2eKafka, ResultRowsAreRoutedByAGroupByFieldAndTooManyTopicsStopTheRun) {
  dev_broker broker(1, {{"events", 2},
                        {"per.click", 1},
                        {"per.view", 1},
                        {"per.purchase", 1},
                        {"cap.click", 1},
                        {"cap.view", 1},
                        {"cap.purchase", 1}});
  const auto events = make_events(3000, 20, 13);
  produce(broker, "events", events);
  e2e::temp_dir dir;
  e2e::write_file(dir.file("k.yaml"), config_text(broker.bootstrap_servers(), "g-route-agg",
                                                  "sink: {type: kafka, topic: \"per.{type}\"}"));
  const auto r = e2e::trove({"run", "-c", dir.file("k.yaml"), "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> all;
  for (const char* type : {"click", "view", "purchase"}) {
    const std::vector<message> rows = consume_all(broker, std::string("per.") + type);
    EXPECT_FALSE(rows.empty()) << type;
    for (const message& m : rows) {
      EXPECT_NE(m.value.find(std::string("\"type\":\"") + type + "\""), std::string::npos)
          << m.value << " in per." << type;
      all.push_back(m.value);
    }
  }
  expect_matches(parse_rows(all), reference(events));
  // Three types, two topics allowed: the run stops naming the key, never drops a row silently.
  e2e::write_file(dir.file("k2.yaml"),
                  config_text(broker.bootstrap_servers(), "g-route-cap",
                              "sink: {type: kafka, topic: \"cap.{type}\", max_topics: 2}"));
  const auto capped = e2e::trove({"run", "-c", dir.file("k2.yaml"), "-q"});
  EXPECT_EQ(capped.exit_code, 1) << capped.err;
  EXPECT_NE(capped.err.find("sink.max_topics"), std::string::npos) << capped.err;
}

// The contract of several outputs, Kafka → Kafka: one consumer, one dedup pass, an aggregation
// into one topic, the accepted records routed by type into others, and a file output of the
// purchases' aggregation; each output exact, the records once each.
TEST(E2eKafka, SeveralOutputsShareOneDedupPassAndEachIsExact) {
  dev_broker broker(1, {{"events", 3},
                        {"per_user", 2},
                        {"clean.view", 1},
                        {"clean.purchase", 1},
                        {"clean.click", 1}});
  const auto events = make_events(3000, 25, 21);
  produce(broker, "events", events);
  e2e::temp_dir dir;
  const std::string yaml =
      "source: {type: kafka, brokers: \"" + broker.bootstrap_servers() +
      "\", topics: [events], group_id: g-outputs, exit_at_end: true, properties: "
      "{session.timeout.ms: \"6000\", heartbeat.interval.ms: \"500\"}}\n"
      "schema: {event_id: u64, user_id: u64, type: string, ts: timestamp_ms, amount: f64}\n"
      "event_time: ts\n"
      "dedup: {key: [event_id], ttl: 1h}\n"
      "batch: {max_events: 2000}\n"
      "outputs:\n"
      "  - name: per_user\n"
      "    window: {type: tumbling, size: 1m, allowed_lateness: 5s}\n"
      "    group_by: [user_id, type]\n"
      "    aggregates: [count, sum(amount), min(amount), max(amount)]\n"
      "    sink: {type: kafka, topic: per_user}\n"
      "  - name: purchases\n"
      "    filter: [{field: type, op: \"==\", value: purchase}]\n"
      "    window: {type: tumbling, size: 1m, allowed_lateness: 5s}\n"
      "    group_by: [user_id, type]\n"
      "    aggregates: [count, sum(amount), min(amount), max(amount)]\n"
      "    sink: {type: file, path: \"" +
      dir.file("purchases.jsonl") +
      "\"}\n"
      "  - name: clean\n"
      "    sink: {type: kafka, topic: \"clean.{type}\"}\n";
  e2e::write_file(dir.file("k.yaml"), yaml);
  const auto r =
      e2e::trove({"run", "-c", dir.file("k.yaml"), "-q", "--stats-json", dir.file("stats.json")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_matches(parse_rows(values(consume_all(broker, "per_user"))), reference(events));
  std::vector<event> purchases;
  for (const auto& e : events) {
    if (e.type == "purchase") purchases.push_back(e);
  }
  ASSERT_FALSE(purchases.empty());
  std::vector<std::string> lines;
  for (const auto& line : e2e::split_lines(e2e::read_file(dir.file("purchases.jsonl")))) {
    if (!line.empty()) lines.push_back(line);
  }
  expect_matches(parse_rows(lines), reference(purchases));
  std::set<std::uint64_t> seen;
  std::map<std::string, std::multiset<std::string>> expected;
  for (const auto& e : events) {
    if (seen.insert(e.event_id).second) expected["clean." + e.type].insert(to_json(e));
  }
  std::map<std::string, std::multiset<std::string>> got;
  for (const char* topic : {"clean.view", "clean.purchase", "clean.click"}) {
    for (const message& m : consume_all(broker, topic)) got[topic].insert(m.value);
  }
  EXPECT_EQ(got, expected);
  const auto stats = e2e::read_stats(dir.file("stats.json"));
  expect_identity(stats, events.size());
  EXPECT_EQ(e2e::as_i64(stats.at("accepted")), static_cast<std::int64_t>(seen.size()));
}

/// A child trove process that the test stops with a signal.
class child {
 public:
  child(const std::vector<std::string>& args, const e2e::temp_dir& dir,
        const std::string& name = "child")
      : err_(dir.file(name + ".err")) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, dir.file(name + ".out").c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<std::string> all = {TROVE_BINARY};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& arg : all) argv.push_back(arg.data());
    argv.push_back(nullptr);
    EXPECT_EQ(posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
  }
  /// Sends SIGTERM and waits (SIGKILL after 60 s); returns the exit code.
  int stop() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    for (int waited_ms = 0; ::waitpid(pid_, &status, WNOHANG) == 0; waited_ms += 10) {
      if (waited_ms > 60'000) {
        ADD_FAILURE() << "trove did not stop within 60 s of SIGTERM";
        ::kill(pid_, SIGKILL);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  [[nodiscard]] std::string err() const { return e2e::read_file(err_); }
  /// Sends a signal (SIGKILL, SIGSTOP, SIGCONT) without waiting.
  void signal(int sig) const { ::kill(pid_, sig); }
  /// Waits for the process to exit by itself (SIGKILL after `limit_s`); returns the exit code.
  int wait(int limit_s = 120) {
    int status = 0;
    for (int waited_ms = 0; ::waitpid(pid_, &status, WNOHANG) == 0; waited_ms += 10) {
      if (waited_ms > limit_s * 1000) {
        ADD_FAILURE() << "trove did not finish within " << limit_s << " s";
        ::kill(pid_, SIGKILL);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  std::string err_;
  pid_t pid_ = 0;
};

/// Runs trove on a topic that is being written while `inject` disturbs the cluster (after trove
/// joined the group, ~3 s in): events are produced at ~2500/s for 8 s, then one sentinel per
/// partition far in the future closes every real window. Once the results topic holds every
/// reference group, trove gets SIGTERM. The results must equal the reference, the accounting
/// identity must hold, and nothing may be late.
void run_with_faults(const std::string& group, const std::function<void(dev_broker&)>& inject) {
  constexpr int partitions = 4;
  dev_broker broker(1, {{"events", partitions}, {"results", 2}});
  const auto events = make_events(20000, 100, 4);
  const auto ref = reference(events);
  e2e::temp_dir dir;
  e2e::write_file(dir.file("k.yaml"),
                  std::regex_replace(config_text(broker.bootstrap_servers(), group,
                                                 "sink: {type: kafka, topic: results}"),
                                     std::regex("exit_at_end: true"), "exit_at_end: false"));
  child trove({"run", "-c", dir.file("k.yaml"), "--stats-json", dir.file("stats.json"), "--set",
               "progress_interval=1s"},
              dir);
  auto producer_done = std::async(std::launch::async, [&] {
    trove::io::kafka_producer producer({.brokers = broker.bootstrap_servers(), .topic = "events"});
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t idx = 0; idx < events.size(); ++idx) {
      producer.produce(std::to_string(events[idx].user), to_json(events[idx]));
      if (idx % 500 == 499) {
        producer.poll();
        std::this_thread::sleep_until(start + std::chrono::milliseconds(idx * 2 / 5));
      }
    }
    produce_sentinels(producer, partitions, events.back().ts);
    producer.flush();
  });
  inject(broker);
  producer_done.get();

  // Read results until every reference group is there (or a deadline), then stop trove.
  trove::io::kafka_consumer_options o;
  o.brokers = broker.bootstrap_servers();
  o.topics = {"results"};
  o.group_id = "reader-" + group;
  trove::io::kafka_consumer reader(o);
  std::vector<std::string> rows;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (rows.size() < ref.size() && std::chrono::steady_clock::now() < deadline) {
    reader.poll(1000, 100, [&](const trove::io::kafka_record& r) { rows.emplace_back(r.payload); });
  }
  const int code = trove.stop();
  const std::string err = trove.err();
  ASSERT_EQ(code, 0) << err;
  if (std::getenv("TROVE_E2E_SHOW")) std::cerr << err;
  // anything written after the last poll (there should be nothing: the sentinels' windows stay
  // open) is read too
  const auto settle = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (std::chrono::steady_clock::now() < settle) {
    reader.poll(1000, 100, [&](const trove::io::kafka_record& r) { rows.emplace_back(r.payload); });
  }
  const auto stats = e2e::read_stats(dir.file("stats.json"));
  expect_identity(stats, events.size() + partitions);
  EXPECT_EQ(e2e::as_i64(stats.at("late")), 0) << err;
  expect_matches(parse_rows(rows), ref);
}

// Without checkpoints a stop loses the open windows, and the offsets of their records stay
// uncommitted: the next run re-reads them, so every (group, window) is emitted complete at least
// once (at-least-once; a re-read batch may also re-emit part of a window already emitted). Bug
// (review): with `outputs` the shared 1 ms window made every batch committable at once, so the
// windows open at the stop lost the records before the last few seconds.
TEST(E2eKafka, SeveralOutputsWithoutCheckpointsStoppedAndRestartedLoseNothing) {
  dev_broker broker(1, {{"events", 2}, {"per_user", 2}});
  const auto events = make_events(4000, 20, 31);  // 160 s of event time
  produce(broker, "events", events);
  e2e::temp_dir dir;
  auto yaml = [&](bool exit_at_end) {
    return "source: {type: kafka, brokers: \"" + broker.bootstrap_servers() +
           "\", topics: [events], group_id: g-outputs-stop, exit_at_end: " +
           (exit_at_end ? "true" : "false") +
           ", properties: {session.timeout.ms: \"6000\", heartbeat.interval.ms: \"500\"}}\n"
           "schema: {event_id: u64, user_id: u64, type: string, ts: timestamp_ms, amount: f64}\n"
           "event_time: ts\n"
           "dedup: {key: [event_id], ttl: 1h}\n"
           "batch: {max_events: 200}\n"
           "outputs:\n"
           "  - name: per_user\n"
           "    window: {type: tumbling, size: 1m, allowed_lateness: 5s}\n"
           "    group_by: [user_id, type]\n"
           "    aggregates: [count, sum(amount), min(amount), max(amount)]\n"
           "    sink: {type: kafka, topic: per_user}\n"
           "  - name: clean\n"
           "    sink: {type: file, path: \"" +
           dir.file(exit_at_end ? "clean2.jsonl" : "clean1.jsonl") + "\"}\n";
  };
  e2e::write_file(dir.file("first.yaml"), yaml(false));
  e2e::write_file(dir.file("second.yaml"), yaml(true));
  {
    child first({"run", "-c", dir.file("first.yaml")}, dir, "first");
    // Joined (the mock cluster's 3 s join delay) and through every record, windows still open.
    std::this_thread::sleep_for(std::chrono::seconds(9));
    ASSERT_EQ(first.stop(), 0) << first.err();
  }
  const auto second = e2e::trove({"run", "-c", dir.file("second.yaml"), "-q"});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  std::multimap<group_key, aggregate> rows;
  for_each_row(
      values(consume_all(broker, "per_user")),
      [&](const group_key& key, const aggregate& a, const std::string&) { rows.emplace(key, a); });
  const auto ref = reference(events);
  ASSERT_GT(ref.size(), 100u);
  std::size_t incomplete = 0;
  for (const auto& [key, want] : ref) {
    bool complete = false;
    for (auto [it, end] = rows.equal_range(key); it != end; ++it) {
      EXPECT_LE(it->second.count, want.count);
      complete = complete || (it->second.count == want.count && it->second.sum == want.sum &&
                              it->second.min == want.min && it->second.max == want.max);
    }
    incomplete += !complete;
  }
  EXPECT_EQ(incomplete, 0u) << "groups never emitted complete, of " << ref.size();
}

TEST(E2eKafka, BrokerDownAndBackUpMidRunLosesNothing) {
  run_with_faults("g-down", [](dev_broker& broker) {
    std::this_thread::sleep_for(std::chrono::milliseconds(3500));  // joined, consuming
    broker.set_broker_up(1, false);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    broker.set_broker_up(1, true);
  });
}

TEST(E2eKafka, FetchAndProduceRequestErrorsAreRetried) {
  run_with_faults("g-errors", [](dev_broker& broker) {
    std::this_thread::sleep_for(std::chrono::milliseconds(3500));
    broker.push_request_errors(/*Fetch*/ 1, 10, /*NOT_LEADER_OR_FOLLOWER*/ 6);
    broker.push_request_errors(/*Produce*/ 0, 5, /*NOT_LEADER_OR_FOLLOWER*/ 6);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    broker.push_request_errors(/*Fetch*/ 1, 5, /*REQUEST_TIMED_OUT*/ 7);
  });
}

TEST(E2eKafka, ARebalanceMidRunNeitherLosesNorDoubleApplies) {
  run_with_faults("g-rebalance", [](dev_broker& broker) {
    std::this_thread::sleep_for(std::chrono::milliseconds(3500));
    // Another member joins (takes partitions away from trove), reads a little without
    // committing, and leaves: trove gets them back and resumes where it was.
    trove::io::kafka_consumer_options o;
    o.brokers = broker.bootstrap_servers();
    o.topics = {"events"};
    o.group_id = "g-rebalance";
    o.properties = {{"session.timeout.ms", "6000"}, {"heartbeat.interval.ms", "500"}};
    trove::io::kafka_consumer intruder(o);
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < until) {
      intruder.poll(100, 100, [](const trove::io::kafka_record&) {});
    }
    intruder.close();
  });
}

TEST(E2eKafka, BadPayloadsGoToTheDeadLetterFileWithTopicPartitionOffset) {
  dev_broker broker(1, {{"events", 1}, {"results", 1}});
  const auto events = make_events(300, 5, 5);
  std::vector<std::string> bad = {"not json", "{\"event_id\":1,", std::string(5000, 'x'),
                                  "{\"event_id\":\"12\",\"user_id\":1,\"type\":\"a\",\"ts\":1,"
                                  "\"amount\":1}"};
  std::map<std::int64_t, std::string> bad_offsets;
  {
    trove::io::kafka_producer producer({.brokers = broker.bootstrap_servers(), .topic = "events"});
    std::int64_t offset = 0;
    for (std::size_t idx = 0; idx < events.size(); ++idx) {
      producer.produce({}, to_json(events[idx]), 0);
      ++offset;
      if (idx % 70 == 0 && bad_offsets.size() < bad.size()) {
        const std::string& payload = bad[bad_offsets.size()];
        producer.produce({}, payload, 0);
        bad_offsets[offset++] = payload;
      }
    }
    producer.produce({}, "", 0);  // an empty message
    bad_offsets[offset++] = "";
    producer.flush();
  }
  e2e::temp_dir dir;
  e2e::write_file(dir.file("k.yaml"),
                  config_text(broker.bootstrap_servers(), "g-bad",
                              "sink: {type: kafka, topic: results}\nsource_extra: 0"));
  // (source.max_record_bytes caps the 5000-byte record)
  std::string text = e2e::read_file(dir.file("k.yaml"));
  text.replace(text.find("source_extra: 0"), 15,
               "dead_letter: {path: \"" + dir.file("bad.jsonl") + "\"}");
  text.replace(text.find("exit_at_end: true"), 17, "exit_at_end: true, max_record_bytes: 4096");
  e2e::write_file(dir.file("k.yaml"), text);
  const auto r =
      e2e::trove({"run", "-c", dir.file("k.yaml"), "-q", "--stats-json", dir.file("stats.json")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto stats = e2e::read_stats(dir.file("stats.json"));
  expect_identity(stats, events.size() + bad_offsets.size());
  EXPECT_EQ(e2e::as_i64(stats.at("bad")), static_cast<std::int64_t>(bad_offsets.size()));
  const auto letters = e2e::read_json_lines(dir.file("bad.jsonl"));
  ASSERT_EQ(letters.size(), bad_offsets.size());
  for (const auto& letter : letters) {
    EXPECT_EQ(e2e::as_string(letter.at("source")), "events");
    EXPECT_EQ(e2e::as_i64(letter.at("partition")), 0);
    const auto offset = e2e::as_i64(letter.at("offset"));
    ASSERT_TRUE(bad_offsets.count(offset)) << "dead letter at offset " << offset;
    EXPECT_EQ(e2e::as_i64(letter.at("record_bytes")),
              static_cast<std::int64_t>(bad_offsets[offset].size()));
  }
  expect_matches(parse_rows(values(consume_all(broker, "results"))), reference(events));
}

}  // namespace

namespace {

TEST(E2eKafka, DeliveryFailureStopsTheRunWithoutCommittingPastIt) {
  dev_broker broker(1, {{"events", 2}, {"results", 1}});
  const auto events = make_events(3000, 20, 6);
  produce(broker, "events", events);
  e2e::temp_dir dir;
  e2e::write_file(dir.file("k.yaml"), config_text(broker.bootstrap_servers(), "g-fail",
                                                  "sink: {type: kafka, topic: results, properties: "
                                                  "{message.timeout.ms: \"3000\"}}"));
  // Every produce request fails with a non-retriable error (MESSAGE_TOO_LARGE).
  broker.push_request_errors(/*Produce*/ 0, 100000, 10);
  const auto failed = e2e::trove({"run", "-c", dir.file("k.yaml"), "-q"});
  EXPECT_EQ(failed.exit_code, 1) << failed.err;
  EXPECT_NE(failed.err.find("delivery to topic 'results' failed"), std::string::npos) << failed.err;
  // The next run in the same group re-reads every event: no offset was committed past the loss,
  // so the complete results appear once the sink works again.
  broker.clear_request_errors(/*Produce*/ 0);
  e2e::write_file(dir.file("k2.yaml"), config_text(broker.bootstrap_servers(), "g-fail",
                                                   "sink: {type: kafka, topic: results2}"));
  const auto r =
      e2e::trove({"run", "-c", dir.file("k2.yaml"), "-q", "--stats-json", dir.file("stats.json")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto stats = e2e::read_stats(dir.file("stats.json"));
  expect_identity(stats, events.size());
  expect_matches(parse_rows(values(consume_all(broker, "results2"))), reference(events));
}

}  // namespace

namespace {

/// The partitions a trove instance holds now, from its log: the count of its last "assigned"
/// line when no "revoked" line follows it, else 0.
int held_partitions(const std::string& log) {
  const auto assigned = log.rfind("kafka: assigned ");
  if (assigned == std::string::npos) return 0;
  const auto revoked = log.rfind("revoked from this member");
  if (revoked != std::string::npos && revoked > assigned) return 0;
  return std::atoi(log.c_str() + assigned + std::strlen("kafka: assigned "));
}

TEST(E2eKafka, TwoInstancesInOneGroupSplitTheWorkAndTheUnionIsTheSingleRun) {
  constexpr int partitions = 4;
  dev_broker broker(1, {{"events", partitions}});
  const auto events = make_events(8000, 80, 3);
  const auto ref = reference(events);
  e2e::temp_dir dir;
  std::vector<std::unique_ptr<child>> instances;
  for (const std::string name : {"a", "b"}) {
    e2e::write_file(dir.file(name + ".yaml"),
                    std::regex_replace(config_text(broker.bootstrap_servers(), "g-two",
                                                   "sink: {type: file, path: \"" +
                                                       dir.file(name + ".jsonl") + "\"}"),
                                       std::regex("exit_at_end: true"), "exit_at_end: false"));
    instances.push_back(
        std::make_unique<child>(std::vector<std::string>{"run", "-c", dir.file(name + ".yaml"),
                                                         "--stats-json", dir.file(name + ".stats")},
                                dir, name));
  }
  // The group must be stable before any event exists: then every partition is read by exactly
  // one instance from its first offset (state does not move with a partition yet, so a
  // rebalance mid-stream would split groups between the two outputs).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  int stable_checks = 0;
  while (stable_checks < 10 && std::chrono::steady_clock::now() < deadline) {
    const int a = held_partitions(instances[0]->err());
    const int b = held_partitions(instances[1]->err());
    stable_checks = a > 0 && b > 0 && a + b == partitions ? stable_checks + 1 : 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(stable_checks, 10) << "the group never settled on 2 members:\n"
                               << instances[0]->err() << instances[1]->err();
  produce(broker, "events", events);
  {
    // One sentinel per partition, far in the future, closes every real window.
    trove::io::kafka_producer producer({.brokers = broker.bootstrap_servers(), .topic = "events"});
    produce_sentinels(producer, partitions, events.back().ts);
    producer.flush();
  }
  auto union_rows = [&] {
    std::vector<std::string> rows = e2e::split_lines(e2e::read_file(dir.file("a.jsonl")));
    for (auto& line : e2e::split_lines(e2e::read_file(dir.file("b.jsonl")))) {
      rows.push_back(line);
    }
    return rows;
  };
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (union_rows().size() < ref.size() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (auto& instance : instances) ASSERT_EQ(instance->stop(), 0) << instance->err();
  const auto sa = e2e::read_stats(dir.file("a.stats"));
  const auto sb = e2e::read_stats(dir.file("b.stats"));
  EXPECT_GT(e2e::as_i64(sa.at("in")), 0) << "instance a read nothing";
  EXPECT_GT(e2e::as_i64(sb.at("in")), 0) << "instance b read nothing";
  EXPECT_EQ(e2e::as_i64(sa.at("in")) + e2e::as_i64(sb.at("in")),
            static_cast<std::int64_t>(events.size()) + partitions);
  expect_matches(parse_rows(union_rows()), ref);
}

/// The rows of a changelog read as a keyed upsert downstream does: the last row of each group.
std::map<group_key, aggregate> upsert(const std::vector<std::string>& rows) {
  std::map<group_key, aggregate> out;
  for_each_row(rows, [&](const group_key& key, const aggregate& a, const std::string& text) {
    auto [it, inserted] = out.emplace(key, a);
    if (!inserted) {
      // At-least-once: a row emitted again after a crash is identical, never a partial window.
      EXPECT_EQ(it->second.count, a.count) << "a window re-emitted with other values: " << text;
      EXPECT_EQ(it->second.sum, a.sum) << text;
      it->second = a;
    }
  });
  return out;
}

/// The highest checkpoint id in a checkpoint.dir (0: none yet); a Kafka source's chains are in
/// its members/ folder.
std::size_t checkpoints_written(const std::string& dir) {
  std::size_t newest = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("checkpoint-", 0) == 0 && entry.path().extension() == ".ckpt") {
      newest = std::max<std::size_t>(newest, std::stoull(name.substr(11, 12)));
    }
  }
  return newest;
}

/// Runs `trove run -c k.yaml` up to three times, each SIGKILLed a random 0..max_delay_ms after
/// `progress()` (checkpoints of the directory) grew past its value at the start — the group join
/// takes ~3 s on the mock cluster, so a fixed delay would kill before anything happened — then
/// once more to the end with --stats-json stats.json. Returns the number of runs killed.
int kill_and_restart(const e2e::temp_dir& dir, std::uint64_t seed, int max_delay_ms,
                     const std::function<std::size_t()>& progress) {
  std::mt19937_64 rng(seed);
  int kills = 0;
  for (int attempt = 0; attempt < 3; ++attempt) {
    const std::size_t before = progress();
    const int code = e2e::run_trove_and_kill({"run", "-c", dir.file("k.yaml"), "-q"},
                                             static_cast<int>(rng() % max_delay_ms),
                                             [&] { return progress() > before; });
    if (code == 0) break;  // finished before the kill
    EXPECT_EQ(code, 128 + SIGKILL);
    ++kills;
  }
  const auto last =
      e2e::trove({"run", "-c", dir.file("k.yaml"), "-q", "--stats-json", dir.file("stats.json")});
  EXPECT_EQ(last.exit_code, 0) << last.err;
  return kills;
}

// Kafka → Kafka with checkpoints, SIGKILLed at random points and restarted until the input is
// done: downstream (last row per group) sees exactly the single-run result — no partial windows,
// no forgotten dedup keys (re-sends whose original came before a restart stay duplicates), and
// the cumulative counters are those of one run.
TEST(E2eKafka, KilledWithCheckpointsAndRestartedIsExact) {
  constexpr int partitions = 4;
  dev_broker broker(1, {{"events", partitions}, {"results", 2}});
  const auto events = make_events(120'000, 200, 21);
  produce(broker, "events", events);
  e2e::temp_dir dir;
  e2e::write_file(dir.file("k.yaml"), config_text(broker.bootstrap_servers(), "g-kill",
                                                  "sink: {type: kafka, topic: results}\n"
                                                  "checkpoint: {dir: \"" +
                                                      dir.file("state") + "\", interval: 100ms}"));
  const int kills =
      kill_and_restart(dir, 3, 150, [&] { return checkpoints_written(dir.file("state")); });
  EXPECT_GE(kills, 1) << "no run was killed mid-stream";
  const auto stats = e2e::read_stats(dir.file("stats.json"));
  expect_identity(stats, events.size());
  expect_matches(upsert(values(consume_all(broker, "results"))), reference(events));
  // The restarts kept one member slot (the lock of a killed process is gone with it), and its
  // chain records every partition at the epoch it holds.
  const auto listing = e2e::trove({"checkpoint", "list", dir.file("state")});
  EXPECT_EQ(listing.exit_code, 0) << listing.err;
  EXPECT_NE(listing.out.find("member m0:"), std::string::npos) << listing.out;
  EXPECT_EQ(listing.out.find("member m1:"), std::string::npos) << listing.out;
  for (int p = 0; p < partitions; ++p) {
    EXPECT_NE(listing.out.find("events[" + std::to_string(p) + "]@"), std::string::npos)
        << listing.out;
  }
  EXPECT_NE(listing.out.find("(epoch "), std::string::npos) << listing.out;
}

}  // namespace

namespace {

/// Kafka API keys and error codes used to inject transaction failures on the mock cluster.
constexpr int api_init_producer_id = 22;
constexpr int api_end_txn = 26;
constexpr int err_coordinator_load_in_progress = 14;  // retriable
constexpr int err_not_enough_replicas = 19;           // EndTxn: not handled specially → abortable
constexpr int err_producer_fenced = 90;               // fatal: a newer producer took the id over

/// Checkpoints of a checkpoint.dir whose transaction committed (no .pending marker).
std::size_t committed_checkpoints(const std::string& dir) {
  std::size_t committed = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("checkpoint-", 0) != 0 || entry.path().extension() != ".ckpt") continue;
    auto pending = entry.path();
    pending.replace_extension(".pending");
    if (!std::filesystem::exists(pending, ec)) ++committed;
  }
  return committed;
}

std::size_t pending_markers(const std::string& dir) {
  std::size_t pending = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir, ec)) {
    pending += entry.path().extension() == ".pending" ? 1 : 0;
  }
  return pending;
}

std::string exactly_once_config(const dev_broker& broker, const std::string& group,
                                const e2e::temp_dir& dir) {
  return config_text(broker.bootstrap_servers(), group,
                     "sink: {type: kafka, topic: results, delivery: exactly_once}\n"
                     "checkpoint: {dir: \"" +
                         dir.file("state") + "\", interval: 200ms, retain: 2}");
}

// exactly_once, SIGKILLed at random points and restarted: the transactions' call sequence
// (init fencing the previous producer, one commit per checkpoint with the offsets, pending
// checkpoints never restored) gives downstream exactly the single-run result, and a run that
// ends leaves no checkpoint pending. InitProducerId errors at the start are retried. (The mock
// cluster does not hide aborted records from read_committed readers, so what an aborted
// transaction wrote is still visible here; that rows are re-produced identically after it is
// what this checks.)
TEST(E2eKafka, ExactlyOnceKilledAndRestartedIsExact) {
  constexpr int partitions = 4;
  dev_broker broker(1, {{"events", partitions}, {"results", 2}});
  const auto events = make_events(120'000, 200, 31);
  produce(broker, "events", events);
  e2e::temp_dir dir;
  e2e::write_file(dir.file("k.yaml"), exactly_once_config(broker, "g-eos-kill", dir));
  broker.push_request_errors(api_init_producer_id, 3, err_coordinator_load_in_progress);
  // The whole input takes ~0.3 s once the group is joined: kill soon after a commit.
  const int kills =
      kill_and_restart(dir, 4, 50, [&] { return committed_checkpoints(dir.file("state")); });
  EXPECT_GE(kills, 1) << "no run was killed mid-stream";
  const auto stats = e2e::read_stats(dir.file("stats.json"));
  expect_identity(stats, events.size());
  EXPECT_GE(e2e::as_i64(stats.at("transactions_committed")), 1);
  EXPECT_EQ(e2e::as_i64(stats.at("transactions_aborted")), 0);
  EXPECT_EQ(pending_markers(dir.file("state")), 0u) << "the final checkpoint's commit";
  expect_matches(upsert(values(consume_all(broker, "results"))), reference(events));
}

// An EndTxn that fails with an abortable error mid-run: the transaction is aborted and the run
// starts again from the last committed checkpoint inside the same `trove run` — nothing lost,
// counters those of one run.
TEST(E2eKafka, ExactlyOnceAnAbortedTransactionIsRedoneFromTheLastCommittedCheckpoint) {
  constexpr int partitions = 4;
  dev_broker broker(1, {{"events", partitions}, {"results", 2}});
  const auto events = make_events(120'000, 200, 32);
  produce(broker, "events", events);
  e2e::temp_dir dir;
  e2e::write_file(dir.file("k.yaml"), exactly_once_config(broker, "g-eos-abort", dir));
  child run({"run", "-c", dir.file("k.yaml"), "--stats-json", dir.file("stats.json")}, dir);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (committed_checkpoints(dir.file("state")) == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  broker.push_request_errors(api_end_txn, 1, err_not_enough_replicas);
  ASSERT_EQ(run.wait(), 0) << run.err();
  const auto stats = e2e::read_stats(dir.file("stats.json"));
  EXPECT_EQ(e2e::as_i64(stats.at("transactions_aborted")), 1) << run.err();
  EXPECT_NE(run.err().find("starting again from the last committed checkpoint"), std::string::npos)
      << run.err();
  expect_identity(stats, events.size());
  expect_matches(upsert(values(consume_all(broker, "results"))), reference(events));
  if (std::getenv("TROVE_TEST_SHOW_LOG")) std::cerr << run.err();
}

// A fatal transaction error (the producer was fenced: another instance took the
// transactional.id over) stops the run with an error naming it; the next start, with the
// cluster healthy again, finishes the job exactly.
TEST(E2eKafka, ExactlyOnceAFencedProducerStopsTheRunNamingTheTransactionalId) {
  dev_broker broker(1, {{"events", 2}, {"results", 1}});
  const auto events = make_events(20'000, 50, 33);
  produce(broker, "events", events);
  e2e::temp_dir dir;
  e2e::write_file(dir.file("k.yaml"), exactly_once_config(broker, "g-eos-fenced", dir));
  // Static membership (source.instance_id) names the transactional.id too.
  const std::string instance = "source.instance_id=pod-7";
  broker.push_request_errors(api_end_txn, 1, err_producer_fenced);
  const auto fenced = e2e::trove({"run", "-c", dir.file("k.yaml"), "-q", "--set", instance});
  EXPECT_EQ(fenced.exit_code, 1) << fenced.err;
  EXPECT_NE(fenced.err.find("'trove-g-eos-fenced-pod-7'"), std::string::npos) << fenced.err;
  const auto resumed = e2e::trove({"run", "-c", dir.file("k.yaml"), "-q", "--set", instance,
                                   "--stats-json", dir.file("stats.json")});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  expect_identity(e2e::read_stats(dir.file("stats.json")), events.size());
  expect_matches(upsert(values(consume_all(broker, "results"))), reference(events));
}

}  // namespace

namespace {

// ---- scale-out: state moves with its partitions (a shared checkpoint.dir) ----------------------

/// Instances of one consumer group on one shared checkpoint.dir, reading a topic keyed by user
/// (so every group's rows come from one partition) that is produced live while a script starts,
/// stops, kills or pauses instances. Every instance writes to the same results topic.
class scaled_group {
 public:
  static constexpr int partitions = 8;
  explicit scaled_group(std::string group, bool exactly_once = false)
      : broker_(1, {{"events", partitions}, {"results", 2}}),
        group_(std::move(group)),
        exactly_once_(exactly_once),
        events_(make_events(24'000, 150, 41)) {}

  /// Starts an instance (`name` is its log and stats file).
  child& start(const std::string& name) {
    const std::string config = dir_.file(name + ".yaml");
    e2e::write_file(config, std::regex_replace(
                                config_text(broker_.bootstrap_servers(), group_,
                                            std::string("sink: {type: kafka, topic: results") +
                                                (exactly_once_ ? ", delivery: exactly_once" : "") +
                                                "}\ncheckpoint: {dir: \"" + dir_.file("state") +
                                                "\", interval: 300ms}"),
                                std::regex("exit_at_end: true"), "exit_at_end: false"));
    instances_[name] = std::make_unique<child>(
        std::vector<std::string>{"run", "-c", config, "--stats-json", dir_.file(name + ".stats")},
        dir_, name);
    return *instances_[name];
  }
  child& operator[](const std::string& name) { return *instances_.at(name); }

  /// Waits until the instance holds `count` partitions or more (its latest assignment).
  void wait_holding(const std::string& name, int at_least, int limit_s = 60) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(limit_s);
    while (held_partitions((*this)[name].err()) < at_least &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_GE(held_partitions((*this)[name].err()), at_least)
        << name << " never held " << at_least << " partition(s):\n"
        << (*this)[name].err();
  }

  /// Starts instances "a" and "b", waits until both hold partitions, then produces.
  void start_two_and_produce() {
    start("a");
    start("b");
    wait_holding("a", 1);
    wait_holding("b", 1);
    produce_live();
  }

  /// Produces the events at ~3000/s on a thread, then one far-future sentinel per partition.
  void produce_live() {
    producer_ = std::async(std::launch::async, [this] {
      trove::io::kafka_producer producer(
          {.brokers = broker_.bootstrap_servers(), .topic = "events"});
      const auto start = std::chrono::steady_clock::now();
      for (std::size_t idx = 0; idx < events_.size(); ++idx) {
        producer.produce(std::to_string(events_[idx].user), to_json(events_[idx]));
        if (idx % 300 == 299) {
          producer.poll();
          std::this_thread::sleep_until(start + std::chrono::microseconds(idx * 333));
        }
      }
      produce_sentinels(producer, partitions, events_.back().ts);
      producer.flush();
    });
  }
  void wait_produced() { producer_.get(); }

  /// Reads the results topic until, as an upsert, it holds every reference group (or 120 s);
  /// then stops the instances still running (SIGTERM, exit 0) and checks the union.
  void expect_exact(const std::vector<std::string>& running) {
    const auto ref = reference(events_);
    trove::io::kafka_consumer_options o;
    o.brokers = broker_.bootstrap_servers();
    o.topics = {"results"};
    o.group_id = "reader-" + group_;
    trove::io::kafka_consumer reader(o);
    std::vector<std::string> rows;
    std::set<group_key> seen;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (seen.size() < ref.size() && std::chrono::steady_clock::now() < deadline) {
      reader.poll(1000, 100, [&](const trove::io::kafka_record& r) {
        rows.emplace_back(r.payload);
        for_each_row({rows.back()}, [&](const group_key& key, const aggregate&,
                                        const std::string&) { seen.insert(key); });
      });
    }
    for (const auto& name : running) {
      EXPECT_EQ((*this)[name].stop(), 0) << (*this)[name].err();
    }
    const auto settle = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (std::chrono::steady_clock::now() < settle) {
      reader.poll(1000, 100,
                  [&](const trove::io::kafka_record& r) { rows.emplace_back(r.payload); });
    }
    if (std::getenv("TROVE_TEST_SHOW_LOG")) {
      for (const auto& [name, instance] : instances_) std::cerr << name << ":\n" << instance->err();
    }
    expect_matches(upsert(rows), ref);
    for (const auto& name : running) {
      EXPECT_EQ(e2e::as_i64(e2e::read_stats(dir_.file(name + ".stats")).at("late")), 0)
          << (*this)[name].err();
    }
  }

 private:
  dev_broker broker_;
  e2e::temp_dir dir_;
  std::string group_;
  bool exactly_once_;
  std::vector<event> events_;
  std::map<std::string, std::unique_ptr<child>> instances_;
  std::future<void> producer_;
};

// 1 → 2 → 1 instances mid-stream: a second instance joins (half the partitions move to it with
// their state), then leaves again (they move back). Read as an upsert, the union of everything
// written is the single-instance result, and no window is ever emitted with two values.
void scale_one_to_two_to_one(scaled_group& group) {
  group.start("a");
  group.wait_holding("a", scaled_group::partitions);
  group.produce_live();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  group.start("b");
  group.wait_holding("b", 1);
  std::this_thread::sleep_for(std::chrono::seconds(3));
  EXPECT_EQ(group["b"].stop(), 0) << group["b"].err();
  EXPECT_NE(group["b"].err().find("took over"), std::string::npos) << group["b"].err();
  group.wait_produced();
  group.expect_exact({"a"});
  EXPECT_NE(group["a"].err().find("final checkpoint"), std::string::npos) << group["a"].err();
}

TEST(E2eKafka, ScaledOneToTwoToOneMidStreamIsExact) {
  scaled_group group("g-scale");
  scale_one_to_two_to_one(group);
}

// The same with exactly-once: a revoke returns only once its final checkpoint's transaction
// committed (the next owner must never load a checkpoint whose rows may be aborted), and each
// member has its own transactional.id (its slot), so the two never fence each other.
TEST(E2eKafka, ScaledOneToTwoToOneWithExactlyOnceIsExact) {
  scaled_group group("g-scale-eos", /*exactly_once=*/true);
  scale_one_to_two_to_one(group);
  EXPECT_NE(group["a"].err().find("'trove-g-scale-eos-m0'"), std::string::npos);
  EXPECT_NE(group["b"].err().find("'trove-g-scale-eos-m1'"), std::string::npos);
}

// A member is SIGKILLed mid-stream: after the session timeout the survivor takes its partitions
// over from the dead member's last periodic checkpoint; what the dead one emitted after it is
// emitted again identically.
TEST(E2eKafka, ScaledMemberKilledIsTakenOverFromItsLastCheckpoint) {
  scaled_group group("g-scale-kill");
  group.start_two_and_produce();
  std::this_thread::sleep_for(std::chrono::seconds(3));
  group["b"].signal(SIGKILL);
  EXPECT_EQ(group["b"].wait(), 128 + SIGKILL);
  group.wait_produced();
  group.expect_exact({"a"});
}

// A zombie: a member paused past the session timeout loses its partitions to the other; when it
// resumes, its next checkpoint finds a newer owner epoch, is refused, and the member stops with
// an error naming the partition — the new owner's state is never overwritten.
TEST(E2eKafka, ScaledZombieThatResumesIsFencedAndStops) {
  scaled_group group("g-scale-zombie");
  group.start_two_and_produce();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  group["b"].signal(SIGSTOP);
  group.wait_holding("a", scaled_group::partitions, 60);
  std::this_thread::sleep_for(std::chrono::seconds(2));  // a has checkpointed them
  group["b"].signal(SIGCONT);
  EXPECT_EQ(group["b"].wait(60), 1) << group["b"].err();
  EXPECT_NE(group["b"].err().find("now belongs to member"), std::string::npos) << group["b"].err();
  // Its refused final checkpoint is not announced as durable (found by the chaos script).
  EXPECT_EQ(group["b"].err().find("partitions lost: final checkpoint"), std::string::npos)
      << group["b"].err();
  group.wait_produced();
  group.expect_exact({"a"});
}

}  // namespace
