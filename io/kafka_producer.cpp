#include "io/kafka_producer.hpp"

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <mutex>
#include <stdexcept>

#include "io/kafka_util.hpp"

namespace trove::io {

struct kafka_producer::impl {
  rd_kafka_t* handle = nullptr;
  rd_kafka_topic_t* topic = nullptr;
  std::atomic<std::uint64_t> delivered{0};
  std::atomic<std::uint64_t> failed{0};
  std::mutex error_mutex;
  std::string first_error;  // the first failed delivery, reported by the next call

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
  rd_kafka_conf_t* conf = detail::make_conf(properties, "sink.properties");
  rd_kafka_conf_set_opaque(conf, impl_.get());
  rd_kafka_conf_set_dr_msg_cb(conf, &impl::on_delivery);
  char errstr[512];
  impl_->handle = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!impl_->handle) {
    throw std::invalid_argument(std::string("sink.properties: ") + errstr);
  }
  impl_->topic = rd_kafka_topic_new(impl_->handle, options.topic.c_str(), nullptr);
  if (!impl_->topic) {
    const std::string error = rd_kafka_err2str(rd_kafka_last_error());
    rd_kafka_destroy(impl_->handle);
    throw std::runtime_error("kafka producer: topic '" + options.topic + "': " + error);
  }
}

kafka_producer::~kafka_producer() {
  if (impl_->handle) {
    rd_kafka_flush(impl_->handle, 10'000);
    if (impl_->topic) rd_kafka_topic_destroy(impl_->topic);
    rd_kafka_destroy(impl_->handle);
  }
}

void kafka_producer::produce(std::string_view key, std::string_view value, std::int32_t partition) {
  for (;;) {
    const int rc =
        rd_kafka_produce(impl_->topic, partition < 0 ? RD_KAFKA_PARTITION_UA : partition,
                         RD_KAFKA_MSG_F_COPY, const_cast<char*>(value.data()), value.size(),
                         key.empty() ? nullptr : key.data(), key.size(), nullptr);
    if (rc == 0) break;
    const rd_kafka_resp_err_t err = rd_kafka_last_error();
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      throw std::runtime_error("kafka producer: cannot queue a message for topic '" + topic_ +
                               "': " + rd_kafka_err2str(err));
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

std::uint64_t kafka_producer::delivered() const noexcept {
  return impl_->delivered.load(std::memory_order_relaxed);
}

std::uint64_t kafka_producer::failed() const noexcept {
  return impl_->failed.load(std::memory_order_relaxed);
}

void kafka_producer::throw_if_failed() {
  if (impl_->failed.load(std::memory_order_relaxed) == 0) return;
  std::lock_guard lock(impl_->error_mutex);
  throw std::runtime_error("kafka producer: delivery to topic '" + topic_ +
                           "' failed: " + impl_->first_error);
}

}  // namespace trove::io
