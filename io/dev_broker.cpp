#include "io/dev_broker.hpp"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <stdexcept>
#include <vector>

namespace trove::io {

struct dev_broker::impl {
  rd_kafka_t* handle = nullptr;  // owns the mock cluster's threads
  rd_kafka_mock_cluster_t* cluster = nullptr;
};

dev_broker::dev_broker(int brokers, const std::vector<dev_topic>& topics)
    : impl_(std::make_unique<impl>()) {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr);
  impl_->handle = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!impl_->handle) {
    throw std::runtime_error(std::string("dev broker: cannot create a Kafka handle: ") + errstr);
  }
  impl_->cluster = rd_kafka_mock_cluster_new(impl_->handle, brokers);
  if (!impl_->cluster) {
    rd_kafka_destroy(impl_->handle);
    throw std::runtime_error("dev broker: cannot start librdkafka's mock cluster");
  }
  bootstraps_ = rd_kafka_mock_cluster_bootstraps(impl_->cluster);
  for (const auto& topic : topics) create_topic(topic.name, topic.partitions);
}

dev_broker::~dev_broker() {
  if (impl_->cluster) rd_kafka_mock_cluster_destroy(impl_->cluster);
  if (impl_->handle) rd_kafka_destroy(impl_->handle);
}

void dev_broker::create_topic(const std::string& name, int partitions) {
  const rd_kafka_resp_err_t err =
      rd_kafka_mock_topic_create(impl_->cluster, name.c_str(), partitions, 1);
  if (err) {
    throw std::runtime_error("dev broker: cannot create topic '" + name +
                             "': " + rd_kafka_err2str(err));
  }
}

void dev_broker::set_broker_up(int broker_id, bool up) {
  const rd_kafka_resp_err_t err = up ? rd_kafka_mock_broker_set_up(impl_->cluster, broker_id)
                                     : rd_kafka_mock_broker_set_down(impl_->cluster, broker_id);
  if (err) {
    throw std::runtime_error("dev broker: cannot change broker " + std::to_string(broker_id) +
                             ": " + rd_kafka_err2str(err));
  }
}

void dev_broker::push_request_errors(int api_key, int count, int error_code) {
  std::vector<rd_kafka_resp_err_t> errors(static_cast<std::size_t>(count),
                                          static_cast<rd_kafka_resp_err_t>(error_code));
  rd_kafka_mock_push_request_errors_array(impl_->cluster, static_cast<std::int16_t>(api_key),
                                          errors.size(), errors.data());
}

void dev_broker::clear_request_errors(int api_key) {
  rd_kafka_mock_clear_request_errors(impl_->cluster, static_cast<std::int16_t>(api_key));
}

}  // namespace trove::io
