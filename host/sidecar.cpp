#include "host/sidecar.hpp"

#include <fmt/format.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "host/cli.hpp"
#include "host/metrics.hpp"
#include "host/metrics_server.hpp"

namespace trove::host {
namespace {

std::atomic<bool> stop_signalled{false};

/// `%j`: the message as the contents of a JSON string, so that quotes, backslashes and control
/// characters in a message (paths, reasons, record text) keep every log line valid JSON.
class json_message_flag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    for (const char c : msg.payload) {
      switch (c) {
        case '"':
          dest.append(std::string_view("\\\""));
          break;
        case '\\':
          dest.append(std::string_view("\\\\"));
          break;
        case '\n':
          dest.append(std::string_view("\\n"));
          break;
        case '\r':
          dest.append(std::string_view("\\r"));
          break;
        case '\t':
          dest.append(std::string_view("\\t"));
          break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            fmt::format_to(std::back_inserter(dest), "\\u{:04x}", static_cast<unsigned>(c));
          } else {
            dest.push_back(c);
          }
      }
    }
  }
  [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<json_message_flag>();
  }
};

/// Ends the process when a stop signal's drain takes longer than `shutdown_timeout`: an
/// orchestrator would SIGKILL it soon after anyway, and a clear message beats a silent kill.
class shutdown_watchdog {
 public:
  shutdown_watchdog(std::int64_t timeout_ms, metrics_registry& metrics)
      : timeout_(std::chrono::milliseconds(timeout_ms)),
        metrics_(metrics),
        thread_([this] { watch(); }) {}
  ~shutdown_watchdog() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  shutdown_watchdog(const shutdown_watchdog&) = delete;
  shutdown_watchdog& operator=(const shutdown_watchdog&) = delete;

 private:
  void watch() {
    std::unique_lock lock(mutex_);
    // A signal handler cannot notify a condition variable: poll its flag (cheap, 20 ms).
    while (!done_ && !stop_signalled.load()) {
      wake_.wait_for(lock, std::chrono::milliseconds(20));
    }
    if (done_) return;
    metrics_.on_stop_requested();
    spdlog::info("stop signal: draining (shutdown_timeout {} ms; a second signal exits at once)",
                 timeout_.count());
    if (wake_.wait_for(lock, timeout_, [this] { return done_; })) return;
    spdlog::error(
        "shutdown_timeout ({} ms) passed and the pipeline has not drained: exiting now (code 1); "
        "results of batches in flight may be missing. Raise shutdown_timeout (and the "
        "orchestrator's grace period) if draining legitimately takes longer",
        timeout_.count());
    spdlog::default_logger()->flush();
    std::fflush(nullptr);
    std::_Exit(exit_runtime_error);
  }

  std::chrono::milliseconds timeout_;
  metrics_registry& metrics_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<spdlog::formatter> make_log_formatter(log_format format) {
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  if (format == log_format::json) {
    formatter->add_flag<json_message_flag>('j').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","logger":"trove","msg":"%j"})");
  } else {
    formatter->set_pattern("trove %H:%M:%S.%e %^%l%$ %v");
  }
  return formatter;
}

void configure_logging(const log_config& config, bool quiet) {
  auto logger = spdlog::get("trove");
  if (!logger) logger = spdlog::stderr_color_mt("trove");
  spdlog::set_default_logger(logger);
  spdlog::set_formatter(make_log_formatter(config.format));
  static const spdlog::level::level_enum levels[] = {spdlog::level::trace, spdlog::level::debug,
                                                     spdlog::level::info, spdlog::level::warn,
                                                     spdlog::level::err};
  spdlog::set_level(quiet ? spdlog::level::warn : levels[static_cast<int>(config.level)]);
  // A log shipper reading a pipe sees warnings and errors at once, not when a buffer fills.
  spdlog::flush_on(spdlog::level::warn);
}

void note_stop_signal() noexcept {
  stop_signalled.store(true);
}

run_stats run_sidecar(const pipeline_config& config, const run_options& options) {
  // stop_signalled is not reset here: a signal that came during start-up still arms the deadline.
  metrics_registry metrics(std::chrono::milliseconds(config.metrics.stall_timeout_ms));
  run_options with_metrics = options;
  std::optional<metrics_server> server;
  if (!config.metrics.listen.empty()) {
    server.emplace(config.metrics.listen, metrics);
    with_metrics.observers.push_back(&metrics);
  }
  shutdown_watchdog watchdog(config.shutdown_timeout_ms, metrics);
  try {
    run_stats stats = run_pipeline(config, with_metrics);
    if (server) server->stop();
    return stats;
  } catch (const std::exception& e) {
    metrics.on_failed(e.what());
    throw;
  }
}

}  // namespace trove::host
