#pragma once
/// @file kafka_producer.hpp
/// @brief A Kafka producer for result rows and generated events: idempotent, batching and
/// compression from configuration, delivery reports checked. librdkafka stays behind this
/// interface.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace trove::io {

/// @brief How to reach the cluster and which topic to write.
struct kafka_producer_options {
  std::string brokers;  ///< bootstrap servers
  std::string topic;
  /// librdkafka properties applied after trove's defaults (idempotence on, lz4 compression,
  /// linger.ms 5), so a user can override any of them.
  std::map<std::string, std::string> properties;
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

  /// @brief Serves delivery reports without waiting.
  void poll();

  /// @brief Waits until every queued message is delivered.
  /// @throws std::runtime_error when a delivery failed or `timeout_ms` passed first
  void flush(int timeout_ms = 60'000);

  /// @brief Messages acknowledged by the cluster.
  [[nodiscard]] std::uint64_t delivered() const noexcept;
  /// @brief Messages whose delivery failed.
  [[nodiscard]] std::uint64_t failed() const noexcept;
  [[nodiscard]] const std::string& topic() const noexcept { return topic_; }

 private:
  void throw_if_failed();

  struct impl;
  std::unique_ptr<impl> impl_;
  std::string topic_;
};

}  // namespace trove::io
