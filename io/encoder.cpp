#include "io/encoder.hpp"

#include <fmt/format.h>

#include <array>
#include <bit>
#include <cassert>
#include <charconv>
#include <cmath>
#include <cstring>

namespace trove::io {

namespace {

// Per byte: 0 = copy as is, 'u' = \u00XX, other = the letter after a backslash, 'h' = high
// byte (start of a UTF-8 sequence, validated separately).
constexpr std::array<char, 256> make_json_escape_table() {
  std::array<char, 256> table{};
  for (int byte = 0; byte < 0x20; ++byte) table[byte] = 'u';
  table['"'] = '"';
  table['\\'] = '\\';
  table['\b'] = 'b';
  table['\f'] = 'f';
  table['\n'] = 'n';
  table['\r'] = 'r';
  table['\t'] = 't';
  for (int byte = 0x80; byte < 0x100; ++byte) table[byte] = 'h';
  return table;
}
constexpr std::array<char, 256> k_json_escape = make_json_escape_table();

// Length of the well-formed UTF-8 sequence at text[pos] (Unicode Table 3-7: no overlong forms,
// no surrogates, nothing above U+10FFFF), or 0 when the byte there does not start one.
std::size_t utf8_sequence_length(const unsigned char* text, std::size_t pos,
                                 std::size_t size) noexcept {
  const unsigned char lead = text[pos];
  std::size_t length = 0;
  unsigned char second_min = 0x80, second_max = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) second_min = 0xA0;
    if (lead == 0xED) second_max = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) second_min = 0x90;
    if (lead == 0xF4) second_max = 0x8F;
  } else {
    return 0;
  }
  if (pos + length > size) return 0;
  if (text[pos + 1] < second_min || text[pos + 1] > second_max) return 0;
  for (std::size_t cont = 2; cont < length; ++cont) {
    if ((text[pos + cont] & 0xC0) != 0x80) return 0;
  }
  return length;
}

void append_unicode_escape(std::string& out, unsigned char byte) {
  constexpr char hex[] = "0123456789abcdef";
  const char escape[6] = {'\\', 'u', '0', '0', hex[byte >> 4], hex[byte & 0xF]};
  out.append(escape, sizeof escape);
}

template <typename Int>
void append_integer(std::string& out, Int value) {
  char buffer[24];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  out.append(buffer, result.ptr);
}

// Shortest round-trip text of a finite double (fmt's "{}" is Dragonbox-based).
void append_double(std::string& out, double value) {
  char buffer[32];
  char* end = fmt::format_to(buffer, "{}", value);
  out.append(buffer, end);
}

// Appends a fixed-width value as JSON/CSV text; returns false when it must be written as null.
bool append_fixed_value(std::string& out, field_type type, std::uint64_t bits) {
  switch (type) {
    case field_type::i64:
    case field_type::timestamp_ms:
      append_integer(out, static_cast<std::int64_t>(bits));
      return true;
    case field_type::u64:
      append_integer(out, bits);
      return true;
    case field_type::f64: {
      double value;
      std::memcpy(&value, &bits, sizeof value);
      if (!std::isfinite(value)) return false;
      append_double(out, value);
      return true;
    }
    case field_type::boolean:
      out.append(bits != 0 ? "true" : "false");
      return true;
    case field_type::string:
      break;
  }
  assert(false && "string columns are not fixed-width");
  return false;
}

}  // namespace

std::string row_as_json(const host_batch& batch, std::size_t row) {
  std::string out = "{";
  const auto& fields = batch.schema().fields;
  for (std::size_t c = 0; c < fields.size(); ++c) {
    if (c) out += ',';
    append_json_string(out, fields[c].name);
    out += ':';
    if (!batch.is_valid(c, row)) {
      out += "null";
      continue;
    }
    const std::uint64_t v = batch.fixed(c) ? batch.fixed(c)[row] : 0;
    switch (fields[c].type) {
      case field_type::string:
        append_json_string(out, batch.string_at(c, row));
        break;
      case field_type::u64:
        out += fmt::format("{}", v);
        break;
      case field_type::f64:
        out += fmt::format("{}", std::bit_cast<double>(v));
        break;
      case field_type::boolean:
        out += v ? "true" : "false";
        break;
      default:
        out += fmt::format("{}", static_cast<std::int64_t>(v));
        break;
    }
  }
  out += '}';
  return out;
}

void append_json_string(std::string& out, std::string_view text) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t size = text.size();
  out.push_back('"');
  std::size_t run_begin = 0;  // bytes are copied in runs, not one push_back each
  std::size_t pos = 0;
  while (pos < size) {
    const char action = k_json_escape[bytes[pos]];
    if (action == 0) {
      ++pos;
      continue;
    }
    if (action == 'h') {
      const std::size_t length = utf8_sequence_length(bytes, pos, size);
      if (length != 0) {
        pos += length;
        continue;
      }
    }
    out.append(text.data() + run_begin, pos - run_begin);
    if (action == 'u' || action == 'h') {
      append_unicode_escape(out, bytes[pos]);
    } else {
      const char escape[2] = {'\\', action};
      out.append(escape, 2);
    }
    ++pos;
    run_begin = pos;
  }
  out.append(text.data() + run_begin, size - run_begin);
  out.push_back('"');
}

void append_csv_field(std::string& out, std::string_view text) {
  if (!text.empty() && text.find_first_of(",\"\r\n") == std::string_view::npos) {
    out.append(text);
    return;
  }
  out.push_back('"');
  std::size_t begin = 0;
  for (std::size_t quote = text.find('"'); quote != std::string_view::npos;
       quote = text.find('"', begin)) {
    out.append(text.substr(begin, quote + 1 - begin));
    out.push_back('"');  // RFC 4180: a quote inside a quoted field is doubled
    begin = quote + 1;
  }
  out.append(text.substr(begin));
  out.push_back('"');
}

namespace {

/// The columns an encode() call writes: the given subset, or all of them.
class column_selection {
 public:
  column_selection(const result_batch& batch, const encode_options& options)
      : subset_(options.columns), all_(batch.columns.size()) {}
  [[nodiscard]] std::size_t size() const noexcept { return subset_ ? subset_->size() : all_; }
  [[nodiscard]] std::size_t operator[](std::size_t idx) const noexcept {
    return subset_ ? (*subset_)[idx] : idx;
  }

 private:
  const std::vector<std::size_t>* subset_;
  std::size_t all_;
};

}  // namespace

void json_encoder::encode(const result_batch& batch, std::string& out,
                          const encode_options& options) {
  assert(batch.consistent());
  const column_selection columns(batch, options);
  keys_.resize(columns.size());
  for (std::size_t idx = 0; idx < columns.size(); ++idx) {
    std::string& key = keys_[idx];
    key.clear();  // keeps capacity: no allocation once the keys have been built once
    key.push_back(idx == 0 ? '{' : ',');
    append_json_string(key, batch.columns[columns[idx]].name);
    key.push_back(':');
  }
  for (std::size_t row = 0; row < batch.rows; ++row) {
    if (columns.size() == 0) out.push_back('{');
    for (std::size_t idx = 0; idx < columns.size(); ++idx) {
      const result_column& column = batch.columns[columns[idx]];
      out.append(keys_[idx]);
      if (!column.is_valid(row)) {
        out.append("null");
      } else if (column.type == field_type::string) {
        append_json_string(out, column.string_at(row));
      } else if (!append_fixed_value(out, column.type, column.fixed[row])) {
        out.append("null");
      }
    }
    out.append("}\n");
    if (options.row_ends) options.row_ends->push_back(out.size());
  }
}

void csv_encoder::encode(const result_batch& batch, std::string& out,
                         const encode_options& options) {
  assert(batch.consistent());
  const column_selection columns(batch, options);
  if (!header_written_) {
    for (std::size_t idx = 0; idx < columns.size(); ++idx) {
      if (idx != 0) out.push_back(',');
      append_csv_field(out, batch.columns[columns[idx]].name);
    }
    out.push_back('\n');
    header_written_ = true;
  }
  for (std::size_t row = 0; row < batch.rows; ++row) {
    for (std::size_t idx = 0; idx < columns.size(); ++idx) {
      const result_column& column = batch.columns[columns[idx]];
      if (idx != 0) out.push_back(',');
      if (!column.is_valid(row)) continue;  // null: empty field
      if (column.type == field_type::string) {
        append_csv_field(out, column.string_at(row));
      } else {
        append_fixed_value(out, column.type, column.fixed[row]);  // non-finite: empty field
      }
    }
    out.push_back('\n');
    if (options.row_ends) options.row_ends->push_back(out.size());
  }
}

}  // namespace trove::io
