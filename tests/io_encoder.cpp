#include <gtest/gtest.h>
#include <simdjson.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "io/encoder.hpp"
#include "io/result_batch.hpp"

namespace trove::io {
namespace {

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t begin = 0;
  while (begin < text.size()) {
    const std::size_t end = text.find('\n', begin);
    if (end == std::string::npos) {
      ADD_FAILURE() << "output does not end with a newline";
      lines.push_back(text.substr(begin));
      break;
    }
    lines.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  return lines;
}

/// Parses one JSON line; fails the test when it is not valid JSON (simdjson also checks UTF-8).
simdjson::dom::element parse(simdjson::dom::parser& parser, const std::string& line) {
  simdjson::dom::element root;
  const auto error = parser.parse(line).get(root);
  EXPECT_EQ(error, simdjson::SUCCESS) << simdjson::error_message(error) << " in: " << line;
  return root;
}

/// The decoded value of a JSON string field.
std::string json_string(simdjson::dom::element root, const char* key) {
  std::string_view value;
  const auto error = root[key].get_string().get(value);
  EXPECT_EQ(error, simdjson::SUCCESS) << key;
  return std::string(value);
}

/// A one-column string batch.
result_batch strings(const std::vector<std::string>& values) {
  result_batch batch;
  result_column& column = batch.add_column("s", field_type::string);
  for (const auto& value : values) column.append_string(value);
  batch.rows = values.size();
  return batch;
}

TEST(IoJsonEncoder, EveryTypeParsesBack) {
  result_batch batch;
  batch.add_column("user_id", field_type::u64);
  batch.add_column("type", field_type::string);
  batch.add_column("window_start", field_type::timestamp_ms);
  batch.add_column("count", field_type::i64);
  batch.add_column("sum_amount", field_type::f64);
  batch.add_column("flag", field_type::boolean);
  // References taken after every add_column(): adding a column may move the others.
  result_column& user = batch.columns[0];
  result_column& type = batch.columns[1];
  result_column& start = batch.columns[2];
  result_column& count = batch.columns[3];
  result_column& sum = batch.columns[4];
  result_column& flag = batch.columns[5];
  user.append_u64(std::numeric_limits<std::uint64_t>::max());
  type.append_string("click");
  start.append_i64(1704067200000);
  count.append_i64(std::numeric_limits<std::int64_t>::min());
  sum.append_f64(1.5);
  flag.append_bool(true);
  user.append_u64(0);
  type.append_null();
  start.append_null();
  count.append_i64(3);
  sum.append_f64(0.1);
  flag.append_bool(false);
  batch.rows = 2;
  ASSERT_TRUE(batch.consistent());

  std::string out = "prefix\n";
  json_encoder encoder;
  encoder.encode(batch, out);
  ASSERT_EQ(out.rfind("prefix\n", 0), 0U);  // appends, keeps what was there
  const std::vector<std::string> lines = split_lines(out.substr(7));
  ASSERT_EQ(lines.size(), 2U);

  simdjson::dom::parser parser;
  simdjson::dom::element row = parse(parser, lines[0]);
  EXPECT_EQ(row["user_id"].get_uint64().value(), std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(json_string(row, "type"), "click");
  EXPECT_EQ(row["window_start"].get_int64().value(), 1704067200000);
  EXPECT_EQ(row["count"].get_int64().value(), std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(row["sum_amount"].get_double().value(), 1.5);
  EXPECT_EQ(row["flag"].get_bool().value(), true);
  // Keys come in column order.
  std::vector<std::string> keys;
  const simdjson::dom::object object = row.get_object().value();
  for (const auto member : object) keys.emplace_back(member.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"user_id", "type", "window_start", "count",
                                            "sum_amount", "flag"}));

  row = parse(parser, lines[1]);
  EXPECT_EQ(row["user_id"].get_uint64().value(), 0U);
  EXPECT_TRUE(row["type"].is_null());
  EXPECT_TRUE(row["window_start"].is_null());
  EXPECT_EQ(row["count"].get_int64().value(), 3);
  EXPECT_EQ(row["sum_amount"].get_double().value(), 0.1);
  EXPECT_EQ(row["flag"].get_bool().value(), false);
}

TEST(IoJsonEncoder, DoublesRoundTripExactly) {
  std::mt19937_64 rng(3);
  result_batch batch;
  result_column& column = batch.add_column("x", field_type::f64);
  std::vector<double> values = {0.0,
                                -0.0,
                                1.0,
                                -1.0,
                                0.1,
                                1e300,
                                -1e-300,
                                5e-324,
                                1e21,
                                123456789012345678.0,
                                std::numeric_limits<double>::max(),
                                std::numeric_limits<double>::min()};
  while (values.size() < 5000) {
    const std::uint64_t bits = rng();
    double value;
    std::memcpy(&value, &bits, sizeof value);
    if (std::isfinite(value)) values.push_back(value);
  }
  for (const double value : values) column.append_f64(value);
  batch.rows = values.size();
  std::string out;
  json_encoder().encode(batch, out);
  const std::vector<std::string> lines = split_lines(out);
  ASSERT_EQ(lines.size(), values.size());
  simdjson::dom::parser parser;
  for (std::size_t row = 0; row < values.size(); ++row) {
    const double parsed = parse(parser, lines[row])["x"].get_double().value();
    std::uint64_t expected_bits, parsed_bits;
    std::memcpy(&expected_bits, &values[row], sizeof expected_bits);
    std::memcpy(&parsed_bits, &parsed, sizeof parsed_bits);
    if (values[row] == 0.0) {
      EXPECT_EQ(parsed, 0.0) << lines[row];  // simdjson may read "-0" as the integer 0
    } else {
      ASSERT_EQ(parsed_bits, expected_bits) << lines[row];
    }
  }
}

TEST(IoJsonEncoder, NonFiniteAndNullAreNull) {
  result_batch batch;
  result_column& column = batch.add_column("x", field_type::f64);
  column.append_f64(std::numeric_limits<double>::quiet_NaN());
  column.append_f64(std::numeric_limits<double>::infinity());
  column.append_f64(-std::numeric_limits<double>::infinity());
  column.append_null();
  batch.rows = 4;
  std::string out;
  json_encoder().encode(batch, out);
  const std::vector<std::string> lines = split_lines(out);
  ASSERT_EQ(lines.size(), 4U);
  simdjson::dom::parser parser;
  for (const auto& line : lines) EXPECT_TRUE(parse(parser, line)["x"].is_null()) << line;
}

TEST(IoJsonEncoder, EscapesStringsCorrectly) {
  std::vector<std::string> values = {
      "plain",
      "quote \" backslash \\ slash /",
      "new\nline\rtab\tbell\x07 back\b feed\f",
      std::string("nul\0byte", 8),
      "unicode caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80",
      "del \x7F",
      "",
      "{\"json\":[1,2]}",
  };
  std::string all_controls;
  for (int c = 0; c < 0x20; ++c) all_controls.push_back(static_cast<char>(c));
  values.push_back(all_controls);

  std::string out;
  json_encoder().encode(strings(values), out);
  const std::vector<std::string> lines = split_lines(out);
  ASSERT_EQ(lines.size(), values.size());
  simdjson::dom::parser parser;
  for (std::size_t row = 0; row < values.size(); ++row) {
    EXPECT_EQ(json_string(parse(parser, lines[row]), "s"), values[row]) << lines[row];
    // No raw control character may appear in the output line.
    for (const char c : lines[row]) EXPECT_GE(static_cast<unsigned char>(c), 0x20U) << row;
  }
  // Valid UTF-8 passes through unescaped.
  EXPECT_NE(lines[4].find("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"), std::string::npos);
}

TEST(IoJsonEncoder, InvalidUtf8BecomesLatin1Escapes) {
  // Each invalid byte reads as the code point U+00XX; valid sequences around it are kept.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"a\xFF"
       "b",
       "a\xC3\xBF"
       "b"},                                                     // 0xFF → U+00FF
      {"\xE2\x82", "\xC3\xA2\xC2\x82"},                          // truncated sequence: two escapes
      {"\xC0\xAF", "\xC3\x80\xC2\xAF"},                          // overlong encoding
      {"\xED\xA0\x80", "\xC3\xAD\xC2\xA0\xC2\x80"},              // surrogate
      {"\xF4\x90\x80\x80", "\xC3\xB4\xC2\x90\xC2\x80\xC2\x80"},  // above U+10FFFF
      {"\x80\xE2\x82\xAC", "\xC2\x80\xE2\x82\xAC"},  // stray continuation, then a valid €
  };
  std::vector<std::string> inputs;
  for (const auto& [input, expected] : cases) inputs.push_back(input);
  std::string out;
  json_encoder().encode(strings(inputs), out);
  const std::vector<std::string> lines = split_lines(out);
  ASSERT_EQ(lines.size(), cases.size());
  simdjson::dom::parser parser;
  for (std::size_t row = 0; row < cases.size(); ++row) {
    EXPECT_EQ(json_string(parse(parser, lines[row]), "s"), cases[row].second) << lines[row];
  }
}

TEST(IoJsonEncoder, RandomBytesAlwaysGiveValidJson) {
  std::mt19937_64 rng(11);
  std::vector<std::string> values;
  for (int sample = 0; sample < 2000; ++sample) {
    std::string value(rng() % 64, '\0');
    for (char& c : value) c = static_cast<char>(rng());
    values.push_back(std::move(value));
  }
  std::string out;
  json_encoder().encode(strings(values), out);
  const std::vector<std::string> lines = split_lines(out);
  ASSERT_EQ(lines.size(), values.size());
  simdjson::dom::parser parser;
  for (std::size_t row = 0; row < values.size(); ++row) {
    const std::string decoded = json_string(parse(parser, lines[row]), "s");
    if (simdjson::validate_utf8(values[row])) {
      EXPECT_EQ(decoded, values[row]);
    }
  }
}

TEST(IoJsonEncoder, EscapesColumnNames) {
  result_batch batch;
  batch.add_column("we\"ird\\name", field_type::i64).append_i64(1);
  batch.rows = 1;
  std::string out;
  json_encoder().encode(batch, out);
  simdjson::dom::parser parser;
  const simdjson::dom::element row = parse(parser, split_lines(out)[0]);
  EXPECT_EQ(row["we\"ird\\name"].get_int64().value(), 1);
}

TEST(IoJsonEncoder, NoColumnsAndNoRows) {
  result_batch batch;
  batch.rows = 2;
  std::string out;
  json_encoder().encode(batch, out);
  EXPECT_EQ(out, "{}\n{}\n");
  result_batch empty;
  empty.add_column("x", field_type::i64);
  out.clear();
  json_encoder().encode(empty, out);
  EXPECT_TRUE(out.empty());
}

TEST(IoJsonEncoder, ReusedAcrossBatches) {
  json_encoder encoder;
  std::string out;
  for (int round = 0; round < 3; ++round) {
    result_batch batch;
    batch.add_column(round % 2 == 0 ? "a" : "b", field_type::i64).append_i64(round);
    batch.rows = 1;
    encoder.encode(batch, out);
  }
  const std::vector<std::string> lines = split_lines(out);
  ASSERT_EQ(lines.size(), 3U);
  simdjson::dom::parser parser;
  EXPECT_EQ(parse(parser, lines[0])["a"].get_int64().value(), 0);
  EXPECT_EQ(parse(parser, lines[1])["b"].get_int64().value(), 1);
  EXPECT_EQ(parse(parser, lines[2])["a"].get_int64().value(), 2);
}

TEST(IoResultBatch, HelpersKeepColumnsConsistent) {
  result_batch batch;
  batch.add_column("s", field_type::string);
  batch.add_column("n", field_type::f64);
  result_column& text = batch.columns[0];
  result_column& number = batch.columns[1];
  EXPECT_EQ(text.offsets, std::vector<std::uint32_t>{0});
  text.append_string("ab");
  text.append_null();
  text.append_string("c");
  number.append_f64(2.5);
  number.append_null();
  batch.rows = 3;
  EXPECT_FALSE(batch.consistent());
  number.append_f64(-1);
  EXPECT_TRUE(batch.consistent());
  EXPECT_EQ(text.string_at(0), "ab");
  EXPECT_EQ(text.string_at(1), "");
  EXPECT_FALSE(text.is_valid(1));
  EXPECT_EQ(text.string_at(2), "c");
  EXPECT_EQ(number.f64_at(0), 2.5);
  EXPECT_EQ(text.offsets, (std::vector<std::uint32_t>{0, 2, 2, 3}));
  batch.clear();
  EXPECT_EQ(batch.rows, 0U);
  EXPECT_EQ(text.size(), 0U);
  EXPECT_EQ(text.offsets, std::vector<std::uint32_t>{0});
  EXPECT_TRUE(batch.consistent());
}

TEST(IoResultBatch, EmptyValidMeansAllPresent) {
  result_batch batch;
  result_column& column = batch.add_column("n", field_type::i64);
  column.fixed = {1, 2};  // filled directly, as a backend copy would
  batch.rows = 2;
  ASSERT_TRUE(batch.consistent());
  std::string out;
  json_encoder().encode(batch, out);
  simdjson::dom::parser parser;
  const std::vector<std::string> lines = split_lines(out);
  ASSERT_EQ(lines.size(), 2U);
  EXPECT_EQ(parse(parser, lines[1])["n"].get_int64().value(), 2);
}

TEST(IoCsvEncoder, HeaderOnceQuotingAndNulls) {
  result_batch batch;
  batch.add_column("na,me", field_type::string);
  batch.add_column("value", field_type::f64);
  batch.add_column("flag", field_type::boolean);
  result_column& name = batch.columns[0];
  result_column& value = batch.columns[1];
  result_column& flag = batch.columns[2];
  name.append_string("plain");
  value.append_f64(1.5);
  flag.append_bool(true);
  name.append_string("a,\"b\"");
  value.append_f64(std::numeric_limits<double>::quiet_NaN());
  flag.append_null();
  name.append_string("");
  value.append_null();
  flag.append_bool(false);
  name.append_null();
  value.append_f64(-2);
  flag.append_bool(true);
  name.append_string("line\nbreak\r");
  value.append_f64(0.25);
  flag.append_bool(false);
  batch.rows = 5;

  csv_encoder encoder;
  std::string out;
  encoder.encode(batch, out);
  EXPECT_EQ(out,
            "\"na,me\",value,flag\n"
            "plain,1.5,true\n"
            "\"a,\"\"b\"\"\",,\n"
            "\"\",,false\n"
            ",-2,true\n"
            "\"line\nbreak\r\",0.25,false\n");
  // The header is written once per encoder; reset() writes it again.
  batch.columns[0].clear();
  batch.columns[1].clear();
  batch.columns[2].clear();
  batch.rows = 0;
  std::string second;
  encoder.encode(batch, second);
  EXPECT_TRUE(second.empty());
  encoder.reset();
  encoder.encode(batch, second);
  EXPECT_EQ(second, "\"na,me\",value,flag\n");
}

TEST(IoCsvEncoder, FieldQuoting) {
  std::string out;
  append_csv_field(out, "abc");
  out += '|';
  append_csv_field(out, "");
  out += '|';
  append_csv_field(out, "\"");
  out += '|';
  append_csv_field(out, " spaced ");
  EXPECT_EQ(out, "abc|\"\"|\"\"\"\"| spaced ");
}

TEST(EncodeOptions, RowEndsSplitTheOutputIntoOneTextPerRowAndColumnsSelectASubset) {
  result_batch batch;
  batch.add_column("user_id", field_type::u64);
  batch.add_column("type", field_type::string);
  batch.add_column("count", field_type::i64);
  auto& user = batch.columns[0];  // references only after the last add_column
  auto& type = batch.columns[1];
  auto& count = batch.columns[2];
  const std::vector<std::string> types = {"a,b", "line\nbreak", "plain", "q\"uote"};
  for (std::size_t row = 0; row < types.size(); ++row) {
    user.append_u64(row * 10);
    type.append_string(types[row]);
    count.append_i64(static_cast<std::int64_t>(row + 1));
  }
  batch.rows = types.size();
  for (int csv = 0; csv < 2; ++csv) {
    std::string all;
    std::string out;
    std::vector<std::size_t> ends;
    encode_options options;
    options.row_ends = &ends;
    if (csv) {
      csv_encoder plain;
      plain.omit_header();
      plain.encode(batch, all);
      csv_encoder with_ends;
      with_ends.omit_header();
      with_ends.encode(batch, out, options);
    } else {
      json_encoder().encode(batch, all);
      json_encoder().encode(batch, out, options);
    }
    EXPECT_EQ(out, all) << "row ends change nothing in the text";
    ASSERT_EQ(ends.size(), batch.rows);
    EXPECT_EQ(ends.back(), out.size());
    // Each row's text, encoded alone, is the slice between consecutive ends.
    for (std::size_t row = 0; row < batch.rows; ++row) {
      result_batch one;
      one.add_column("user_id", field_type::u64);
      one.add_column("type", field_type::string);
      one.add_column("count", field_type::i64);
      auto& u = one.columns[0];
      auto& t = one.columns[1];
      auto& c = one.columns[2];
      u.append_u64(row * 10);
      t.append_string(types[row]);
      c.append_i64(static_cast<std::int64_t>(row + 1));
      one.rows = 1;
      std::string alone;
      if (csv) {
        csv_encoder e;
        e.omit_header();
        e.encode(one, alone);
      } else {
        json_encoder().encode(one, alone);
      }
      const std::size_t begin = row == 0 ? 0 : ends[row - 1];
      EXPECT_EQ(out.substr(begin, ends[row] - begin), alone) << "row " << row;
    }
  }
  // A column subset in the given order: the message key of a Kafka sink.
  const std::vector<std::size_t> key = {1, 0};
  encode_options subset;
  subset.columns = &key;
  std::string keys;
  json_encoder().encode(batch, keys, subset);
  simdjson::dom::parser parser;
  const auto lines = split_lines(keys);
  ASSERT_EQ(lines.size(), batch.rows);
  for (std::size_t row = 0; row < batch.rows; ++row) {
    const auto root = parse(parser, lines[row]);
    EXPECT_EQ(json_string(root, "type"), types[row]);
    EXPECT_EQ(std::uint64_t(root["user_id"]), row * 10);
    EXPECT_EQ(root["count"].error(), simdjson::NO_SUCH_FIELD) << lines[row];
    EXPECT_EQ(lines[row].rfind("{\"type\":", 0), 0u) << "columns in the given order";
  }
  std::string csv_keys;
  csv_encoder header_first;
  header_first.encode(batch, csv_keys, subset);
  EXPECT_EQ(csv_keys.substr(0, csv_keys.find('\n')), "type,user_id");
}

}  // namespace
}  // namespace trove::io
