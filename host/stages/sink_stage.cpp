/// @file sink_stage.cpp
/// @brief The sink thread: encodes and writes result rows; at a checkpoint marker makes them (and
/// the dead letters) durable, records the sink position and, with exactly-once delivery, commits
/// the Kafka transaction once the checkpoint is durable.
#include "host/stages/pipeline_run.hpp"

namespace trove::host::detail {

void pipeline::write_sink() {
  const std::vector<output_config>& outputs = stage_.outputs();
  std::vector<std::unique_ptr<io::result_sink>> sinks;
  for (std::size_t o = 0; o < outputs.size(); ++o) {
    const sink_config& sc = outputs[o].sink;
    io::result_sink_options so;
    so.kind = sc.type == sink_type::kafka  ? io::sink_kind::kafka
              : sc.type == sink_type::file ? io::sink_kind::file
                                           : io::sink_kind::stdout_stream;
    so.csv = sc.format == data_format::csv;
    so.path = sc.path;
    so.kafka.brokers = sink_brokers_[o];  // `embedded` resolved
    so.kafka.topic = sc.kafka.topic;
    so.kafka.routed = routers_[o].routed();
    so.kafka.max_topics = sc.kafka.max_topics;
    so.kafka.properties = sc.kafka.properties;
    so.key_columns = sc.kafka.key;
    // exactly_once: the single-output form only (the parser refuses it in `outputs`).
    if (restored_) {
      // check_compat() made sure a checkpoint of `outputs` has one length per output.
      if (o > 0 && o >= restored_->outputs.size()) {
        throw logic_error(fmt::format("output '{}': the checkpoint has no sink position for it",
                                      outputs[o].name));
      }
      so.resume_length = o == 0 ? restored_->sink_length : restored_->outputs[o].sink_length;
    }
    so.durable = coordinator_ != nullptr;
    if (exactly_once_ && o == 0) {
      const auto set = so.kafka.properties.find("transactional.id");
      // One per member of the group (its source.instance_id, or its slot in the shared
      // checkpoint.dir): concurrent instances never fence each other, and a restarted one (same
      // slot) fences what its predecessor left open.
      so.kafka.transactional_id =
          set != so.kafka.properties.end()
              ? set->second
              : "trove-" + config_.source.kafka.group_id + "-" +
                    (ownership_ ? ownership_->member() : config_.source.kafka.instance_id);
      so.kafka.properties.erase("transactional.id");
      // A transaction stays open for one checkpoint interval (more when a write is slow): the
      // broker must not time it out first.
      so.kafka.transaction_timeout_ms = static_cast<int>(std::min<std::int64_t>(
          std::max<std::int64_t>(60'000, 3 * config_.checkpoint->interval_ms), 15 * 60'000));
      spdlog::info(
          "sink: exactly-once, one Kafka transaction per checkpoint (transactional.id "
          "'{}')",
          so.kafka.transactional_id);
    }
    try {
      sinks.push_back(std::make_unique<io::result_sink>(so));
    } catch (const std::invalid_argument& e) {
      throw logic_error(outputs.size() > 1
                            ? fmt::format("output '{}': {}", outputs[o].name, e.what())
                            : std::string(e.what()));
    }
  }
  io::result_sink& sink = *sinks.front();
  auto flush_all = [&] {
    for (auto& s : sinks) s->flush();
  };
  while (auto item = out_.pop()) {
    if (item->checkpoint) {
      // Every row before the cut is written: make it (and the dead letters) durable, then the
      // writer thread makes the checkpoint durable.
      flush_all();
      for (auto& s : sinks) s->sync();
      dead_letter_.sync();
      item->checkpoint->sink_length = sink.length();
      for (std::size_t o = 0; o < item->checkpoint->outputs.size() && o < sinks.size(); ++o) {
        item->checkpoint->outputs[o].sink_length = sinks[o]->length();
      }
      const std::uint64_t id = item->checkpoint->id;
      std::vector<io::source_offset> offsets;
      std::vector<kafka_position> positions;
      if (exactly_once_) {
        offsets = consumer_offsets(item->checkpoint->source);
        positions = item->checkpoint->source.kafka;
      }
      coordinator_->submit(std::move(item->checkpoint), item->cut_seconds);
      tracker_.flushed(item->seq);
      if (exactly_once_) {
        // The rows since the previous checkpoint commit only once this checkpoint, which
        // continues after them, is durable; until then it is pending (never restored).
        coordinator_->wait_durable(id);
        if (coordinator_->failed()) return;  // the run stops with the write's error
        sink.commit(offsets, consumer_.get());
        store_->mark_committed(id);
        handed_over(positions, id);
        transactions_committed_.fetch_add(1);
        transactions_committed_total.fetch_add(1);
      }
      continue;
    }
    auto& report = item->report;
    report.out_queue_depth = out_.size();
    for (std::size_t o = 0; o < sinks.size() && o < item->rows.size(); ++o) {
      sinks[o]->write(item->rows[o], report.encode_seconds, report.sink_seconds);
    }
    // Results leave the process as soon as nothing else is waiting: a downstream reader of a
    // slow stream sees each batch's rows then, not when a stdio buffer happens to fill.
    if (out_.size() == 0) {
      const auto begin = clock_type::now();
      flush_all();
      report.sink_seconds += std::chrono::duration<double>(clock_type::now() - begin).count();
      tracker_.flushed(item->seq);
    }
    if (item->has_report) {
      report.sink_done = clock_type::now();
      report.result_rows = item->rows.empty() ? nullptr : &item->rows.front();
      for (auto* o : options_.observers) o->on_batch(report);
      report.result_rows = nullptr;
    }
  }
  flush_all();
  sink_flushed_all_ = true;
}

}  // namespace trove::host::detail
