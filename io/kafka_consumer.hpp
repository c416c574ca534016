#pragma once
/// @file kafka_consumer.hpp
/// @brief The Kafka source: librdkafka's high-level consumer in a consumer group
/// (cooperative-sticky assignment with librdkafka ≥ 2.3, round-robin before: see the .cpp),
/// polled in batches, auto-commit off — the pipeline commits
/// offsets only for records whose effects are durable. librdkafka stays behind this interface.
///
/// Every (topic, partition) gets a dense *source partition* id, `topic_index << 20 | partition`,
/// which is what batch rows carry in source_position::partition (so watermarks are tracked per
/// topic-partition); partition_name() turns it back into "topic[partition]".

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/batch.hpp"

namespace trove::io {

/// @brief Where a partition starts the first time this consumer is assigned it.
enum class kafka_start_from : std::uint8_t {
  committed,  ///< the group's committed offset, or the earliest when there is none
  earliest,   ///< the earliest offset, whatever was committed
  latest,     ///< the end of the partition: only new messages
};

/// @brief Consumer configuration.
struct kafka_consumer_options {
  std::string brokers;
  std::vector<std::string> topics;
  std::string group_id = "trove";
  kafka_start_from start = kafka_start_from::committed;
  /// Track the end offsets partitions had when first assigned (for at_end()).
  bool exit_at_end = false;
  /// librdkafka properties applied after trove's defaults, e.g. {"fetch.max.bytes", "..."}.
  std::map<std::string, std::string> properties;
  /// Where partitions start the first time they are assigned, by (topic, partition): a
  /// checkpoint's offsets, which win over `start` and the group's committed offsets.
  std::map<std::pair<std::string, std::int32_t>, std::int64_t> resume_offsets;
  /// Eager rebalancing (every rebalance revokes the whole assignment, then assigns the new one):
  /// what moving state with partitions needs. Off: cooperative-sticky where safe (see the .cpp).
  bool eager = false;
};

/// @brief A topic-partition.
struct topic_partition {
  std::string topic;
  std::int32_t partition = 0;
};

/// @brief "Start where `start` says" for a partition (kafka_consumer::on_assign).
inline constexpr std::int64_t kafka_default_offset = INT64_MIN;

/// @brief One consumed message; views are valid only during the handler call.
struct kafka_record {
  std::string_view payload;
  std::string_view key;  ///< empty when the message has none
  std::string_view topic;
  source_position position;    ///< (source partition id, offset)
  std::int32_t partition = 0;  ///< the Kafka partition
};

/// @brief Next offset to consume (= last processed + 1) of a source partition.
struct source_offset {
  std::int32_t source_partition = 0;
  std::int64_t next_offset = 0;
};

/// @brief Lag of one assigned partition.
struct partition_lag {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t lag = 0;  ///< high watermark − next offset to consume (≥ 0)
};

/// @brief A consumer-group member reading the configured topics.
class kafka_consumer {
 public:
  /// @throws std::invalid_argument naming the property when librdkafka rejects one
  explicit kafka_consumer(const kafka_consumer_options& options);
  ~kafka_consumer();
  kafka_consumer(const kafka_consumer&) = delete;
  kafka_consumer& operator=(const kafka_consumer&) = delete;

  /// @brief Consumes up to `max_messages`, waiting at most `timeout_ms` for the first; calls
  /// `handler` for each message in partition order. Returns the number of messages handled.
  /// Informational errors (broker down, topic not yet created) are logged and retried by
  /// librdkafka; a fatal one throws std::runtime_error.
  std::size_t poll(std::size_t max_messages, int timeout_ms,
                   const std::function<void(const kafka_record&)>& handler);

  /// @brief With exit_at_end: true once partitions are assigned and every one has been consumed
  /// up to the end offset it had when first assigned.
  [[nodiscard]] bool at_end() const;

  /// @brief Whether the group has assigned this member any partition yet.
  [[nodiscard]] bool assigned() const;

  /// @brief Commits offsets synchronously; partitions no longer assigned are skipped (their new
  /// owner re-reads from the last commit: at-least-once). Returns false (and logs why) when the
  /// cluster refused the commit.
  bool commit(const std::vector<source_offset>& offsets);

  /// @brief Called inside poll() just before partitions are revoked (commit what is durable).
  /// `lost`: the group already gave them to another member (session timeout, fenced).
  void on_revoke(std::function<void(bool lost)> callback);

  /// @brief Called inside poll() before newly assigned partitions are fetched: returns, per
  /// partition, the offset to start at (kafka_default_offset: as `start` says). With a callback,
  /// a partition always starts where it says — never at a position this process remembers.
  void on_assign(
      std::function<std::vector<std::int64_t>(const std::vector<topic_partition>&)> callback);

  /// @brief The source partition id of a topic-partition of this consumer's topics (-1: not one).
  [[nodiscard]] std::int32_t source_id_of(const std::string& topic, std::int32_t partition) const;

  /// @brief Source partitions assigned since the last call (so the watermark waits for an
  /// assigned partition that has not delivered anything yet).
  [[nodiscard]] std::vector<std::int32_t> take_new_assignments();

  /// @brief Consumer lag of every assigned partition (from cached high watermarks).
  [[nodiscard]] std::vector<partition_lag> lags() const;

  /// @brief The topic of a source partition id.
  [[nodiscard]] std::string topic_of(std::int32_t source_partition) const;
  /// @brief The Kafka partition of a source partition id.
  [[nodiscard]] static std::int32_t partition_of(std::int32_t source_partition) noexcept {
    return source_partition & ((1 << 20) - 1);
  }

  /// @brief "topic[partition]" of a source partition id.
  [[nodiscard]] std::string partition_name(std::int32_t source_partition) const;

  /// @brief librdkafka's consumer handle (an rd_kafka_t*), for io/ only: a transactional
  /// producer commits this member's offsets with its group metadata.
  [[nodiscard]] void* native_handle() const noexcept;

  /// @brief Leaves the group (revokes, commits nothing by itself). Idempotent.
  void close();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace trove::io
