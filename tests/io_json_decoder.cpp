#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "io/batch.hpp"
#include "io/json_decoder.hpp"

namespace trove::io {
namespace {

// Columns: 0 user_id u64, 1 type string, 2 ts timestamp_ms, 3 amount f64?, 4 score i64?,
// 5 flag bool?, 6 note string?
schema event_schema() {
  return schema{{{"user_id", field_type::u64, true},
                 {"type", field_type::string, true},
                 {"ts", field_type::timestamp_ms, true},
                 {"amount", field_type::f64, false},
                 {"score", field_type::i64, false},
                 {"flag", field_type::boolean, false},
                 {"note", field_type::string, false}}};
}

double as_double(std::uint64_t bits) {
  double value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

std::int64_t as_i64(std::uint64_t bits) {
  return static_cast<std::int64_t>(bits);
}

class JsonDecoderTest : public ::testing::Test {
 protected:
  decode_result decode(std::string_view record) {
    return decoder_.decode(record, batch_, {0, static_cast<std::int64_t>(batch_.size())});
  }
  void expect_ok(std::string_view record) {
    const std::size_t before = batch_.size();
    const decode_result result = decode(record);
    ASSERT_EQ(result.status, decode_status::ok) << record << " → " << result.reason;
    EXPECT_TRUE(result.reason.empty());
    EXPECT_EQ(batch_.size(), before + 1);
  }
  /// Expects a bad record whose reason contains `fragment`, and an unchanged batch.
  void expect_bad(std::string_view record, std::string_view fragment) {
    const std::size_t before = batch_.size();
    const decode_result result = decode(record);
    ASSERT_EQ(result.status, decode_status::bad) << record;
    EXPECT_NE(result.reason.find(fragment), std::string::npos)
        << "reason '" << result.reason << "' lacks '" << fragment << "'";
    EXPECT_EQ(batch_.size(), before);
  }
  std::size_t last() const { return batch_.size() - 1; }

  schema schema_ = event_schema();
  json_decoder decoder_{schema_};
  host_batch batch_{schema_, 64, 4096};
};

TEST_F(JsonDecoderTest, DecodesEveryType) {
  expect_ok(R"({"user_id":42,"type":"click","ts":1704067200123,"amount":1.5,"score":-7,)"
            R"("flag":true,"note":"hi"})");
  EXPECT_EQ(batch_.fixed(0)[0], 42U);
  EXPECT_EQ(batch_.string_at(1, 0), "click");
  EXPECT_EQ(as_i64(batch_.fixed(2)[0]), 1704067200123);
  EXPECT_EQ(as_double(batch_.fixed(3)[0]), 1.5);
  EXPECT_EQ(as_i64(batch_.fixed(4)[0]), -7);
  EXPECT_EQ(batch_.fixed(5)[0], 1U);
  EXPECT_EQ(batch_.string_at(6, 0), "hi");
  for (std::size_t column = 0; column < 7; ++column) EXPECT_TRUE(batch_.is_valid(column, 0));
}

TEST_F(JsonDecoderTest, StoresSourcePosition) {
  const decode_result result =
      decoder_.decode(R"({"user_id":1,"type":"a","ts":0})", batch_, {5, 123456789012});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(batch_.positions()[0].partition, 5);
  EXPECT_EQ(batch_.positions()[0].offset, 123456789012);
}

TEST_F(JsonDecoderTest, IgnoresUnknownFields) {
  expect_ok(R"({"extra":{"nested":[1,2,{"x":null}]},"user_id":7,"more":"s","type":"v","ts":5,)"
            R"("list":[true,false],"num":1e300})");
  EXPECT_EQ(batch_.fixed(0)[0], 7U);
  EXPECT_EQ(batch_.string_at(1, 0), "v");
}

TEST_F(JsonDecoderTest, KeysInAnyOrder) {
  expect_ok(R"({"user_id":1,"type":"a","ts":10,"score":1})");
  expect_ok(R"({"ts":20,"score":2,"type":"b","user_id":2})");
  expect_ok(R"({"score":3,"zzz":0,"user_id":3,"ts":30,"type":"c"})");
  for (std::size_t row = 0; row < 3; ++row) {
    EXPECT_EQ(batch_.fixed(0)[row], row + 1);
    EXPECT_EQ(as_i64(batch_.fixed(2)[row]), static_cast<std::int64_t>((row + 1) * 10));
    EXPECT_EQ(as_i64(batch_.fixed(4)[row]), static_cast<std::int64_t>(row + 1));
    EXPECT_EQ(batch_.string_at(1, row), std::string(1, static_cast<char>('a' + row)));
  }
}

TEST_F(JsonDecoderTest, MissingOrNullOptionalIsNull) {
  expect_ok(R"({"user_id":1,"type":"a","ts":0})");
  expect_ok(
      R"({"user_id":1,"type":"a","ts":0,"amount":null,"score":null,"flag":null,"note":null})");
  for (std::size_t row = 0; row < 2; ++row) {
    for (std::size_t column = 3; column < 7; ++column) {
      EXPECT_FALSE(batch_.is_valid(column, row)) << row << " " << column;
    }
    EXPECT_EQ(batch_.string_at(6, row), "");
  }
}

TEST_F(JsonDecoderTest, MissingRequiredIsBad) {
  expect_bad(R"({"type":"a","ts":0})", "missing required field 'user_id'");
  expect_bad(R"({"user_id":1,"ts":0})", "missing required field 'type'");
  expect_bad(R"({})", "missing required field");
}

TEST_F(JsonDecoderTest, NullRequiredIsBad) {
  expect_bad(R"({"user_id":null,"type":"a","ts":0})", "field 'user_id': required but null");
  expect_bad(R"({"user_id":1,"type":null,"ts":0})", "field 'type': required but null");
}

TEST_F(JsonDecoderTest, WrongTypesAreBad) {
  expect_bad(R"({"user_id":"x","type":"a","ts":0})", "field 'user_id': expected u64, got string");
  expect_bad(R"({"user_id":1,"type":5,"ts":0})", "field 'type': expected string, got integer");
  expect_bad(R"({"user_id":1,"type":["a"],"ts":0})", "expected string, got array");
  expect_bad(R"({"user_id":{},"type":"a","ts":0})", "expected u64, got object");
  expect_bad(R"({"user_id":1,"type":"a","ts":0,"flag":1})",
             "field 'flag': expected bool, got integer");
  expect_bad(R"({"user_id":1,"type":"a","ts":0,"flag":"true"})", "expected bool, got string");
  expect_bad(R"({"user_id":1,"type":"a","ts":0,"score":1.5})",
             "field 'score': expected i64, got float");
  expect_bad(R"({"user_id":1.0,"type":"a","ts":0})", "expected u64, got float");
  expect_bad(R"({"user_id":1e3,"type":"a","ts":0})", "expected u64, got float");
  expect_bad(R"({"user_id":1,"type":"a","ts":0,"amount":true})", "expected f64, got bool");
  expect_bad(R"({"user_id":1,"type":"a","ts":1.5})", "field 'ts': expected timestamp_ms");
  expect_bad(R"({"user_id":1,"type":"a","ts":false})", "got bool");
}

TEST_F(JsonDecoderTest, NumbersAsStringsAreBad) {
  expect_bad(R"({"user_id":"123","type":"a","ts":0})", "field 'user_id': expected u64, got string");
  expect_bad(R"({"user_id":1,"type":"a","ts":0,"score":"-5"})", "expected i64, got string");
  expect_bad(R"({"user_id":1,"type":"a","ts":0,"amount":"1.5"})", "expected f64, got string");
  // A numeric string is not an RFC 3339 timestamp either.
  expect_bad(R"({"user_id":1,"type":"a","ts":"1704067200123"})", "invalid timestamp");
}

TEST_F(JsonDecoderTest, IntegerRanges) {
  expect_ok(R"({"user_id":18446744073709551615,"type":"a","ts":0})");
  EXPECT_EQ(batch_.fixed(0)[last()], UINT64_MAX);
  expect_ok(R"({"user_id":0,"type":"a","ts":0,"score":-9223372036854775808})");
  EXPECT_EQ(as_i64(batch_.fixed(4)[last()]), INT64_MIN);
  expect_ok(R"({"user_id":0,"type":"a","ts":0,"score":9223372036854775807})");
  EXPECT_EQ(as_i64(batch_.fixed(4)[last()]), INT64_MAX);
  expect_ok(R"({"user_id":0,"type":"a","ts":-1})");  // before the epoch is allowed
  EXPECT_EQ(as_i64(batch_.fixed(2)[last()]), -1);
  expect_ok(R"({"user_id":0,"type":"a","ts":0,"score":-0})");
  EXPECT_EQ(as_i64(batch_.fixed(4)[last()]), 0);

  expect_bad(R"({"user_id":-1,"type":"a","ts":0})", "field 'user_id': negative value -1 for u64");
  expect_bad(R"({"user_id":1,"type":"a","ts":0,"score":9223372036854775808})",
             "out of range for i64");
  expect_bad(R"({"user_id":1,"type":"a","ts":18446744073709551615})",
             "out of range for timestamp_ms");
  // Beyond 64 bits simdjson rejects the number itself.
  expect_bad(R"({"user_id":18446744073709551616,"type":"a","ts":0})", "invalid JSON");
  expect_bad(R"({"user_id":1,"type":"a","ts":0,"score":-9223372036854775809})", "invalid JSON");
}

TEST_F(JsonDecoderTest, F64AcceptsIntegersAndFloats) {
  const std::vector<std::pair<std::string, double>> cases = {
      {"3", 3.0},
      {"-4", -4.0},
      {"0.1", 0.1},
      {"1e-3", 1e-3},
      {"-2.5E+2", -250.0},
      {"1.7976931348623157e308", 1.7976931348623157e308},
      {"18446744073709551615", 18446744073709551615.0},
      {"-9223372036854775808", -9223372036854775808.0}};
  for (const auto& [text, expected] : cases) {
    expect_ok(fmt::format(R"({{"user_id":1,"type":"a","ts":0,"amount":{}}})", text));
    EXPECT_EQ(as_double(batch_.fixed(3)[last()]), expected) << text;
  }
  expect_bad(R"({"user_id":1,"type":"a","ts":0,"amount":1e400})", "invalid JSON");
  expect_bad(R"({"user_id":1,"type":"a","ts":0,"amount":NaN})", "invalid JSON");
}

TEST_F(JsonDecoderTest, TimestampStrings) {
  const std::vector<std::pair<std::string, std::int64_t>> cases = {
      {"2024-01-01T00:00:00.123Z", 1704067200123},
      {"2024-01-01T00:00:00Z", 1704067200000},
      {"1970-01-01T00:00:00Z", 0},
      {"1969-12-31T23:59:59.999Z", -1},
      {"2024-01-01T02:00:00+02:00", 1704067200000},
      {"2023-12-31T19:30:00.5-04:30", 1704067200500},
      {"2024-01-01t00:00:00.1z", 1704067200100},
      {"2024-01-01 00:00:00.12Z", 1704067200120},
      {"2024-01-01T00:00:00.123999999Z", 1704067200123},  // truncated, not rounded
      {"2024-02-29T12:00:00Z", 1709208000000},
      {"2000-02-29T00:00:00Z", 951782400000},
      {"2016-12-31T23:59:60Z", 1483228800000},  // leap second → next minute
  };
  for (const auto& [text, expected] : cases) {
    expect_ok(fmt::format(R"({{"user_id":1,"type":"a","ts":"{}"}})", text));
    EXPECT_EQ(as_i64(batch_.fixed(2)[last()]), expected) << text;
  }
}

TEST_F(JsonDecoderTest, InvalidTimestampStrings) {
  for (const char* text :
       {"2024-01-01T00:00:00", "2024-01-01", "2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z",
        "2024-01-32T00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01T00:60:00Z",
        "2024-01-01T00:00:61Z", "2024-01-01T00:00:00.Z", "2024-01-01T00:00:00.1234567890Z",
        "2024-01-01T00:00:00+0200", "2024-01-01T00:00:00+24:00", "2024-01-01T00:00:00Zjunk",
        "2024-1-01T00:00:00Z", "yesterday", "", "2024-01-01X00:00:00Z"}) {
    expect_bad(fmt::format(R"({{"user_id":1,"type":"a","ts":"{}"}})", text),
               "field 'ts': invalid timestamp");
  }
}

TEST(IoTimestamp, MatchesChronoOnRandomInstants) {
  using namespace std::chrono;
  for (unsigned seed = 1; seed <= 5; ++seed) {
    std::mt19937_64 rng(seed);
    for (int sample = 0; sample < 2000; ++sample) {
      // Any millisecond from year 0001 to 9998.
      const std::int64_t ms =
          static_cast<std::int64_t>(rng() % 315400000000000ULL) - 62135596800000LL;
      const sys_time<milliseconds> instant{milliseconds{ms}};
      const int offset_minutes = static_cast<int>(rng() % (2 * 14 * 60 + 1)) - 14 * 60;
      // Render the same instant in a random zone offset.
      const sys_time<milliseconds> local = instant + minutes{offset_minutes};
      const sys_days local_day = floor<days>(local);
      const year_month_day local_ymd{local_day};
      const hh_mm_ss<milliseconds> local_time{local - local_day};
      if (static_cast<int>(local_ymd.year()) < 0 || static_cast<int>(local_ymd.year()) > 9999) {
        continue;
      }
      const std::string text =
          fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}{}{:02}:{:02}",
                      static_cast<int>(local_ymd.year()), static_cast<unsigned>(local_ymd.month()),
                      static_cast<unsigned>(local_ymd.day()), local_time.hours().count(),
                      local_time.minutes().count(), local_time.seconds().count(),
                      local_time.subseconds().count(), offset_minutes < 0 ? '-' : '+',
                      std::abs(offset_minutes) / 60, std::abs(offset_minutes) % 60);
      std::int64_t parsed = 0;
      ASSERT_TRUE(parse_timestamp_ms(text, parsed)) << text;
      ASSERT_EQ(parsed, ms) << text;
    }
  }
}

TEST_F(JsonDecoderTest, BoolValues) {
  expect_ok(R"({"user_id":1,"type":"a","ts":0,"flag":true})");
  expect_ok(R"({"user_id":1,"type":"a","ts":0,"flag":false})");
  EXPECT_EQ(batch_.fixed(5)[0], 1U);
  EXPECT_EQ(batch_.fixed(5)[1], 0U);
  EXPECT_TRUE(batch_.is_valid(5, 1));
}

TEST_F(JsonDecoderTest, StringEscapesAreDecoded) {
  expect_ok(R"({"user_id":1,"type":"a\"b\\c\nd\u00e9\ud83d\ude00\u0000e","ts":0})");
  EXPECT_EQ(batch_.string_at(1, 0), std::string("a\"b\\c\nd\xC3\xA9\xF0\x9F\x98\x80\0e", 15));
  expect_ok("{\"user_id\":1,\"type\":\"caf\xC3\xA9 \xE2\x82\xAC\",\"ts\":0}");
  EXPECT_EQ(batch_.string_at(1, 1), "caf\xC3\xA9 \xE2\x82\xAC");
}

TEST_F(JsonDecoderTest, MalformedJsonIsBad) {
  expect_bad(R"({"user_id":1,"type":"a","ts":0)", "invalid JSON");  // truncated
  expect_bad(R"({"user_id":1,"type":"a",)", "invalid JSON");
  expect_bad(R"({"user_id":1,"type":"a)", "invalid JSON");
  expect_bad(R"({"user_id":1 "type":"a","ts":0})", "invalid JSON");
  expect_bad(R"({"user_id":1,"type":"a","ts":0,"x":tru})", "invalid JSON");  // ignored field too
  expect_bad(R"({user_id:1})", "invalid JSON");
  expect_bad(R"({'user_id':1})", "invalid JSON");
  expect_bad("", "invalid JSON: empty record");
  expect_bad("   ", "invalid JSON");
}

TEST_F(JsonDecoderTest, TrailingContentIsBad) {
  expect_bad(R"({"user_id":1,"type":"a","ts":0} x)", "invalid JSON");
  expect_bad(R"({"user_id":1,"type":"a","ts":0}{})", "invalid JSON");
  expect_bad(R"({"user_id":1,"type":"a","ts":0},)", "invalid JSON");
  // Whitespace around the object is fine.
  expect_ok(" \t{\"user_id\":1,\"type\":\"a\",\"ts\":0}  ");
}

TEST_F(JsonDecoderTest, NonObjectTopLevelIsBad) {
  expect_bad(R"([{"user_id":1,"type":"a","ts":0}])", "not a JSON object (got array)");
  expect_bad(R"("text")", "not a JSON object (got string)");
  expect_bad("42", "not a JSON object (got integer)");
  expect_bad("null", "not a JSON object (got null)");
}

TEST_F(JsonDecoderTest, BinaryGarbageIsBad) {
  std::mt19937_64 rng(7);
  for (int sample = 0; sample < 200; ++sample) {
    std::string garbage(1 + rng() % 300, '\0');
    for (char& c : garbage) c = static_cast<char>(rng());
    const decode_result result = decode(garbage);
    EXPECT_EQ(result.status, decode_status::bad);
    EXPECT_FALSE(result.reason.empty());
  }
  EXPECT_EQ(batch_.size(), 0U);
  expect_bad(std::string("\0\0\0", 3), "invalid JSON");
  expect_bad("\x89PNG\r\n\x1a\n", "invalid JSON");
}

TEST_F(JsonDecoderTest, InvalidUtf8IsBad) {
  expect_bad("{\"user_id\":1,\"type\":\"a\xFF\",\"ts\":0}", "UTF-8");
  expect_bad("{\"user_id\":1,\"type\":\"\xC3\",\"ts\":0}", "UTF-8");          // truncated sequence
  expect_bad("{\"user_id\":1,\"type\":\"\xC0\xAF\",\"ts\":0}", "UTF-8");      // overlong
  expect_bad("{\"user_id\":1,\"type\":\"\xED\xA0\x80\",\"ts\":0}", "UTF-8");  // surrogate
  expect_bad("{\"user_id\":1,\"type\":\"a\",\"ts\":0,\"junk\":\"\xFE\"}",
             "UTF-8");  // ignored field
}

TEST_F(JsonDecoderTest, DuplicateSchemaFieldIsBad) {
  expect_bad(R"({"user_id":1,"type":"a","ts":0,"user_id":2})", "duplicate field 'user_id'");
  // Duplicated unknown fields do not matter.
  expect_ok(R"({"user_id":1,"type":"a","ts":0,"x":1,"x":2})");
}

TEST_F(JsonDecoderTest, OverlongRecordIsBad) {
  std::string record = R"({"user_id":1,"type":"a","ts":0,"pad":")";
  record.append(10 * 1024 * 1024 - record.size() - 2, 'x');
  record.append("\"}");
  ASSERT_EQ(record.size(), 10U * 1024 * 1024);
  expect_bad(record, "record too long: 10485760 bytes > max_record_bytes (1048576)");
}

TEST(IoJsonDecoder, ConfigurableMaxRecordBytes) {
  const schema s = event_schema();
  json_decoder decoder(s, 40);
  host_batch batch(s, 4, 256);
  const std::string fits = R"({"user_id":1,"type":"a","ts":0})";
  ASSERT_LE(fits.size(), 40U);
  EXPECT_TRUE(decoder.decode(fits, batch, {}).ok());
  const std::string longer = R"({"user_id":1,"type":"abcdefghijklmnop","ts":0})";
  const decode_result result = decoder.decode(longer, batch, {});
  EXPECT_EQ(result.status, decode_status::bad);
  EXPECT_EQ(result.reason,
            fmt::format("record too long: {} bytes > max_record_bytes (40)", longer.size()));
  EXPECT_EQ(decoder.max_record_bytes(), 40U);
}

TEST(IoJsonDecoder, GrowingRecordsReuseTheDecoder) {
  // Record sizes growing past the initial buffer and parser capacity, then shrinking again.
  const schema s = event_schema();
  json_decoder decoder(s);
  host_batch batch(s, 64, 1 << 20);
  std::vector<std::size_t> sizes;
  for (std::size_t size = 10; size < 300000; size = size * 3 / 2) sizes.push_back(size);
  sizes.push_back(5);
  sizes.push_back(200000);
  for (std::size_t pad : sizes) {
    batch.clear();
    const std::string note(pad, 'n');
    const std::string record =
        fmt::format(R"({{"user_id":{},"type":"t","ts":0,"note":"{}"}})", pad, note);
    const decode_result result = decoder.decode(record, batch, {});
    ASSERT_TRUE(result.ok()) << pad << ": " << result.reason;
    EXPECT_EQ(batch.fixed(0)[0], pad);
    EXPECT_EQ(batch.string_at(6, 0), note);
  }
}

TEST(IoJsonDecoder, BatchFullRowsLeavesBatchUnchanged) {
  const schema s = event_schema();
  json_decoder decoder(s);
  host_batch batch(s, 2, 1024);
  ASSERT_TRUE(decoder.decode(R"({"user_id":1,"type":"a","ts":0})", batch, {}).ok());
  ASSERT_TRUE(decoder.decode(R"({"user_id":2,"type":"b","ts":0})", batch, {}).ok());
  const decode_result result = decoder.decode(R"({"user_id":3,"type":"c","ts":0})", batch, {});
  EXPECT_EQ(result.status, decode_status::batch_full);
  EXPECT_TRUE(result.reason.empty());
  EXPECT_EQ(batch.size(), 2U);
  EXPECT_EQ(batch.string_at(1, 1), "b");
}

TEST(IoJsonDecoder, BatchFullStringsLeavesBatchUnchanged) {
  const schema s = event_schema();
  json_decoder decoder(s);
  host_batch batch(s, 16, 10);
  ASSERT_TRUE(decoder.decode(R"({"user_id":1,"type":"abcdef","ts":0,"note":"x"})", batch, {}).ok());
  // "type" would fit but "note" (after it) would not: the whole row must be rolled back.
  const std::string record = R"({"user_id":2,"type":"ab","ts":0,"note":"0123456789"})";
  const decode_result result = decoder.decode(record, batch, {0, 2});
  EXPECT_EQ(result.status, decode_status::batch_full);
  EXPECT_EQ(batch.size(), 1U);
  EXPECT_EQ(batch.offsets(1)[1], 6U);
  EXPECT_EQ(batch.offsets(6)[1], 1U);
  // The same record succeeds on a fresh batch...
  host_batch fresh(s, 16, 10);
  EXPECT_TRUE(decoder.decode(record, fresh, {0, 2}).ok());
  EXPECT_EQ(fresh.string_at(6, 0), "0123456789");
  // ...and the old batch still takes a row that fits, right after the committed one.
  ASSERT_TRUE(decoder.decode(R"({"user_id":3,"type":"ghi","ts":0})", batch, {}).ok());
  EXPECT_EQ(batch.string_at(1, 0), "abcdef");
  EXPECT_EQ(batch.string_at(1, 1), "ghi");
  EXPECT_FALSE(batch.is_valid(6, 1));
}

TEST(IoJsonDecoder, StringLargerThanEmptyBatchIsBad) {
  const schema s = event_schema();
  json_decoder decoder(s);
  host_batch batch(s, 16, 8);
  ASSERT_TRUE(decoder.decode(R"({"user_id":1,"type":"abc","ts":0})", batch, {}).ok());
  const decode_result result =
      decoder.decode(R"({"user_id":1,"type":"123456789","ts":0})", batch, {});
  EXPECT_EQ(result.status, decode_status::bad);
  EXPECT_NE(result.reason.find("field 'type': string of 9 bytes exceeds the batch string "
                               "capacity (8 bytes)"),
            std::string::npos)
      << result.reason;
  EXPECT_EQ(batch.size(), 1U);
}

TEST_F(JsonDecoderTest, BadRecordRollsBackStringBytes) {
  expect_ok(R"({"user_id":1,"type":"first","ts":0})");
  // "type" is written before "score" fails.
  expect_bad(R"({"user_id":2,"type":"GARBAGEBYTES","ts":0,"score":"x"})", "field 'score'");
  expect_bad(R"({"type":"MORE","ts":0})", "missing required field 'user_id'");
  expect_ok(R"({"user_id":3,"type":"second","ts":0})");
  EXPECT_EQ(batch_.string_at(1, 0), "first");
  EXPECT_EQ(batch_.string_at(1, 1), "second");
  EXPECT_EQ(std::string(batch_.chars(1), batch_.offsets(1)[2]), "firstsecond");
}

TEST(IoJsonDecoder, ManyFieldsAndRandomPresenceMatchReference) {
  // A wide schema (beyond the small name table) with random optional presence and order.
  schema s;
  for (int field_idx = 0; field_idx < 40; ++field_idx) {
    s.fields.push_back({fmt::format("f{}", field_idx),
                        field_idx % 2 == 0 ? field_type::i64 : field_type::string, field_idx < 3});
  }
  json_decoder decoder(s);
  host_batch batch(s, 200, 1 << 16);
  std::mt19937_64 rng(99);
  struct cell {
    bool present;
    std::int64_t number;
    std::string text;
  };
  std::vector<std::vector<cell>> model;
  while (!batch.full()) {
    std::vector<cell> row(s.fields.size());
    std::vector<std::string> members;
    for (std::size_t field_idx = 0; field_idx < s.fields.size(); ++field_idx) {
      cell& c = row[field_idx];
      c.present = field_idx < 3 || rng() % 2 == 0;
      c.number = static_cast<std::int64_t>(rng());
      c.text = std::string(rng() % 8, static_cast<char>('a' + rng() % 26));
      if (!c.present) continue;
      members.push_back(field_idx % 2 == 0 ? fmt::format("\"f{}\":{}", field_idx, c.number)
                                           : fmt::format("\"f{}\":\"{}\"", field_idx, c.text));
    }
    members.push_back("\"unknown\":[1,2,3]");
    std::shuffle(members.begin(), members.end(), rng);
    std::string record = "{";
    for (std::size_t member_idx = 0; member_idx < members.size(); ++member_idx) {
      if (member_idx != 0) record += ',';
      record += members[member_idx];
    }
    record += '}';
    const decode_result result = decoder.decode(record, batch, {});
    ASSERT_TRUE(result.ok()) << result.reason;
    model.push_back(std::move(row));
  }
  for (std::size_t row = 0; row < model.size(); ++row) {
    for (std::size_t field_idx = 0; field_idx < s.fields.size(); ++field_idx) {
      const cell& c = model[row][field_idx];
      ASSERT_EQ(batch.is_valid(field_idx, row), c.present) << row << " " << field_idx;
      if (!c.present) continue;
      if (field_idx % 2 == 0) {
        ASSERT_EQ(as_i64(batch.fixed(field_idx)[row]), c.number);
      } else {
        ASSERT_EQ(batch.string_at(field_idx, row), c.text);
      }
    }
  }
}

}  // namespace
}  // namespace trove::io
