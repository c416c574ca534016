#include "host/pipeline.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "host/bounded_queue.hpp"
#include "host/device_select.hpp"
#include "host/device_stage.hpp"
#include "host/watermark.hpp"
#include "io/csv_decoder.hpp"
#include "io/dead_letter.hpp"
#include "io/encoder.hpp"
#include "io/json_decoder.hpp"
#include "io/line_reader.hpp"
#include "io/synthetic.hpp"
#include "kernels/error.hpp"
#include "kernels/window.hpp"

namespace trove::host {
namespace {

std::atomic<bool> stop_flag{false};
using clock_type = std::chrono::steady_clock;

/// Batch memory from the backend: pinned on CUDA (so H2D copies are true DMA), aligned on CPU.
class backend_allocator final : public io::host_allocator {
 public:
  explicit backend_allocator(kernels::backend& be) : be_(be) {}
  void* allocate(std::size_t bytes) override { return be_.allocate_host(bytes); }
  void deallocate(void* ptr, std::size_t bytes) noexcept override {
    be_.deallocate_host(ptr, bytes);
  }

 private:
  kernels::backend& be_;
};

/// A filled batch travelling from the source to the device stage.
struct batch_item {
  io::host_batch* batch = nullptr;                                   // null on the end marker
  std::vector<std::pair<std::int32_t, std::int64_t>> partition_max;  // max event time per partition
  bool end = false;
  bool interrupted = false;  // the end marker of a run stopped by a signal (input not exhausted)
};

/// Writes result rows to a file or stdout as JSON lines or CSV.
class sink_writer {
 public:
  explicit sink_writer(const sink_config& config) : format_(config.format) {
    if (config.type == sink_type::file) {
      file_ = std::fopen(config.path.c_str(), "w");
      if (!file_) {
        throw std::runtime_error("cannot open sink file '" + config.path +
                                 "' for writing: " + std::strerror(errno));
      }
      owned_ = true;
      path_ = config.path;
    } else if (config.type == sink_type::stdout_stream) {
      file_ = stdout;
      path_ = "stdout";
    } else {
      throw logic_error("sink.type kafka is not available in this build yet; use file or stdout");
    }
  }
  ~sink_writer() {
    if (owned_ && file_) std::fclose(file_);
  }
  void write(const io::result_batch& rows) {
    if (rows.rows == 0 && (format_ != data_format::csv || wrote_header_)) return;
    buffer_.clear();
    if (format_ == data_format::csv) {
      csv_.encode(rows, buffer_);
      wrote_header_ = true;
    } else {
      json_.encode(rows, buffer_);
    }
    if (!buffer_.empty() &&
        std::fwrite(buffer_.data(), 1, buffer_.size(), file_) != buffer_.size()) {
      throw std::runtime_error("writing to sink '" + path_ + "' failed: " + std::strerror(errno));
    }
  }
  void flush() {
    if (std::fflush(file_) != 0) {
      throw std::runtime_error("flushing sink '" + path_ + "' failed: " + std::strerror(errno));
    }
  }

 private:
  data_format format_;
  std::FILE* file_ = nullptr;
  bool owned_ = false;
  bool wrote_header_ = false;
  std::string path_;
  std::string buffer_;
  io::json_encoder json_;
  io::csv_encoder csv_;
};

/// Re-encodes a decoded row as JSON (for late records sent to the dead-letter file).
std::string row_as_json(const io::host_batch& batch, std::size_t row) {
  std::string out = "{";
  const auto& fields = batch.schema().fields;
  for (std::size_t c = 0; c < fields.size(); ++c) {
    if (c) out += ',';
    io::append_json_string(out, fields[c].name);
    out += ':';
    if (!batch.is_valid(c, row)) {
      out += "null";
      continue;
    }
    const std::uint64_t v = batch.fixed(c) ? batch.fixed(c)[row] : 0;
    switch (fields[c].type) {
      case io::field_type::string:
        io::append_json_string(out, batch.string_at(c, row));
        break;
      case io::field_type::u64:
        out += fmt::format("{}", v);
        break;
      case io::field_type::f64:
        out += fmt::format("{}", std::bit_cast<double>(v));
        break;
      case io::field_type::boolean:
        out += v ? "true" : "false";
        break;
      default:
        out += fmt::format("{}", static_cast<std::int64_t>(v));
        break;
    }
  }
  out += '}';
  return out;
}

/// Everything one run owns.
class pipeline {
 public:
  pipeline(const pipeline_config& config, const run_options& options)
      : config_(config),
        options_(options),
        selected_(select_backend(config.device)),
        allocator_(*selected_.backend),
        stage_(config, *selected_.backend),
        watermark_(config.window.allowed_lateness_ms, config.window.idle_timeout_ms),
        free_(config.batch.buffers),
        ready_(config.batch.buffers),
        out_(8),
        dead_letter_(config.dead_letter.path) {
    spdlog::info("device: {} ({})", selected_.backend->description(), selected_.reason);
    for (std::uint32_t i = 0; i < config.batch.buffers; ++i) {
      pool_.push_back(std::make_unique<io::host_batch>(config.schema, config.batch.max_events,
                                                       config.batch.max_string_bytes, allocator_));
      free_.push(pool_.back().get());
    }
    ts_column_ = static_cast<std::size_t>(config.schema.index_of(config.event_time));
    stats_.device = selected_.backend->description();
  }

  run_stats run() {
    const auto start = clock_type::now();
    last_progress_ = start;
    std::thread source([this] { guarded([this] { read_source(); }); });
    std::thread sink([this] { guarded([this] { write_sink(); }); });
    guarded([this] { process(); });
    ready_.close();
    free_.close();
    out_.close();
    source.join();
    sink.join();
    dead_letter_.flush();
    if (error_) std::rethrow_exception(error_);
    stats_.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    stats_.events_per_second =
        stats_.seconds > 0 ? static_cast<double>(stats_.in) / stats_.seconds : 0;
    stats_.interrupted = stop_flag.load();
    return stats_;
  }

 private:
  template <class F>
  void guarded(F&& body) {
    try {
      body();
    } catch (...) {
      {
        std::lock_guard lock(error_mutex_);
        if (!error_) error_ = std::current_exception();
      }
      stop_flag = true;
      ready_.close();
      free_.close();
      out_.close();
    }
  }

  // ---- source stage -----------------------------------------------------------------------------
  io::host_batch* fresh_batch() {
    auto b = free_.pop();
    if (!b) return nullptr;
    (*b)->clear();
    return *b;
  }

  bool push_batch(io::host_batch*& batch) {
    batch_item item;
    item.batch = batch;
    if (batch->size() > 0) {
      const auto* ts = reinterpret_cast<const std::int64_t*>(batch->fixed(ts_column_));
      const auto* pos = batch->positions();
      for (std::size_t row = 0; row < batch->size(); ++row) {
        const std::int32_t p = pos[row].partition;
        if (item.partition_max.empty() || item.partition_max.back().first != p) {
          item.partition_max.emplace_back(p, ts[row]);
        } else if (ts[row] > item.partition_max.back().second) {
          item.partition_max.back().second = ts[row];
        }
      }
    }
    batch = nullptr;
    return ready_.push(std::move(item));
  }

  /// Whether a non-empty batch opened at `opened` has waited batch.linger.
  bool lingered(const io::host_batch* batch, clock_type::time_point opened) const {
    return batch->size() > 0 &&
           clock_type::now() - opened >= std::chrono::milliseconds(config_.batch.linger_ms);
  }

  /// At the end of a source: the last partial batch goes to the device, an empty one to the pool.
  void hand_over_last(io::host_batch*& batch) {
    if (!batch) return;
    if (batch->size() > 0) {
      push_batch(batch);
    } else {
      free_.push(batch);
    }
  }

  void bad_record(std::string_view reason, io::source_position pos, std::string_view text,
                  std::size_t original_bytes = 0) {
    bad_.fetch_add(1, std::memory_order_relaxed);
    dead_letter_.write(reason, source_name(), pos, text, original_bytes);
    if (options_.strict) {
      throw std::runtime_error(fmt::format("bad record at {}:{} ({}) and --strict is set",
                                           source_name(), pos.offset, reason));
    }
  }

  std::string source_name() const {
    return config_.source.type == source_type::file        ? config_.source.path
           : config_.source.type == source_type::synthetic ? "synthetic"
                                                           : "stdin";
  }

  void read_source() {
    if (config_.source.type == source_type::synthetic) {
      read_synthetic();
    } else if (config_.source.type == source_type::file ||
               config_.source.type == source_type::stdin_stream) {
      read_lines();
    } else {
      throw logic_error("source.type kafka is not available in this build yet");
    }
    // Only an exhausted input moves the watermark to +infinity; a stopped one must not emit its
    // open (partial) windows as final.
    ready_.push(batch_item{nullptr, {}, true, stop_flag.load()});
  }

  void read_lines() {
    io::line_reader_options lo;
    lo.max_line_bytes = config_.source.max_record_bytes;
    lo.cancel = &stop_flag;  // a signal or an error elsewhere ends a blocked read of stdin
    io::line_reader reader(config_.source.type == source_type::file ? config_.source.path : "-",
                           lo);
    const bool csv = config_.source.format == data_format::csv;
    io::json_decoder json(config_.schema, config_.source.max_record_bytes);
    io::csv_decoder csvd(config_.schema, config_.source.max_record_bytes);
    io::host_batch* batch = fresh_batch();
    auto opened = clock_type::now();
    io::line line;
    std::uint64_t since_check = 0;
    while (batch && !stop_flag.load(std::memory_order_relaxed)) {
      if (!reader.next(line)) {
        if (!reader.idle()) break;  // end of input
        // A quiet pipe: a batch that has waited for `linger` goes to the device now, so results
        // keep flowing when the producer is slow.
        if (lingered(batch, opened)) {
          if (!push_batch(batch) || !(batch = fresh_batch())) return;
        }
        continue;
      }
      const io::source_position pos{0, static_cast<std::int64_t>(line.number)};
      // Blank lines (empty or only whitespace) are not records.
      if (line.text.find_first_not_of(" \t\r") == std::string_view::npos) continue;
      if (csv && !csvd.has_header()) {
        const auto r = csvd.set_header(line.text);
        if (!r.ok()) throw logic_error("CSV header of " + source_name() + ": " + r.reason);
        continue;
      }
      if (line.overlong()) {
        bad_record(fmt::format("record too long: {} bytes > max_record_bytes ({})", line.length,
                               config_.source.max_record_bytes),
                   pos, line.text, line.length);
        continue;
      }
      auto decode = [&] {
        return csv ? csvd.decode(line.text, *batch, pos) : json.decode(line.text, *batch, pos);
      };
      if (batch->size() == 0) opened = clock_type::now();
      auto r = decode();
      if (r.status == io::decode_status::batch_full) {
        if (!push_batch(batch) || !(batch = fresh_batch())) return;
        opened = clock_type::now();
        r = decode();
      }
      if (r.status == io::decode_status::bad) {
        bad_record(r.reason, pos, line.text);
      } else if (r.status == io::decode_status::batch_full) {
        bad_record("record does not fit an empty batch (raise batch.max_string_bytes)", pos,
                   line.text);
      }
      if (batch->full() || (++since_check % 1024 == 0 && lingered(batch, opened))) {
        if (!push_batch(batch) || !(batch = fresh_batch())) return;
      }
    }
    hand_over_last(batch);
  }

  void read_synthetic() {
    const auto& s = config_.source.synthetic;
    io::synthetic_options o;
    o.events = s.events;
    o.rate = s.rate;
    o.keys = s.keys;
    o.zipf = s.zipf;
    o.duplicate_ratio = s.duplicate_ratio;
    o.disorder_ms = s.disorder_ms;
    o.types = s.types;
    o.span_ms = s.span_ms;
    o.seed = s.seed;
    o.start_time_ms = s.start_time_ms;
    io::synthetic_generator gen(o);
    const auto start = clock_type::now();
    io::host_batch* batch = fresh_batch();
    auto opened = clock_type::now();
    while (batch && !gen.done() && !stop_flag.load(std::memory_order_relaxed)) {
      std::size_t room = batch->capacity() - batch->size();
      if (o.rate > 0) {  // pace to the offered rate: never run ahead of the schedule
        const double elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
        const auto due = static_cast<std::uint64_t>(elapsed * o.rate) + 1;
        const std::uint64_t ahead = due > gen.produced() ? due - gen.produced() : 0;
        room = std::min<std::size_t>(room, ahead);
        if (room == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      if (room > 0) {
        if (batch->size() == 0) opened = clock_type::now();
        gen.fill(*batch, room);
      }
      if (batch->full() || lingered(batch, opened)) {
        if (!push_batch(batch) || !(batch = fresh_batch())) return;
      }
    }
    hand_over_last(batch);
  }

  // ---- device stage (this thread) ---------------------------------------------------------------
  void process() {
    while (auto item = ready_.pop()) {
      const auto now = clock_type::now();
      if (item->end) {
        if (!item->interrupted) {
          watermark_.finish();
          account(stage_.close_windows(watermark_.current(now)), nullptr);
        }
        break;
      }
      const std::int64_t before = watermark_.current(now);
      for (const auto& [partition, max_ts] : item->partition_max) {
        watermark_.observe(partition, max_ts, now);
      }
      const std::int64_t after = watermark_.current(now);
      step_output out = stage_.process(*item->batch, before, after);
      account(std::move(out), item->batch);
      ++stats_.batches;
      free_.push(item->batch);
      progress(false);
    }
    if (stop_flag.load()) {
      // Interrupted: windows the watermark already closed are emitted; open ones are not (they
      // would be partial). Without checkpoints their state is lost; say so.
      account(stage_.close_windows(watermark_.current(clock_type::now())), nullptr);
      stats_.open_groups = stage_.agg_stats().entries;
      if (stats_.open_groups) {
        spdlog::warn(
            "stopped before the end of the input: {} open groups of windows not yet "
            "closed by the watermark were not emitted",
            stats_.open_groups);
      }
    }
    stats_.bad = bad_.load();
    stats_.in = stats_.accepted + stats_.duplicate + stats_.late + stats_.filtered + stats_.bad;
    progress(true);
  }

  void account(step_output&& out, const io::host_batch* batch) {
    stats_.accepted += out.status_counts[kernels::status_accepted];
    stats_.duplicate += out.status_counts[kernels::status_duplicate];
    stats_.late += out.status_counts[kernels::status_late];
    stats_.filtered += out.status_counts[kernels::status_filtered];
    bad_.fetch_add(out.status_counts[kernels::status_bad], std::memory_order_relaxed);
    stats_.windows_emitted += out.windows_emitted;
    stats_.rows_out += out.rows.rows;
    stats_.watermark = watermark_.current(clock_type::now());
    if (batch) {
      for (std::uint32_t row : out.bad_rows) {
        dead_letter_.write(fmt::format("event time out of range [{}, {}] ms",
                                       kernels::min_event_time, kernels::max_event_time),
                           source_name(), batch->positions()[row], row_as_json(*batch, row));
      }
      for (std::uint32_t row : out.late_rows) {
        dead_letter_.write(fmt::format("late: every window of the record was already emitted "
                                       "(watermark {})",
                                       stats_.watermark),
                           source_name(), batch->positions()[row], row_as_json(*batch, row));
      }
    }
    if (out.rows.rows > 0 || (config_.sink.format == data_format::csv && !sent_any_)) {
      sent_any_ = true;
      out_.push(std::move(out.rows));
    }
  }

  void progress(bool final) {
    if (options_.quiet) return;
    const auto now = clock_type::now();
    if (!final && now - last_progress_ < std::chrono::milliseconds(config_.progress_interval_ms)) {
      return;
    }
    const double seconds = std::chrono::duration<double>(now - last_progress_).count();
    const std::uint64_t in = stats_.accepted + stats_.duplicate + stats_.late + stats_.filtered +
                             bad_.load(std::memory_order_relaxed);
    if (!final) {
      spdlog::info(
          "in {} (+{:.0f}/s)  accepted {}  duplicate {}  late {}  bad {}  rows out {}  "
          "watermark {}",
          in, seconds > 0 ? static_cast<double>(in - last_in_) / seconds : 0.0, stats_.accepted,
          stats_.duplicate, stats_.late, bad_.load(), stats_.rows_out, stats_.watermark);
    }
    last_progress_ = now;
    last_in_ = in;
  }

  // ---- sink stage -------------------------------------------------------------------------------
  void write_sink() {
    sink_writer sink(config_.sink);
    while (auto rows = out_.pop()) {
      sink.write(*rows);
      // Results leave the process as soon as nothing else is waiting: a downstream reader of a
      // slow stream sees each batch's rows then, not when a stdio buffer happens to fill.
      if (out_.size() == 0) sink.flush();
    }
    sink.flush();
  }

  const pipeline_config& config_;
  const run_options& options_;
  selected_backend selected_;
  backend_allocator allocator_;
  device_stage stage_;
  watermark_tracker watermark_;
  std::vector<std::unique_ptr<io::host_batch>> pool_;
  bounded_queue<io::host_batch*> free_;
  bounded_queue<batch_item> ready_;
  bounded_queue<io::result_batch> out_;
  io::dead_letter_writer dead_letter_;
  std::size_t ts_column_ = 0;
  std::atomic<std::uint64_t> bad_{0};
  run_stats stats_;
  bool sent_any_ = false;
  clock_type::time_point last_progress_;
  std::uint64_t last_in_ = 0;
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

}  // namespace

void request_stop() noexcept {
  stop_flag.store(true);
}

std::string run_stats::to_json() const {
  std::string device_json;
  io::append_json_string(device_json, device);
  return fmt::format(
      "{{\"in\":{},\"accepted\":{},\"duplicate\":{},\"late\":{},\"filtered\":{},\"bad\":{},"
      "\"rows_out\":{},\"windows_emitted\":{},\"batches\":{},\"seconds\":{:.6f},"
      "\"events_per_second\":{:.1f},\"device\":{},\"watermark\":{},\"open_groups\":{},"
      "\"interrupted\":{}}}",
      in, accepted, duplicate, late, filtered, bad, rows_out, windows_emitted, batches, seconds,
      events_per_second, device_json, watermark, open_groups, interrupted ? "true" : "false");
}

run_stats run_pipeline(const pipeline_config& config, const run_options& options) {
  stop_flag = false;
  pipeline p(config, options);
  return p.run();
}

}  // namespace trove::host
