#include "io/json_decoder.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <limits>

namespace trove::io {

// ---- RFC 3339 timestamps ----------------------------------------------------------------------

namespace {

// Reads exactly `count` ASCII digits at text[pos]; the fixed widths of RFC 3339 make this enough.
bool read_digits(std::string_view text, std::size_t pos, std::size_t count, int& out) noexcept {
  if (pos + count > text.size()) return false;
  int value = 0;
  for (std::size_t digit_idx = 0; digit_idx < count; ++digit_idx) {
    const char c = text[pos + digit_idx];
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  out = value;
  return true;
}

constexpr bool is_leap_year(int year) noexcept {
  return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

constexpr int days_in_month(int year, int month) noexcept {
  constexpr int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && is_leap_year(year) ? 29 : days[month - 1];
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
constexpr std::int64_t days_from_civil(int year, int month, int day) noexcept {
  const std::int64_t y = year - (month <= 2 ? 1 : 0);
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const std::int64_t yoe = y - era * 400;
  const std::int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

}  // namespace

bool parse_timestamp_ms(std::string_view text, std::int64_t& out) noexcept {
  // 0123456789012345678
  // YYYY-MM-DDTHH:MM:SS
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (text.size() < 20) return false;  // shortest form: 19 characters plus "Z"
  if (!read_digits(text, 0, 4, year) || text[4] != '-' || !read_digits(text, 5, 2, month) ||
      text[7] != '-' || !read_digits(text, 8, 2, day)) {
    return false;
  }
  if (text[10] != 'T' && text[10] != 't' && text[10] != ' ') return false;
  if (!read_digits(text, 11, 2, hour) || text[13] != ':' || !read_digits(text, 14, 2, minute) ||
      text[16] != ':' || !read_digits(text, 17, 2, second)) {
    return false;
  }
  if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) || hour > 23 ||
      minute > 59 || second > 60) {
    return false;
  }
  std::size_t pos = 19;
  int millis = 0;
  if (text[pos] == '.') {
    ++pos;
    const std::size_t fraction_begin = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      // Digits past the millisecond are truncated (floor), never rounded into the next second.
      if (pos - fraction_begin < 3) millis = millis * 10 + (text[pos] - '0');
      ++pos;
    }
    const std::size_t digits = pos - fraction_begin;
    if (digits == 0 || digits > 9) return false;
    for (std::size_t pad = digits; pad < 3; ++pad) millis *= 10;
  }
  if (pos >= text.size()) return false;  // RFC 3339 requires a zone; local time is ambiguous
  int offset_minutes = 0;
  if (text[pos] == 'Z' || text[pos] == 'z') {
    ++pos;
  } else if (text[pos] == '+' || text[pos] == '-') {
    int offset_hour = 0, offset_minute = 0;
    if (!read_digits(text, pos + 1, 2, offset_hour) || pos + 3 >= text.size() ||
        text[pos + 3] != ':' || !read_digits(text, pos + 4, 2, offset_minute) || offset_hour > 23 ||
        offset_minute > 59) {
      return false;
    }
    offset_minutes = (offset_hour * 60 + offset_minute) * (text[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return false;
  }
  if (pos != text.size()) return false;

  const std::int64_t days = days_from_civil(year, month, day);
  const std::int64_t seconds = ((days * 24 + hour) * 60 + minute) * 60 + second;
  // A local time ahead of UTC (+HH:MM) is later on the wall clock than the same instant in UTC.
  out = (seconds - std::int64_t{offset_minutes} * 60) * 1000 + millis;
  return true;
}

// ---- JSON decoder -----------------------------------------------------------------------------

namespace {

// Room simdjson needs past the end of the input; the buffer starts at this size.
constexpr std::size_t k_initial_input_capacity = 4096;
// Reasons quote at most this much of an offending value, so a huge value cannot bloat them.
constexpr std::size_t k_max_quoted_value = 64;

std::uint64_t hash_name(std::string_view name) noexcept {
  // FNV-1a: field names are short, so a simple byte-wise hash beats anything vectorized.
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (const char c : name) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

const char* json_kind(const simdjson::dom::element& value) noexcept {
  switch (value.type()) {
    case simdjson::dom::element_type::ARRAY:
      return "array";
    case simdjson::dom::element_type::OBJECT:
      return "object";
    case simdjson::dom::element_type::INT64:
    case simdjson::dom::element_type::UINT64:
      return "integer";
    case simdjson::dom::element_type::DOUBLE:
      return "float";
    case simdjson::dom::element_type::STRING:
      return "string";
    case simdjson::dom::element_type::BOOL:
      return "bool";
    case simdjson::dom::element_type::NULL_VALUE:
      return "null";
  }
  return "value";
}

std::string_view quoted_prefix(std::string_view value) noexcept {
  return value.substr(0, std::min(value.size(), k_max_quoted_value));
}

decode_result bad(std::string reason) {
  return {decode_status::bad, std::move(reason)};
}

decode_result wrong_type(const field& f, const simdjson::dom::element& value) {
  return bad(
      fmt::format("field '{}': expected {}, got {}", f.name, to_string(f.type), json_kind(value)));
}

// Writes one present (non-null) JSON value into the row being built. `ok` on success.
decode_result set_value(const field& f, std::size_t column, const simdjson::dom::element& value,
                        host_batch& batch) {
  using simdjson::dom::element_type;
  const element_type kind = value.type();
  switch (f.type) {
    case field_type::i64:
      if (kind == element_type::INT64) {
        batch.set_i64(column, value.get_int64().value_unsafe());
        return {};
      }
      if (kind == element_type::UINT64) {
        return bad(fmt::format("field '{}': value {} out of range for i64", f.name,
                               value.get_uint64().value_unsafe()));
      }
      return wrong_type(f, value);
    case field_type::u64:
      if (kind == element_type::UINT64) {
        batch.set_u64(column, value.get_uint64().value_unsafe());
        return {};
      }
      if (kind == element_type::INT64) {
        const std::int64_t v = value.get_int64().value_unsafe();
        if (v < 0) return bad(fmt::format("field '{}': negative value {} for u64", f.name, v));
        batch.set_u64(column, static_cast<std::uint64_t>(v));
        return {};
      }
      return wrong_type(f, value);
    case field_type::f64:
      if (kind == element_type::DOUBLE || kind == element_type::INT64 ||
          kind == element_type::UINT64) {
        // get_double() converts integers too; simdjson rejects NaN/Inf literals and overflow.
        batch.set_f64(column, value.get_double().value_unsafe());
        return {};
      }
      return wrong_type(f, value);
    case field_type::timestamp_ms:
      if (kind == element_type::INT64) {
        batch.set_i64(column, value.get_int64().value_unsafe());
        return {};
      }
      if (kind == element_type::UINT64) {
        return bad(fmt::format("field '{}': value {} out of range for timestamp_ms", f.name,
                               value.get_uint64().value_unsafe()));
      }
      if (kind == element_type::STRING) {
        const std::string_view text = value.get_string().value_unsafe();
        std::int64_t ms = 0;
        if (!parse_timestamp_ms(text, ms)) {
          return bad(fmt::format(
              "field '{}': invalid timestamp \"{}\" (expected epoch milliseconds or RFC 3339 "
              "like 2024-01-01T00:00:00.123Z)",
              f.name, quoted_prefix(text)));
        }
        batch.set_i64(column, ms);
        return {};
      }
      return bad(fmt::format(
          "field '{}': expected timestamp_ms (integer epoch milliseconds or RFC 3339 string), "
          "got {}",
          f.name, json_kind(value)));
    case field_type::boolean:
      if (kind == element_type::BOOL) {
        batch.set_bool(column, value.get_bool().value_unsafe());
        return {};
      }
      return wrong_type(f, value);
    case field_type::string:
      if (kind == element_type::STRING) {
        const std::string_view text = value.get_string().value_unsafe();
        if (batch.set_string(column, text)) return {};
        if (text.size() > batch.string_capacity()) {
          return bad(
              fmt::format("field '{}': string of {} bytes exceeds the batch string "
                          "capacity ({} bytes)",
                          f.name, text.size(), batch.string_capacity()));
        }
        return {decode_status::batch_full, {}};
      }
      return wrong_type(f, value);
  }
  return wrong_type(f, value);
}

}  // namespace

json_decoder::json_decoder(const schema& schema, std::size_t max_record_bytes)
    : schema_(schema),
      max_record_bytes_(max_record_bytes),
      seen_(schema.fields.size(), 0),
      parser_(std::make_unique<simdjson::dom::parser>()) {
  // Load factor <= 1/2 keeps probe sequences for absent (ignored) keys short.
  std::size_t table_size = 8;
  while (table_size < schema_.fields.size() * 2) table_size *= 2;
  name_table_.resize(table_size);
  for (std::size_t field_idx = 0; field_idx < schema_.fields.size(); ++field_idx) {
    const std::uint64_t hash = hash_name(schema_.fields[field_idx].name);
    std::size_t slot = hash & (table_size - 1);
    while (name_table_[slot].field >= 0) slot = (slot + 1) & (table_size - 1);
    name_table_[slot] = {hash, static_cast<int>(field_idx)};
  }
  // Producers usually write keys in the same order every time; remembering which field sat at
  // each position turns most lookups into one string comparison.
  position_hint_.assign(std::max<std::size_t>(schema_.fields.size() * 2, 16), -1);
  reserve_input(k_initial_input_capacity);
}

json_decoder::~json_decoder() = default;

int json_decoder::find_field(std::string_view key) const noexcept {
  const std::uint64_t hash = hash_name(key);
  const std::size_t mask = name_table_.size() - 1;
  for (std::size_t slot = hash & mask;; slot = (slot + 1) & mask) {
    const name_slot& entry = name_table_[slot];
    if (entry.field < 0) return -1;
    if (entry.hash == hash && schema_.fields[entry.field].name == key) return entry.field;
  }
}

void json_decoder::reserve_input(std::size_t bytes) {
  if (bytes <= input_capacity_) return;
  // Geometric growth (capped at the record limit) keeps reallocation rare while records grow.
  std::size_t capacity = std::max(bytes, input_capacity_ * 2);
  capacity = std::min(capacity, std::max(bytes, max_record_bytes_));
  // The parser grows to exactly the length it is given; growing it here in the same steps
  // keeps it from reallocating for every slightly longer record.
  if (parser_->allocate(capacity) != simdjson::SUCCESS) throw std::bad_alloc();
  input_ = std::make_unique<char[]>(capacity + simdjson::SIMDJSON_PADDING);
  // simdjson may read (never interpret) the padding; keep it initialized.
  std::memset(input_.get(), 0, capacity + simdjson::SIMDJSON_PADDING);
  input_capacity_ = capacity;
}

decode_result json_decoder::decode(std::string_view record, host_batch& batch,
                                   source_position position) {
  assert(batch.schema().fields.size() == schema_.fields.size());
  if (record.size() > max_record_bytes_) {
    return bad(fmt::format("record too long: {} bytes > max_record_bytes ({})", record.size(),
                           max_record_bytes_));
  }
  if (batch.full()) return {decode_status::batch_full, {}};

  reserve_input(record.size());
  if (!record.empty()) std::memcpy(input_.get(), record.data(), record.size());
  simdjson::dom::element root;
  if (const auto error = parser_->parse(input_.get(), record.size(), false).get(root)) {
    if (error == simdjson::EMPTY) return bad("invalid JSON: empty record");
    return bad(fmt::format("invalid JSON: {}", simdjson::error_message(error)));
  }
  simdjson::dom::object object;
  if (root.get_object().get(object) != simdjson::SUCCESS) {
    return bad(fmt::format("record is not a JSON object (got {})", json_kind(root)));
  }

  const std::vector<field>& fields = schema_.fields;
  std::fill(seen_.begin(), seen_.end(), std::uint8_t{0});
  std::size_t key_position = 0;
  for (const simdjson::dom::key_value_pair member : object) {
    int field_idx = -1;
    if (key_position < position_hint_.size()) {
      const int hint = position_hint_[key_position];
      if (hint >= 0 && fields[hint].name == member.key) {
        field_idx = hint;
      } else {
        field_idx = find_field(member.key);
        position_hint_[key_position] = field_idx;
      }
    } else {
      field_idx = find_field(member.key);
    }
    ++key_position;
    if (field_idx < 0) continue;  // unknown fields are ignored by contract

    const field& f = fields[field_idx];
    const auto column = static_cast<std::size_t>(field_idx);
    if (seen_[column] != 0) {
      batch.abort_row();
      return bad(fmt::format("duplicate field '{}'", f.name));
    }
    seen_[column] = 1;
    if (member.value.is_null()) {
      if (f.required) {
        batch.abort_row();
        return bad(fmt::format("field '{}': required but null", f.name));
      }
      batch.set_null(column);
      continue;
    }
    decode_result result = set_value(f, column, member.value, batch);
    if (result.status != decode_status::ok) {
      batch.abort_row();
      return result;
    }
  }

  for (std::size_t column = 0; column < fields.size(); ++column) {
    if (seen_[column] != 0) continue;
    if (fields[column].required) {
      batch.abort_row();
      return bad(fmt::format("missing required field '{}'", fields[column].name));
    }
    batch.set_null(column);
  }
  batch.commit_row(position);
  return {};
}

}  // namespace trove::io
