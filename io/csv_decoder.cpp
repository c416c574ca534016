#include "io/csv_decoder.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <charconv>
#include <cmath>
#include <cstring>
#include <system_error>

namespace trove::io {

namespace {

constexpr std::size_t k_max_quoted_value = 64;

decode_result bad(std::string reason) {
  return {decode_status::bad, std::move(reason)};
}

std::string_view quoted_prefix(std::string_view value) noexcept {
  return value.substr(0, std::min(value.size(), k_max_quoted_value));
}

std::string_view trim(std::string_view text) noexcept {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

/// One RFC 4180 field: its text (a view into the line, or into scratch when it had "" escapes)
/// and whether it was quoted.
struct csv_field {
  std::string_view text;
  bool quoted = false;
};

// Parses the field starting at pos; leaves pos on the separating comma or at the end.
// Returns nullptr on success, else the reason.
const char* next_field(std::string_view line, std::size_t& pos, std::string& scratch,
                       csv_field& out) noexcept {
  const char* data = line.data();
  const std::size_t size = line.size();
  if (pos < size && data[pos] == '"') {
    ++pos;
    std::size_t begin = pos;
    const void* quote = std::memchr(data + pos, '"', size - pos);
    if (quote == nullptr) return "unterminated quoted field";
    pos = static_cast<std::size_t>(static_cast<const char*>(quote) - data);
    if (pos + 1 >= size || data[pos + 1] != '"') {
      // Common case, no escaped quote: the field is a view into the line, nothing copied.
      out = {line.substr(begin, pos - begin), true};
      ++pos;
    } else {
      scratch.clear();
      for (;;) {
        scratch.append(data + begin, pos - begin);
        if (pos + 1 < size && data[pos + 1] == '"') {
          scratch.push_back('"');
          begin = pos + 2;
          quote = begin < size ? std::memchr(data + begin, '"', size - begin) : nullptr;
          if (quote == nullptr) return "unterminated quoted field";
          pos = static_cast<std::size_t>(static_cast<const char*>(quote) - data);
          continue;
        }
        ++pos;
        break;
      }
      out = {scratch, true};
    }
    if (pos < size && data[pos] != ',') return "unexpected character after a closing quote";
    return nullptr;
  }
  const void* comma = pos < size ? std::memchr(data + pos, ',', size - pos) : nullptr;
  const std::size_t end =
      comma != nullptr ? static_cast<std::size_t>(static_cast<const char*>(comma) - data) : size;
  out = {line.substr(pos, end - pos), false};
  pos = end;
  return nullptr;
}

bool equals_ignore_case(std::string_view text, std::string_view lower) noexcept {
  if (text.size() != lower.size()) return false;
  for (std::size_t char_idx = 0; char_idx < text.size(); ++char_idx) {
    char c = text[char_idx];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[char_idx]) return false;
  }
  return true;
}

template <typename Int>
decode_result parse_integer(const field& f, std::string_view text, Int& out) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (error == std::errc::result_out_of_range) {
    return bad(fmt::format("field '{}': value \"{}\" out of range for {}", f.name,
                           quoted_prefix(text), to_string(f.type)));
  }
  if (error != std::errc{} || end != text.data() + text.size()) {
    return bad(fmt::format("field '{}': expected {}, got \"{}\"", f.name, to_string(f.type),
                           quoted_prefix(text)));
  }
  return {};
}

decode_result set_value(const field& f, std::size_t column, const csv_field& value,
                        host_batch& batch) {
  if (f.type == field_type::string) {
    if (batch.set_string(column, value.text)) return {};
    if (value.text.size() > batch.string_capacity()) {
      return bad(
          fmt::format("field '{}': string of {} bytes exceeds the batch string capacity "
                      "({} bytes)",
                      f.name, value.text.size(), batch.string_capacity()));
    }
    return {decode_status::batch_full, {}};
  }
  const std::string_view text = trim(value.text);
  switch (f.type) {
    case field_type::i64: {
      std::int64_t v = 0;
      decode_result result = parse_integer(f, text, v);
      if (result.ok()) batch.set_i64(column, v);
      return result;
    }
    case field_type::u64: {
      // from_chars on an unsigned type rejects '-' as "not a number"; say what is wrong instead.
      if (!text.empty() && text.front() == '-') {
        return bad(
            fmt::format("field '{}': negative value {} for u64", f.name, quoted_prefix(text)));
      }
      std::uint64_t v = 0;
      decode_result result = parse_integer(f, text, v);
      if (result.ok()) batch.set_u64(column, v);
      return result;
    }
    case field_type::f64: {
      double v = 0;
      const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (error == std::errc::result_out_of_range) {
        return bad(fmt::format("field '{}': value \"{}\" out of range for f64", f.name,
                               quoted_prefix(text)));
      }
      if (error != std::errc{} || end != text.data() + text.size()) {
        return bad(
            fmt::format("field '{}': expected f64, got \"{}\"", f.name, quoted_prefix(text)));
      }
      if (!std::isfinite(v)) {
        return bad(fmt::format("field '{}': non-finite f64 \"{}\"", f.name, quoted_prefix(text)));
      }
      batch.set_f64(column, v);
      return {};
    }
    case field_type::timestamp_ms: {
      std::int64_t ms = 0;
      // [-]digits is epoch milliseconds; anything else must be an RFC 3339 timestamp.
      const std::string_view digits = text.substr(!text.empty() && text.front() == '-' ? 1 : 0);
      if (!digits.empty() &&
          std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        decode_result result = parse_integer(f, text, ms);
        if (result.ok()) batch.set_i64(column, ms);
        return result;
      }
      if (!parse_timestamp_ms(text, ms)) {
        return bad(fmt::format(
            "field '{}': invalid timestamp \"{}\" (expected epoch milliseconds or RFC 3339 like "
            "2024-01-01T00:00:00.123Z)",
            f.name, quoted_prefix(text)));
      }
      batch.set_i64(column, ms);
      return {};
    }
    case field_type::boolean:
      if (equals_ignore_case(text, "true")) {
        batch.set_bool(column, true);
        return {};
      }
      if (equals_ignore_case(text, "false")) {
        batch.set_bool(column, false);
        return {};
      }
      return bad(fmt::format("field '{}': expected bool, got \"{}\"", f.name, quoted_prefix(text)));
    case field_type::string:
      break;  // handled above
  }
  return bad(fmt::format("field '{}': unsupported type", f.name));
}

// Whether the field stands for "no value": empty text, except that a quoted empty string is a
// real (empty) string value.
bool is_null_field(const field& f, const csv_field& value) noexcept {
  if (f.type == field_type::string) return value.text.empty() && !value.quoted;
  return trim(value.text).empty();
}

}  // namespace

csv_decoder::csv_decoder(const schema& schema, std::size_t max_record_bytes)
    : schema_(schema),
      max_record_bytes_(max_record_bytes),
      field_has_column_(schema.fields.size(), 0) {}

decode_result csv_decoder::set_header(std::string_view line) {
  header_ok_ = false;
  column_field_.clear();
  std::fill(field_has_column_.begin(), field_has_column_.end(), std::uint8_t{0});
  constexpr std::string_view utf8_bom = "\xEF\xBB\xBF";
  if (line.substr(0, utf8_bom.size()) == utf8_bom) line.remove_prefix(utf8_bom.size());

  std::size_t pos = 0;
  for (;;) {
    csv_field name;
    if (const char* error = next_field(line, pos, unquote_scratch_, name)) {
      return bad(fmt::format("CSV header: {}", error));
    }
    const int field_idx = schema_.index_of(name.text);
    if (field_idx >= 0) {
      if (field_has_column_[field_idx] != 0) {
        return bad(fmt::format("CSV header names column '{}' twice", name.text));
      }
      field_has_column_[field_idx] = 1;
    }
    column_field_.push_back(field_idx);
    if (pos == line.size()) break;
    ++pos;  // the comma
  }

  std::string missing;
  for (std::size_t field_idx = 0; field_idx < schema_.fields.size(); ++field_idx) {
    const field& f = schema_.fields[field_idx];
    if (!f.required || field_has_column_[field_idx] != 0) continue;
    if (!missing.empty()) missing += ", ";
    missing += f.name;
  }
  if (!missing.empty()) {
    return bad(fmt::format("CSV header lacks required columns: {}", missing));
  }
  header_ok_ = true;
  return {};
}

decode_result csv_decoder::decode(std::string_view line, host_batch& batch,
                                  source_position position) {
  assert(batch.schema().fields.size() == schema_.fields.size());
  if (!header_ok_) return bad("CSV header not set (or invalid): no column mapping");
  if (line.size() > max_record_bytes_) {
    return bad(fmt::format("record too long: {} bytes > max_record_bytes ({})", line.size(),
                           max_record_bytes_));
  }
  if (batch.full()) return {decode_status::batch_full, {}};

  const std::vector<field>& fields = schema_.fields;
  std::size_t pos = 0;
  std::size_t column_idx = 0;
  for (;; ++column_idx) {
    csv_field value;
    if (const char* error = next_field(line, pos, unquote_scratch_, value)) {
      batch.abort_row();
      return bad(fmt::format("CSV field {}: {}", column_idx + 1, error));
    }
    if (column_idx >= column_field_.size()) {
      batch.abort_row();
      return bad(fmt::format("row has more fields than the header ({})", column_field_.size()));
    }
    const int field_idx = column_field_[column_idx];
    if (field_idx >= 0) {
      const field& f = fields[field_idx];
      const auto column = static_cast<std::size_t>(field_idx);
      if (is_null_field(f, value)) {
        if (f.required) {
          batch.abort_row();
          return bad(fmt::format("field '{}': required but empty", f.name));
        }
        batch.set_null(column);
      } else {
        decode_result result = set_value(f, column, value, batch);
        if (!result.ok()) {
          batch.abort_row();
          return result;
        }
      }
    }
    if (pos == line.size()) break;
    ++pos;  // the comma
  }
  if (column_idx + 1 != column_field_.size()) {
    batch.abort_row();
    return bad(
        fmt::format("row has {} fields, header has {}", column_idx + 1, column_field_.size()));
  }
  for (std::size_t field_idx = 0; field_idx < fields.size(); ++field_idx) {
    // Only optional fields can lack a column (set_header() rejected the rest).
    if (field_has_column_[field_idx] == 0) batch.set_null(field_idx);
  }
  batch.commit_row(position);
  return {};
}

}  // namespace trove::io
