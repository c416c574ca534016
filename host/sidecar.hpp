#pragma once
/// @file sidecar.hpp
/// @brief What `trove run` adds around a pipeline to be a good sidecar: the metrics/health
/// endpoint on `metrics.listen`, log formatting (text or JSON lines), and the shutdown deadline
/// (`shutdown_timeout`) after SIGTERM/SIGINT.

#include <spdlog/formatter.h>

#include <cstdint>
#include <memory>

#include "host/config.hpp"
#include "host/pipeline.hpp"

namespace trove::host {

/// @brief Sets up spdlog's default logger on stderr: `log.format` text (human) or json (one JSON
/// object per line: time, level, msg — the message JSON-escaped), at `log.level` (warn with
/// `quiet`).
void configure_logging(const log_config& config, bool quiet);

/// @brief The formatter of `log.format`: text (`trove 12:00:00.000 info ...`) or json (one object
/// per line with `time`, `level`, `logger` and the JSON-escaped `msg`).
std::unique_ptr<spdlog::formatter> make_log_formatter(log_format format);

/// @brief Tells the shutdown watchdog that a stop signal arrived (async-signal-safe).
void note_stop_signal() noexcept;

/// @brief Runs a pipeline as a sidecar: starts the HTTP endpoint first (so `/readyz` answers 503
/// while the device and the source come up), arms the `shutdown_timeout` deadline when a stop
/// signal arrives (past it the process exits with code 1), runs the pipeline, and stops the
/// endpoint after it.
/// @throws what run_pipeline throws; std::runtime_error naming `metrics.listen` when the endpoint
/// cannot bind
run_stats run_sidecar(const pipeline_config& config, const run_options& options);

}  // namespace trove::host
