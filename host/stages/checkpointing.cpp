/// @file checkpointing.cpp
/// @brief Checkpoints of a run: what must match to restore, the restore at start, the cut between
/// two batches on the device thread, and the durable callback.
#include <algorithm>

#include "host/stages/pipeline_run.hpp"

namespace trove::host::detail {

namespace {
/// Group segments one checkpoint may reference at most (a restore opens each).
constexpr std::size_t max_group_segments = 32;
}  // namespace

/// The configuration whose change makes saved state meaningless, as (key, value) pairs.
std::vector<std::pair<std::string, std::string>> pipeline::compat_keys() const {
  auto typed = [&](const std::vector<std::string>& fields) {
    std::string out = "[";
    for (const auto& name : fields) {
      if (out.size() > 1) out += ", ";
      const int c = config_.schema.index_of(name);
      out += name;
      if (c >= 0) {
        const io::field& f = config_.schema.fields[static_cast<std::size_t>(c)];
        out += std::string(":") + io::to_string(f.type) + (f.required ? "" : "?");
      }
    }
    return out + "]";
  };
  std::vector<std::pair<std::string, std::string>> keys;
  keys.emplace_back("source.type", to_string(config_.source.type));
  if (config_.source.type == source_type::file)
    keys.emplace_back("source.path", config_.source.path);
  if (config_.source.type == source_type::kafka) {
    std::string topics;
    for (const auto& t : config_.source.kafka.topics) topics += (topics.empty() ? "" : ",") + t;
    keys.emplace_back("source.topics", topics);
  }
  keys.emplace_back("event_time", typed({config_.event_time}));
  keys.emplace_back("dedup.key", config_.dedup ? typed(config_.dedup->key) : "(none)");
  // The single form's keys are written as they always were (checkpoints of older troves stay
  // compatible); with `outputs` each output's under `outputs[i].`, and their names in order.
  const bool several = !config_.outputs.empty();
  bool sketches = false;
  bool quantiles = false;
  if (several) {
    std::string names;
    for (const auto& o : config_.outputs) names += (names.empty() ? "" : ", ") + o.name;
    keys.emplace_back("outputs", "[" + names + "]");
  }
  const std::vector<output_config> outputs = outputs_of(config_);
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const output_config& o = outputs[i];
    const std::string prefix = several ? fmt::format("outputs[{}].", i) : std::string();
    if (several && o.forward) {  // no state of its own
      keys.emplace_back(prefix + "forward", "true");
      continue;
    }
    keys.emplace_back(prefix + "group_by", typed(o.group_by));
    std::string aggregates;
    std::vector<std::string> fields;
    for (const auto& a : o.aggregates) {
      aggregates += (aggregates.empty() ? "" : ", ") + to_string(a);
      if (!a.field.empty()) fields.push_back(a.field);
    }
    keys.emplace_back(prefix + "aggregates", "[" + aggregates + "] " + typed(fields));
    keys.emplace_back(prefix + "window.type", to_string(o.window.type));
    keys.emplace_back(prefix + "window.size", std::to_string(o.window.size_ms) + "ms");
    keys.emplace_back(prefix + "window.slide", std::to_string(o.window.slide_ms) + "ms");
    sketches = sketches || std::any_of(o.aggregates.begin(), o.aggregates.end(), [](const auto& a) {
                 return a.fn == aggregate_fn::approx_count_distinct;
               });
    quantiles = quantiles || std::any_of(o.aggregates.begin(), o.aggregates.end(),
                                         [](const auto& a) { return is_quantile(a.fn); });
  }
  // Registers of another precision are another sketch (only pipelines that keep one say so, so
  // checkpoints written before sketches existed stay compatible).
  if (sketches) {
    keys.emplace_back("sketch.hll_precision", std::to_string(config_.sketch.hll_precision));
  }
  if (quantiles) {
    keys.emplace_back("sketch.quantile_accuracy",
                      fmt::format("{}", config_.sketch.quantile_accuracy));
  }
  return keys;
}

namespace {

/// Whether no instance has written a chain in members/ yet (the first start after an upgrade).
bool first_shared_start(const std::string& dir) {
  std::error_code ec;
  for (const auto& member :
       std::filesystem::directory_iterator(std::filesystem::path(dir) / "members", ec)) {
    std::error_code inner;
    for (const auto& entry : std::filesystem::directory_iterator(member.path(), inner)) {
      if (entry.path().extension() == ".ckpt") return false;
    }
  }
  return true;
}

}  // namespace

/// Throws when a checkpoint was written under another configuration (naming the key).
void pipeline::check_compat(const checkpoint_state& st) const {
  const checkpoint_config& cc = *config_.checkpoint;
  const auto keys = compat_keys();
  for (const auto& [key, value] : keys) {
    bool found = false;
    for (const auto& [saved_key, saved] : st.compat) {
      if (saved_key != key) continue;
      found = true;
      if (saved == value) continue;
      throw logic_error(fmt::format(
          "{}: the checkpoint in checkpoint.dir '{}' (id {}) was written with {} = {}, but the "
          "configuration now says {}; the saved state means nothing under the new value. "
          "Restore the old value, or start fresh: point checkpoint.dir at an empty directory "
          "(or delete its checkpoint-*.ckpt, dedup-*.seg and groups-*.seg files)",
          key, cc.dir, st.id, key, saved, value));
    }
    // A checkpoint of the single form restored into `outputs` (or back) has another layout.
    if (!found && key == "outputs") {
      throw logic_error(fmt::format(
          "outputs: the checkpoint in checkpoint.dir '{}' (id {}) was written without `outputs` "
          "(a single-output pipeline), but the configuration now has them; the saved state "
          "means nothing under the new layout. Start fresh: point checkpoint.dir at an empty "
          "directory",
          cc.dir, st.id));
    }
  }
  // An output that forwarded and now aggregates (or back) keeps other state: its keys differ.
  auto has = [](const std::vector<std::pair<std::string, std::string>>& list,
                const std::string& key) {
    return std::any_of(list.begin(), list.end(), [&](const auto& kv) { return kv.first == key; });
  };
  for (const auto& [saved_key, saved] : st.compat) {
    if (saved_key == "outputs" && config_.outputs.empty()) {
      throw logic_error(fmt::format(
          "outputs: the checkpoint in checkpoint.dir '{}' (id {}) was written with outputs {}, "
          "but the configuration now has none; the saved state means nothing under the new "
          "layout. Restore the outputs, or start fresh: point checkpoint.dir at an empty "
          "directory",
          cc.dir, st.id, saved));
    }
  }
  for (const auto* side : {&keys, &st.compat}) {
    const auto& other = side == &keys ? st.compat : keys;
    for (const auto& [key, value] : *side) {
      if (key.rfind("outputs[", 0) != 0 || has(other, key)) continue;
      const std::string output = key.substr(0, key.find(']') + 1);
      throw logic_error(fmt::format(
          "{}: the checkpoint in checkpoint.dir '{}' (id {}) was written when this output {}, "
          "and it {} now; the saved state means nothing under the new shape. Restore it, or "
          "start fresh: point checkpoint.dir at an empty directory",
          output, cc.dir, st.id, has(st.compat, output + ".forward") ? "forwarded" : "aggregated",
          has(keys, output + ".forward") ? "forwards" : "aggregates"));
    }
  }
  if (!config_.outputs.empty() && st.outputs.size() != config_.outputs.size()) {
    throw logic_error(
        fmt::format("outputs: the checkpoint in checkpoint.dir '{}' (id {}) holds {} outputs, the "
                    "configuration {}; start fresh: point checkpoint.dir at an empty directory",
                    cc.dir, st.id, st.outputs.size(), config_.outputs.size()));
  }
}

/// Opens checkpoint.dir and, when it holds a checkpoint, restores it: state, counters,
/// watermarks, dead-letter length; the sources and the sink resume from its positions.
void pipeline::open_checkpoints() {
  const checkpoint_config& cc = *config_.checkpoint;
  const auto load_begin = clock_type::now();
  const bool shared = config_.source.type == source_type::kafka;
  if (shared) {
    // Every instance of the group may mount this directory: each writes its own chain, and the
    // state of a partition follows its assignment (partition_ownership).
    ownership_ = std::make_unique<partition_ownership>(cc.dir, config_.source.kafka.instance_id);
    store_ = std::make_unique<checkpoint_store>(ownership_->member_dir());
  } else {
    store_ = std::make_unique<checkpoint_store>(cc.dir);
  }
  restored_ = store_->load_latest();
  if (shared && !restored_ && first_shared_start(cc.dir)) {
    // An upgrade: a trove from before shared directories kept one chain at the top of the
    // directory. The first instance continues its counters and sink positions (its partitions'
    // state comes with the assignment, load_partitions reads that chain as epoch 0).
    restored_ = checkpoint_store(cc.dir, /*read_only=*/true).load_latest();
    if (restored_) {
      spdlog::info(
          "checkpoints: continuing checkpoint {} that an earlier trove wrote at the top of '{}' "
          "(member '{}' keeps its chain in members/ from now on; the old files can be deleted "
          "once it has checkpointed)",
          restored_->id, cc.dir, ownership_->member());
    }
  }
  std::uint64_t next_id = 1;
  std::vector<segment_ref> segments;
  if (restored_) {
    const checkpoint_state& st = *restored_;
    check_compat(st);
    const std::size_t restored_entries = st.dedup_entries.size();
    if (!shared) {
      std::vector<kernels::dedup_entry> entries(st.dedup_entries.size());
      for (std::size_t i = 0; i < entries.size(); ++i) {
        const dedup_record& r = st.dedup_entries[i];
        entries[i].key = {r.key_hi, r.key_lo};
        entries[i].first_seen = r.first_seen;
      }
      stage_.restore(entries, st.watermark, st.agg, st.emitted_watermark);
      for (std::size_t o = 1; o < st.outputs.size(); ++o) {
        stage_.restore_output(o, st.outputs[o].groups, st.outputs[o].emitted_watermark);
      }
      std::vector<watermark_tracker::partition_mark> marks;
      for (const auto& p : st.partitions) marks.push_back({p.partition, p.max_event_time});
      watermark_.restore(marks, st.watermark, clock_type::now());
      max_event_time_ = st.max_event_time;
    }
    stats_.accepted = st.counters.accepted;
    stats_.duplicate = st.counters.duplicate;
    stats_.late = st.counters.late;
    stats_.filtered = st.counters.filtered;
    bad_ = st.counters.bad;
    stats_.rows_out = st.counters.rows_out;
    stats_.windows_emitted = st.counters.windows_emitted;
    stats_.batches = st.counters.batches;
    for (std::size_t o = 0; o < st.outputs.size() && o < stats_.outputs.size(); ++o) {
      const output_state& saved = st.outputs[o];
      output_stats& s = stats_.outputs[o];
      s.accepted = saved.accepted;
      s.emitted_into = saved.emitted_into;
      s.filtered = saved.filtered;
      s.late = saved.late;
      s.rows_out = saved.rows_out;
      s.windows_emitted = saved.windows_emitted;
    }
    stats_.watermark = st.watermark;
    stats_.restored_checkpoint = st.id;
    stats_.restore_seconds = std::chrono::duration<double>(clock_type::now() - load_begin).count();
    dead_letter_.truncate_to(st.dead_letter_length);
    mark_ = st.source;
    last_mark_ = st.source;
    // A Kafka partition's state and position come with its assignment (take_over), from whichever
    // instance held it last — this one's chain included.
    next_id = st.id + 1;
    segments = st.segments;
    restored_->dedup_entries.clear();
    restored_->dedup_entries.shrink_to_fit();
    restored_->agg = {};
    for (output_state& o : restored_->outputs) o.groups = {};  // the sink keeps the lengths
    if (shared) {
      spdlog::info(
          "checkpoint {} of member '{}' found in '{}': counters and sink positions continue; "
          "partitions' state is loaded as they are assigned",
          st.id, ownership_->member(), cc.dir);
    } else {
      spdlog::info(
          "checkpoint {} restored from '{}' in {:.3f} s: {} dedup entries, {} open groups, "
          "watermark {}, {} records counted before it",
          st.id, cc.dir, stats_.restore_seconds, restored_entries, stage_.agg_stats().entries,
          st.watermark, st.counters.in());
    }
  } else {
    // A fresh start owns the sink and dead-letter files as it owns the state: the sink is
    // opened empty ("w"), and so is the dead-letter file. Otherwise the dead letters of a run
    // killed before its first durable checkpoint (flushed by a cut whose checkpoint never
    // became durable) would stay, and this run would write them a second time.
    dead_letter_.truncate_to(0);
    spdlog::info("checkpoints: none in '{}' yet; starting fresh (every {} ms, {} kept)", cc.dir,
                 cc.interval_ms, cc.retain);
  }
  // Checkpoints newer than the one restored were unusable (torn, corrupt) or pending a
  // transaction that never committed: the ids after it start clean.
  store_->discard_newer_than(next_id - 1);
  stage_.collect_new_entries(true);
  coordinator_ = std::make_unique<checkpoint_coordinator>(
      *store_, cc.interval_ms, cc.retain, next_id, std::move(segments),
      [this](const checkpoint_state& st) { checkpoint_durable(st); },
      [this](std::exception_ptr e) {
        {
          std::lock_guard lock(error_mutex_);
          if (!error_) error_ = e;
        }
        stop_flag = true;
      });
  // The tables hold the restored checkpoint's open groups (or none): the next cut may write only
  // what changes after them. Not for a shared directory, whose state comes with assignments
  // (each restarts the chain), nor for a checkpoint of a format that kept its groups in the
  // manifest (window_size_ms 0): their groups are in no segment.
  if (!shared && (!restored_ || restored_->window_size_ms > 0)) {
    coordinator_->continue_groups(restored_ ? restored_->group_segments
                                            : std::vector<group_segment_ref>{});
  }
  if (ownership_) {
    coordinator_->share(
        [this](const checkpoint_state& st) {
          for (const auto& k : st.source.kafka) {
            ownership_->check_owner(k.topic, k.partition, k.epoch);
          }
        },
        [this](const kafka_position& k) {
          return ownership_->claimed(k.topic, k.partition, k.epoch);
        });
  }
}

/// Writer thread: a checkpoint is durable; its Kafka offsets may now be committed.
void pipeline::checkpoint_durable(const checkpoint_state& st) {
  // exactly_once: the sink's transaction commits these offsets, after this point.
  if (!consumer_ || exactly_once_) return;
  handed_over(st.source.kafka, st.id);
  std::vector<io::source_offset> offsets = consumer_offsets(st.source);
  std::lock_guard lock(durable_mutex_);
  durable_offsets_ = std::move(offsets);
}

/// A checkpoint's Kafka positions as the consumer's source offsets.
std::vector<io::source_offset> pipeline::consumer_offsets(
    const source_position_state& source) const {
  std::vector<io::source_offset> offsets;
  if (!consumer_) return offsets;
  for (const auto& k : source.kafka) {
    const std::int32_t id = consumer_->source_id_of(k.topic, k.partition);
    if (id >= 0) offsets.push_back({id, k.next_offset});
  }
  return offsets;
}

/// Device thread, between two batches: cuts a checkpoint. The state is copied out here; the
/// sink thread adds its positions once every row before the cut is written, and the writer
/// thread encodes and writes it.
std::uint64_t pipeline::cut_checkpoint() {
  const auto begin = clock_type::now();
  auto st = std::make_unique<checkpoint_state>();
  st->id = coordinator_->begin_cut(begin, watermark_.high(),
                                   config_.dedup ? config_.dedup->ttl_ms : 0, st->segments);
  st->created_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  st->compat = compat_keys();
  st->transaction_pending = exactly_once_;
  st->counters.accepted = stats_.accepted;
  st->counters.duplicate = stats_.duplicate;
  st->counters.late = stats_.late;
  st->counters.filtered = stats_.filtered;
  st->counters.bad = bad_.load();
  st->counters.rows_out = stats_.rows_out;
  st->counters.windows_emitted = stats_.windows_emitted;
  st->counters.batches = stats_.batches;
  st->watermark = watermark_.high();
  st->max_event_time = max_event_time_;
  st->emitted_watermark = stage_.emitted_watermark();
  for (const auto& m : watermark_.partitions()) {
    const auto ahead = partition_frontier_.find(m.partition);
    st->partitions.push_back(
        {m.partition, m.max_event_time,
         std::max(st->emitted_watermark,
                  ahead == partition_frontier_.end() ? INT64_MIN : ahead->second)});
  }
  st->source = last_mark_;
  st->source.kafka.clear();
  for (const auto& [where, next] : kafka_next_) {
    const auto epoch = epochs_.find(where);
    st->source.kafka.push_back(
        {where.first, where.second, next, epoch == epochs_.end() ? 0 : epoch->second});
  }
  st->dead_letter_length = dead_letter_.length();
  // The open groups: only those updated since the previous checkpoint when its chain may be
  // continued, until the chain would hold twice as many rows as there are open groups (a restore
  // reads every segment of the chain) or grows long; then every open group again.
  // (of the first output: its groups are the chain's; Bug, review: with `outputs` the shared 1 ms
  // window and the sum over every output made an updates-only checkpoint unloadable)
  st->window_size_ms = stage_.outputs().front().window.size_ms;
  st->open_groups = stage_.open_groups(0);
  std::vector<group_segment_ref> chain;
  bool updates_only = stage_.updated_groups_known() && coordinator_->group_chain(chain);
  if (updates_only) {
    std::uint64_t chained = 0;
    for (const auto& g : chain) chained += g.rows;
    updates_only =
        chain.size() < max_group_segments &&
        chained + stage_.updated_groups() <= 2 * std::max<std::uint64_t>(st->open_groups, 1);
  }
  st->agg = stage_.snapshot_groups(updates_only);
  for (std::size_t o = 0; o < stats_.outputs.size(); ++o) {
    const output_stats& s = stats_.outputs[o];
    output_state& saved = st->outputs.emplace_back();
    saved.emitted_watermark = stage_.emitted_watermark(o);
    saved.accepted = s.accepted;
    saved.emitted_into = s.emitted_into;
    saved.filtered = s.filtered;
    saved.late = s.late;
    saved.rows_out = s.rows_out;
    saved.windows_emitted = s.windows_emitted;
    if (o > 0) saved.groups = stage_.snapshot_output(o);
  }
  st->agg_updates_only = updates_only;
  if (updates_only) st->group_segments = std::move(chain);
  // Entries that expired already (first_seen + ttl <= watermark) are never needed again: after
  // a finite input (watermark +inf) the final checkpoint keeps none.
  const std::int64_t ttl = config_.dedup ? config_.dedup->ttl_ms : 0;
  const std::int64_t high = watermark_.high();
  if (high != INT64_MIN && high >= INT64_MIN + ttl) {
    const std::int64_t expired_at_or_before = high - ttl;
    pending_entries_->erase_if(
        [&](const dedup_record& e) { return e.first_seen <= expired_at_or_before; });
  }
  st->new_entries = pending_entries_->spans();
  st->new_entries_owner = std::move(pending_entries_);  // freed once written
  pending_entries_ = std::make_shared<record_log>();
  const double seconds = std::chrono::duration<double>(clock_type::now() - begin).count();
  sink_item item;
  item.checkpoint = std::move(st);
  item.cut_seconds = seconds;
  item.seq = sink_seq_;
  const std::uint64_t id = item.checkpoint->id;
  if (out_.push(std::move(item))) {
    last_sink_seq_ = sink_seq_++;
    return id;
  }
  coordinator_->cancel_cut();  // the sink stage is gone (an error stops the run)
  return 0;
}

/// Device thread, after a batch: keeps what the next checkpoint needs of it.
void pipeline::note_for_checkpoint(const batch_item& item) {
  const auto& entries = stage_.new_entries();
  const io::source_position* pos = item.batch->positions();
  for (const auto& e : entries) {
    pending_entries_->emplace() = {e.first_seen, e.key.hi, e.key.lo, pos[e.row].partition, 0};
  }
  if (consumer_) {
    for (const auto& r : item.offsets) {
      auto& next = kafka_next_[{consumer_->topic_of(r.partition),
                                io::kafka_consumer::partition_of(r.partition)}];
      next = std::max(next, r.last + 1);
    }
  } else {
    last_mark_ = item.end_mark;
  }
}

}  // namespace trove::host::detail
