/// @file json_decoder_fuzz.cpp
/// @brief libFuzzer target: arbitrary bytes as a JSON-lines input, split and decoded as the
/// pipeline does (decoder_harness.hpp) into one small batch against a schema with every field
/// type. Checks: the accounting adds up, every batch is well formed, and every accepted row holds
/// what an independent reading of the record with simdjson's DOM says (present/null per field,
/// each value, no duplicate schema key).

#include <simdjson.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "decoder_harness.hpp"
#include "io/json_decoder.hpp"

namespace {

using trove::fuzz::fuzz_require;
namespace io = trove::io;

/// @brief The accepted row `row` of batch must match the record read independently.
void check_accepted(simdjson::dom::parser& parser, std::string_view text,
                    const io::host_batch& batch, std::size_t row) {
  const simdjson::padded_string padded(text);
  simdjson::dom::object object;
  fuzz_require(parser.parse(padded).get_object().get(object) == simdjson::SUCCESS,
               "accepted record is a JSON object");
  const io::schema& schema = batch.schema();
  for (std::size_t c = 0; c < schema.fields.size(); ++c) {
    const io::field& field = schema.fields[c];
    int occurrences = 0;
    simdjson::dom::element value;
    for (const simdjson::dom::key_value_pair member : object) {
      if (member.key == field.name) {
        ++occurrences;
        value = member.value;
      }
    }
    fuzz_require(occurrences <= 1, "accepted record has no duplicate schema key");
    const bool present = occurrences == 1 && !value.is_null();
    fuzz_require(batch.is_valid(c, row) == present, "valid exactly when present and not null");
    if (!present) continue;
    const std::uint64_t bits = field.type == io::field_type::string ? 0 : batch.fixed(c)[row];
    switch (field.type) {
      case io::field_type::i64: {
        std::int64_t expected = 0;
        fuzz_require(value.get_int64().get(expected) == simdjson::SUCCESS, "i64 is an int64");
        fuzz_require(value.is_int64() || value.is_uint64(), "i64 is an integer");
        fuzz_require(static_cast<std::int64_t>(bits) == expected, "i64 value");
        break;
      }
      case io::field_type::u64: {
        std::uint64_t expected = 0;
        fuzz_require(value.get_uint64().get(expected) == simdjson::SUCCESS, "u64 is a uint64");
        fuzz_require(bits == expected, "u64 value");
        break;
      }
      case io::field_type::f64: {
        double expected = 0;
        fuzz_require(value.get_double().get(expected) == simdjson::SUCCESS, "f64 is a number");
        double got;
        std::memcpy(&got, &bits, sizeof got);
        fuzz_require(got == expected, "f64 value");
        break;
      }
      case io::field_type::timestamp_ms: {
        std::int64_t expected = 0;
        std::string_view text_value;
        if (value.get_string().get(text_value) == simdjson::SUCCESS) {
          fuzz_require(io::parse_timestamp_ms(text_value, expected), "timestamp string parses");
        } else {
          fuzz_require(value.is_int64() && value.get_int64().get(expected) == simdjson::SUCCESS,
                       "timestamp integer is an int64");
        }
        fuzz_require(static_cast<std::int64_t>(bits) == expected, "timestamp value");
        break;
      }
      case io::field_type::boolean: {
        bool expected = false;
        fuzz_require(value.get_bool().get(expected) == simdjson::SUCCESS, "bool is a bool");
        fuzz_require(bits == (expected ? 1u : 0u), "bool value");
        break;
      }
      case io::field_type::string: {
        std::string_view expected;
        fuzz_require(value.get_string().get(expected) == simdjson::SUCCESS, "string is a string");
        fuzz_require(batch.string_at(c, row) == expected, "string value");
        break;
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const io::schema schema = trove::fuzz::fuzz_schema();
  static io::json_decoder decoder(schema, trove::fuzz::max_record_bytes);
  static simdjson::dom::parser oracle;
  io::host_batch batch(schema, trove::fuzz::batch_rows, trove::fuzz::batch_string_bytes);
  trove::fuzz::record_counts counts;
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  trove::fuzz::for_each_line(
      input, [&](std::string_view text, std::uint64_t number, bool overlong) {
        // Blank lines (empty or only whitespace) are not records.
        if (text.find_first_not_of(" \t\r") == std::string_view::npos) return;
        if (overlong) {
          ++counts.records;
          ++counts.bad;
          return;
        }
        // The timestamp parser on arbitrary text: a parsed value is within RFC 3339's range.
        std::int64_t ms = 0;
        if (io::parse_timestamp_ms(text, ms)) {
          fuzz_require(ms >= trove::fuzz::min_timestamp_ms && ms <= trove::fuzz::max_timestamp_ms,
                       "parsed timestamp within years 0000-9999");
        }
        trove::fuzz::decode_record(
            text, number, batch, counts,
            [&](std::string_view record, io::host_batch& b, io::source_position pos) {
              return decoder.decode(record, b, pos);
            },
            [&](std::string_view record, const io::host_batch& b, std::size_t row) {
              check_accepted(oracle, record, b, row);
            });
      });
  trove::fuzz::finish(batch, counts);
  return 0;
}
