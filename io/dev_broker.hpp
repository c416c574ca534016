#pragma once
/// @file dev_broker.hpp
/// @brief The embedded development broker: librdkafka's mock cluster, which speaks the real
/// Kafka protocol on loopback, so `trove run`, `kcat` and any Kafka client can talk to it without
/// a Kafka installation. For development and tests only: it keeps everything in memory, and
/// librdkafka 2.0 keeps only about 5 MiB (or 100k message sets) per partition, deleting older
/// data — use enough partitions and consume while producing.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace trove::io {

/// @brief Topics to create when the broker starts.
struct dev_topic {
  std::string name;
  int partitions = 4;
};

/// @brief A running in-process mock Kafka cluster (stops when destroyed).
class dev_broker {
 public:
  /// @param brokers number of mock brokers
  /// @param topics topics created up front (others are auto-created on first use, with the
  ///        mock cluster's default partition count)
  /// @throws std::runtime_error when the cluster cannot be started
  explicit dev_broker(int brokers = 1, const std::vector<dev_topic>& topics = {});
  ~dev_broker();
  dev_broker(const dev_broker&) = delete;
  dev_broker& operator=(const dev_broker&) = delete;

  /// @brief The bootstrap servers ("127.0.0.1:PORT,...") clients connect to.
  [[nodiscard]] const std::string& bootstrap_servers() const noexcept { return bootstraps_; }

  /// @brief Creates a topic (error if it exists with another partition count).
  void create_topic(const std::string& name, int partitions);

  /// @brief Fault injection: takes broker `broker_id` (1-based) down or brings it back.
  void set_broker_up(int broker_id, bool up);
  /// @brief Fault injection: the next `count` requests of Kafka API `api_key` (e.g. 0 Produce,
  /// 1 Fetch) fail with the retriable error `error_code` (e.g. 6 NOT_LEADER_OR_FOLLOWER).
  void push_request_errors(int api_key, int count, int error_code);
  /// @brief Fault injection: drops the errors still queued for Kafka API `api_key`.
  void clear_request_errors(int api_key);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
  std::string bootstraps_;
};

}  // namespace trove::io
