/// @file source_stage.cpp
/// @brief The source thread: reads records (Kafka, file or stdin lines, the synthetic generator),
/// decodes them into batches, and keeps the position after each batch.
#include "host/stages/pipeline_run.hpp"

namespace trove::host::detail {

io::host_batch* pipeline::fresh_batch() {
  auto b = free_.pop();
  if (!b) return nullptr;
  (*b)->clear();
  fill_begin_ = clock_type::now();
  return *b;
}

/// Hands a batch to the device stage. `decode_seconds` < 0: the wall time since fresh_batch().
bool pipeline::push_batch(io::host_batch*& batch, clock_type::time_point opened,
                          double decode_seconds) {
  batch_item item;
  item.batch = batch;
  item.bad = std::move(pending_bad_);
  pending_bad_.clear();
  item.end_mark = mark_;
  item.report.rows = batch->size();
  item.report.opened = opened;
  item.report.closed = clock_type::now();
  item.report.schedule_start = schedule_start_;
  item.report.decode_seconds =
      decode_seconds >= 0 ? decode_seconds
                          : std::chrono::duration<double>(item.report.closed - fill_begin_).count();
  if (batch->size() > 0) {
    item.report.partition_first = batch->positions()[0].partition;
    item.report.offset_first = batch->positions()[0].offset;
    item.report.offset_last = batch->positions()[batch->size() - 1].offset;
    const auto* ts = reinterpret_cast<const std::int64_t*>(batch->fixed(ts_column_));
    const auto* pos = batch->positions();
    offset_tracker::range* range = nullptr;  // Kafka: offsets of the current run's partition
    for (std::size_t row = 0; row < batch->size(); ++row) {
      const std::int32_t p = pos[row].partition;
      // Rows come in runs of one partition: per-partition work happens once per run.
      if (item.partition_max.empty() || item.partition_max.back().first != p) {
        item.partition_max.emplace_back(p, INT64_MIN);
        if (consumer_) range = &offset_range(item.offsets, pos[row]);
      }
      // A row that ends bad (event time out of range) never moves a watermark: only good rows
      // count. Its partition still delivered, so it is not idle.
      const std::int64_t t = ts[row];
      if (t >= kernels::min_event_time && t <= kernels::max_event_time &&
          t > item.partition_max.back().second) {
        item.partition_max.back().second = t;
      }
      if (range) range->last = std::max(range->last, pos[row].offset);
    }
  }
  if (consumer_) {
    // Bad records move the partition's offset on too (they are dead-lettered with the batch).
    for (const pending_bad& b : item.bad) {
      auto& r = offset_range(item.offsets, b.position);
      r.last = std::max(r.last, b.position.offset);
    }
    item.assigned = consumer_->take_new_assignments();
    if (!options_.observers.empty()) {
      item.report.offsets.reserve(item.offsets.size());
      for (const auto& r : item.offsets) {
        item.report.offsets.push_back({r.partition, r.first, r.last});
      }
    }
  }
  batch = nullptr;
  return ready_.push(std::move(item));
}

/// The offset range of a batch's partition (created at `pos`): Kafka offsets only grow within
/// a partition, so a range starts at the first row seen and its end is the largest offset.
/// The reference is valid until the next call.
offset_tracker::range& pipeline::offset_range(std::vector<offset_tracker::range>& ranges,
                                              io::source_position pos) {
  for (auto& r : ranges) {
    if (r.partition == pos.partition) return r;
  }
  return ranges.emplace_back(offset_tracker::range{pos.partition, pos.offset, pos.offset});
}

/// How long a Kafka poll may wait. librdkafka's batch consume returns only when it has the
/// messages asked for or the timeout passed, and its records are decoded (and the batch
/// opened) after it returns: an empty batch polls for half of batch.linger, so that a record
/// waits at most ~1.5 linger before its batch goes to the device; an open one polls until its
/// linger is up. At most 100 ms, so that stop requests and commits are seen.
int pipeline::poll_timeout_ms(const io::host_batch* batch, clock_type::time_point opened) const {
  const std::int64_t linger = config_.batch.linger_ms;
  std::int64_t wait = linger / 2;
  if (batch->size() > 0) {
    const auto waited =
        std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - opened);
    wait = linger - waited.count();
  }
  return static_cast<int>(std::clamp<std::int64_t>(wait, 1, 100));
}

/// Whether a non-empty batch opened at `opened` has waited batch.linger.
bool pipeline::lingered(const io::host_batch* batch, clock_type::time_point opened) const {
  return batch->size() > 0 &&
         clock_type::now() - opened >= std::chrono::milliseconds(config_.batch.linger_ms);
}

/// At the end of a source: the last partial batch goes to the device, an empty one to the pool.
void pipeline::hand_over_last(io::host_batch*& batch, clock_type::time_point opened,
                              double decode_seconds) {
  if (!batch) return;
  if (batch->size() > 0 || !pending_bad_.empty()) {
    push_batch(batch, opened, decode_seconds);
  } else {
    free_.push(batch);
  }
}

/// Decodes one record (CSV with `csvd`, else JSON) into the current batch, handing a full batch
/// to the device and taking a fresh one first when needed; bad records are dead-lettered.
/// Returns false (batch null) once the pipeline is stopping.
bool pipeline::decode_into(std::string_view text, io::source_position pos, io::csv_decoder* csvd,
                           io::json_decoder& json, io::host_batch*& batch,
                           clock_type::time_point& opened, std::string_view key) {
  auto decode = [&] {
    return csvd ? csvd->decode(text, *batch, pos) : json.decode(text, *batch, pos);
  };
  if (batch->size() == 0) opened = clock_type::now();
  auto r = decode();
  if (r.status == io::decode_status::batch_full) {
    if (!push_batch(batch, opened) || !(batch = fresh_batch())) return false;
    opened = clock_type::now();
    r = decode();
  }
  if (r.status == io::decode_status::ok && batch->keeps_records()) {
    batch->set_record(text, key);
    if (csvd && batch->record_header().empty()) batch->set_record_header(csv_header_);
  }
  if (r.status == io::decode_status::bad) {
    bad_record(r.reason, pos, text);
  } else if (r.status == io::decode_status::batch_full) {
    bad_record("record does not fit an empty batch (raise batch.max_string_bytes)", pos, text);
  }
  return true;
}

void pipeline::bad_record(std::string_view reason, io::source_position pos, std::string_view text,
                          std::size_t original_bytes) {
  if (!options_.strict) {
    // Counted and dead-lettered by the device thread with the batch it belongs to.
    pending_bad_.push_back({std::string(reason), pos, std::string(text), original_bytes});
    return;
  }
  bad_.fetch_add(1, std::memory_order_relaxed);
  const auto [source, where] = locate(pos);
  dead_letter_.write(reason, source, where, text, original_bytes);
  {
    const std::string at = consumer_ ? fmt::format("{}[{}]", source, where.partition) : source;
    throw std::runtime_error(
        fmt::format("bad record at {}:{} ({}) and --strict is set", at, where.offset, reason));
  }
}

std::string pipeline::source_name() const {
  return config_.source.type == source_type::file        ? config_.source.path
         : config_.source.type == source_type::synthetic ? "synthetic"
                                                         : "stdin";
}

/// The source and position a dead letter names: for Kafka the topic and (partition, offset),
/// translated from the row's source-partition id.
std::pair<std::string, io::source_position> pipeline::locate(io::source_position pos) const {
  if (!consumer_) return {source_name(), pos};
  return {consumer_->topic_of(pos.partition),
          {io::kafka_consumer::partition_of(pos.partition), pos.offset}};
}

/// The Kafka source: polls the consumer group into batches (offsets ranges per partition).
void pipeline::read_kafka() {
  const auto& k = config_.source.kafka;
  io::kafka_consumer_options co;
  co.brokers = source_brokers_;
  co.topics = k.topics;
  co.group_id = k.group_id;
  co.start = k.start == kafka_start::earliest ? io::kafka_start_from::earliest
             : k.start == kafka_start::latest ? io::kafka_start_from::latest
                                              : io::kafka_start_from::committed;
  co.exit_at_end = k.exit_at_end;
  co.eager = ownership_ != nullptr;  // state moves with partitions: see partition_moves.cpp
  co.properties = k.properties;
  if (!k.instance_id.empty()) co.properties["group.instance.id"] = k.instance_id;
  // A checkpoint's offsets are authoritative: a partition starts there, whatever was committed.
  for (const auto& [where, next] : kafka_next_) co.resume_offsets[where] = next;
  try {
    consumer_ = std::make_unique<io::kafka_consumer>(co);
  } catch (const std::invalid_argument& e) {
    throw logic_error(e.what());
  }
  const bool csv = config_.source.format == data_format::csv;
  io::json_decoder json(config_.schema, config_.source.max_record_bytes);
  io::csv_decoder csvd(config_.schema, config_.source.max_record_bytes);
  if (csv) {
    // A message is one CSV record without a header: fields in schema order.
    std::string header;
    for (const auto& field : config_.schema.fields) {
      if (!header.empty()) header += ',';
      header += field.name;
    }
    const auto r = csvd.set_header(header);
    if (!r.ok()) throw logic_error("CSV header from the schema: " + r.reason);
    csv_header_ = header;
  }
  io::host_batch* batch = fresh_batch();
  auto opened = clock_type::now();
  auto last_commit = clock_type::now();
  if (ownership_) {
    // A shared checkpoint.dir: state moves with the partitions (partition_moves.cpp). The
    // callbacks run inside poll(), on this thread, so the open batch is theirs to hand over.
    consumer_->on_revoke([&](bool lost) { hand_over(batch, opened, lost); });
    consumer_->on_assign(
        [this](const std::vector<io::topic_partition>& tps) { return take_over(tps); });
  } else {
    // Before partitions move to another member, commit what is durable: the new owner then
    // re-reads as little as possible.
    consumer_->on_revoke([this](bool) {
      commit_durable();
      for (auto* observer : options_.observers) observer->on_partitions_revoked();
    });
  }
  bool announced = false;
  const std::uint64_t max_bytes = config_.source.max_record_bytes;
  auto handle = [&](const io::kafka_record& record) {
    if (!batch) return;
    if (record.payload.empty()) {
      bad_record("empty message", record.position, record.payload);
      return;
    }
    if (record.payload.size() > max_bytes) {
      bad_record(fmt::format("record too long: {} bytes > max_record_bytes ({})",
                             record.payload.size(), max_bytes),
                 record.position, record.payload.substr(0, max_bytes), record.payload.size());
      return;
    }
    if (!decode_into(record.payload, record.position, csv ? &csvd : nullptr, json, batch, opened,
                     record.key)) {
      return;
    }
    if (batch->full()) {
      if (!push_batch(batch, opened))
        batch = nullptr;
      else
        batch = fresh_batch();
    }
  };
  while (batch && !stop_flag.load(std::memory_order_relaxed)) {
    const std::size_t room = std::max<std::size_t>(1, batch->capacity() - batch->size());
    consumer_->poll(std::min<std::size_t>(room, 65'536), poll_timeout_ms(batch, opened), handle);
    if (!batch) return;
    if (!announced && consumer_->assigned()) {
      announced = true;
      for (auto* observer : options_.observers) observer->on_source_ready();
    }
    if (lingered(batch, opened)) {
      if (!push_batch(batch, opened) || !(batch = fresh_batch())) return;
    }
    const auto now = clock_type::now();
    if (now - last_commit >= std::chrono::seconds(1)) {
      last_commit = now;
      commit_durable();
      if (!options_.observers.empty()) {
        for (const auto& lag : consumer_->lags()) {
          for (auto* observer : options_.observers) {
            observer->on_partition_lag(lag.topic, lag.partition, lag.lag);
          }
        }
      }
    }
    if (k.exit_at_end && consumer_->at_end()) break;
  }
  // The callbacks above hold this frame's batch: none may run once it is gone.
  consumer_->on_revoke([this](bool) { commit_durable(); });
  hand_over_last(batch, opened);
}

void pipeline::read_source() {
  if (config_.source.type == source_type::synthetic) {
    read_synthetic();
  } else if (config_.source.type == source_type::file ||
             config_.source.type == source_type::stdin_stream) {
    read_lines();
  } else {
    read_kafka();
  }
  // Only an exhausted input moves the watermark to +infinity; a stopped one must not emit its
  // open (partial) windows as final.
  batch_item end;
  end.end = true;
  end.interrupted = stop_flag.load();
  ready_.push(std::move(end));
}

void pipeline::read_lines() {
  io::line_reader_options lo;
  lo.max_line_bytes = config_.source.max_record_bytes;
  lo.cancel = &stop_flag;  // a signal or an error elsewhere ends a blocked read of stdin
  io::line_reader reader(config_.source.type == source_type::file ? config_.source.path : "-", lo);
  const bool csv = config_.source.format == data_format::csv;
  io::json_decoder json(config_.schema, config_.source.max_record_bytes);
  io::csv_decoder csvd(config_.schema, config_.source.max_record_bytes);
  if (restored_ && restored_->source.file_line > 0) {
    if (csv) {  // the header lies before the checkpoint's position: read it first
      io::line_reader head(config_.source.path, lo);
      io::line first;
      while (head.next(first)) {
        if (first.text.find_first_not_of(" \t\r") == std::string_view::npos) continue;
        const auto r = csvd.set_header(first.text);
        if (!r.ok()) throw logic_error("CSV header of " + source_name() + ": " + r.reason);
        csv_header_ = first.text;
        break;
      }
    }
    reader.resume_at(restored_->source.file_offset, restored_->source.file_line);
    spdlog::info("source: resuming '{}' at line {} (byte {})", config_.source.path,
                 restored_->source.file_line + 1, restored_->source.file_offset);
  }
  for (auto* observer : options_.observers) observer->on_source_ready();
  io::host_batch* batch = fresh_batch();
  auto opened = clock_type::now();
  io::line line;
  std::uint64_t since_check = 0;
  // mark_: the position after the last line handled (in a batch, pending, or skipped); a batch
  // handed over before the current line is decoded ends there.
  auto handled = [&] {
    mark_.file_offset = reader.offset();
    mark_.file_line = reader.line_number();
  };
  while (batch && !stop_flag.load(std::memory_order_relaxed)) {
    if (!reader.next(line)) {
      if (!reader.idle()) break;  // end of input
      // A quiet pipe: a batch that has waited for `linger` goes to the device now, so results
      // keep flowing when the producer is slow.
      if (lingered(batch, opened)) {
        if (!push_batch(batch, opened) || !(batch = fresh_batch())) return;
      }
      continue;
    }
    const io::source_position pos{0, static_cast<std::int64_t>(line.number)};
    // Blank lines (empty or only whitespace) are not records.
    if (line.text.find_first_not_of(" \t\r") == std::string_view::npos) {
      handled();
      continue;
    }
    if (csv && !csvd.has_header()) {
      const auto r = csvd.set_header(line.text);
      if (!r.ok()) throw logic_error("CSV header of " + source_name() + ": " + r.reason);
      csv_header_ = line.text;
      handled();
      continue;
    }
    if (line.overlong()) {
      bad_record(fmt::format("record too long: {} bytes > max_record_bytes ({})", line.length,
                             config_.source.max_record_bytes),
                 pos, line.text, line.length);
      handled();
      continue;
    }
    if (!decode_into(line.text, pos, csv ? &csvd : nullptr, json, batch, opened)) return;
    handled();
    if (batch->full() || (++since_check % 1024 == 0 && lingered(batch, opened))) {
      if (!push_batch(batch, opened) || !(batch = fresh_batch())) return;
    }
  }
  hand_over_last(batch, opened);
}

void pipeline::read_synthetic() {
  const io::synthetic_options o = to_synthetic_options(config_.source.synthetic);
  io::synthetic_generator gen(o);
  // Resuming: the events before the checkpoint are generated again and dropped (same seed, same
  // events); pacing counts from here.
  const std::uint64_t resumed = restored_ ? restored_->source.generated : 0;
  if (resumed > 0) gen.skip(resumed);
  mark_.generated = resumed;
  for (auto* observer : options_.observers) observer->on_source_ready();
  const auto start = clock_type::now();
  schedule_start_ = start;
  double fill_seconds = 0;  // generator time of the current batch (pacing sleeps excluded)
  io::host_batch* batch = fresh_batch();
  auto opened = clock_type::now();
  while (batch && !gen.done() && !stop_flag.load(std::memory_order_relaxed)) {
    std::size_t room = batch->capacity() - batch->size();
    if (o.rate > 0) {  // pace to the offered rate: never run ahead of the schedule
      const double elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
      const auto due = static_cast<std::uint64_t>(elapsed * o.rate) + 1;
      const std::uint64_t produced = gen.produced() - resumed;
      const std::uint64_t ahead = due > produced ? due - produced : 0;
      room = std::min<std::size_t>(room, ahead);
      if (room == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    if (room > 0) {
      const auto fill_start = clock_type::now();
      if (batch->size() == 0) opened = fill_start;
      gen.fill(*batch, room);
      mark_.generated = gen.produced();
      fill_seconds += std::chrono::duration<double>(clock_type::now() - fill_start).count();
    }
    if (batch->full() || lingered(batch, opened)) {
      if (!push_batch(batch, opened, fill_seconds) || !(batch = fresh_batch())) return;
      fill_seconds = 0;
    }
  }
  hand_over_last(batch, opened, fill_seconds);
}

}  // namespace trove::host::detail
