#include "io/kafka_consumer.hpp"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "io/kafka_util.hpp"

namespace trove::io {
namespace {

constexpr int partition_bits = 20;

struct partition_state {
  std::int64_t next_offset = -1;  // next offset to consume; -1: nothing consumed yet
  std::int64_t end_offset = -1;   // high watermark when first assigned (exit_at_end)
  bool assigned = false;
  bool reached_end = false;
};

/// Cooperative-sticky (incremental rebalances: only moved partitions stop) where librdkafka's
/// implementation is safe; before 2.3.0 destroying a member that joined but had no assignment
/// yet aborts the process (librdkafka issue 4312), so a shutdown during a rebalance would crash:
/// there the eager round-robin assignor is used (every rebalance revokes everything; the rebalance
/// callback handles both protocols).
const char* default_assignment_strategy() {
  return rd_kafka_version() >= 0x020300ff ? "cooperative-sticky" : "roundrobin";
}

}  // namespace

struct kafka_consumer::impl {
  kafka_consumer_options options;
  rd_kafka_t* handle = nullptr;
  rd_kafka_queue_t* queue = nullptr;
  std::vector<rd_kafka_message_t*> messages;
  std::vector<std::pair<std::int32_t, std::int64_t>> consumed;
  mutable std::mutex mutex;  // guards the maps below (lags() may be called from other threads)
  std::map<std::string, int> topic_index;
  std::vector<std::string> topic_names;
  std::map<std::int32_t, partition_state> partitions;  // by source partition id
  std::function<void(bool)> revoke_callback;
  std::function<std::vector<std::int64_t>(const std::vector<topic_partition>&)> assign_callback;
  std::vector<std::int32_t> newly_assigned;
  bool closed = false;
  std::chrono::steady_clock::time_point last_error_log{};

  std::int32_t source_id(const char* topic, std::int32_t partition) {
    auto [it, inserted] = topic_index.try_emplace(topic, static_cast<int>(topic_names.size()));
    if (inserted) topic_names.emplace_back(topic);
    return (it->second << partition_bits) | partition;
  }

  void assign(rd_kafka_topic_partition_list_t* list) {
    std::vector<std::int64_t> starts;
    if (assign_callback) {
      std::vector<topic_partition> which;
      for (int idx = 0; idx < list->cnt; ++idx) {
        which.push_back({list->elems[idx].topic, list->elems[idx].partition});
      }
      starts = assign_callback(which);
    }
    {
      std::lock_guard lock(mutex);
      for (int idx = 0; idx < list->cnt; ++idx) {
        auto& tp = list->elems[idx];
        const std::int32_t id = source_id(tp.topic, tp.partition);
        newly_assigned.push_back(id);
        auto& state = partitions[id];
        const auto resume = options.resume_offsets.find({tp.topic, tp.partition});
        if (assign_callback) {
          // The caller's state decides (a checkpoint of whoever owned the partition last).
          state.next_offset = -1;
          const std::int64_t start = static_cast<std::size_t>(idx) < starts.size()
                                         ? starts[static_cast<std::size_t>(idx)]
                                         : kafka_default_offset;
          if (start != kafka_default_offset) {
            tp.offset = start;
          } else if (options.start == kafka_start_from::earliest) {
            tp.offset = RD_KAFKA_OFFSET_BEGINNING;
          } else if (options.start == kafka_start_from::latest) {
            tp.offset = RD_KAFKA_OFFSET_END;
          }
        } else if (state.next_offset >= 0) {
          // Assigned back to us: resume where this process is, not at the group's commit —
          // its effects up to next_offset are already in our state (no double apply).
          tp.offset = state.next_offset;
        } else if (resume != options.resume_offsets.end()) {
          tp.offset = resume->second;  // a checkpoint's position
        } else if (options.start == kafka_start_from::earliest) {
          tp.offset = RD_KAFKA_OFFSET_BEGINNING;
        } else if (options.start == kafka_start_from::latest) {
          tp.offset = RD_KAFKA_OFFSET_END;
        }
        state.assigned = true;
        if (options.exit_at_end && state.end_offset < 0) {
          std::int64_t low = 0;
          std::int64_t high = 0;
          const rd_kafka_resp_err_t err =
              rd_kafka_query_watermark_offsets(handle, tp.topic, tp.partition, &low, &high, 10'000);
          if (err) {
            spdlog::warn(
                "kafka: cannot read the end offset of {}[{}] ({}); exit_at_end will "
                "wait for its end-of-partition event",
                tp.topic, tp.partition, rd_kafka_err2str(err));
          } else {
            state.end_offset = high;
            if (high <= low) state.reached_end = true;
          }
        }
      }
    }
    spdlog::info("kafka: assigned {} partition(s) of group '{}'", list->cnt, options.group_id);
    rd_kafka_error_t* error = nullptr;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (cooperative()) {
      error = rd_kafka_incremental_assign(handle, list);
    } else {
      err = rd_kafka_assign(handle, list);
    }
    report_assign_error(error, err, "assign");
  }

  void revoke(rd_kafka_topic_partition_list_t* list) {
    if (revoke_callback) revoke_callback(rd_kafka_assignment_lost(handle) != 0);
    {
      std::lock_guard lock(mutex);
      for (int idx = 0; idx < list->cnt; ++idx) {
        auto& tp = list->elems[idx];
        const std::int32_t id = source_id(tp.topic, tp.partition);
        partitions[id].assigned = false;
      }
    }
    spdlog::info("kafka: {} partition(s) revoked from this member", list->cnt);
    rd_kafka_error_t* error = nullptr;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (cooperative()) {
      error = rd_kafka_incremental_unassign(handle, list);
    } else {
      err = rd_kafka_assign(handle, nullptr);
    }
    report_assign_error(error, err, "unassign");
  }

  bool cooperative() const {
    return std::strcmp(rd_kafka_rebalance_protocol(handle), "COOPERATIVE") == 0;
  }

  static void report_assign_error(rd_kafka_error_t* error, rd_kafka_resp_err_t err,
                                  const char* what) {
    if (error) {
      spdlog::warn(
          "kafka: partition {} failed: {} (librdkafka retries at the next rebalance; "
          "check the group coordinator if this repeats)",
          what, rd_kafka_error_string(error));
      rd_kafka_error_destroy(error);
    } else if (err) {
      spdlog::warn(
          "kafka: partition {} failed: {} (librdkafka retries at the next rebalance; "
          "check the group coordinator if this repeats)",
          what, rd_kafka_err2str(err));
    }
  }

  static void on_rebalance(rd_kafka_t*, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t* list, void* opaque) {
    auto* self = static_cast<impl*>(opaque);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      self->assign(list);
    } else {
      self->revoke(list);
    }
  }
};

kafka_consumer::kafka_consumer(const kafka_consumer_options& options)
    : impl_(std::make_unique<impl>()) {
  impl_->options = options;
  std::map<std::string, std::string> properties = {
      {"bootstrap.servers", options.brokers},
      {"group.id", options.group_id},
      {"partition.assignment.strategy",
       options.eager ? "roundrobin" : default_assignment_strategy()},
      // Offsets are committed by the pipeline, only for records whose effects are durable.
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", options.start == kafka_start_from::latest ? "latest" : "earliest"},
      {"enable.partition.eof", "true"},
      // A fetch waits at most 10 ms for data (librdkafka's default is 500): results latency.
      // With 50 the load harness measured p50/p99 of 46/93 ms at 100k events/s through the dev
      // broker, with 10 23/43 ms; a broker with data answers at once either way, so the cost is
      // only more fetch requests while a topic is idle.
      {"fetch.wait.max.ms", "10"},
      // Keep fetching ahead while trove decodes and aggregates: with librdkafka's default (100k
      // messages per partition) the local queue ran dry between fetches and a 1M-event backlog
      // took 2.5-3.5 s instead of 1.1-1.6 s. Memory stays bounded by queued.max.messages.kbytes
      // (64 MiB for the whole consumer queue by default), which takes precedence.
      {"queued.min.messages", "1000000"},
      {"log_level", "4"},
  };
  for (const auto& [key, value] : options.properties) properties[key] = value;
  rd_kafka_conf_t* conf = detail::make_conf(properties, "source.properties");
  rd_kafka_conf_set_opaque(conf, impl_.get());
  rd_kafka_conf_set_rebalance_cb(conf, &impl::on_rebalance);
  char errstr[512];
  impl_->handle = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  // rd_kafka_new checks the properties together (e.g. fetch.max.bytes >= message.max.bytes).
  if (!impl_->handle) throw std::invalid_argument(std::string("source.properties: ") + errstr);
  rd_kafka_poll_set_consumer(impl_->handle);
  impl_->queue = rd_kafka_queue_get_consumer(impl_->handle);

  rd_kafka_topic_partition_list_t* topics =
      rd_kafka_topic_partition_list_new(static_cast<int>(options.topics.size()));
  for (const auto& topic : options.topics) {
    rd_kafka_topic_partition_list_add(topics, topic.c_str(), RD_KAFKA_PARTITION_UA);
    impl_->source_id(topic.c_str(), 0);  // topic index = position in the config list
  }
  const rd_kafka_resp_err_t err = rd_kafka_subscribe(impl_->handle, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (err) {
    rd_kafka_queue_destroy(impl_->queue);
    rd_kafka_destroy(impl_->handle);
    throw std::runtime_error(std::string("kafka consumer: cannot subscribe: ") +
                             rd_kafka_err2str(err));
  }
}

kafka_consumer::~kafka_consumer() {
  close();
  if (impl_->queue) rd_kafka_queue_destroy(impl_->queue);
  if (impl_->handle) rd_kafka_destroy(impl_->handle);
}

void kafka_consumer::close() {
  if (impl_->closed || !impl_->handle) return;
  impl_->closed = true;
  impl_->revoke_callback = nullptr;  // the pipeline has committed what it could by now
  impl_->assign_callback = nullptr;
  rd_kafka_consumer_close(impl_->handle);
}

std::size_t kafka_consumer::poll(std::size_t max_messages, int timeout_ms,
                                 const std::function<void(const kafka_record&)>& handler) {
  impl_->messages.resize(max_messages);
  const ssize_t got =
      rd_kafka_consume_batch_queue(impl_->queue, timeout_ms, impl_->messages.data(), max_messages);
  if (got < 0) {
    throw std::runtime_error(std::string("kafka consumer: ") +
                             rd_kafka_err2str(rd_kafka_last_error()));
  }
  std::size_t handled = 0;
  std::exception_ptr failure;
  rd_kafka_topic_t* last_topic = nullptr;
  std::int32_t last_topic_id = 0;
  std::int32_t last_id = -1;
  bool last_assigned = false;
  auto& consumed = impl_->consumed;  // (source partition, next offset) runs of this poll
  consumed.clear();
  for (ssize_t idx = 0; idx < got; ++idx) {
    rd_kafka_message_t* message = impl_->messages[static_cast<std::size_t>(idx)];
    if (failure) {
      rd_kafka_message_destroy(message);
      continue;
    }
    const char* topic = message->rkt ? rd_kafka_topic_name(message->rkt) : "";
    if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      std::lock_guard lock(impl_->mutex);
      auto& state = impl_->partitions[impl_->source_id(topic, message->partition)];
      if (message->offset > state.next_offset) state.next_offset = message->offset;
      if (state.end_offset < 0 || message->offset >= state.end_offset) state.reached_end = true;
    } else if (message->err) {
      const bool fatal = message->err == RD_KAFKA_RESP_ERR__FATAL;
      const auto now = std::chrono::steady_clock::now();
      if (fatal || now - impl_->last_error_log > std::chrono::seconds(5)) {
        impl_->last_error_log = now;
        spdlog::warn(
            "kafka consumer: {} (librdkafka retries; check the brokers and topics if "
            "this persists)",
            rd_kafka_message_errstr(message));
      }
      if (fatal) {
        failure = std::make_exception_ptr(std::runtime_error(
            std::string("kafka consumer: fatal error: ") + rd_kafka_message_errstr(message)));
      }
    } else {
      // Topic ids are looked up once per run of messages from one topic (not per message), and
      // positions are recorded after the loop under one lock: the mutex and map were 5% of the
      // source thread.
      if (message->rkt != last_topic) {
        std::lock_guard lock(impl_->mutex);
        last_topic = message->rkt;
        last_topic_id = impl_->source_id(topic, 0);
      }
      const std::int32_t id = last_topic_id | message->partition;
      if (id != last_id) {
        // A message fetched before a rebalance that revoked its partition (consumed in the same
        // batch call) belongs to the partition's new owner now, from its checkpoint on.
        std::lock_guard lock(impl_->mutex);
        last_id = id;
        const auto it = impl_->partitions.find(id);
        last_assigned = it != impl_->partitions.end() && it->second.assigned;
      }
      if (!last_assigned) {
        rd_kafka_message_destroy(message);
        continue;
      }
      if (consumed.empty() || consumed.back().first != id) {
        consumed.emplace_back(id, message->offset + 1);
      } else {
        consumed.back().second = message->offset + 1;
      }
      kafka_record record;
      record.payload = {static_cast<const char*>(message->payload), message->len};
      if (message->key) record.key = {static_cast<const char*>(message->key), message->key_len};
      record.topic = topic;
      record.position = {id, message->offset};
      record.partition = message->partition;
      try {
        handler(record);
        ++handled;
      } catch (...) {
        failure = std::current_exception();
      }
    }
    rd_kafka_message_destroy(message);
  }
  if (!consumed.empty()) {
    std::lock_guard lock(impl_->mutex);
    for (const auto& [id, next] : consumed) {
      auto& state = impl_->partitions[id];
      if (next > state.next_offset) state.next_offset = next;
      if (state.end_offset >= 0 && state.next_offset >= state.end_offset) state.reached_end = true;
    }
  }
  if (failure) std::rethrow_exception(failure);
  return handled;
}

bool kafka_consumer::at_end() const {
  std::lock_guard lock(impl_->mutex);
  bool any = false;
  for (const auto& [id, state] : impl_->partitions) {
    if (!state.assigned) continue;
    any = true;
    if (!state.reached_end) return false;
  }
  return any;
}

bool kafka_consumer::assigned() const {
  std::lock_guard lock(impl_->mutex);
  for (const auto& [id, state] : impl_->partitions) {
    if (state.assigned) return true;
  }
  return false;
}

bool kafka_consumer::commit(const std::vector<source_offset>& offsets) {
  if (offsets.empty() || impl_->closed) return true;
  rd_kafka_topic_partition_list_t* list =
      rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size()));
  {
    std::lock_guard lock(impl_->mutex);
    for (const auto& offset : offsets) {
      const auto it = impl_->partitions.find(offset.source_partition);
      if (it == impl_->partitions.end() || !it->second.assigned) continue;
      const int topic = offset.source_partition >> partition_bits;
      const std::int32_t partition = offset.source_partition & ((1 << partition_bits) - 1);
      rd_kafka_topic_partition_list_add(
          list, impl_->topic_names[static_cast<std::size_t>(topic)].c_str(), partition)
          ->offset = offset.next_offset;
    }
  }
  bool ok = true;
  if (list->cnt > 0) {
    const rd_kafka_resp_err_t err = rd_kafka_commit(impl_->handle, list, 0);
    if (err) {
      spdlog::warn(
          "kafka: offset commit failed: {} (the records will be re-read after a "
          "restart or rebalance: at-least-once)",
          rd_kafka_err2str(err));
      ok = false;
    }
  }
  rd_kafka_topic_partition_list_destroy(list);
  return ok;
}

void kafka_consumer::on_revoke(std::function<void(bool lost)> callback) {
  impl_->revoke_callback = std::move(callback);
}

void kafka_consumer::on_assign(
    std::function<std::vector<std::int64_t>(const std::vector<topic_partition>&)> callback) {
  impl_->assign_callback = std::move(callback);
}

std::vector<std::int32_t> kafka_consumer::take_new_assignments() {
  std::lock_guard lock(impl_->mutex);
  std::vector<std::int32_t> out;
  out.swap(impl_->newly_assigned);
  return out;
}

std::vector<partition_lag> kafka_consumer::lags() const {
  std::vector<partition_lag> out;
  std::lock_guard lock(impl_->mutex);
  for (const auto& [id, state] : impl_->partitions) {
    if (!state.assigned) continue;
    const auto& topic = impl_->topic_names[static_cast<std::size_t>(id >> partition_bits)];
    const std::int32_t partition = id & ((1 << partition_bits) - 1);
    std::int64_t low = 0;
    std::int64_t high = 0;
    if (rd_kafka_get_watermark_offsets(impl_->handle, topic.c_str(), partition, &low, &high)) {
      continue;
    }
    const std::int64_t next = state.next_offset >= 0 ? state.next_offset : low;
    out.push_back({topic, partition, high > next ? high - next : 0});
  }
  return out;
}

std::int32_t kafka_consumer::source_id_of(const std::string& topic, std::int32_t partition) const {
  std::lock_guard lock(impl_->mutex);
  const auto it = impl_->topic_index.find(topic);
  if (it == impl_->topic_index.end() || partition < 0 || partition >= (1 << partition_bits)) {
    return -1;
  }
  return (it->second << partition_bits) | partition;
}

std::string kafka_consumer::topic_of(std::int32_t source_partition) const {
  std::lock_guard lock(impl_->mutex);
  const auto topic = static_cast<std::size_t>(source_partition >> partition_bits);
  return topic < impl_->topic_names.size() ? impl_->topic_names[topic] : "?";
}

std::string kafka_consumer::partition_name(std::int32_t source_partition) const {
  std::lock_guard lock(impl_->mutex);
  const auto topic = static_cast<std::size_t>(source_partition >> partition_bits);
  const std::string name = topic < impl_->topic_names.size() ? impl_->topic_names[topic] : "?";
  return name + "[" + std::to_string(source_partition & ((1 << partition_bits) - 1)) + "]";
}

void* kafka_consumer::native_handle() const noexcept {
  return impl_->handle;
}

}  // namespace trove::io
