#include "io/result_sink.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string_view>

namespace trove::io {
namespace {
using clock_type = std::chrono::steady_clock;
}  // namespace

result_sink::result_sink(const result_sink_options& options)
    : csv_format_(options.csv), key_names_(options.key_columns), durable_(options.durable) {
  const std::optional<std::uint64_t>& resume = options.resume_length;
  if (options.kind == sink_kind::kafka) {
    producer_ = std::make_unique<kafka_producer>(options.kafka);
    if (producer_->transactional()) producer_->begin_transaction();
    path_ = "kafka topic '" + options.kafka.topic + "'";
    csv_.omit_header();  // a message is one row; consumers know the columns
    key_csv_.omit_header();
    return;
  }
  if (options.kind == sink_kind::file) {
    struct stat existing {};
    // A device or a pipe (/dev/null, a FIFO) has no length to cut back to and no fsync.
    regular_ = ::stat(options.path.c_str(), &existing) != 0 || S_ISREG(existing.st_mode);
    if (resume && regular_) {
      struct stat st {};
      if (::stat(options.path.c_str(), &st) != 0 ||
          static_cast<std::uint64_t>(st.st_size) < *resume) {
        throw std::runtime_error(fmt::format(
            "sink file '{}' is missing or shorter than the {} bytes the checkpoint recorded: it "
            "was changed since; restore it, or start fresh with an empty checkpoint.dir",
            options.path, *resume));
      }
      if (::truncate(options.path.c_str(), static_cast<off_t>(*resume)) != 0) {
        throw std::runtime_error("cannot truncate sink file '" + options.path +
                                 "': " + std::strerror(errno));
      }
      // Bug (found by the outputs kill test): a resumed CSV file got its header a second time.
      if (*resume > 0) {
        wrote_header_ = true;
        csv_.omit_header();
      }
    }
    file_ = std::fopen(options.path.c_str(), resume ? "a" : "w");
    if (!file_) {
      throw std::runtime_error("cannot open sink file '" + options.path +
                               "' for writing: " + std::strerror(errno));
    }
    owned_ = true;
    path_ = options.path;
  } else if (options.kind == sink_kind::stdout_stream) {
    file_ = stdout;
    path_ = "stdout";
  }
}

result_sink::~result_sink() {
  if (owned_ && file_) std::fclose(file_);
}
void result_sink::write(const result_batch& rows, double& encode_seconds, double& write_seconds) {
  if (rows.forwarded) {
    write_records(rows, write_seconds);
    return;
  }
  if (producer_) {
    write_messages(rows, encode_seconds, write_seconds);
    return;
  }
  if (rows.rows == 0 && (!csv_format_ || wrote_header_)) return;
  const auto begin = clock_type::now();
  buffer_.clear();
  if (csv_format_) {
    csv_.encode(rows, buffer_);
    wrote_header_ = true;
  } else {
    json_.encode(rows, buffer_);
  }
  const auto encoded = clock_type::now();
  encode_seconds += std::chrono::duration<double>(encoded - begin).count();
  struct add_on_exit {
    double& to;
    clock_type::time_point from;
    ~add_on_exit() { to += std::chrono::duration<double>(clock_type::now() - from).count(); }
  } timed_write{write_seconds, encoded};
  if (!buffer_.empty() && std::fwrite(buffer_.data(), 1, buffer_.size(), file_) != buffer_.size()) {
    throw std::runtime_error("writing to sink '" + path_ + "' failed: " + std::strerror(errno));
  }
}
void result_sink::write_records(const result_batch& rows, double& write_seconds) {
  const auto begin = clock_type::now();
  struct add_on_exit {
    double& to;
    clock_type::time_point from;
    ~add_on_exit() { to += std::chrono::duration<double>(clock_type::now() - from).count(); }
  } timed_write{write_seconds, begin};
  if (producer_) {
    producer_->poll();
    const bool routed = rows.targets.size() == rows.rows;
    for (std::size_t row = 0; row < rows.rows; ++row) {
      if (routed) {
        producer_->produce_to(rows.targets[row], rows.record_keys[row], rows.records[row]);
      } else {
        producer_->produce(rows.record_keys[row], rows.records[row]);
      }
    }
    return;
  }
  buffer_.clear();
  if (!wrote_header_ && !rows.record_header.empty()) {
    buffer_.append(rows.record_header);
    buffer_ += '\n';
  }
  if (rows.rows == 0 && buffer_.empty()) return;
  wrote_header_ = true;
  buffer_.reserve(buffer_.size() + rows.records.bytes() + rows.rows);
  for (std::size_t row = 0; row < rows.rows; ++row) {
    buffer_.append(rows.records[row]);
    buffer_ += '\n';
  }
  if (std::fwrite(buffer_.data(), 1, buffer_.size(), file_) != buffer_.size()) {
    throw std::runtime_error("writing to sink '" + path_ + "' failed: " + std::strerror(errno));
  }
}

std::uint64_t result_sink::length() {
  if (producer_ || !owned_ || !regular_) return 0;
  struct stat st {};
  if (::fstat(::fileno(file_), &st) != 0) {
    throw std::runtime_error("cannot stat sink '" + path_ + "': " + std::strerror(errno));
  }
  return static_cast<std::uint64_t>(st.st_size);
}
void result_sink::sync() {
  if (producer_ || !owned_ || !regular_) return;
  if (::fsync(::fileno(file_)) != 0) {
    throw std::runtime_error("cannot sync sink '" + path_ + "': " + std::strerror(errno));
  }
}
void result_sink::flush() {
  if (producer_) {
    producer_->flush();
    return;
  }
  if (std::fflush(file_) != 0) {
    throw std::runtime_error("flushing sink '" + path_ + "' failed: " + std::strerror(errno));
  }
  if (durable_ && owned_ && regular_) {
    // Start the write-back of what was flushed now (it does not wait), so that the fsync of the
    // next checkpoint finds little left to write instead of every byte since the last one.
    const long end = std::ftell(file_);
    if (end > 0 && static_cast<std::uint64_t>(end) >= written_back_ + (std::uint64_t{8} << 20)) {
      (void)::sync_file_range(::fileno(file_), static_cast<off_t>(written_back_),
                              static_cast<off_t>(static_cast<std::uint64_t>(end) - written_back_),
                              SYNC_FILE_RANGE_WRITE);
      written_back_ = static_cast<std::uint64_t>(end);
    }
  }
}

void result_sink::write_messages(const result_batch& rows, double& encode_seconds,
                                 double& write_seconds) {
  producer_->poll();  // delivery reports of earlier rows; a failure stops the run here
  if (rows.rows == 0) return;
  const auto begin = clock_type::now();
  if (key_columns_.empty() && !key_names_.empty()) {
    for (const auto& name : key_names_) {
      for (std::size_t idx = 0; idx < rows.columns.size(); ++idx) {
        if (rows.columns[idx].name == name) key_columns_.push_back(idx);
      }
    }
  }
  buffer_.clear();
  key_buffer_.clear();
  value_ends_.clear();
  key_ends_.clear();
  encode_options values;
  values.row_ends = &value_ends_;
  encode_options keys;
  keys.row_ends = &key_ends_;
  keys.columns = &key_columns_;
  if (csv_format_) {
    csv_.encode(rows, buffer_, values);
    if (!key_columns_.empty()) key_csv_.encode(rows, key_buffer_, keys);
  } else {
    json_.encode(rows, buffer_, values);
    if (!key_columns_.empty()) key_json_.encode(rows, key_buffer_, keys);
  }
  const auto encoded = clock_type::now();
  encode_seconds += std::chrono::duration<double>(encoded - begin).count();
  std::size_t value_begin = 0;
  std::size_t key_begin = 0;
  const std::string_view values_text(buffer_);
  const std::string_view keys_text(key_buffer_);
  for (std::size_t row = 0; row < rows.rows; ++row) {
    // Each row's text ends with '\n', which is not part of the message.
    const std::string_view value =
        values_text.substr(value_begin, value_ends_[row] - value_begin - 1);
    value_begin = value_ends_[row];
    std::string_view key;
    if (!key_columns_.empty()) {
      key = keys_text.substr(key_begin, key_ends_[row] - key_begin - 1);
      key_begin = key_ends_[row];
    }
    if (rows.targets.size() == rows.rows) {
      producer_->produce_to(rows.targets[row], key, value);
    } else {
      producer_->produce(key, value);
    }
  }
  write_seconds += std::chrono::duration<double>(clock_type::now() - encoded).count();
}

bool result_sink::transactional() const noexcept {
  return producer_ != nullptr && producer_->transactional();
}

void result_sink::commit(const std::vector<source_offset>& offsets,
                         const kafka_consumer* consumer) {
  if (!transactional()) return;
  producer_->commit_transaction(offsets, consumer);
  producer_->begin_transaction();
}

}  // namespace trove::io
