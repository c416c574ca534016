#include "host/device_stage.hpp"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <variant>

#include "io/encoder.hpp"
#include "kernels/error.hpp"

namespace trove::host {
namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

kernels::value_kind kind_of(io::field_type type) {
  switch (type) {
    case io::field_type::u64:
      return kernels::value_kind::u64;
    case io::field_type::f64:
      return kernels::value_kind::f64;
    default:
      return kernels::value_kind::i64;  // i64, timestamp_ms, bool (0/1)
  }
}

kernels::compare_op to_kernel(compare_op op) {
  switch (op) {
    case compare_op::eq:
      return kernels::compare_op::eq;
    case compare_op::ne:
      return kernels::compare_op::ne;
    case compare_op::lt:
      return kernels::compare_op::lt;
    case compare_op::le:
      return kernels::compare_op::le;
    case compare_op::gt:
      return kernels::compare_op::gt;
    default:
      return kernels::compare_op::ge;
  }
}

}  // namespace

device_stage::device_stage(const pipeline_config& config, kernels::backend& backend,
                           bool stage_on_cpu)
    : config_(config),
      backend_(backend),
      stream_(backend.create_stream()),
      zero_copy_(backend.kind() == kernels::backend_kind::cpu && !stage_on_cpu),
      copy_stream_(backend.create_stream()),
      outputs_(outputs_of(config)),
      several_(!config.outputs.empty()) {
  const io::schema& schema = config.schema;
  auto index = [&](const std::string& name) {
    const int i = schema.index_of(name);
    TROVE_EXPECTS(i >= 0, "unknown field '" + name + "'");
    return i;
  };
  event_time_column_ = index(config.event_time);
  TROVE_EXPECTS(config.filter.size() <= kernels::max_predicates,
                "filter may hold at most 8 predicates");
  // With checkpoints each table lists the groups updated since the last one: what the next
  // checkpoint writes of it (snapshot_groups), a list of its own beside update emission's.
  track_group_updates_ = config.checkpoint.has_value();
  parts_.resize(outputs_.size());
  for (std::size_t o = 0; o < outputs_.size(); ++o) {
    parts_[o].config = &outputs_[o];
    make_part(parts_[o], o == 0);
  }

  if (config.dedup) {
    for (const auto& name : config.dedup->key) dedup_columns_.push_back(index(name));
    TROVE_EXPECTS(dedup_columns_.size() <= kernels::max_key_columns,
                  "dedup.key may name at most 8 fields");
    kernels::dedup_options d;
    d.ttl_ms = config.dedup->ttl_ms;
    d.initial_capacity = config.dedup->initial_capacity;
    d.max_bytes = config.dedup->max_bytes;
    if (!config.dedup->incremental_rebuild) {
      d.incremental_min_slots = std::numeric_limits<std::size_t>::max();
    }
    // One required integer key compares exactly in 16-byte slots.
    const io::field& key = schema.fields[static_cast<std::size_t>(dedup_columns_.front())];
    d.exact_64bit_keys =
        dedup_columns_.size() == 1 && key.required && key.type != io::field_type::string;
    dedup_ = backend.make_dedup_set(d, stream_);
    dedup_options_ = d;
  }

  // The columns the kernels read, uploaded once per batch (each only once).
  auto use = [&](int c) {
    if (std::find(used_columns_.begin(), used_columns_.end(), c) == used_columns_.end()) {
      used_columns_.push_back(c);
    }
  };
  use(event_time_column_);
  for (const auto& p : config.filter) use(index(p.field));
  for (int c : dedup_columns_) use(c);
  for (const output_part& part : parts_) {
    for (const auto& p : part.config->filter) use(index(p.field));
    for (int c : part.group_columns) use(c);
    for (int c : part.field_columns) use(c);
  }

  // String constants of filters live on the device for the whole run.
  auto upload_constants = [&](const std::vector<filter_predicate>& filter,
                              kernels::device_buffer& to) {
    std::string constants;
    for (const auto& p : filter) {
      if (const auto* s = std::get_if<std::string>(&p.value)) constants += *s;
    }
    if (constants.empty()) return;
    to = kernels::device_buffer(backend, constants.size(), stream_);
    backend.copy_to_device(to.data(), constants.data(), constants.size(), stream_);
    backend.synchronize(stream_);
  };
  upload_constants(config.filter, filter_strings_);
  for (output_part& part : parts_) upload_constants(part.config->filter, part.filter_strings);
}

void device_stage::make_part(output_part& part, bool first) {
  const io::schema& schema = config_.schema;
  const output_config& config = *part.config;
  auto index = [&](const std::string& name) {
    const int i = schema.index_of(name);
    TROVE_EXPECTS(i >= 0, "unknown field '" + name + "'");
    return i;
  };
  for (const auto& name : config.group_by) part.group_columns.push_back(index(name));
  TROVE_EXPECTS(part.group_columns.size() <= kernels::max_key_columns,
                "group_by may name at most 8 fields");
  TROVE_EXPECTS(config.filter.size() <= kernels::max_predicates,
                "filter may hold at most 8 predicates");

  kernels::agg_options agg;
  for (int c : part.group_columns) {
    agg.key_is_string.push_back(schema.fields[static_cast<std::size_t>(c)].type ==
                                io::field_type::string);
  }
  std::vector<int>& field_columns = part.field_columns;
  for (const auto& spec : config.aggregates) {
    aggregate_output out{output_column(spec), spec.fn, -1, io::field_type::u64};
    if (spec.fn != aggregate_fn::count) {
      const int column = index(spec.field);
      auto it = std::find(field_columns.begin(), field_columns.end(), column);
      if (it == field_columns.end()) {
        field_columns.push_back(column);
        agg.fields.push_back(kind_of(schema.fields[static_cast<std::size_t>(column)].type));
        agg.field_nullable.push_back(!schema.fields[static_cast<std::size_t>(column)].required);
        agg.field_accumulators.push_back(0);
        it = field_columns.end() - 1;
      }
      out.field_slot = static_cast<int>(it - field_columns.begin());
      // Only the accumulators an aggregate reads exist in the table (avg: the sum, divided by
      // the non-null count that every nullable field keeps).
      std::uint8_t& wanted = agg.field_accumulators[static_cast<std::size_t>(out.field_slot)];
      switch (spec.fn) {
        case aggregate_fn::min:
          wanted |= kernels::acc_bit(kernels::acc_kind::min);
          break;
        case aggregate_fn::max:
          wanted |= kernels::acc_bit(kernels::acc_kind::max);
          break;
        case aggregate_fn::sum:
        case aggregate_fn::avg:
          wanted |= kernels::acc_bit(kernels::acc_kind::sum);
          break;
        case aggregate_fn::approx_count_distinct:
          wanted |= kernels::acc_bit(kernels::acc_kind::hll);
          break;
        case aggregate_fn::p50:
        case aggregate_fn::p90:
        case aggregate_fn::p95:
        case aggregate_fn::p99:
        case aggregate_fn::p999:
          wanted |= kernels::acc_bit(kernels::acc_kind::ddsketch);
          break;
        case aggregate_fn::count:
          break;
      }
      const io::field_type type = schema.fields[static_cast<std::size_t>(column)].type;
      out.type = spec.fn == aggregate_fn::avg || is_quantile(spec.fn) ? io::field_type::f64
                 : spec.fn == aggregate_fn::approx_count_distinct     ? io::field_type::u64
                                                                      : type;
    }
    part.aggregates.push_back(out);
  }
  agg.hll_precision = config_.sketch.hll_precision;
  agg.quantile_accuracy = config_.sketch.quantile_accuracy;
  agg.window = {config.window.size_ms,
                config.window.slide_ms > 0 ? config.window.slide_ms : config.window.size_ms};
  agg.track_updates = config.emit == emit_mode::update;
  // Only the first output's checkpoints write what changed; the others' are written whole.
  agg.track_checkpoint = track_group_updates_ && first;
  // A forwarding output aggregates nothing: its (idle) table stays at the smallest size.
  agg.initial_capacity = config.forward ? 1024 : config.window.initial_capacity;
  agg.max_bytes = config.window.max_bytes;
  // The tables' work (allocation, zeroing, kernels, frees) is ordered on the kernels' stream.
  part.agg = backend_.make_agg_table(agg, stream_);
  part.agg_options = agg;
  // `outputs`: the shared watermark holds back the largest allowed lateness; an output that
  // allows less sees a watermark that far ahead of it.
  if (several_) {
    part.lateness_offset = config_.window.allowed_lateness_ms - config.window.allowed_lateness_ms;
  }
}

std::int64_t device_stage::watermark_of(const output_part& part, std::int64_t watermark) noexcept {
  if (part.lateness_offset == 0 || watermark == INT64_MIN || watermark == INT64_MAX) {
    return watermark;
  }
  std::int64_t shifted;
  if (__builtin_add_overflow(watermark, part.lateness_offset, &shifted)) {
    shifted = part.lateness_offset > 0 ? INT64_MAX - 1 : INT64_MIN;
  }
  return shifted;
}

device_stage::~device_stage() {
  // A prefetch may still be copying into a staging buffer: let both streams drain before the
  // buffers go (their frees are ordered on the kernels' stream only).
  try {
    backend_.synchronize(copy_stream_);
    backend_.synchronize(stream_);
  } catch (...) {  // a failed device: nothing more to wait for
  }
  for (auto& slot : slots_) slot.buffers.clear();
  status_ = {};
  keys_ = {};
  filter_strings_ = {};
  dedup_.reset();
  parts_.clear();
  backend_.destroy_stream(copy_stream_);
  backend_.destroy_stream(stream_);
}

void device_stage::stage(const io::host_batch& batch, staged_batch& slot, bool on_copy_stream) {
  const kernels::stream_view stream = on_copy_stream ? copy_stream_ : stream_;
  const std::size_t n = batch.size();
  const std::size_t columns = batch.schema().fields.size();
  slot.views.assign(columns, kernels::column_view{});
  slot.buffers.resize(columns * 3 + 1);
  // Grows a reused buffer (never shrinks: steady state allocates nothing) and copies into it.
  auto upload = [&](std::size_t buffer, const void* src, std::size_t bytes) {
    kernels::device_buffer& b = slot.buffers[buffer];
    if (b.size() < bytes || b.data() == nullptr) {
      b = kernels::device_buffer(backend_, std::max<std::size_t>(bytes + bytes / 4, 64), stream);
    }
    if (bytes) backend_.copy_to_device(b.data(), src, bytes, stream);
    return b.data();
  };
  for (int index : used_columns_) {
    const auto c = static_cast<std::size_t>(index);
    const io::field& field = batch.schema().fields[c];
    kernels::column_view& view = slot.views[c];
    view.is_string = field.type == io::field_type::string;
    if (view.is_string) {
      view.d_offsets =
          static_cast<const std::uint32_t*>(upload(c * 3, batch.offsets(c), (n + 1) * 4));
      view.d_chars =
          static_cast<const char*>(upload(c * 3 + 1, batch.chars(c), batch.offsets(c)[n]));
    } else {
      view.d_values = static_cast<const std::uint64_t*>(upload(c * 3, batch.fixed(c), n * 8));
    }
    // Required fields are present in every row (the decoder guarantees it): no bitmap to copy.
    const std::uint8_t* validity = field.required ? nullptr : batch.validity(c);
    if (validity) {
      view.d_validity = static_cast<const std::uint8_t*>(upload(c * 3 + 2, validity, (n + 7) / 8));
    }
  }
  // The rows' source partitions (tags of the groups they create), packed: 4 bytes a row instead
  // of the 16 of the source positions they are read from.
  const io::source_position* positions = batch.positions();
  slot.partitions.resize(n);
  for (std::size_t row = 0; row < n; ++row) slot.partitions[row] = positions[row].partition;
  slot.d_partition =
      static_cast<const std::int32_t*>(upload(columns * 3, slot.partitions.data(), n * 4));
  slot.batch = &batch;
  slot.on_copy_stream = on_copy_stream;
}

void device_stage::prefetch(const io::host_batch& batch) {
  if (zero_copy_ || batch.size() == 0) return;
  for (auto& slot : slots_) {
    if (slot.batch == &batch) return;  // already there
  }
  for (auto& slot : slots_) {
    if (slot.batch == nullptr) {
      stage(batch, slot, true);
      return;
    }
  }
  // Both slots busy (a prefetch not yet processed): the batch is copied when it is processed.
}

kernels::column_view device_stage::column(const io::host_batch& batch, int index) {
  const auto c = static_cast<std::size_t>(index);
  if (!zero_copy_) {  // the device copies made by stage()
    TROVE_EXPECTS(current_ != nullptr && current_->batch == &batch,
                  "device_stage: column of a batch that was not staged");
    return current_->views[c];
  }
  // CPU backend: the host batch is already "device" memory.
  const io::field& field = batch.schema().fields[c];
  kernels::column_view view;
  view.is_string = field.type == io::field_type::string;
  if (view.is_string) {
    view.d_offsets = batch.offsets(c);
    view.d_chars = batch.chars(c);
  } else {
    view.d_values = batch.fixed(c);
  }
  // Required fields are present in every row (the decoder guarantees it): no bitmap to read.
  view.d_validity = field.required ? nullptr : batch.validity(c);
  return view;
}

void device_stage::set_predicates(const io::host_batch& batch,
                                  const std::vector<filter_predicate>& filter,
                                  const kernels::device_buffer& strings,
                                  kernels::classify_input& in) {
  std::uint32_t string_at = 0;
  for (const auto& p : filter) {
    kernels::predicate& k = in.predicates[in.num_predicates++];
    const int c = config_.schema.index_of(p.field);
    k.column = column(batch, c);
    k.op = to_kernel(p.op);
    k.kind = kind_of(config_.schema.fields[static_cast<std::size_t>(c)].type);
    std::visit(
        [&](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, std::string>) {
            k.d_string = strings.as<char>() + string_at;
            k.string_length = static_cast<std::uint32_t>(v.size());
            string_at += k.string_length;
          } else if constexpr (std::is_same_v<V, double>) {
            k.value = k.kind == kernels::value_kind::f64
                          ? std::bit_cast<std::uint64_t>(v)
                          : static_cast<std::uint64_t>(static_cast<std::int64_t>(v));
          } else if constexpr (std::is_same_v<V, bool>) {
            k.value = v ? 1 : 0;
          } else {
            k.value = k.kind == kernels::value_kind::f64
                          ? std::bit_cast<std::uint64_t>(static_cast<double>(v))
                          : static_cast<std::uint64_t>(v);
          }
        },
        p.value);
  }
}

step_output device_stage::process(const io::host_batch& batch, std::int64_t before,
                                  std::int64_t after, std::span<const std::int64_t> row_frontier) {
  step_output out;
  out.outputs.resize(parts_.size());
  for (std::size_t o = 0; o < parts_.size(); ++o) out.outputs[o].rows = empty_result(o);
  const std::size_t n = batch.size();
  if (n > 0) {
    auto start = clock_type::now();
    if (!zero_copy_) {
      // The batch's copies: prefetched on the copy stream during the previous batch's kernels
      // (wait for them), or enqueued now on the kernels' stream (ordered before the kernels).
      current_ = nullptr;
      for (auto& slot : slots_) {
        if (slot.batch == &batch) current_ = &slot;
      }
      if (current_ == nullptr) {
        for (auto& slot : slots_) {
          if (slot.batch == nullptr) current_ = &slot;
        }
        TROVE_EXPECTS(current_ != nullptr, "device_stage: no free staging slot");
        stage(batch, *current_, false);
      }
      if (current_->on_copy_stream) backend_.synchronize(copy_stream_);
      // The kernels on stream_ read the copies from now on: a buffer is freed there (when a
      // later stage() grows it, or at the end), after them, not on the stream that copied it.
      for (auto& buffer : current_->buffers) buffer.use_on(stream_);
    }
    if (status_.size() < n) status_ = kernels::device_buffer(backend_, n * 2, stream_);
    if (dedup_ && keys_.size() < n * sizeof(kernels::hash128)) {
      keys_ = kernels::device_buffer(backend_, n * 2 * sizeof(kernels::hash128), stream_);
    }
    // The shared pass: event-time range, the top-level filter and dedup keys; with one output
    // also its late check (fused). With `outputs` no row is late here: lateness is per output.
    output_part& first = parts_.front();
    kernels::classify_input in;
    in.num_rows = n;
    in.d_event_time =
        reinterpret_cast<const std::int64_t*>(column(batch, event_time_column_).d_values);
    in.window = first.agg_options.window;
    in.emitted_watermark = several_ ? INT64_MIN : first.agg->emitted_watermark();
    set_predicates(batch, config_.filter, filter_strings_, in);
    for (int c : dedup_columns_) in.dedup_keys.columns[in.dedup_keys.count++] = column(batch, c);
    const std::int32_t* d_partition = nullptr;
    std::size_t partition_stride = 1;
    if (zero_copy_) {  // read in place from the batch's source positions
      static_assert(sizeof(io::source_position) % sizeof(std::int32_t) == 0);
      d_partition = &batch.positions()[0].partition;
      partition_stride = sizeof(io::source_position) / sizeof(std::int32_t);
    } else {
      d_partition = current_->d_partition;
    }
    const std::int64_t* d_frontier = nullptr;
    if (!row_frontier.empty()) {
      TROVE_EXPECTS(row_frontier.size() == n, "device_stage: one row frontier per row");
      TROVE_EXPECTS(!several_, "device_stage: row frontiers with several outputs");
      d_frontier = row_frontier.data();
      if (!zero_copy_) {
        if (row_frontier_.size() < n * sizeof(std::int64_t)) {
          row_frontier_ = kernels::device_buffer(backend_, n * 2 * sizeof(std::int64_t), stream_);
        }
        backend_.copy_to_device(row_frontier_.data(), row_frontier.data(), n * sizeof(std::int64_t),
                                stream_);
        d_frontier = row_frontier_.as<std::int64_t>();
      }
      in.d_row_frontier = d_frontier;
    }
    timings_.h2d = seconds_since(start);
    start = clock_type::now();

    auto* d_status = status_.as<std::uint8_t>();
    auto* d_keys = keys_.as<kernels::hash128>();
    backend_.classify(in, d_status, d_keys, stream_);
    if (dedup_) dedup_->apply(d_keys, in.d_event_time, d_status, n, before, stream_);
    entries_count_ = 0;
    if (collect_ && dedup_) {
      if (entries_capacity_ < n) {
        entries_ = std::make_unique_for_overwrite<kernels::dedup_entry[]>(n);
        entries_capacity_ = n;
      }
      entries_count_ = dedup_->collect_accepted(d_keys, in.d_event_time, d_status, n, before,
                                                entries_.get(), stream_);
    }
    backend_.count_status(d_status, n, out.status_counts, stream_);
    // Statuses come back to the host only when some rows must reach the dead-letter file.
    std::vector<std::uint8_t> host_status;
    auto rows_with = [&](const std::uint8_t* d, std::uint8_t status,
                         std::vector<std::uint32_t>& rows) {
      host_status.resize(n);
      backend_.copy_to_host(host_status.data(), d, n, stream_);
      backend_.synchronize(stream_);
      for (std::size_t row = 0; row < n; ++row) {
        if (host_status[row] == status) rows.push_back(static_cast<std::uint32_t>(row));
      }
    };
    if (out.status_counts[kernels::status_bad] > 0) {
      rows_with(d_status, kernels::status_bad, out.bad_rows);
    }

    for (std::size_t o = 0; o < parts_.size(); ++o) {
      output_part& part = parts_[o];
      const output_config& oc = *part.config;
      output_step& step = out.outputs[o];
      const std::uint8_t* d_part_status = d_status;
      if (several_) {
        // The output's own filter and lateness, over the rows the shared pass accepted.
        if (part.status.size() < n) part.status = kernels::device_buffer(backend_, n * 2, stream_);
        kernels::classify_input refine;
        refine.num_rows = n;
        refine.d_event_time = in.d_event_time;
        refine.window = part.agg_options.window;
        refine.emitted_watermark = part.agg->emitted_watermark();
        refine.d_prior_status = d_status;
        set_predicates(batch, oc.filter, part.filter_strings, refine);
        backend_.classify(refine, part.status.as<std::uint8_t>(), nullptr, stream_);
        d_part_status = part.status.as<std::uint8_t>();
        std::uint64_t counts[kernels::status_count] = {};
        backend_.count_status(d_part_status, n, counts, stream_);
        step.emitted_into = counts[kernels::status_accepted];
        step.late = counts[kernels::status_late];
        step.filtered =
            counts[kernels::status_filtered] - out.status_counts[kernels::status_filtered];
      } else {
        step.emitted_into = out.status_counts[kernels::status_accepted];
        step.late = out.status_counts[kernels::status_late];
      }
      if (!oc.forward) {
        kernels::agg_input agg;
        agg.num_rows = n;
        for (int c : part.group_columns) {
          agg.keys.columns[agg.keys.count++] = column(batch, c);
          if (batch.schema().fields[static_cast<std::size_t>(c)].type == io::field_type::string) {
            agg.key_string_bytes += batch.offsets(static_cast<std::size_t>(c))[n];
          }
        }
        for (std::size_t f = 0; f < part.field_columns.size(); ++f) {
          agg.fields[f] = column(batch, part.field_columns[f]);
        }
        agg.d_partition = d_partition;
        agg.partition_stride = partition_stride;
        agg.d_row_frontier = d_frontier;
        agg.d_event_time = in.d_event_time;
        agg.d_status = d_part_status;
        part.agg->aggregate(agg, stream_);
      } else if (step.emitted_into > 0) {
        // The forwarded rows: a compaction of the accept mask on the device, only their indices
        // come back (the record bytes stay on the host).
        if (part.selected.size() < n * sizeof(std::uint32_t)) {
          part.selected = kernels::device_buffer(backend_, n * 2 * sizeof(std::uint32_t), stream_);
        }
        const std::size_t count = backend_.select_rows(d_part_status, n, kernels::status_accepted,
                                                       part.selected.as<std::uint32_t>(), stream_);
        step.forwarded_rows.resize(count);
        backend_.copy_to_host(step.forwarded_rows.data(), part.selected.data(),
                              count * sizeof(std::uint32_t), stream_);
        backend_.synchronize(stream_);
        forward(batch, step);
      }
      if (oc.late == late_policy::dead_letter && step.late > 0) {
        rows_with(d_part_status, kernels::status_late, step.late_rows);
      }
    }
    timings_.kernels = seconds_since(start);
  }
  if (current_ != nullptr) {  // the kernels are done with the copies (count_status waited)
    current_->batch = nullptr;
    current_ = nullptr;
  }
  const auto start = clock_type::now();
  extract(after, n > 0, out);
  timings_.extract = seconds_since(start);
  return out;
}

void device_stage::extract(std::int64_t watermark, bool updates, step_output& out) {
  for (std::size_t o = 0; o < parts_.size(); ++o) {
    output_part& part = parts_[o];
    const output_config& oc = *part.config;
    if (oc.forward) continue;  // nothing is held back
    if (oc.emit == emit_mode::update && updates) {
      emit(part, part.agg->extract_updated(stream_), out.outputs[o], true);
    }
    emit(part, part.agg->extract_closed(watermark_of(part, watermark), stream_), out.outputs[o],
         oc.emit == emit_mode::final);
  }
}

kernels::agg_snapshot device_stage::snapshot_groups(bool updated_only) {
  kernels::agg_table& agg = *parts_.front().agg;
  if (updated_only) {
    TROVE_EXPECTS(updated_groups_known(), "snapshot_groups: the updated groups are not tracked");
    return agg.snapshot_updated(stream_);
  }
  kernels::agg_snapshot all = agg.snapshot(stream_);
  if (track_group_updates_) {
    agg.forget_updated(stream_);  // the next checkpoint continues from this one
    updates_since_full_ = true;
  }
  return all;
}

std::size_t device_stage::updated_groups() const noexcept {
  return track_group_updates_ ? parts_.front().agg->updated_count() : 0;
}

kernels::agg_snapshot device_stage::snapshot_output(std::size_t output) {
  TROVE_EXPECTS(output > 0 && output < parts_.size(), "snapshot_output: no such output");
  return parts_[output].agg->snapshot(stream_);
}

void device_stage::restore_output(std::size_t output, const kernels::agg_snapshot& groups,
                                  std::int64_t emitted_watermark) {
  TROVE_EXPECTS(output > 0 && output < parts_.size(), "restore_output: no such output");
  parts_[output].agg->restore(groups, emitted_watermark, stream_);
}

void device_stage::restore(const std::vector<kernels::dedup_entry>& entries, std::int64_t watermark,
                           const kernels::agg_snapshot& groups, std::int64_t emitted_watermark) {
  if (dedup_ && !entries.empty()) {
    dedup_->insert_entries(entries.data(), entries.size(), watermark, stream_);
  }
  parts_.front().agg->restore(groups, emitted_watermark, stream_);
}

void device_stage::reset_state() {
  // The old tables free their memory on the work stream before the new ones take theirs.
  for (output_part& part : parts_) {
    cross_partition_before_ += part.agg->cross_partition_rows();
    part.agg.reset();
    part.agg = backend_.make_agg_table(part.agg_options, stream_);
  }
  updates_since_full_ = false;  // a checkpoint chain's groups are gone from the new table
  if (dedup_) {
    dedup_.reset();
    dedup_ = backend_.make_dedup_set(dedup_options_, stream_);
  }
}

step_output device_stage::close_windows(std::int64_t watermark) {
  step_output out;
  out.outputs.resize(parts_.size());
  for (std::size_t o = 0; o < parts_.size(); ++o) out.outputs[o].rows = empty_result(o);
  extract(watermark, true, out);
  return out;
}

void device_stage::emit(const output_part& part, kernels::agg_result&& result, output_step& out,
                        bool rows) {
  if (result.rows == 0) return;
  if (rows) convert(part, result, out.rows);
  // In update mode closed windows were already emitted as updates; they only count here.
  if (!rows || part.config->emit == emit_mode::final) out.windows_emitted += result.windows;
}

void device_stage::forward(const io::host_batch& batch, output_step& out) const {
  io::result_batch& rows = out.rows;
  if (batch.has_records()) {
    rows.record_header = batch.record_header();
    for (std::uint32_t row : out.forwarded_rows) {
      rows.append_record(batch.record(row), batch.record_key(row));
    }
  } else {  // generated events: their fields as JSON
    for (std::uint32_t row : out.forwarded_rows) rows.append_record(io::row_as_json(batch, row));
  }
}

io::result_batch device_stage::empty_result(std::size_t output) const {
  const output_part& part = parts_.at(output);
  io::result_batch batch;
  if (part.config->forward) {
    batch.forwarded = true;
    return batch;
  }
  for (int c : part.group_columns) {
    const io::field& f = config_.schema.fields[static_cast<std::size_t>(c)];
    batch.add_column(f.name, f.type);
  }
  batch.add_column("window_start", io::field_type::timestamp_ms);
  batch.add_column("window_end", io::field_type::timestamp_ms);
  for (const auto& o : part.aggregates) batch.add_column(o.name, o.type);
  return batch;
}

void device_stage::convert(const output_part& part, const kernels::agg_result& r,
                           io::result_batch& out) const {
  std::size_t col = 0;
  for (std::size_t k = 0; k < part.group_columns.size(); ++k, ++col) {
    io::result_column& dst = out.columns[col];
    const kernels::result_key_column& src = r.keys[k];
    for (std::size_t row = 0; row < r.rows; ++row) {
      if (!src.valid[row]) {
        dst.append_null();
      } else if (src.is_string) {
        dst.append_string(std::string_view(src.chars).substr(
            src.offsets[row], src.offsets[row + 1] - src.offsets[row]));
      } else {
        dst.append_u64(src.values[row]);  // the 8-byte word, whatever its type
      }
    }
  }
  for (std::size_t row = 0; row < r.rows; ++row) out.columns[col].append_i64(r.window_start[row]);
  ++col;
  for (std::size_t row = 0; row < r.rows; ++row) out.columns[col].append_i64(r.window_end[row]);
  ++col;
  for (const auto& o : part.aggregates) {
    io::result_column& dst = out.columns[col++];
    if (o.fn == aggregate_fn::count) {
      for (std::size_t row = 0; row < r.rows; ++row) dst.append_u64(r.count[row]);
      continue;
    }
    const kernels::result_field& f = r.fields[static_cast<std::size_t>(o.field_slot)];
    if (o.fn == aggregate_fn::approx_count_distinct) {  // nulls are not values: 0 when all null
      for (std::size_t row = 0; row < r.rows; ++row) dst.append_u64(f.approx_distinct[row]);
      continue;
    }
    if (is_quantile(o.fn)) {  // null when no value was counted (all null or NaN)
      const std::vector<std::uint64_t>& q = f.quantiles[quantile_index(o.fn)];
      for (std::size_t row = 0; row < r.rows; ++row) {
        const double v = std::bit_cast<double>(q[row]);
        if (std::isnan(v)) {
          dst.append_null();
        } else {
          dst.append_f64(v);
        }
      }
      continue;
    }
    for (std::size_t row = 0; row < r.rows; ++row) {
      if (f.non_null[row] == 0) {  // every value was null: no sum/min/max/avg
        dst.append_null();
        continue;
      }
      switch (o.fn) {
        case aggregate_fn::sum:
          dst.append_u64(f.sum[row]);
          break;
        case aggregate_fn::min:
          dst.append_u64(f.min[row]);
          break;
        case aggregate_fn::max:
          dst.append_u64(f.max[row]);
          break;
        default: {
          double sum = 0;
          switch (f.kind) {
            case kernels::value_kind::f64:
              sum = std::bit_cast<double>(f.sum[row]);
              break;
            case kernels::value_kind::i64:
              sum = static_cast<double>(static_cast<std::int64_t>(f.sum[row]));
              break;
            case kernels::value_kind::u64:
              sum = static_cast<double>(f.sum[row]);
              break;
          }
          dst.append_f64(sum / static_cast<double>(f.non_null[row]));
        }
      }
    }
  }
  out.rows += r.rows;
}

kernels::table_stats device_stage::dedup_stats() const {
  return dedup_ ? dedup_->stats() : kernels::table_stats{};
}
kernels::table_stats device_stage::agg_stats() const {
  if (parts_.size() == 1) return parts_.front().agg->stats();
  kernels::table_stats sum;
  for (const output_part& part : parts_) {
    const kernels::table_stats t = part.agg->stats();
    sum.entries += t.entries;
    sum.used += t.used;
    sum.capacity += t.capacity;
    sum.bytes += t.bytes;
    sum.rebuilds += t.rebuilds;
    sum.blocking_rebuilds += t.blocking_rebuilds;
    sum.sketch_bytes += t.sketch_bytes;
  }
  return sum;
}
std::uint64_t device_stage::cross_partition_rows() const {
  std::uint64_t rows = cross_partition_before_;
  for (const output_part& part : parts_) rows += part.agg->cross_partition_rows();
  return rows;
}

}  // namespace trove::host
