#pragma once
/// @file result_sink.hpp
/// @brief Where result rows go: a file or stdout as JSON lines or CSV, or a Kafka topic as one
/// message per row (keyed by the sink's key columns). A sink reports its position (the file's
/// length), makes what it wrote durable (fsync; Kafka: every delivery acknowledged) and, on
/// recovery, cuts a file back to a checkpoint's length and appends — what checkpoints need of it.

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/encoder.hpp"
#include "io/kafka_producer.hpp"
#include "io/result_batch.hpp"

namespace trove::io {

/// @brief Which kind of sink.
enum class sink_kind : std::uint8_t { file, stdout_stream, kafka };

/// @brief Configuration of a result sink.
struct result_sink_options {
  sink_kind kind = sink_kind::stdout_stream;
  bool csv = false;                      ///< CSV instead of JSON lines
  std::string path;                      ///< file
  kafka_producer_options kafka;          ///< kafka: brokers resolved, topic, properties
  std::vector<std::string> key_columns;  ///< kafka: message key columns (empty: no key)
  /// file: continue from a checkpoint — cut back to this length, then appended to (absent: the
  /// file is started empty)
  std::optional<std::uint64_t> resume_length;
  /// file: checkpoints will fsync it, so write-back starts early (see flush())
  bool durable = false;
};

/// @brief Encodes result rows and writes them to one sink.
class result_sink {
 public:
  /// @throws std::runtime_error naming the file when it cannot be opened, or is shorter than
  /// resume_length; std::invalid_argument for a rejected Kafka producer property
  explicit result_sink(const result_sink_options& options);
  ~result_sink();
  result_sink(const result_sink&) = delete;
  result_sink& operator=(const result_sink&) = delete;

  /// @brief Encodes and writes rows; adds the time spent to `encode_seconds` and `write_seconds`.
  void write(const result_batch& rows, double& encode_seconds, double& write_seconds);
  /// @brief Hands everything written so far on (files: to the OS; Kafka: every message
  /// acknowledged).
  void flush();
  /// @brief After flush(): makes a file sink durable (fsync) before a checkpoint covers it.
  void sync();
  /// @brief A file sink's length after a flush (0 for other sinks): a checkpoint's sink position.
  [[nodiscard]] std::uint64_t length();

  /// @brief Whether rows go out in transactions (a Kafka sink with a transactional_id).
  [[nodiscard]] bool transactional() const noexcept;
  /// @brief Transactional sinks: commits the rows written since the last commit together with
  /// `consumer`'s next `offsets` (may be empty), and opens the next transaction.
  /// @throws kafka_transaction_error (abortable: those rows were discarded — redo from the last
  /// commit)
  void commit(const std::vector<source_offset>& offsets, const kafka_consumer* consumer);

 private:
  void write_messages(const result_batch& rows, double& encode_seconds, double& write_seconds);
  void write_records(const result_batch& rows, double& write_seconds);

  bool csv_format_;
  std::vector<std::string> key_names_;
  std::vector<std::size_t> key_columns_;
  std::unique_ptr<kafka_producer> producer_;
  std::string key_buffer_;
  std::vector<std::size_t> value_ends_;
  std::vector<std::size_t> key_ends_;
  json_encoder key_json_;
  csv_encoder key_csv_;
  std::FILE* file_ = nullptr;
  bool owned_ = false;
  bool wrote_header_ = false;
  bool durable_ = false;
  bool regular_ = true;  // a regular file (not a device or a pipe)
  std::uint64_t written_back_ = 0;
  std::string path_;
  std::string buffer_;
  json_encoder json_;
  csv_encoder csv_;
};

}  // namespace trove::io
