#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "io/batch.hpp"
#include "io/csv_decoder.hpp"
#include "io/encoder.hpp"
#include "io/result_batch.hpp"

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

constexpr std::string_view k_header = "user_id,type,ts,amount,score,flag,note";

class CsvDecoderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const decode_result result = decoder_.set_header(k_header);
    ASSERT_TRUE(result.ok()) << result.reason;
  }
  decode_result decode(std::string_view line) {
    return decoder_.decode(line, batch_, {0, static_cast<std::int64_t>(batch_.size())});
  }
  void expect_ok(std::string_view line) {
    const std::size_t before = batch_.size();
    const decode_result result = decode(line);
    ASSERT_EQ(result.status, decode_status::ok) << line << " → " << result.reason;
    EXPECT_EQ(batch_.size(), before + 1);
  }
  void expect_bad(std::string_view line, std::string_view fragment) {
    const std::size_t before = batch_.size();
    const decode_result result = decode(line);
    ASSERT_EQ(result.status, decode_status::bad) << line;
    EXPECT_NE(result.reason.find(fragment), std::string::npos)
        << "reason '" << result.reason << "' lacks '" << fragment << "'";
    EXPECT_EQ(batch_.size(), before);
  }
  std::size_t last() const { return batch_.size() - 1; }

  schema schema_ = event_schema();
  csv_decoder decoder_{schema_};
  host_batch batch_{schema_, 64, 4096};
};

TEST_F(CsvDecoderTest, DecodesEveryType) {
  expect_ok("42,click,1704067200123,1.5,-7,true,hi");
  EXPECT_EQ(batch_.fixed(0)[0], 42U);
  EXPECT_EQ(batch_.string_at(1, 0), "click");
  EXPECT_EQ(as_i64(batch_.fixed(2)[0]), 1704067200123);
  EXPECT_EQ(as_double(batch_.fixed(3)[0]), 1.5);
  EXPECT_EQ(as_i64(batch_.fixed(4)[0]), -7);
  EXPECT_EQ(batch_.fixed(5)[0], 1U);
  EXPECT_EQ(batch_.string_at(6, 0), "hi");
  EXPECT_EQ(batch_.positions()[0].offset, 0);
}

TEST_F(CsvDecoderTest, RfcQuoting) {
  expect_ok(R"(1,"a,""b""",0,,,,"x,y")");
  EXPECT_EQ(batch_.string_at(1, last()), R"(a,"b")");
  EXPECT_EQ(batch_.string_at(6, last()), "x,y");
  expect_ok(R"("2","""",0,,,,"""quoted""")");
  EXPECT_EQ(batch_.fixed(0)[last()], 2U);
  EXPECT_EQ(batch_.string_at(1, last()), "\"");
  EXPECT_EQ(batch_.string_at(6, last()), "\"quoted\"");
  expect_ok(R"(3,"a""""b",0,,,,)");
  EXPECT_EQ(batch_.string_at(1, last()), "a\"\"b");
  // A quote inside an unquoted field is a literal character.
  expect_ok(R"(4,5" screen,0,,,,)");
  EXPECT_EQ(batch_.string_at(1, last()), "5\" screen");
}

TEST_F(CsvDecoderTest, QuotingErrors) {
  expect_bad(R"(1,"abc,0,,,,)", "unterminated quoted field");
  expect_bad(R"(1,"ab""c,0,,,,)", "unterminated quoted field");
  expect_bad(R"(1,"ab"c,0,,,,)", "unexpected character after a closing quote");
  expect_bad(R"(1,"ab" ,0,,,,)", "unexpected character after a closing quote");
}

TEST_F(CsvDecoderTest, EmptyFieldsAreNullOrBad) {
  expect_ok("1,a,0,,,,");
  for (std::size_t column = 3; column < 7; ++column) EXPECT_FALSE(batch_.is_valid(column, 0));
  expect_bad(",a,0,,,,", "field 'user_id': required but empty");
  expect_bad("1,,0,,,,", "field 'type': required but empty");
  expect_bad("1,a, ,,,,", "field 'ts': required but empty");  // blank counts as empty
}

TEST_F(CsvDecoderTest, QuotedEmptyStringIsNotNull) {
  expect_ok(R"(1,"",0,,,,"")");
  EXPECT_TRUE(batch_.is_valid(1, 0));
  EXPECT_EQ(batch_.string_at(1, 0), "");
  EXPECT_TRUE(batch_.is_valid(6, 0));
  // For other types a quoted empty field is still empty.
  expect_ok(R"(1,a,0,"",,,)");
  EXPECT_FALSE(batch_.is_valid(3, 1));
}

TEST_F(CsvDecoderTest, FieldCountMustMatchHeader) {
  expect_bad("1,a,0,,,", "row has 6 fields, header has 7");
  expect_bad("1,a,0,,,,,", "more fields than the header (7)");
  expect_bad("1,a", "row has 2 fields, header has 7");
  // Fields are checked left to right: an empty required field is reported first.
  expect_bad("", "field 'user_id': required but empty");
}

TEST_F(CsvDecoderTest, IntegerRules) {
  expect_ok("18446744073709551615,a,0,,9223372036854775807,,");
  EXPECT_EQ(batch_.fixed(0)[last()], UINT64_MAX);
  EXPECT_EQ(as_i64(batch_.fixed(4)[last()]), INT64_MAX);
  expect_ok("0,a,0,,-9223372036854775808,,");
  EXPECT_EQ(as_i64(batch_.fixed(4)[last()]), INT64_MIN);
  expect_ok(" 5 ,a,0,,\t-3 ,,");  // spaces around numbers are ignored
  EXPECT_EQ(batch_.fixed(0)[last()], 5U);
  EXPECT_EQ(as_i64(batch_.fixed(4)[last()]), -3);

  expect_bad("-1,a,0,,,,", "field 'user_id': negative value -1 for u64");
  expect_bad("18446744073709551616,a,0,,,,", "out of range for u64");
  expect_bad("1,a,0,,9223372036854775808,,",
             "field 'score': value \"9223372036854775808\" out "
             "of range for i64");
  expect_bad("12x,a,0,,,,", "field 'user_id': expected u64, got \"12x\"");
  expect_bad("1.0,a,0,,,,", "expected u64");
  expect_bad("+1,a,0,,,,", "expected u64");
  expect_bad("1 2,a,0,,,,", "expected u64");
  expect_bad("0x10,a,0,,,,", "expected u64");
  expect_bad("1,a,0,,abc,,", "field 'score': expected i64, got \"abc\"");
}

TEST_F(CsvDecoderTest, FloatRules) {
  const std::vector<std::pair<std::string, double>> cases = {
      {"3", 3.0}, {"-4.25", -4.25}, {"1e-3", 1e-3}, {".5", 0.5}, {"0.1", 0.1}, {"2E+2", 200.0}};
  for (const auto& [text, expected] : cases) {
    expect_ok(fmt::format("1,a,0,{},,,", text));
    EXPECT_EQ(as_double(batch_.fixed(3)[last()]), expected) << text;
  }
  expect_bad("1,a,0,nan,,,", "non-finite f64");
  expect_bad("1,a,0,inf,,,", "non-finite f64");
  expect_bad("1,a,0,1e400,,,", "out of range for f64");
  expect_bad("1,a,0,1.5kg,,,", "field 'amount': expected f64, got \"1.5kg\"");
  expect_bad("1,a,0,1,5,,,", "more fields than the header");  // a decimal comma splits the field
}

TEST_F(CsvDecoderTest, BoolRules) {
  expect_ok("1,a,0,,,true,");
  expect_ok("1,a,0,,,FALSE,");
  expect_ok("1,a,0,,,True,");
  EXPECT_EQ(batch_.fixed(5)[0], 1U);
  EXPECT_EQ(batch_.fixed(5)[1], 0U);
  EXPECT_EQ(batch_.fixed(5)[2], 1U);
  expect_bad("1,a,0,,,1,", "field 'flag': expected bool, got \"1\"");
  expect_bad("1,a,0,,,yes,", "expected bool");
}

TEST_F(CsvDecoderTest, TimestampRules) {
  expect_ok("1,a,1704067200123,,,,");
  EXPECT_EQ(as_i64(batch_.fixed(2)[last()]), 1704067200123);
  expect_ok("1,a,-5,,,,");
  EXPECT_EQ(as_i64(batch_.fixed(2)[last()]), -5);
  expect_ok("1,a,2024-01-01T00:00:00.123Z,,,,");
  EXPECT_EQ(as_i64(batch_.fixed(2)[last()]), 1704067200123);
  expect_ok(R"(1,a,"2024-01-01T01:00:00+01:00",,,,)");
  EXPECT_EQ(as_i64(batch_.fixed(2)[last()]), 1704067200000);
  expect_bad("1,a,2024-01-01T00:00:00,,,,", "field 'ts': invalid timestamp");
  expect_bad("1,a,12:00,,,,", "invalid timestamp");
  expect_bad("1,a,99999999999999999999,,,,", "out of range for timestamp_ms");
}

TEST_F(CsvDecoderTest, StringsKeepSpaces) {
  expect_ok("1,  padded  ,0,,,,\t");
  EXPECT_EQ(batch_.string_at(1, 0), "  padded  ");
  EXPECT_EQ(batch_.string_at(6, 0), "\t");
}

TEST_F(CsvDecoderTest, OverlongRecordIsBad) {
  std::string line = "1,a,0,,,,";
  line.append(10 * 1024 * 1024 - line.size(), 'x');
  expect_bad(line, "record too long: 10485760 bytes > max_record_bytes (1048576)");
}

TEST(IoCsvDecoder, HeaderMapsColumnsByName) {
  const schema s = event_schema();
  csv_decoder decoder(s);
  // Reordered, an unknown column, optional columns amount/flag/note absent.
  ASSERT_TRUE(decoder.set_header("ts,extra,score,type,user_id").ok());
  EXPECT_TRUE(decoder.has_header());
  host_batch batch(s, 4, 256);
  ASSERT_TRUE(decoder.decode("7,ignored,9,view,3", batch, {0, 1}).ok());
  EXPECT_EQ(as_i64(batch.fixed(2)[0]), 7);
  EXPECT_EQ(as_i64(batch.fixed(4)[0]), 9);
  EXPECT_EQ(batch.string_at(1, 0), "view");
  EXPECT_EQ(batch.fixed(0)[0], 3U);
  EXPECT_FALSE(batch.is_valid(3, 0));
  EXPECT_FALSE(batch.is_valid(5, 0));
  EXPECT_FALSE(batch.is_valid(6, 0));
}

TEST(IoCsvDecoder, HeaderMissingRequiredColumnsListsThem) {
  csv_decoder decoder(event_schema());
  const decode_result result = decoder.set_header("type,amount,note");
  EXPECT_EQ(result.status, decode_status::bad);
  EXPECT_EQ(result.reason, "CSV header lacks required columns: user_id, ts");
  EXPECT_FALSE(decoder.has_header());
}

TEST(IoCsvDecoder, HeaderDuplicateColumnIsAnError) {
  csv_decoder decoder(event_schema());
  const decode_result result = decoder.set_header("user_id,type,ts,type");
  EXPECT_EQ(result.status, decode_status::bad);
  EXPECT_NE(result.reason.find("'type' twice"), std::string::npos) << result.reason;
}

TEST(IoCsvDecoder, HeaderWithBomAndQuotes) {
  const schema s = event_schema();
  csv_decoder decoder(s);
  ASSERT_TRUE(decoder.set_header("\xEF\xBB\xBFuser_id,\"type\",ts").ok());
  host_batch batch(s, 4, 256);
  ASSERT_TRUE(decoder.decode("1,a,2", batch, {}).ok());
  EXPECT_EQ(batch.fixed(0)[0], 1U);
}

TEST(IoCsvDecoder, DecodeWithoutHeaderIsBad) {
  const schema s = event_schema();
  csv_decoder decoder(s);
  host_batch batch(s, 4, 256);
  const decode_result result = decoder.decode("1,a,0", batch, {});
  EXPECT_EQ(result.status, decode_status::bad);
  EXPECT_NE(result.reason.find("header"), std::string::npos);
}

TEST(IoCsvDecoder, BatchFullLeavesBatchUnchanged) {
  const schema s = event_schema();
  csv_decoder decoder(s);
  ASSERT_TRUE(decoder.set_header(k_header).ok());
  host_batch batch(s, 2, 8);
  ASSERT_TRUE(decoder.decode("1,abcd,0,,,,12345", batch, {}).ok());
  // Strings exhausted (each column has 8 bytes): "type" fits, "note" does not.
  decode_result result = decoder.decode("2,ab,0,,,,1234", batch, {});
  EXPECT_EQ(result.status, decode_status::batch_full);
  EXPECT_EQ(batch.size(), 1U);
  EXPECT_EQ(batch.offsets(1)[1], 4U);
  EXPECT_EQ(batch.offsets(6)[1], 5U);
  ASSERT_TRUE(decoder.decode("3,efgh,0,,,,", batch, {}).ok());
  // Rows exhausted.
  result = decoder.decode("4,a,0,,,,", batch, {});
  EXPECT_EQ(result.status, decode_status::batch_full);
  EXPECT_EQ(batch.size(), 2U);
  EXPECT_EQ(batch.string_at(1, 1), "efgh");
  // Too long for any batch of this capacity.
  host_batch fresh(s, 2, 8);
  result = decoder.decode("5,123456789,0,,,,", fresh, {});
  EXPECT_EQ(result.status, decode_status::bad);
  EXPECT_NE(result.reason.find("exceeds the batch string capacity"), std::string::npos);
}

TEST(IoCsvDecoder, EncoderRoundTrip) {
  // csv_encoder output read back by csv_decoder gives the same values, including strings full
  // of commas and quotes, empty strings and nulls.
  const schema s{{{"id", field_type::u64, true},
                  {"name", field_type::string, false},
                  {"delta", field_type::i64, false},
                  {"amount", field_type::f64, false},
                  {"ts", field_type::timestamp_ms, false},
                  {"ok", field_type::boolean, false}}};
  const std::string alphabet = "ab ,\"\t;'\\\xC3\xA9";
  for (unsigned seed = 1; seed <= 10; ++seed) {
    std::mt19937_64 rng(seed);
    result_batch results;
    for (const field& f : s.fields) results.add_column(f.name, f.type);
    constexpr std::size_t rows = 200;
    for (std::size_t row = 0; row < rows; ++row) {
      results.columns[0].append_u64(rng());
      if (rng() % 4 == 0) {
        results.columns[1].append_null();
      } else {
        std::string text(rng() % 12, ' ');
        for (char& c : text) c = alphabet[rng() % alphabet.size()];
        results.columns[1].append_string(text);
      }
      results.columns[2].append_i64(static_cast<std::int64_t>(rng()));
      if (rng() % 5 == 0) {
        results.columns[3].append_null();
      } else {
        double value;
        do {
          const std::uint64_t bits = rng();
          std::memcpy(&value, &bits, sizeof value);
        } while (!std::isfinite(value));
        results.columns[3].append_f64(value);
      }
      results.columns[4].append_i64(static_cast<std::int64_t>(rng() % 4000000000000ULL));
      results.columns[5].append_bool(rng() % 2 == 0);
    }
    results.rows = rows;

    std::string text;
    csv_encoder encoder;
    encoder.encode(results, text);

    csv_decoder decoder(s);
    host_batch batch(s, rows, 1 << 16);
    std::size_t begin = 0;
    std::size_t line_idx = 0;
    while (begin < text.size()) {
      const std::size_t end = text.find('\n', begin);
      ASSERT_NE(end, std::string::npos);
      const std::string_view line(text.data() + begin, end - begin);
      if (line_idx == 0) {
        ASSERT_TRUE(decoder.set_header(line).ok()) << line;
      } else {
        const decode_result result = decoder.decode(line, batch, {});
        ASSERT_TRUE(result.ok()) << line << " → " << result.reason;
      }
      begin = end + 1;
      ++line_idx;
    }
    ASSERT_EQ(batch.size(), rows);
    for (std::size_t row = 0; row < rows; ++row) {
      EXPECT_EQ(batch.fixed(0)[row], results.columns[0].fixed[row]);
      ASSERT_EQ(batch.is_valid(1, row), results.columns[1].is_valid(row)) << row;
      EXPECT_EQ(batch.string_at(1, row), results.columns[1].string_at(row)) << row;
      EXPECT_EQ(batch.fixed(2)[row], results.columns[2].fixed[row]);
      ASSERT_EQ(batch.is_valid(3, row), results.columns[3].is_valid(row));
      if (batch.is_valid(3, row)) {
        EXPECT_EQ(batch.fixed(3)[row], results.columns[3].fixed[row]);  // bit-exact
      }
      EXPECT_EQ(batch.fixed(4)[row], results.columns[4].fixed[row]);
      EXPECT_EQ(batch.fixed(5)[row], results.columns[5].fixed[row]);
    }
  }
}

}  // namespace
}  // namespace trove::io
