#include "host/pipeline.hpp"

#include "host/stages/pipeline_run.hpp"

namespace trove::host {
namespace detail {

std::atomic<bool> stop_flag{false};
std::atomic<bool> stop_requested{false};
std::atomic<std::uint64_t> transactions_committed_total{0};
std::atomic<std::uint64_t> transactions_aborted_total{0};

pipeline::pipeline(const pipeline_config& config, const run_options& options)
    : config_(config),
      options_(options),
      selected_(select_backend(config.device)),
      allocator_(*selected_.backend),
      stage_(config, *selected_.backend),
      watermark_(config.window.allowed_lateness_ms, idle_timeout_of(config)),
      free_(config.batch.buffers),
      ready_(config.batch.buffers),
      out_(8),
      dead_letter_(config.dead_letter.path) {
  spdlog::info("device: {} ({})", selected_.backend->description(), selected_.reason);
  for (auto* o : options_.observers) o->on_device_ready(selected_.backend->description());
  for (std::uint32_t i = 0; i < config.batch.buffers; ++i) {
    pool_.push_back(std::make_unique<io::host_batch>(config.schema, config.batch.max_events,
                                                     config.batch.max_string_bytes, allocator_));
    free_.push(pool_.back().get());
  }
  bool forwards = false;
  for (const output_config& output : stage_.outputs()) {
    routers_.emplace_back(config.schema, output.sink);
    forwards = forwards || output.forward;
    if (!config.outputs.empty()) stats_.outputs.push_back(output_stats{.name = output.name});
  }
  for (auto& batch : pool_) batch->keep_records(forwards);
  ts_column_ = static_cast<std::size_t>(config.schema.index_of(config.event_time));
  stats_.device = selected_.backend->description();
  exactly_once_ = config.sink.type == sink_type::kafka &&
                  config.sink.kafka.delivery == delivery_mode::exactly_once;
  start_embedded_broker();
  if (config.checkpoint) open_checkpoints();
}

run_stats pipeline::run() {
  const auto start = clock_type::now();
  const std::uint64_t restored_in =
      stats_.accepted + stats_.duplicate + stats_.late + stats_.filtered + bad_.load();
  last_progress_ = start;
  std::thread source([this] { guarded([this] { read_source(); }); });
  std::thread sink([this] { guarded([this] { write_sink(); }); });
  guarded([this] { process(); });
  ready_.close();
  free_.close();
  out_.close();
  source.join();
  sink.join();
  if (coordinator_) {
    coordinator_->wait_idle();  // the final checkpoint
    const checkpoint_stats cs = coordinator_->stats();
    stats_.checkpoints = cs.written;
    stats_.checkpoints_delayed = cs.delayed;
    stats_.checkpoint_bytes = cs.last_bytes;
    stats_.checkpoint_max_cut_seconds = cs.max_cut_seconds;
    stats_.checkpoint_max_write_seconds = cs.max_write_seconds;
    if (cs.written > 0) {
      spdlog::info(
          "checkpoints: {} written ({} delayed by a slow write, {} with only the updated "
          "groups); last {} bytes; longest data-path pause {:.3f} s, longest write {:.3f} s",
          cs.written, cs.delayed, cs.group_updates_written, cs.last_bytes, cs.max_cut_seconds,
          cs.max_write_seconds);
    }
  }
  dead_letter_.flush();
  finish_consumer();
  stats_.transactions_committed = transactions_committed_.load();
  if (error_) std::rethrow_exception(error_);
  stats_.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  stats_.events_per_second =
      stats_.seconds > 0 ? static_cast<double>(stats_.in - restored_in) / stats_.seconds : 0;
  stats_.interrupted = stop_flag.load();
  for (auto* o : options_.observers) o->on_finished(stats_);
  return stats_;
}

/// A partition idle this long stops holding the watermark back; a Kafka source's own
/// `source.idle_timeout` counts too (the smaller wins).
std::int64_t pipeline::idle_timeout_of(const pipeline_config& config) {
  if (config.source.type != source_type::kafka) return config.window.idle_timeout_ms;
  return std::min(config.window.idle_timeout_ms, config.source.kafka.idle_timeout_ms);
}

/// `brokers: embedded` anywhere starts one in-process dev broker that both use.
void pipeline::start_embedded_broker() {
  source_brokers_ = config_.source.kafka.brokers;
  const bool source_embedded =
      config_.source.type == source_type::kafka && source_brokers_ == "embedded";
  std::vector<io::dev_topic> topics;
  if (source_embedded) {
    for (const auto& topic : config_.source.kafka.topics) topics.push_back({topic, 4});
  }
  std::vector<bool> sink_embedded;
  for (const output_config& output : stage_.outputs()) {
    sink_brokers_.push_back(output.sink.kafka.brokers);
    sink_embedded.push_back(output.sink.type == sink_type::kafka &&
                            output.sink.kafka.brokers == "embedded");
    if (sink_embedded.back()) topics.push_back({output.sink.kafka.topic, 4});
  }
  if (!source_embedded &&
      std::find(sink_embedded.begin(), sink_embedded.end(), true) == sink_embedded.end()) {
    return;
  }
  dev_broker_ = std::make_unique<io::dev_broker>(1, topics);
  spdlog::info("embedded dev broker (librdkafka mock cluster) at {}",
               dev_broker_->bootstrap_servers());
  if (source_embedded) source_brokers_ = dev_broker_->bootstrap_servers();
  for (std::size_t o = 0; o < sink_embedded.size(); ++o) {
    if (sink_embedded[o]) sink_brokers_[o] = dev_broker_->bootstrap_servers();
  }
}

}  // namespace detail

using detail::pipeline;
using detail::stop_flag;
using detail::stop_requested;

void request_stop() noexcept {
  stop_requested.store(true);
  stop_flag.store(true);
}

std::string run_stats::to_json() const {
  std::string device_json;
  io::append_json_string(device_json, device);
  std::string json = fmt::format(
      "{{\"in\":{},\"accepted\":{},\"duplicate\":{},\"late\":{},\"filtered\":{},\"bad\":{},"
      "\"rows_out\":{},\"windows_emitted\":{},\"batches\":{},\"seconds\":{:.6f},"
      "\"events_per_second\":{:.1f},\"device\":{},\"watermark\":{},\"open_groups\":{},"
      "\"interrupted\":{},\"checkpoints\":{},\"restored_checkpoint\":{},"
      "\"restore_seconds\":{:.6f},\"checkpoints_delayed\":{},\"checkpoint_bytes\":{},"
      "\"checkpoint_max_cut_seconds\":{:.6f},\"checkpoint_max_write_seconds\":{:.6f},"
      "\"transactions_committed\":{},\"transactions_aborted\":{},\"routes_rewritten\":{}}}",
      in, accepted, duplicate, late, filtered, bad, rows_out, windows_emitted, batches, seconds,
      events_per_second, device_json, watermark, open_groups, interrupted ? "true" : "false",
      checkpoints, restored_checkpoint, restore_seconds, checkpoints_delayed, checkpoint_bytes,
      checkpoint_max_cut_seconds, checkpoint_max_write_seconds, transactions_committed,
      transactions_aborted, routes_rewritten);
  if (!outputs.empty()) {
    json.pop_back();  // the closing brace
    json += ",\"outputs\":[";
    for (std::size_t o = 0; o < outputs.size(); ++o) {
      const output_stats& s = outputs[o];
      std::string name;
      io::append_json_string(name, s.name);
      json += fmt::format(
          "{}{{\"name\":{},\"accepted\":{},\"emitted_into\":{},\"filtered\":{},\"late\":{},"
          "\"rows_out\":{},\"windows_emitted\":{},\"routes_rewritten\":{}}}",
          o ? "," : "", name, s.accepted, s.emitted_into, s.filtered, s.late, s.rows_out,
          s.windows_emitted, s.routes_rewritten);
    }
    json += "]}";
  }
  return json;
}

run_stats run_pipeline(const pipeline_config& config, const run_options& options) {
  stop_requested = false;
  // exactly_once: an aborted transaction discarded the rows since the last committed
  // checkpoint; the run starts again from that checkpoint (state, offsets, dead letters), so
  // they are produced once more, in a new transaction. A producer that is fenced, or aborts
  // that keep coming without a commit in between, end the run.
  constexpr int max_aborts_in_a_row = 5;
  std::uint64_t aborted = 0;
  int in_a_row = 0;
  for (;;) {
    stop_flag = false;
    std::uint64_t committed = 0;
    try {
      pipeline p(config, options);
      try {
        run_stats stats = p.run();
        stats.transactions_aborted = aborted;
        return stats;
      } catch (const io::kafka_transaction_error&) {
        committed = p.transactions_committed();
        throw;
      }
    } catch (const io::kafka_transaction_error& e) {
      const bool embedded =
          config.source.type == source_type::kafka && config.source.kafka.brokers == "embedded";
      in_a_row = committed > 0 ? 1 : in_a_row + 1;
      if (!e.abortable() || stop_requested.load() || embedded || in_a_row > max_aborts_in_a_row) {
        throw;
      }
      ++aborted;
      detail::transactions_aborted_total.fetch_add(1);
      spdlog::warn("{}; starting again from the last committed checkpoint ({} aborted so far)",
                   e.what(), aborted);
    }
  }
}

}  // namespace trove::host
