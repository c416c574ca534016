#include <gtest/gtest.h>
#include <simdjson.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "io/batch.hpp"
#include "io/dead_letter.hpp"
#include "io/json_decoder.hpp"

namespace trove::io {
namespace {

namespace fs = std::filesystem;

/// A fresh path in a per-test temporary directory, removed afterwards.
class DeadLetterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    dir_ = fs::temp_directory_path() /
           ("trove_io_dead_letter_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const char* name) const { return (dir_ / name).string(); }

  static std::vector<std::string> read_lines(const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    std::vector<std::string> lines;
    std::string line;
    while (std::getline(in, line)) lines.push_back(line);
    return lines;
  }

  fs::path dir_;
};

simdjson::dom::element parse(simdjson::dom::parser& parser, const std::string& line) {
  simdjson::dom::element root;
  const auto error = parser.parse(line).get(root);
  EXPECT_EQ(error, simdjson::SUCCESS)
      << simdjson::error_message(error) << " in: " << line.substr(0, 200);
  return root;
}

std::string field_string(simdjson::dom::element root, const char* key) {
  std::string_view value;
  EXPECT_EQ(root[key].get_string().get(value), simdjson::SUCCESS) << key;
  return std::string(value);
}

TEST_F(DeadLetterTest, WritesOneJsonLinePerRecord) {
  const std::string file = path("dlq.jsonl");
  {
    dead_letter_writer writer(file);
    EXPECT_TRUE(writer.enabled());
    EXPECT_EQ(writer.path(), file);
    writer.write("missing required field 'user_id'", "events.jsonl", {0, 17},
                 R"({"type":"click"})");
    writer.write("field 'x': expected u64, got string", "topic-a", {3, 123456789012},
                 "quote\" backslash\\ tab\t");
    writer.flush();
    EXPECT_EQ(writer.records(), 2U);
    EXPECT_EQ(writer.truncated_records(), 0U);
    EXPECT_EQ(writer.bytes_written(), fs::file_size(file));  // flush made it visible
  }
  const std::vector<std::string> lines = read_lines(file);
  ASSERT_EQ(lines.size(), 2U);
  simdjson::dom::parser parser;
  simdjson::dom::element first = parse(parser, lines[0]);
  EXPECT_EQ(field_string(first, "reason"), "missing required field 'user_id'");
  EXPECT_EQ(field_string(first, "source"), "events.jsonl");
  EXPECT_EQ(first["partition"].get_int64().value(), 0);
  EXPECT_EQ(first["offset"].get_int64().value(), 17);
  EXPECT_EQ(field_string(first, "record"), R"({"type":"click"})");
  EXPECT_EQ(first["record_bytes"].get_int64().value(), 16);
  EXPECT_EQ(first["truncated"].error(), simdjson::NO_SUCH_FIELD);

  simdjson::dom::element second = parse(parser, lines[1]);
  EXPECT_EQ(field_string(second, "source"), "topic-a");
  EXPECT_EQ(second["partition"].get_int64().value(), 3);
  EXPECT_EQ(second["offset"].get_int64().value(), 123456789012);
  EXPECT_EQ(field_string(second, "record"), "quote\" backslash\\ tab\t");
}

TEST_F(DeadLetterTest, AppendsToAnExistingFile) {
  const std::string file = path("dlq.jsonl");
  {
    dead_letter_writer writer(file);
    writer.write("r1", "s", {}, "a");
  }
  {
    dead_letter_writer writer(file);
    writer.write("r2", "s", {}, "b");
  }
  EXPECT_EQ(read_lines(file).size(), 2U);
}

TEST_F(DeadLetterTest, WithoutPathCountsAndDiscards) {
  dead_letter_writer writer;
  EXPECT_FALSE(writer.enabled());
  writer.write("bad", "s", {}, "x");
  writer.write("bad", "s", {}, std::string(100000, 'y'));
  writer.flush();
  EXPECT_EQ(writer.records(), 2U);
  EXPECT_EQ(writer.truncated_records(), 1U);
  EXPECT_EQ(writer.bytes_written(), 0U);
}

TEST_F(DeadLetterTest, UnopenableFileThrowsNamingThePath) {
  const std::string file = path("no/such/dir/dlq.jsonl");
  try {
    dead_letter_writer writer(file);
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find(file), std::string::npos) << error.what();
  }
}

TEST_F(DeadLetterTest, InvalidUtf8RecordStaysValidJson) {
  const std::string file = path("dlq.jsonl");
  const std::string record =
      "{\"a\":\"\xFF\xFE\"}\x01\x80"
      "caf\xC3\xA9";
  {
    dead_letter_writer writer(file);
    writer.write("invalid JSON: The input is not valid UTF-8", "f", {0, 1}, record);
  }
  const std::vector<std::string> lines = read_lines(file);
  ASSERT_EQ(lines.size(), 1U);
  simdjson::dom::parser parser;
  // Invalid bytes read as Latin-1 code points; the valid é is kept.
  EXPECT_EQ(field_string(parse(parser, lines[0]), "record"),
            "{\"a\":\"\xC3\xBF\xC3\xBE\"}\x01\xC2\x80"
            "caf\xC3\xA9");
}

TEST_F(DeadLetterTest, HugeGarbageLineIsTruncated) {
  // A 10 MB binary line, as the JSON decoder reports it.
  std::string record(10 * 1024 * 1024, '\0');
  std::mt19937_64 rng(5);
  for (char& c : record) c = static_cast<char>(rng());
  const schema s{{{"a", field_type::i64, true}}};
  json_decoder decoder(s);
  host_batch batch(s, 4, 16);
  const decode_result result = decoder.decode(record, batch, {0, 9});
  ASSERT_EQ(result.status, decode_status::bad);

  const std::string file = path("dlq.jsonl");
  {
    dead_letter_writer writer(file);
    writer.write(result.reason, "big.jsonl", {0, 9}, record);
    EXPECT_EQ(writer.truncated_records(), 1U);
  }
  const std::vector<std::string> lines = read_lines(file);
  ASSERT_EQ(lines.size(), 1U);
  // 64 KiB of raw bytes, each escaped to at most 6 characters, plus the envelope.
  EXPECT_LT(lines[0].size(), 6U * 64 * 1024 + 512);
  simdjson::dom::parser parser;
  const simdjson::dom::element root = parse(parser, lines[0]);
  EXPECT_EQ(root["truncated"].get_bool().value(), true);
  EXPECT_EQ(root["record_bytes"].get_int64().value(), 10 * 1024 * 1024);
  EXPECT_NE(field_string(root, "reason").find("10485760 bytes"), std::string::npos);
}

TEST_F(DeadLetterTest, TruncationDoesNotSplitACharacter) {
  const std::string file = path("dlq.jsonl");
  std::string record;
  for (int repeat = 0; repeat < 100; ++repeat) record += "\xE2\x82\xAC";  // € is 3 bytes
  {
    dead_letter_writer writer(file, 10);
    writer.write("r", "s", {}, record);
  }
  simdjson::dom::parser parser;
  const simdjson::dom::element root = parse(parser, read_lines(file).at(0));
  // 10 bytes would cut the fourth €; three whole ones (9 bytes) are kept, no escapes.
  EXPECT_EQ(field_string(root, "record"), record.substr(0, 9));
  EXPECT_EQ(root["truncated"].get_bool().value(), true);
  EXPECT_EQ(root["record_bytes"].get_int64().value(), 300);
}

TEST_F(DeadLetterTest, ExactlyAtTheLimitIsNotTruncated) {
  const std::string file = path("dlq.jsonl");
  {
    dead_letter_writer writer(file, 8);
    writer.write("r", "s", {}, "12345678");
  }
  simdjson::dom::parser parser;
  const simdjson::dom::element root = parse(parser, read_lines(file).at(0));
  EXPECT_EQ(field_string(root, "record"), "12345678");
  EXPECT_EQ(root["truncated"].error(), simdjson::NO_SUCH_FIELD);
}

TEST_F(DeadLetterTest, ConcurrentWritersProduceWholeLines) {
  const std::string file = path("dlq.jsonl");
  constexpr int threads = 8;
  constexpr int per_thread = 1000;
  {
    dead_letter_writer writer(file);
    std::vector<std::thread> workers;
    for (int thread_idx = 0; thread_idx < threads; ++thread_idx) {
      workers.emplace_back([&writer, thread_idx] {
        for (int record_idx = 0; record_idx < per_thread; ++record_idx) {
          writer.write("reason", "src", {thread_idx, record_idx},
                       std::string(static_cast<std::size_t>(record_idx % 300), 'r'));
        }
      });
    }
    for (auto& worker : workers) worker.join();
    EXPECT_EQ(writer.records(), static_cast<std::uint64_t>(threads * per_thread));
  }
  const std::vector<std::string> lines = read_lines(file);
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(threads * per_thread));
  simdjson::dom::parser parser;
  std::vector<int> seen(threads, 0);
  for (const auto& line : lines) {
    const simdjson::dom::element root = parse(parser, line);
    const auto partition = root["partition"].get_int64().value();
    const auto offset = root["offset"].get_int64().value();
    ASSERT_EQ(field_string(root, "record").size(), static_cast<std::size_t>(offset % 300));
    ++seen.at(static_cast<std::size_t>(partition));
  }
  for (const int count : seen) EXPECT_EQ(count, per_thread);
}

}  // namespace
}  // namespace trove::io
