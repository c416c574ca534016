/// @file metrics_fuzz.cpp
/// @brief libFuzzer target: the `/metrics` request path without a network.
///
/// One input is (1) the bytes of one or more pipelined HTTP requests and (2) a sequence of
/// observer callbacks with arbitrary values: device names, Kafka topic names (label values),
/// counters, table stats, watermarks, batch timings, failure reasons, and a `metrics.stall_timeout`
/// anywhere in the range the config accepts. The registry is fed the callbacks; the requests are
/// served by cpp-httplib's request parser (Server::process_request on an in-memory stream) with the
/// routes of host/metrics_server.cpp, which need a bound socket to be reached through
/// metrics_server itself. Checks: every response is well-formed HTTP with a Content-Length that
/// matches; every rendered exposition (direct, and the body of a 200 from /metrics) parses
/// strictly — one line per sample, each after its family's `# TYPE`, label values escaped so that
/// they unescape to what was given, values that are numbers; the counters read back as given.

#include <fuzzer/FuzzedDataProvider.h>
#include <httplib.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "host/metrics.hpp"
#include "host/pipeline.hpp"

namespace {

using namespace trove::host;

void require(bool ok, const char* what, std::string_view detail = {}) {
  if (!ok) {
    std::fprintf(stderr, "trove fuzz: check failed: %s\n%.*s\n", what,
                 static_cast<int>(detail.size()), detail.data());
    std::abort();
  }
}

// The checker of the exposition (metric_name_char .. parse_exposition) is not instrumented for
// coverage: it runs over every byte of every rendered text (~8 KB per input), and its comparison
// tracing took a third of the target's time while the feedback it gave was on the output of
// render(), whose code is instrumented itself. It stays under ASan and UBSan.
#define TROVE_FUZZ_NO_COVERAGE __attribute__((no_sanitize("coverage")))

TROVE_FUZZ_NO_COVERAGE bool metric_name_char(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
         (!first && c >= '0' && c <= '9');
}

TROVE_FUZZ_NO_COVERAGE bool label_name_char(char c, bool first) {
  return metric_name_char(c, first) && c != ':';
}

/// @brief One parsed sample line (name and label names point into the parsed text).
struct sample {
  std::string_view name;
  std::vector<std::pair<std::string_view, std::string>> labels;  ///< unescaped values
  double value = 0;
};

/// @brief A value as the text format writes it: a float, NaN, +Inf or -Inf.
TROVE_FUZZ_NO_COVERAGE bool parse_value(std::string_view text, double& out) {
  if (text == "NaN") return out = std::nan(""), true;
  if (text == "+Inf") return out = HUGE_VAL, true;
  if (text == "-Inf") return out = -HUGE_VAL, true;
  if (text.empty() || text.size() > 64) return false;
  char copy[65];  // NUL-terminated for strtod
  std::memcpy(copy, text.data(), text.size());
  copy[text.size()] = '\0';
  char* end = nullptr;
  out = std::strtod(copy, &end);
  return end == copy + text.size() && std::isfinite(out);
}

/// @brief Parses the Prometheus text format strictly; aborts on the first violation. The samples
/// point into `text`.
TROVE_FUZZ_NO_COVERAGE std::vector<sample> parse_exposition(std::string_view text) {
  std::vector<sample> samples;
  samples.reserve(256);
  require(!text.empty() && text.back() == '\n', "exposition ends with a newline", text);
  std::string_view family;
  std::string_view type;
  std::set<std::string_view> typed;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    require(!line.empty(), "no empty lines");
    if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) {
      const std::string_view rest = line.substr(7);
      const std::size_t space = rest.find(' ');
      require(space != std::string_view::npos && space > 0, "comment names a metric", line);
      const std::string_view name = rest.substr(0, space);
      for (std::size_t k = 0; k < name.size(); ++k) {
        require(metric_name_char(name[k], k == 0), "metric name characters", line);
      }
      if (line.starts_with("# TYPE ")) {
        const std::string_view kind = rest.substr(space + 1);
        require(kind == "counter" || kind == "gauge" || kind == "histogram", "known type", line);
        require(typed.insert(name).second, "one TYPE per family", line);
        family = name;
        type = kind;
      }
      continue;
    }
    require(line[0] != '#', "only HELP and TYPE comments", line);
    sample s;
    std::size_t i = 0;
    while (i < line.size() && metric_name_char(line[i], i == 0)) ++i;
    require(i > 0, "sample has a name", line);
    s.name = line.substr(0, i);
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        const std::size_t start = i;
        while (i < line.size() && label_name_char(line[i], i == start)) ++i;
        require(i > start && i + 1 < line.size() && line[i] == '=' && line[i + 1] == '"',
                "label name=\"", line);
        const std::string_view name = line.substr(start, i - start);
        i += 2;
        std::string value;
        for (;;) {
          require(i < line.size(), "label value closed", line);
          const char c = line[i++];
          if (c == '"') break;
          if (c == '\\') {
            require(i < line.size(), "escape complete", line);
            const char e = line[i++];
            require(e == '\\' || e == '"' || e == 'n', "known escape", line);
            value += e == 'n' ? '\n' : e;
          } else {
            value += c;
          }
        }
        s.labels.emplace_back(name, std::move(value));
        if (i < line.size() && line[i] == ',') ++i;
      }
      require(i < line.size() && line[i] == '}', "labels closed", line);
      ++i;
    }
    require(i < line.size() && line[i] == ' ', "space before the value", line);
    require(parse_value(line.substr(i + 1), s.value), "value is a number", line);
    const std::string_view suffix =
        s.name.starts_with(family) ? s.name.substr(family.size()) : std::string_view("-");
    const bool own =
        suffix.empty() ||
        (type == "histogram" && (suffix == "_bucket" || suffix == "_sum" || suffix == "_count"));
    require(own, "sample follows its family's TYPE", line);
    samples.push_back(std::move(s));
  }
  return samples;
}

/// @brief An in-memory connection: reads the request bytes, collects the response.
class memory_stream final : public httplib::Stream {
 public:
  explicit memory_stream(std::string_view input) : input_(input) {}
  bool is_readable() const override { return true; }
  bool is_writable() const override { return true; }
  ssize_t read(char* ptr, size_t size) override {
    const std::size_t n = std::min(size, input_.size());
    std::memcpy(ptr, input_.data(), n);
    input_.remove_prefix(n);
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    output_.append(ptr, size);
    return static_cast<ssize_t>(size);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 40000;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 9464;
  }
  socket_t socket() const override { return INVALID_SOCKET; }

  [[nodiscard]] bool exhausted() const { return input_.empty(); }
  [[nodiscard]] const std::string& output() const { return output_; }

 private:
  std::string_view input_;
  std::string output_;
};

/// @brief The routes of metrics_server (host/metrics_server.cpp), on a server that is handed
/// connections instead of accepting them.
class fuzz_server final : public httplib::Server {
 public:
  explicit fuzz_server(const metrics_registry& registry) {
    Get("/metrics", [&registry](const httplib::Request&, httplib::Response& res) {
      res.set_content(registry.render(), "text/plain; version=0.0.4; charset=utf-8");
    });
    Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok\n", "text/plain");
    });
    Get("/readyz", [&registry](const httplib::Request&, httplib::Response& res) {
      const readiness r = registry.ready();
      res.status = r.ready ? 200 : 503;
      res.set_content(r.reason + "\n", "text/plain");
    });
  }

  /// @brief Serves the requests of one connection, as its keep-alive loop would (at most 5).
  void serve(memory_stream& stream) {
    bool closed = false;
    for (int k = 0; k < 5 && !closed && !stream.exhausted(); ++k) {
      process_request(stream, k == 4, closed, [](httplib::Request&) {});
    }
  }
};

/// @brief Checks the responses written to one connection (head_request: some may answer HEAD).
void check_responses(std::string_view out, bool head_request) {
  while (!out.empty()) {
    require(out.starts_with("HTTP/1.1 ") && out.size() >= 12, "status line", out);
    const int status = std::atoi(std::string(out.substr(9, 3)).c_str());
    require(status >= 200 && status < 600, "status code", out);
    const std::size_t head_end = out.find("\r\n\r\n");
    require(head_end != std::string_view::npos, "headers end", out);
    const std::string_view head = out.substr(0, head_end);
    std::size_t length = 0;
    const std::size_t cl = head.find("\r\nContent-Length: ");
    if (cl != std::string_view::npos) {
      length = std::strtoull(std::string(head.substr(cl + 18, 20)).c_str(), nullptr, 10);
    }
    // A response to HEAD has the Content-Length of the GET without its body.
    const std::string_view rest = out.substr(head_end + 4);
    if (head_request && (rest.size() < length || rest.starts_with("HTTP/1.1 "))) length = 0;
    require(rest.size() >= length, "body as long as Content-Length", out);
    const std::string_view body = out.substr(head_end + 4, length);
    // A compressed body (the client sent Accept-Encoding) is checked uncompressed elsewhere: the
    // same render() output is parsed directly for every input.
    const bool compressed = head.find("\r\nContent-Encoding: ") != std::string_view::npos;
    if (status == 200 &&
        head.find("Content-Type: text/plain; version=0.0.4") != std::string::npos &&
        !body.empty() && !compressed) {
      parse_exposition(body);
    }
    out.remove_prefix(head_end + 4 + length);
  }
}

std::string label_of(const sample& s, std::string_view name) {
  for (const auto& [key, value] : s.labels) {
    if (key == name) return value;
  }
  return {};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const std::string request = in.ConsumeRandomLengthString(2048);
  // Every positive duration the config accepts for metrics.stall_timeout (int64 milliseconds).
  const auto stall = std::chrono::milliseconds(
      in.ConsumeIntegralInRange<std::int64_t>(1, std::numeric_limits<std::int64_t>::max()));
  metrics_registry registry(stall);
  const auto start = observer_clock::now();
  auto at = [&](std::int64_t ns) { return start + std::chrono::nanoseconds(ns); };
  // A time point near the run, as the pipeline's clock gives them (up to ~3 years away).
  auto some_time = [&] {
    return at(in.ConsumeIntegralInRange<std::int64_t>(-(1LL << 56), 1LL << 56));
  };

  run_stats last_stats;
  bool has_stats = false;
  std::map<std::pair<std::string, std::int32_t>, std::int64_t> lags;
  std::string device;
  bool device_ready = false;
  for (int op = 0; op < 64 && in.remaining_bytes() > 0; ++op) {
    switch (in.ConsumeIntegralInRange(0, 7)) {
      case 0:
        device = in.ConsumeRandomLengthString(64);
        device_ready = true;
        registry.on_device_ready(device);
        break;
      case 1:
        registry.on_source_ready();
        break;
      case 2: {
        run_stats stats;
        stats.in = in.ConsumeIntegral<std::uint64_t>();
        stats.accepted = in.ConsumeIntegral<std::uint64_t>();
        stats.duplicate = in.ConsumeIntegral<std::uint64_t>();
        stats.late = in.ConsumeIntegral<std::uint64_t>();
        stats.filtered = in.ConsumeIntegral<std::uint64_t>();
        stats.bad = in.ConsumeIntegral<std::uint64_t>();
        stats.rows_out = in.ConsumeIntegral<std::uint64_t>();
        stats.windows_emitted = in.ConsumeIntegral<std::uint64_t>();
        stats.batches = in.ConsumeIntegral<std::uint64_t>();
        state_report state;
        for (auto* t : {&state.dedup, &state.agg}) {
          // Sizes a real table can have (bytes below 2^62), so that sums do not wrap.
          t->entries = in.ConsumeIntegral<std::uint32_t>();
          t->used = in.ConsumeIntegral<std::uint32_t>();
          t->capacity = in.ConsumeIntegral<std::uint32_t>();
          t->bytes = in.ConsumeIntegralInRange<std::size_t>(0, std::size_t{1} << 62);
          t->rebuilds = in.ConsumeIntegral<std::uint64_t>();
          t->blocking_rebuilds = in.ConsumeIntegral<std::uint64_t>();
        }
        state.watermark = in.ConsumeIntegral<std::int64_t>();
        state.max_event_time = in.ConsumeIntegral<std::int64_t>();
        state.ready_queue_depth = in.ConsumeIntegralInRange<std::size_t>(0, 64);
        state.out_queue_depth = in.ConsumeIntegralInRange<std::size_t>(0, 64);
        state.free_buffers = in.ConsumeIntegralInRange<std::size_t>(0, 64);
        registry.on_progress(stats, state);
        last_stats = stats;
        has_stats = true;
        break;
      }
      case 3: {
        std::string topic = in.ConsumeRandomLengthString(64);
        const auto partition = in.ConsumeIntegral<std::int32_t>();
        const auto lag = in.ConsumeIntegral<std::int64_t>();
        registry.on_partition_lag(topic, partition, lag);
        lags[{std::move(topic), partition}] = lag;
        break;
      }
      case 4: {
        batch_report report;
        report.seq = in.ConsumeIntegral<std::uint32_t>();
        report.opened = some_time();
        report.closed = some_time();
        report.sink_done = some_time();
        for (double* s : {&report.decode_seconds, &report.h2d_seconds, &report.kernel_seconds,
                          &report.extract_seconds, &report.encode_seconds, &report.sink_seconds}) {
          *s = in.ConsumeFloatingPointInRange<double>(0, 1e6);
        }
        registry.on_batch(report);
        break;
      }
      case 5:
        registry.on_finished(last_stats);
        break;
      case 6:
        registry.on_stop_requested();
        break;
      case 7:
        registry.on_failed(in.ConsumeRandomLengthString(128));
        break;
    }
  }

  // Readiness at any time of the run, and the rendered text at that time.
  const auto now = some_time();
  const readiness r = registry.ready(now);
  require(!r.reason.empty(), "readiness has a reason");
  if (r.ready) require(device_ready, "ready only once the device is");
  const std::string text = registry.render(now, in.ConsumeIntegral<std::int64_t>() >> 8);
  const std::vector<sample> samples = parse_exposition(text);
  std::size_t lag_samples = 0;
  for (const sample& s : samples) {
    if (s.name == "trove_kafka_consumer_lag") {
      const std::string topic = label_of(s, "topic");
      const std::int32_t partition = std::atoi(label_of(s, "partition").c_str());
      const auto it = lags.find({topic, partition});
      require(it != lags.end(), "lag labels unescape to a topic and partition given", text);
      require(s.value == static_cast<double>(it->second), "lag value", text);
      ++lag_samples;
    } else if (s.name == "trove_device_info") {
      require(label_of(s, "device") == device, "device label unescapes to the device", text);
    } else if (s.name == "trove_ready") {
      require(s.value == (r.ready ? 1 : 0), "trove_ready agrees with ready()", text);
    } else if (s.name == "trove_records_in_total" && has_stats) {
      require(s.value == static_cast<double>(last_stats.in), "records in", text);
    }
  }
  require(lag_samples == lags.size(), "one lag sample per partition", text);

  // The requests, through httplib's parser to the routes.
  fuzz_server server(registry);
  memory_stream stream(request);
  server.serve(stream);
  check_responses(stream.output(), request.find("HEAD") != std::string::npos);
  return 0;
}
