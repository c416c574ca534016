/// @file io_kafka.cpp
/// @brief The Kafka consumer, producer and dev broker against librdkafka's mock cluster: every
/// produced message is consumed exactly once with its partition and offset, exit_at_end stops at
/// the end offsets, committed offsets are where a new member of the group resumes, a member that
/// gets a partition back resumes at its own position, and librdkafka errors surface with the key.

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "io/dev_broker.hpp"
#include "io/kafka_consumer.hpp"
#include "io/kafka_producer.hpp"

namespace {

using trove::io::dev_broker;
using trove::io::kafka_consumer;
using trove::io::kafka_consumer_options;
using trove::io::kafka_producer;
using trove::io::kafka_record;

kafka_consumer_options consumer_options(const dev_broker& broker, const std::string& topic,
                                        const std::string& group) {
  kafka_consumer_options o;
  o.brokers = broker.bootstrap_servers();
  o.topics = {topic};
  o.group_id = group;
  o.exit_at_end = true;
  // The mock coordinator expels a member only after its session times out.
  o.properties = {{"session.timeout.ms", "6000"}, {"heartbeat.interval.ms", "500"}};
  return o;
}

/// Consumes until at_end() (or a deadline); returns (partition, offset) → payload.
std::map<std::pair<int, std::int64_t>, std::string> consume_to_end(kafka_consumer& consumer,
                                                                   int deadline_s = 30) {
  std::map<std::pair<int, std::int64_t>, std::string> seen;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(deadline_s);
  while (!consumer.at_end() && std::chrono::steady_clock::now() < deadline) {
    consumer.poll(1000, 100, [&](const kafka_record& r) {
      const auto [it, inserted] =
          seen.emplace(std::make_pair(r.partition, r.position.offset), std::string(r.payload));
      EXPECT_TRUE(inserted) << "message consumed twice: partition " << r.partition << " offset "
                            << r.position.offset;
      EXPECT_EQ(r.topic, "t");
      EXPECT_EQ(kafka_consumer::partition_of(r.position.partition), r.partition);
    });
  }
  EXPECT_TRUE(consumer.at_end()) << "exit_at_end never reached";
  return seen;
}

TEST(IoKafka, EveryProducedMessageIsConsumedOnceAndExitAtEndStops) {
  dev_broker broker(1, {{"t", 3}});
  std::set<std::string> produced;
  {
    kafka_producer producer({.brokers = broker.bootstrap_servers(), .topic = "t"});
    for (int idx = 0; idx < 3000; ++idx) {
      const std::string value = "m" + std::to_string(idx);
      producer.produce("k" + std::to_string(idx % 17), value);
      produced.insert(value);
    }
    producer.flush();
    EXPECT_EQ(producer.delivered(), 3000u);
    EXPECT_EQ(producer.failed(), 0u);
  }
  kafka_consumer consumer(consumer_options(broker, "t", "g-once"));
  const auto seen = consume_to_end(consumer);
  std::set<std::string> values;
  std::map<int, std::int64_t> next_offset;
  for (const auto& [where, payload] : seen) {
    values.insert(payload);
    // offsets of a partition are dense from 0
    EXPECT_EQ(where.second, next_offset[where.first]) << "partition " << where.first;
    next_offset[where.first] = where.second + 1;
  }
  EXPECT_EQ(values, produced);
  EXPECT_EQ(next_offset.size(), 3u) << "keys spread over every partition";
  for (const auto& lag : consumer.lags()) EXPECT_EQ(lag.lag, 0) << lag.partition;
}

TEST(IoKafka, ANewMemberResumesAtTheCommittedOffsets) {
  dev_broker broker(1, {{"t", 2}});
  kafka_producer producer({.brokers = broker.bootstrap_servers(), .topic = "t"});
  for (int idx = 0; idx < 100; ++idx) producer.produce({}, "a" + std::to_string(idx), idx % 2);
  producer.flush();
  {
    kafka_consumer first(consumer_options(broker, "t", "g-commit"));
    const auto seen = consume_to_end(first);
    ASSERT_EQ(seen.size(), 100u);
    // commit 30 of partition 0 and 40 of partition 1 (ids: topic index 0 << 20 | partition)
    EXPECT_TRUE(first.commit({{0, 30}, {1, 40}}));
    first.close();
  }
  kafka_consumer second(consumer_options(broker, "t", "g-commit"));
  const auto seen = consume_to_end(second);
  std::map<int, std::int64_t> lowest;
  for (const auto& [where, payload] : seen) {
    if (!lowest.count(where.first)) lowest[where.first] = where.second;
  }
  EXPECT_EQ(lowest[0], 30);
  EXPECT_EQ(lowest[1], 40);
  EXPECT_EQ(seen.size(), (50u - 30u) + (50u - 40u));
}

TEST(IoKafka, StartEarliestIgnoresCommitsAndLatestSkipsOldMessages) {
  dev_broker broker(1, {{"t", 1}});
  kafka_producer producer({.brokers = broker.bootstrap_servers(), .topic = "t"});
  for (int idx = 0; idx < 20; ++idx) producer.produce({}, "x", 0);
  producer.flush();
  {
    kafka_consumer c(consumer_options(broker, "t", "g-start"));
    consume_to_end(c);
    EXPECT_TRUE(c.commit({{0, 20}}));
    c.close();
  }
  auto o = consumer_options(broker, "t", "g-start");
  o.start = trove::io::kafka_start_from::earliest;
  kafka_consumer earliest(o);
  EXPECT_EQ(consume_to_end(earliest).size(), 20u);
  earliest.close();

  auto l = consumer_options(broker, "t", "g-latest");
  l.start = trove::io::kafka_start_from::latest;
  kafka_consumer latest(l);
  EXPECT_EQ(consume_to_end(latest).size(), 0u);
}

TEST(IoKafka, RejectedPropertyNamesTheKey) {
  dev_broker broker;
  auto o = consumer_options(broker, "t", "g");
  o.properties["no.such.property"] = "1";
  try {
    kafka_consumer c(o);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("source.properties.no.such.property"), std::string::npos)
        << e.what();
  }
  try {
    kafka_producer p({.brokers = broker.bootstrap_servers(),
                      .topic = "t",
                      .properties = {{"compression.type", "bogus"}}});
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("sink.properties.compression.type"), std::string::npos)
        << e.what();
  }
}

TEST(IoKafka, ProducerRetriesRetriableProduceErrors) {
  dev_broker broker(1, {{"t", 1}});
  kafka_producer producer({.brokers = broker.bootstrap_servers(), .topic = "t"});
  producer.produce({}, "warm-up", 0);
  producer.flush();
  // NOT_LEADER_OR_FOLLOWER (6) is retriable: the idempotent producer retries without duplicates.
  broker.push_request_errors(/*Produce*/ 0, 3, 6);
  for (int idx = 0; idx < 50; ++idx) producer.produce({}, std::to_string(idx), 0);
  producer.flush();
  EXPECT_EQ(producer.failed(), 0u);
  kafka_consumer c(consumer_options(broker, "t", "g-retry"));
  const auto seen = consume_to_end(c);
  EXPECT_EQ(seen.size(), 51u) << "no message lost or duplicated by the retries";
}

// The transactional producer against the mock cluster: committed and aborted transactions
// deliver (the mock does not hide aborted records, so both arrive; what is checked is the call
// sequence and the classification of failures), an abortable EndTxn failure aborts and leaves
// the producer usable for the next transaction, a fatal one (fenced) does not, and a second
// producer with the same transactional.id is accepted (init_transactions fences the first).
TEST(IoKafka, TransactionsCommitAbortAndClassifyFailures) {
  dev_broker broker(1, {{"t", 1}});
  trove::io::kafka_producer_options o{.brokers = broker.bootstrap_servers(), .topic = "t"};
  o.transactional_id = "trove-test";
  o.transaction_timeout_ms = 20'000;
  kafka_producer producer(o);
  EXPECT_TRUE(producer.transactional());
  producer.begin_transaction();
  producer.produce({}, "committed", 0);
  producer.commit_transaction({}, nullptr);
  EXPECT_EQ(producer.delivered(), 1u);

  producer.begin_transaction();
  producer.produce({}, "aborted", 0);
  producer.abort_transaction();

  // EndTxn refused with an error librdkafka does not retry: abortable.
  producer.begin_transaction();
  producer.produce({}, "refused", 0);
  broker.push_request_errors(/*EndTxn*/ 26, 1, /*NOT_ENOUGH_REPLICAS*/ 19);
  try {
    producer.commit_transaction({}, nullptr);
    ADD_FAILURE() << "the commit should have failed";
  } catch (const trove::io::kafka_transaction_error& e) {
    EXPECT_TRUE(e.abortable()) << e.what();
    EXPECT_NE(std::string(e.what()).find("trove-test"), std::string::npos) << e.what();
  }
  producer.begin_transaction();  // usable again after the abort
  producer.produce({}, "after", 0);
  producer.commit_transaction({}, nullptr);

  // Fenced: fatal, and the producer cannot go on.
  producer.begin_transaction();
  producer.produce({}, "fenced", 0);
  broker.push_request_errors(/*EndTxn*/ 26, 1, /*PRODUCER_FENCED*/ 90);
  try {
    producer.commit_transaction({}, nullptr);
    ADD_FAILURE() << "the commit should have failed";
  } catch (const trove::io::kafka_transaction_error& e) {
    EXPECT_FALSE(e.abortable()) << e.what();
  }
  EXPECT_THROW(producer.begin_transaction(), trove::io::kafka_transaction_error);

  // A new producer with the same id starts (and would fence a live one).
  kafka_producer next(o);
  next.begin_transaction();
  next.produce({}, "next", 0);
  next.commit_transaction({}, nullptr);
  EXPECT_EQ(next.delivered(), 1u);

  kafka_consumer consumer(consumer_options(broker, "t", "txn-reader"));
  std::set<std::string> payloads;
  for (const auto& [where, payload] : consume_to_end(consumer)) payloads.insert(payload);
  EXPECT_TRUE(payloads.count("committed"));
  EXPECT_TRUE(payloads.count("after"));
  EXPECT_TRUE(payloads.count("next"));
}

}  // namespace
