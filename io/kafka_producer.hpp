#pragma once
/// @file kafka_producer.hpp
/// @brief A Kafka producer for result rows and generated events: idempotent, batching and
/// compression from configuration, delivery reports checked. librdkafka stays behind this
/// interface.

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "io/kafka_consumer.hpp"  // source_offset, the group whose offsets a transaction commits

namespace trove::io {

/// @brief How to reach the cluster and which topic to write.
struct kafka_producer_options {
  std::string brokers;  ///< bootstrap servers
  std::string topic;
  /// librdkafka properties applied after trove's defaults (idempotence on, lz4 compression,
  /// linger.ms 5), so a user can override any of them.
  std::map<std::string, std::string> properties;
  /// Non-empty: a transactional producer with this `transactional.id`. Construction runs
  /// init_transactions, which fences an older producer with the same id (a zombie) and aborts
  /// the transaction it left open; messages are then produced only inside transactions.
  std::string transactional_id;
  /// How long init/commit/abort of a transaction may take before it counts as failed.
  int transaction_timeout_ms = 60'000;
  /// `topic` is a template (routing): messages name their topic (produce_to), at most
  /// `max_topics` distinct ones.
  bool routed = false;
  std::uint32_t max_topics = 1000;
};

/// @brief A transaction did not commit. abortable(): it was aborted, and everything produced in
/// it is discarded — redo the work since the last committed transaction. Otherwise the producer
/// is unusable (fenced by a newer producer with the same transactional.id, or the cluster
/// refused transactions): stop.
class kafka_transaction_error : public std::runtime_error {
 public:
  kafka_transaction_error(const std::string& what, bool abortable)
      : std::runtime_error(what), abortable_(abortable) {}
  [[nodiscard]] bool abortable() const noexcept { return abortable_; }

 private:
  bool abortable_;
};

/// @brief Produces messages to one topic; flush() waits for every delivery report.
class kafka_producer {
 public:
  /// @throws std::runtime_error naming the property when the configuration is rejected
  explicit kafka_producer(const kafka_producer_options& options);
  ~kafka_producer();
  kafka_producer(const kafka_producer&) = delete;
  kafka_producer& operator=(const kafka_producer&) = delete;

  /// @brief Queues one message (copied); waits while librdkafka's queue is full. `partition` < 0:
  /// chosen by the partitioner from the key.
  /// @throws std::runtime_error after a failed delivery (no later message is queued past a loss)
  void produce(std::string_view key, std::string_view value, std::int32_t partition = -1);
  /// @brief Queues one message to the topic named (a routed producer).
  /// @throws std::runtime_error as produce(), and when the topic would be one more than
  /// max_topics distinct topics (naming sink.max_topics)
  void produce_to(std::string_view topic, std::string_view key, std::string_view value);

  /// @brief Serves delivery reports without waiting.
  void poll();

  /// @brief Waits until every queued message is delivered.
  /// @throws std::runtime_error when a delivery failed or `timeout_ms` passed first
  void flush(int timeout_ms = 60'000);

  /// @brief Transactional producers: opens the next transaction.
  /// @throws kafka_transaction_error
  void begin_transaction();

  /// @brief Transactional producers: commits the open transaction — every message produced in it
  /// and, when `offsets` is not empty, those next offsets of `consumer`'s group, atomically.
  /// Retriable errors are retried within transaction_timeout_ms.
  /// @throws kafka_transaction_error (abortable: the transaction was aborted)
  void commit_transaction(const std::vector<source_offset>& offsets,
                          const kafka_consumer* consumer);

  /// @brief Transactional producers: aborts the open transaction (its messages are discarded).
  /// @throws kafka_transaction_error when even that fails (the producer is unusable)
  void abort_transaction();

  /// @brief Whether this producer is transactional.
  [[nodiscard]] bool transactional() const noexcept;

  /// @brief Messages acknowledged by the cluster.
  [[nodiscard]] std::uint64_t delivered() const noexcept;
  /// @brief Messages whose delivery failed.
  [[nodiscard]] std::uint64_t failed() const noexcept;
  [[nodiscard]] const std::string& topic() const noexcept { return topic_; }

 private:
  void throw_if_failed();
  void produce_on(void* topic, std::string_view name, std::string_view key, std::string_view value,
                  std::int32_t partition);

  struct impl;
  std::unique_ptr<impl> impl_;
  std::string topic_;
  std::uint32_t max_topics_ = 1000;
};

}  // namespace trove::io
