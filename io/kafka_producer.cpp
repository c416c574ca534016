#include "io/kafka_producer.hpp"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "io/kafka_util.hpp"

namespace trove::io {

struct kafka_producer::impl {
  rd_kafka_t* handle = nullptr;
  rd_kafka_topic_t* topic = nullptr;
  std::map<std::string, rd_kafka_topic_t*, std::less<>> routed;  // routed: topics opened so far
  std::atomic<std::uint64_t> delivered{0};
  std::atomic<std::uint64_t> failed{0};
  std::mutex error_mutex;
  std::string first_error;  // the first failed delivery, reported by the next call
  bool transactional = false;
  bool in_transaction = false;
  int transaction_timeout_ms = 60'000;
  std::string transactional_id;

  /// Runs one transactional call; retriable errors are retried until the timeout. A failure
  /// that is not fatal aborts the open transaction when `abort_on_failure` (the caller redoes
  /// its work) and throws an abortable error; a fatal one throws a fatal error.
  void transact(const char* what, const std::function<rd_kafka_error_t*(int)>& call,
                bool abort_on_failure) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(transaction_timeout_ms);
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            deadline - std::chrono::steady_clock::now())
                            .count();
      rd_kafka_error_t* error = call(static_cast<int>(std::max<std::int64_t>(left, 1)));
      if (!error) return;
      const std::string text = std::string(what) + " (transactional.id '" + transactional_id +
                               "'): " + rd_kafka_error_string(error);
      const bool retriable = rd_kafka_error_is_retriable(error) != 0;
      const bool fatal = rd_kafka_error_is_fatal(error) != 0;
      rd_kafka_error_destroy(error);
      if (retriable && !fatal && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      if (fatal || !abort_on_failure) {
        throw kafka_transaction_error("kafka producer: " + text, false);
      }
      abort_open();
      throw kafka_transaction_error("kafka producer: " + text + "; the transaction was aborted",
                                    true);
    }
  }

  /// Aborts the open transaction; what it produced is discarded.
  void abort_open() {
    transact(
        "abort_transaction",
        [this](int timeout) { return rd_kafka_abort_transaction(handle, timeout); }, false);
    in_transaction = false;
    failed.store(0, std::memory_order_relaxed);  // those deliveries belonged to the aborted one
    std::lock_guard lock(error_mutex);
    first_error.clear();
  }

  static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
    auto* self = static_cast<impl*>(opaque);
    if (message->err) {
      self->failed.fetch_add(1, std::memory_order_relaxed);
      std::lock_guard lock(self->error_mutex);
      if (self->first_error.empty()) {
        self->first_error = std::string(rd_kafka_err2str(message->err)) + " (partition " +
                            std::to_string(message->partition) + ")";
      }
    } else {
      self->delivered.fetch_add(1, std::memory_order_relaxed);
    }
  }
};

kafka_producer::kafka_producer(const kafka_producer_options& options)
    : impl_(std::make_unique<impl>()), topic_(options.topic) {
  std::map<std::string, std::string> properties = {
      {"bootstrap.servers", options.brokers},
      // Idempotence: retries after a broker failure neither duplicate nor reorder messages.
      {"enable.idempotence", "true"},
      {"compression.type", "lz4"},
      {"linger.ms", "5"},
      {"log_level", "4"},
  };
  for (const auto& [key, value] : options.properties) properties[key] = value;
  if (!options.transactional_id.empty()) {
    properties["transactional.id"] = options.transactional_id;
    properties["transaction.timeout.ms"] = std::to_string(options.transaction_timeout_ms);
    impl_->transactional = true;
    impl_->transactional_id = options.transactional_id;
    impl_->transaction_timeout_ms = options.transaction_timeout_ms;
  }
  rd_kafka_conf_t* conf = detail::make_conf(properties, "sink.properties");
  rd_kafka_conf_set_opaque(conf, impl_.get());
  rd_kafka_conf_set_dr_msg_cb(conf, &impl::on_delivery);
  char errstr[512];
  impl_->handle = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!impl_->handle) {
    throw std::invalid_argument(std::string("sink.properties: ") + errstr);
  }
  max_topics_ = options.max_topics;
  // A routed producer opens each topic when a message first names it (produce_to).
  if (!options.routed)
    impl_->topic = rd_kafka_topic_new(impl_->handle, options.topic.c_str(), nullptr);
  if (!options.routed && !impl_->topic) {
    const std::string error = rd_kafka_err2str(rd_kafka_last_error());
    rd_kafka_destroy(impl_->handle);
    throw std::runtime_error("kafka producer: topic '" + options.topic + "': " + error);
  }
  if (impl_->transactional) {
    try {
      // Fences an older producer with this transactional.id and aborts what it left open.
      impl_->transact(
          "init_transactions",
          [this](int timeout) { return rd_kafka_init_transactions(impl_->handle, timeout); },
          false);
    } catch (...) {
      if (impl_->topic) rd_kafka_topic_destroy(impl_->topic);
      rd_kafka_destroy(impl_->handle);
      throw;
    }
  }
}

kafka_producer::~kafka_producer() {
  if (impl_->handle) {
    if (impl_->in_transaction) {
      // Not committed: nothing of it may become visible (init_transactions of the next run
      // would abort it too, after transaction.timeout.ms at the latest).
      rd_kafka_error_t* error = rd_kafka_abort_transaction(impl_->handle, 5'000);
      if (error) rd_kafka_error_destroy(error);
    }
    rd_kafka_flush(impl_->handle, 10'000);
    if (impl_->topic) rd_kafka_topic_destroy(impl_->topic);
    for (auto& [name, handle] : impl_->routed) rd_kafka_topic_destroy(handle);
    rd_kafka_destroy(impl_->handle);
  }
}

void kafka_producer::produce(std::string_view key, std::string_view value, std::int32_t partition) {
  produce_on(impl_->topic, topic_, key, value, partition);
}

void kafka_producer::produce_to(std::string_view topic, std::string_view key,
                                std::string_view value) {
  auto it = impl_->routed.find(topic);
  if (it == impl_->routed.end()) {
    if (impl_->routed.size() >= max_topics_) {
      throw std::runtime_error(
          "kafka producer: topic '" + std::string(topic) + "' would be one more than the " +
          std::to_string(max_topics_) +
          " distinct topics sink.max_topics allows: the routing field has more values than "
          "expected; raise sink.max_topics, or route by a field with fewer values");
    }
    const std::string name(topic);
    rd_kafka_topic_t* handle = rd_kafka_topic_new(impl_->handle, name.c_str(), nullptr);
    if (!handle) {
      throw std::runtime_error("kafka producer: topic '" + name +
                               "': " + rd_kafka_err2str(rd_kafka_last_error()));
    }
    it = impl_->routed.emplace(name, handle).first;
  }
  produce_on(it->second, topic, key, value, -1);
}

void kafka_producer::produce_on(void* topic, std::string_view name, std::string_view key,
                                std::string_view value, std::int32_t partition) {
  auto* handle = static_cast<rd_kafka_topic_t*>(topic);
  for (;;) {
    const int rc =
        rd_kafka_produce(handle, partition < 0 ? RD_KAFKA_PARTITION_UA : partition,
                         RD_KAFKA_MSG_F_COPY, const_cast<char*>(value.data()), value.size(),
                         key.empty() ? nullptr : key.data(), key.size(), nullptr);
    if (rc == 0) break;
    const rd_kafka_resp_err_t err = rd_kafka_last_error();
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      throw std::runtime_error("kafka producer: cannot queue a message for topic '" +
                               std::string(name) + "': " + rd_kafka_err2str(err));
    }
    // Backpressure: the local queue is full until the cluster acknowledges older messages.
    rd_kafka_poll(impl_->handle, 50);
    throw_if_failed();
  }
  throw_if_failed();
}

void kafka_producer::poll() {
  rd_kafka_poll(impl_->handle, 0);
  throw_if_failed();
}

void kafka_producer::flush(int timeout_ms) {
  const rd_kafka_resp_err_t err = rd_kafka_flush(impl_->handle, timeout_ms);
  throw_if_failed();
  if (err) {
    throw std::runtime_error("kafka producer: " + std::to_string(rd_kafka_outq_len(impl_->handle)) +
                             " messages to topic '" + topic_ + "' not delivered within " +
                             std::to_string(timeout_ms) + " ms: " + rd_kafka_err2str(err));
  }
}

bool kafka_producer::transactional() const noexcept {
  return impl_->transactional;
}

void kafka_producer::begin_transaction() {
  impl_->transact(
      "begin_transaction", [this](int) { return rd_kafka_begin_transaction(impl_->handle); },
      false);
  impl_->in_transaction = true;
}

void kafka_producer::commit_transaction(const std::vector<source_offset>& offsets,
                                        const kafka_consumer* consumer) {
  if (consumer != nullptr && !offsets.empty()) {
    rd_kafka_topic_partition_list_t* list =
        rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size()));
    for (const source_offset& o : offsets) {
      const std::string topic = consumer->topic_of(o.source_partition);
      rd_kafka_topic_partition_list_add(list, topic.c_str(),
                                        kafka_consumer::partition_of(o.source_partition))
          ->offset = o.next_offset;
    }
    rd_kafka_consumer_group_metadata_t* group =
        rd_kafka_consumer_group_metadata(static_cast<rd_kafka_t*>(consumer->native_handle()));
    try {
      impl_->transact(
          "send_offsets_to_transaction",
          [&](int timeout) {
            return rd_kafka_send_offsets_to_transaction(impl_->handle, list, group, timeout);
          },
          true);
    } catch (...) {
      rd_kafka_consumer_group_metadata_destroy(group);
      rd_kafka_topic_partition_list_destroy(list);
      throw;
    }
    rd_kafka_consumer_group_metadata_destroy(group);
    rd_kafka_topic_partition_list_destroy(list);
  }
  impl_->transact(
      "commit_transaction",
      [this](int timeout) { return rd_kafka_commit_transaction(impl_->handle, timeout); }, true);
  impl_->in_transaction = false;
}

void kafka_producer::abort_transaction() {
  impl_->abort_open();
}

std::uint64_t kafka_producer::delivered() const noexcept {
  return impl_->delivered.load(std::memory_order_relaxed);
}

std::uint64_t kafka_producer::failed() const noexcept {
  return impl_->failed.load(std::memory_order_relaxed);
}

void kafka_producer::throw_if_failed() {
  if (impl_->failed.load(std::memory_order_relaxed) == 0) return;
  std::string message;
  {
    std::lock_guard lock(impl_->error_mutex);
    message = "kafka producer: delivery to topic '" + topic_ + "' failed: " + impl_->first_error;
  }
  if (impl_->in_transaction) {
    // Inside a transaction a lost message only loses the transaction: abort it, the caller
    // redoes the work since the last commit.
    impl_->abort_open();
    throw kafka_transaction_error(message + "; the transaction was aborted", true);
  }
  throw std::runtime_error(message);
}

}  // namespace trove::io
