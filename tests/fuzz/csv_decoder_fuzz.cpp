/// @file csv_decoder_fuzz.cpp
/// @brief libFuzzer target: arbitrary bytes as a CSV input, split as the pipeline does
/// (decoder_harness.hpp): the first non-blank line is the header (a bad header rejects the whole
/// input, as `trove run` exits with it), every later non-blank line a record decoded into one small
/// batch against a schema with every field type. Checks: the accounting adds up, every batch is
/// well formed, and every accepted row holds what a separate, plain RFC 4180 reading of the line
/// gives (field count, null or value of every column).

#include <charconv>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "decoder_harness.hpp"
#include "io/csv_decoder.hpp"

namespace {

using trove::fuzz::fuzz_require;
namespace io = trove::io;

struct plain_field {
  std::string text;
  bool quoted = false;
};

/// @brief RFC 4180 as csv_decoder.hpp states it, written plainly (a character at a time); nullopt
/// when the line is not well formed.
std::optional<std::vector<plain_field>> split_csv(std::string_view line) {
  std::vector<plain_field> fields;
  std::size_t i = 0;
  for (;;) {
    plain_field field;
    if (i < line.size() && line[i] == '"') {
      field.quoted = true;
      ++i;
      for (;;) {
        if (i >= line.size()) return std::nullopt;  // unterminated
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            field.text += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        field.text += line[i++];
      }
      if (i < line.size() && line[i] != ',') return std::nullopt;
    } else {
      while (i < line.size() && line[i] != ',') field.text += line[i++];
    }
    fields.push_back(std::move(field));
    if (i == line.size()) return fields;
    ++i;  // the comma
  }
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

template <typename Int>
bool parse_int(std::string_view text, Int& out) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
  return error == std::errc{} && end == text.data() + text.size();
}

/// @brief Column → schema field of a header that set_header() accepted.
std::vector<int> header_columns(const io::schema& schema, std::string_view header) {
  if (header.substr(0, 3) == "\xEF\xBB\xBF") header.remove_prefix(3);
  const auto names = split_csv(header);
  fuzz_require(names.has_value(), "an accepted header is well-formed CSV");
  std::vector<int> columns;
  for (const plain_field& name : *names) columns.push_back(schema.index_of(name.text));
  return columns;
}

/// @brief The accepted row `row` must match the plain reading of the line.
void check_accepted(const std::vector<int>& columns, std::string_view line,
                    const io::host_batch& batch, std::size_t row) {
  const io::schema& schema = batch.schema();
  const auto fields = split_csv(line);
  fuzz_require(fields.has_value(), "accepted line is well-formed CSV");
  fuzz_require(fields->size() == columns.size(), "accepted line has the header's field count");
  std::vector<std::uint8_t> has_column(schema.fields.size(), 0);
  for (std::size_t k = 0; k < columns.size(); ++k) {
    if (columns[k] < 0) continue;
    const auto c = static_cast<std::size_t>(columns[k]);
    has_column[c] = 1;
    const io::field& field = schema.fields[c];
    const plain_field& value = (*fields)[k];
    const std::string_view text =
        field.type == io::field_type::string ? std::string_view(value.text) : trim(value.text);
    const bool null =
        field.type == io::field_type::string ? text.empty() && !value.quoted : text.empty();
    fuzz_require(batch.is_valid(c, row) == !null, "valid exactly when the field is not empty");
    if (null) continue;
    const std::uint64_t bits = field.type == io::field_type::string ? 0 : batch.fixed(c)[row];
    switch (field.type) {
      case io::field_type::i64: {
        std::int64_t expected = 0;
        fuzz_require(parse_int(text, expected), "i64 parses");
        fuzz_require(static_cast<std::int64_t>(bits) == expected, "i64 value");
        break;
      }
      case io::field_type::u64: {
        std::uint64_t expected = 0;
        fuzz_require(text.front() != '-' && parse_int(text, expected), "u64 parses");
        fuzz_require(bits == expected, "u64 value");
        break;
      }
      case io::field_type::f64: {
        double expected = 0;
        const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), expected);
        fuzz_require(error == std::errc{} && end == text.data() + text.size(), "f64 parses");
        double got;
        std::memcpy(&got, &bits, sizeof got);
        fuzz_require(got == expected, "f64 value");
        break;
      }
      case io::field_type::timestamp_ms: {
        std::int64_t expected = 0;
        fuzz_require(parse_int(text, expected) || io::parse_timestamp_ms(text, expected),
                     "timestamp parses");
        fuzz_require(static_cast<std::int64_t>(bits) == expected, "timestamp value");
        break;
      }
      case io::field_type::boolean: {
        std::string lower(text);
        for (char& ch : lower) ch = (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch + 32) : ch;
        fuzz_require(lower == "true" || lower == "false", "bool is true or false");
        fuzz_require(bits == (lower == "true" ? 1u : 0u), "bool value");
        break;
      }
      case io::field_type::string:
        fuzz_require(batch.string_at(c, row) == text, "string value");
        break;
    }
  }
  for (std::size_t c = 0; c < schema.fields.size(); ++c) {
    if (!has_column[c]) fuzz_require(!batch.is_valid(c, row), "a field without a column is null");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const io::schema schema = trove::fuzz::fuzz_schema();
  io::csv_decoder decoder(schema, trove::fuzz::max_record_bytes);  // one per input: its header
  io::host_batch batch(schema, trove::fuzz::batch_rows, trove::fuzz::batch_string_bytes);
  trove::fuzz::record_counts counts;
  std::vector<int> columns;
  bool rejected = false;
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  trove::fuzz::for_each_line(
      input, [&](std::string_view text, std::uint64_t number, bool overlong) {
        if (rejected) return;
        // Blank lines (empty or only whitespace) are not records.
        if (text.find_first_not_of(" \t\r") == std::string_view::npos) return;
        if (!decoder.has_header()) {
          const io::decode_result r = decoder.set_header(text);
          fuzz_require(r.ok() == decoder.has_header(), "has_header() after set_header()");
          if (!r.ok()) {
            fuzz_require(!r.reason.empty(), "a bad header has a reason");
            rejected = true;  // the pipeline stops with the header's error
            return;
          }
          columns = header_columns(schema, text);
          return;
        }
        if (overlong) {
          ++counts.records;
          ++counts.bad;
          return;
        }
        trove::fuzz::decode_record(
            text, number, batch, counts,
            [&](std::string_view record, io::host_batch& b, io::source_position pos) {
              return decoder.decode(record, b, pos);
            },
            [&](std::string_view record, const io::host_batch& b, std::size_t row) {
              check_accepted(columns, record, b, row);
            });
      });
  trove::fuzz::finish(batch, counts);
  return 0;
}
