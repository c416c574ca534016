/// @file host_e2e_metrics.cpp
/// @brief End-to-end runs of `trove run` as a sidecar: `/metrics` scraped during a run and parsed
/// by Prometheus' reference parser (python3-prometheus-client), `/readyz` before and after the
/// source opens, SIGTERM draining to a clean exit with nothing lost, the shutdown deadline, the
/// second signal, and bind errors.
///
/// The source is a FIFO: opening it blocks until the test opens the write end, so "source not
/// connected yet" is a state the test controls, and the test decides when records arrive and
/// when the input ends. Every wait polls an observable state with a deadline; no sleep is an
/// assertion.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include "e2e_util.hpp"
#include "host/metrics_server.hpp"

namespace trove::host {
namespace {

using namespace std::chrono_literals;
namespace e2e = trove::test::e2e;

constexpr std::int64_t base_ms = 1'700'000'000'000;  // a multiple of the 1 s window

/// A `trove run` child process that the test talks to while it runs.
class running_trove {
 public:
  explicit running_trove(const std::vector<std::string>& args) {
    out_ = dir_.file("stdout");
    err_ = dir_.file("stderr");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<std::string> all{TROVE_BINARY};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    // As in e2e::run_command: passive OpenMP waits keep a loaded 2-core machine usable.
    std::vector<char*> env;
    for (char** var = environ; *var != nullptr; ++var) env.push_back(*var);
    std::string passive = "OMP_WAIT_POLICY=passive";
    if (!std::getenv("OMP_WAIT_POLICY")) env.push_back(passive.data());
    env.push_back(nullptr);
    const int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), env.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      ADD_FAILURE() << "posix_spawn: " << std::strerror(rc);
      pid_ = -1;
    }
  }
  ~running_trove() {
    if (pid_ > 0 && exit_code_ < 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  running_trove(const running_trove&) = delete;
  running_trove& operator=(const running_trove&) = delete;

  /// Whether the child has exited (and then its exit code in exit_code()).
  bool exited() {
    if (exit_code_ >= 0 || pid_ <= 0) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) != pid_) return false;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return true;
  }
  /// Waits for the exit; -1 (and a failure) when it has not exited within the deadline.
  int wait(std::chrono::milliseconds deadline) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (!exited()) {
      if (std::chrono::steady_clock::now() > until) {
        ADD_FAILURE() << "trove still running after " << deadline.count() << " ms\n" << err();
        return -1;
      }
      std::this_thread::sleep_for(5ms);
    }
    return exit_code_;
  }
  void signal(int sig) const { ::kill(pid_, sig); }
  [[nodiscard]] std::string err() const { return e2e::read_file(err_); }

 private:
  e2e::temp_dir dir_;
  std::string out_, err_;
  pid_t pid_ = -1;
  int exit_code_ = -1;
};

/// A TCP port that was free a moment ago (bound to port 0, then released).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

/// Polls `done` every 10 ms until it holds; false (with a failure naming `what`) past the
/// deadline or when the child exits first.
bool wait_for(running_trove& child, const std::string& what, const std::function<bool()>& done,
              std::chrono::seconds deadline = 60s) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (!done()) {
    if (child.exited()) {
      ADD_FAILURE() << "trove exited while waiting for " << what << "\n" << child.err();
      return false;
    }
    if (std::chrono::steady_clock::now() > until) {
      ADD_FAILURE() << "timed out waiting for " << what << "\n" << child.err();
      return false;
    }
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

/// Opens the write end of a FIFO whose reader is (about to be) trove: non-blocking opens fail
/// with ENXIO until the reader has it open.
int open_fifo_writer(running_trove& child, const std::string& path) {
  int fd = -1;
  wait_for(child, "trove to open the FIFO", [&] {
    fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    return fd >= 0;
  });
  if (fd >= 0) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

void write_all(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    ASSERT_GT(n, 0) << std::strerror(errno);
    done += static_cast<std::size_t>(n);
  }
}

/// Scrapes /metrics and parses it with prometheus_client (tests/tools/parse_prometheus.py).
std::map<std::string, double> scrape(const std::string& address) {
  std::map<std::string, double> out;
  const probe_result r = probe(address, "/metrics", 10s);
  if (r.status != 200) {
    ADD_FAILURE() << "/metrics: HTTP " << r.status << " " << r.error;
    return out;
  }
  e2e::temp_dir dir;
  e2e::write_file(dir.file("m.txt"), r.body);
  const e2e::command_result parsed = e2e::run_command(
      {"/usr/bin/python3", std::string(TROVE_SOURCE_DIR) + "/tests/tools/parse_prometheus.py",
       dir.file("m.txt")});
  EXPECT_EQ(parsed.exit_code, 0) << parsed.err;
  for (const std::string& line : e2e::split_lines(parsed.out)) {
    const std::size_t space = line.rfind(' ');
    if (space != std::string::npos) out[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return out;
}

double get(const std::map<std::string, double>& m, const std::string& key) {
  const auto it = m.find(key);
  return it == m.end() ? -1 : it->second;
}

/// The record accounting as a scraper reads it; checks in = accepted+duplicate+late+filtered+bad.
struct scraped_counts {
  double in = 0, accepted = 0, duplicate = 0, late = 0, filtered = 0, bad = 0;
};
scraped_counts counts_of(const std::map<std::string, double>& m) {
  scraped_counts c;
  c.in = get(m, "trove_records_in_total{}");
  c.accepted = get(m, R"(trove_records_total{status="accepted"})");
  c.duplicate = get(m, R"(trove_records_total{status="duplicate"})");
  c.late = get(m, R"(trove_records_total{status="late"})");
  c.filtered = get(m, R"(trove_records_total{status="filtered"})");
  c.bad = get(m, R"(trove_records_total{status="bad"})");
  EXPECT_GE(c.in, 0) << "no trove_records_in_total sample";
  EXPECT_EQ(c.in, c.accepted + c.duplicate + c.late + c.filtered + c.bad)
      << "accounting identity broken in a scrape";
  return c;
}

/// The test's input: 200 records, user = i % 5, one every 50 ms of event time over 10 windows of
/// 1 s; every 10th record re-sends the previous event (a duplicate), user 4 is filtered out, and
/// line 50 is not JSON (bad).
struct input {
  std::vector<std::string> lines;
  struct record {
    std::uint64_t event_id, user;
    std::int64_t ts;
    bool bad;
  };
  std::vector<record> records;
};
input make_input() {
  input in;
  for (std::uint64_t i = 0; i < 200; ++i) {
    input::record r{i, i % 5, base_ms + static_cast<std::int64_t>(i) * 50 + 7, false};
    if (i % 10 == 9) r = in.records.back();  // re-send the previous event
    if (i == 50) r.bad = true;
    in.records.push_back(r);
    in.lines.push_back(
        r.bad ? std::string("{not json")
              : fmt::format(R"({{"event_id":{},"user_id":{},"ts":{}}})", r.event_id, r.user, r.ts));
  }
  return in;
}

/// Expected accounting and (user, window_start) → count of the first n records; windows are
/// included when they end at or before `closed_before` (the watermark), all when INT64_MAX.
struct expectation {
  std::uint64_t accepted = 0, duplicate = 0, filtered = 0, bad = 0;
  std::map<std::pair<std::uint64_t, std::int64_t>, std::uint64_t> rows;
};
expectation expect_for(const input& in, std::size_t n, std::int64_t closed_before) {
  expectation e;
  std::set<std::uint64_t> seen;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& r = in.records[i];
    if (r.bad) {
      ++e.bad;
    } else if (r.user == 4) {
      ++e.filtered;
    } else if (!seen.insert(r.event_id).second) {
      ++e.duplicate;
    } else {
      ++e.accepted;
      const std::int64_t start = r.ts - (r.ts - base_ms) % 1000;
      if (closed_before == INT64_MAX || start + 1000 <= closed_before) ++e.rows[{r.user, start}];
    }
  }
  return e;
}

std::map<std::pair<std::uint64_t, std::int64_t>, std::uint64_t> read_rows(const std::string& p) {
  std::map<std::pair<std::uint64_t, std::int64_t>, std::uint64_t> rows;
  for (const auto& row : e2e::read_json_lines(p)) {
    const auto key = std::make_pair(static_cast<std::uint64_t>(e2e::as_i64(row.at("user_id"))),
                                    e2e::as_i64(row.at("window_start")));
    EXPECT_EQ(rows.count(key), 0u) << "row emitted twice: user " << key.first;
    rows[key] = static_cast<std::uint64_t>(e2e::as_i64(row.at("count")));
  }
  return rows;
}

/// A pipeline reading `fifo`, with the endpoint on `port`.
std::string sidecar_config(const e2e::temp_dir& dir, const std::string& fifo, int port,
                           const std::string& extra = "") {
  const std::string path = dir.file("pipeline.yaml");
  e2e::write_file(path, fmt::format(R"(source: {{type: file, path: "{}", format: json}}
schema: {{event_id: u64, user_id: u64, ts: timestamp_ms}}
event_time: ts
dedup: {{key: [event_id], ttl: 10m}}
window: {{type: tumbling, size: 1s}}
group_by: [user_id]
aggregates: [count]
filter: [{{field: user_id, op: "!=", value: 4}}]
sink: {{type: file, path: "{}", format: json}}
batch: {{max_events: 64, linger: 20ms}}
metrics: {{listen: "127.0.0.1:{}"}}
progress_interval: 0ms
{}
)",
                                    fifo, dir.file("out.jsonl"), port, extra));
  return path;
}

std::string make_fifo(const e2e::temp_dir& dir) {
  const std::string fifo = dir.file("events.fifo");
  EXPECT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  return fifo;
}

std::string join(const std::vector<std::string>& lines, std::size_t from, std::size_t to) {
  std::string out;
  for (std::size_t i = from; i < to; ++i) out += lines[i] + "\n";
  return out;
}

TEST(MetricsE2E, ReadyzFollowsTheSourceAndScrapesKeepTheAccountingIdentity) {
  e2e::temp_dir dir;
  const std::string fifo = make_fifo(dir);
  const int port = free_port();
  const std::string address = "127.0.0.1:" + std::to_string(port);
  const std::string config = sidecar_config(dir, fifo, port);
  running_trove trove({"run", "-c", config, "--stats-json", dir.file("stats.json")});

  ASSERT_TRUE(
      wait_for(trove, "/healthz", [&] { return probe(address, "/healthz", 2s).status == 200; }));
  // The FIFO has no writer: the source cannot open, whatever the device does meanwhile.
  probe_result ready;
  ASSERT_TRUE(wait_for(trove, "/readyz to wait for the source", [&] {
    ready = probe(address, "/readyz", 2s);
    return ready.body.find("source") != std::string::npos;
  }));
  EXPECT_EQ(ready.status, 503) << ready.body;
  EXPECT_EQ(get(scrape(address), "trove_ready{}"), 0);

  // The reader sniffs the first bytes for compression: the source is open once they arrive.
  const input in = make_input();
  const int fd = open_fifo_writer(trove, fifo);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(probe(address, "/readyz", 2s).status, 503);  // opened, but nothing read yet
  // The first 100 records; scrape (every scrape must keep the identity) until all are counted.
  write_all(fd, join(in.lines, 0, 100));
  ASSERT_TRUE(
      wait_for(trove, "/readyz 200", [&] { return probe(address, "/readyz", 2s).status == 200; }));
  EXPECT_EQ(e2e::run_command({TROVE_BINARY, "healthcheck", address, "--path", "/readyz"}).exit_code,
            0);
  scraped_counts c;
  ASSERT_TRUE(wait_for(trove, "100 records in /metrics", [&] {
    c = counts_of(scrape(address));
    return c.in >= 100;
  }));
  const expectation half = expect_for(in, 100, INT64_MAX);
  EXPECT_EQ(c.in, 100);
  EXPECT_EQ(c.accepted, half.accepted);
  EXPECT_EQ(c.duplicate, half.duplicate);
  EXPECT_EQ(c.filtered, half.filtered);
  EXPECT_EQ(c.bad, half.bad);
  EXPECT_EQ(c.late, 0);
  const auto m = scrape(address);
  EXPECT_GE(get(m, "trove_batches_total{stage=\"sink\"}"), 1);
  EXPECT_GE(get(m, "trove_batch_latency_seconds_count{}"), 1);
  EXPECT_GT(get(m, "trove_table_entries{table=\"dedup\"}"), 0);
  EXPECT_EQ(get(m, R"(trove_watermark_seconds{})"),
            static_cast<double>(in.records[99].ts) / 1000.0);

  // The rest, then the end of the input: a normal exit with every window emitted.
  write_all(fd, join(in.lines, 100, in.lines.size()));
  ::close(fd);
  ASSERT_EQ(trove.wait(60s), 0) << trove.err();
  const expectation all = expect_for(in, in.records.size(), INT64_MAX);
  EXPECT_EQ(read_rows(dir.file("out.jsonl")), all.rows);
  const auto stats = e2e::read_stats(dir.file("stats.json"));
  EXPECT_EQ(e2e::as_i64(stats.at("in")), 200);
  EXPECT_EQ(e2e::as_i64(stats.at("accepted")), static_cast<std::int64_t>(all.accepted));
  // The endpoint went away with the run.
  EXPECT_EQ(probe(address, "/healthz", 2s).status, 0);
}

TEST(MetricsE2E, SigtermDrainsAndExitsZeroWithNothingLost) {
  e2e::temp_dir dir;
  const std::string fifo = make_fifo(dir);
  const int port = free_port();
  const std::string address = "127.0.0.1:" + std::to_string(port);
  const std::string config = sidecar_config(dir, fifo, port, "shutdown_timeout: 30s");
  running_trove trove({"run", "-c", config, "--stats-json", dir.file("stats.json")});
  const input in = make_input();
  const int fd = open_fifo_writer(trove, fifo);
  ASSERT_GE(fd, 0);
  write_all(fd, join(in.lines, 0, in.lines.size()));
  // The write end stays open: the input has not ended when the signal comes.
  ASSERT_TRUE(wait_for(trove, "every record in /metrics",
                       [&] { return counts_of(scrape(address)).in >= 200; }));
  trove.signal(SIGTERM);
  ASSERT_EQ(trove.wait(60s), 0) << trove.err();
  ::close(fd);

  // Windows the watermark (the last event time, no allowed lateness) closed are in the output,
  // exactly; the last window is still open and is not emitted as if it were complete.
  const expectation closed = expect_for(in, in.records.size(), in.records.back().ts);
  EXPECT_EQ(read_rows(dir.file("out.jsonl")), closed.rows);
  const auto stats = e2e::read_stats(dir.file("stats.json"));
  EXPECT_EQ(e2e::as_i64(stats.at("in")), 200);
  EXPECT_EQ(e2e::as_i64(stats.at("accepted")), static_cast<std::int64_t>(closed.accepted));
  EXPECT_EQ(e2e::as_i64(stats.at("duplicate")), static_cast<std::int64_t>(closed.duplicate));
  EXPECT_TRUE(std::get<bool>(stats.at("interrupted")));
  EXPECT_GT(e2e::as_i64(stats.at("open_groups")), 0);
}

TEST(MetricsE2E, ShutdownTimeoutEndsARunThatCannotDrain) {
  // The source is stuck opening a FIFO nobody writes: SIGTERM cannot drain it, so the
  // shutdown_timeout deadline ends the process with code 1 and says what to change.
  e2e::temp_dir dir;
  const std::string fifo = make_fifo(dir);
  const int port = free_port();
  const std::string address = "127.0.0.1:" + std::to_string(port);
  const std::string config = sidecar_config(dir, fifo, port, "shutdown_timeout: 300ms");
  running_trove trove({"run", "-c", config});
  ASSERT_TRUE(wait_for(trove, "/readyz to wait for the source", [&] {
    return probe(address, "/readyz", 2s).body.find("source") != std::string::npos;
  }));
  trove.signal(SIGTERM);
  EXPECT_EQ(trove.wait(60s), 1);
  EXPECT_NE(trove.err().find("shutdown_timeout"), std::string::npos) << trove.err();
}

TEST(MetricsE2E, SecondSignalExitsAtOnce) {
  e2e::temp_dir dir;
  const std::string fifo = make_fifo(dir);
  const int port = free_port();
  const std::string address = "127.0.0.1:" + std::to_string(port);
  // A deadline far beyond the test's own: only the second signal can end this run in time.
  const std::string config = sidecar_config(dir, fifo, port, "shutdown_timeout: 1h");
  running_trove trove({"run", "-c", config});
  ASSERT_TRUE(wait_for(trove, "/readyz to wait for the source", [&] {
    return probe(address, "/readyz", 2s).body.find("source") != std::string::npos;
  }));
  trove.signal(SIGTERM);
  // Readiness turns to "stopping" once the first signal was handled; then the second one.
  ASSERT_TRUE(wait_for(trove, "/readyz to say stopping", [&] {
    return probe(address, "/readyz", 2s).body.find("stopping") != std::string::npos;
  }));
  trove.signal(SIGTERM);
  EXPECT_EQ(trove.wait(30s), 1);
}

TEST(MetricsE2E, BindErrorNamesMetricsListen) {
  e2e::temp_dir dir;
  metrics_registry idle;
  metrics_server holder("127.0.0.1:0", idle);  // the port is taken for the whole test
  const std::string config = sidecar_config(dir, dir.file("unused.jsonl"), holder.port());
  const e2e::command_result r = e2e::trove({"run", "-c", config});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("metrics.listen"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(std::to_string(holder.port())), std::string::npos) << r.err;
}

TEST(MetricsE2E, JsonLogsAreOneObjectPerLine) {
  e2e::temp_dir dir;
  const std::string events = dir.file("events.jsonl");
  e2e::write_file(events, join(make_input().lines, 0, 200));
  const std::string config = sidecar_config(dir, events, 0, "log: {format: json, level: debug}");
  const e2e::command_result r = e2e::trove({"run", "-c", config});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  simdjson::dom::parser parser;
  std::size_t lines = 0;
  for (const std::string& line : e2e::split_lines(r.err)) {
    ++lines;
    const auto row = e2e::parse_json_object(parser, line, "stderr line");
    ASSERT_TRUE(row) << line;
    EXPECT_TRUE(row->has("level") && row->has("msg")) << line;
  }
  EXPECT_GE(lines, 3u) << r.err;  // device, metrics endpoint, summary at least
}

}  // namespace
}  // namespace trove::host
