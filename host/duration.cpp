#include "host/duration.hpp"

#include <array>
#include <cctype>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>

namespace trove::host {
namespace {

// 128-bit intermediates: a component is whole * unit + fraction * unit / 10^digits, and both
// products fit comfortably before the final range check against int64/uint64.
using u128 = unsigned __int128;

constexpr u128 pow10(int exponent) noexcept {
  u128 value = 1;
  for (int step = 0; step < exponent; ++step) value *= 10;
  return value;
}

bool is_space(char c) noexcept {
  return c == ' ' || c == '\t';
}
bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

void skip_spaces(std::string_view& text) noexcept {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
}

/// A number as written: integer digits and optional fraction digits (trailing zeros removed).
struct decimal {
  u128 whole = 0;
  u128 fraction = 0;
  int fraction_digits = 0;
  bool too_large = false;
};

// The fraction is capped at 18 significant digits: no unit needs more to be exact.
constexpr int max_fraction_digits = 18;
// 10^30 is far beyond every valid value (int64 ms, uint64 bytes) yet times any unit fits in 128
// bits.
constexpr u128 max_whole = pow10(30);

/// Reads `digits[.digits]` from the front of text; false when it does not start with a digit
/// (or a '.' followed by a digit).
bool read_decimal(std::string_view& text, decimal& out, std::string& reason) {
  const bool leading_dot = text.size() >= 2 && text[0] == '.' && is_digit(text[1]);
  if (text.empty() || (!is_digit(text.front()) && !leading_dot)) return false;
  while (!text.empty() && is_digit(text.front())) {
    if (out.whole < max_whole) {
      out.whole = out.whole * 10 + static_cast<unsigned>(text.front() - '0');
    } else {
      out.too_large = true;
    }
    text.remove_prefix(1);
  }
  if (!text.empty() && text.front() == '.') {
    text.remove_prefix(1);
    std::string digits;
    while (!text.empty() && is_digit(text.front())) {
      digits.push_back(text.front());
      text.remove_prefix(1);
    }
    if (digits.empty()) {
      reason = "a '.' must be followed by digits";
      return false;
    }
    while (!digits.empty() && digits.back() == '0') digits.pop_back();
    if (static_cast<int>(digits.size()) > max_fraction_digits) {
      reason = "too many decimal places";
      return false;
    }
    for (char c : digits) out.fraction = out.fraction * 10 + static_cast<unsigned>(c - '0');
    out.fraction_digits = static_cast<int>(digits.size());
  }
  return true;
}

/// Reads the unit that follows a number: every character up to the next digit, '.' or space.
std::string_view read_unit(std::string_view& text) noexcept {
  skip_spaces(text);
  std::size_t length = 0;
  while (length < text.size() && !is_digit(text[length]) && text[length] != '.' &&
         !is_space(text[length])) {
    ++length;
  }
  std::string_view unit = text.substr(0, length);
  text.remove_prefix(length);
  return unit;
}

/// value * unit exactly, or false when the fraction does not end on a whole base unit.
bool scale(const decimal& value, u128 unit, u128& out) noexcept {
  const u128 divisor = pow10(value.fraction_digits);
  const u128 fraction = value.fraction * unit;
  if (fraction % divisor != 0) return false;
  out = value.whole * unit + fraction / divisor;
  return true;
}

struct named_unit {
  std::string_view name;
  u128 factor;
};

// Base unit: nanoseconds, so that "1500us" can be accepted (1.5ms is still rejected below).
constexpr u128 ns_per_ms = 1'000'000;
constexpr std::array<named_unit, 8> duration_units{{
    {"d", ns_per_ms * 86'400'000},
    {"h", ns_per_ms * 3'600'000},
    {"m", ns_per_ms * 60'000},
    {"s", ns_per_ms * 1'000},
    {"ms", ns_per_ms},
    {"us", 1'000},
    {"\xC2\xB5s", 1'000},  // µs
    {"ns", 1},
}};

// Rank in the descending order d > h > m > s > ms > us > ns (µs shares the rank of us).
int duration_rank(std::size_t index) noexcept {
  return index >= 6 ? static_cast<int>(index) - 1 : static_cast<int>(index);
}

std::string to_lower(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower;
}

std::string_view trim(std::string_view text) noexcept {
  skip_spaces(text);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

}  // namespace

bool parse_duration(std::string_view text, std::int64_t& out_ms, std::string& reason) {
  text = trim(text);
  if (text.empty()) {
    reason = "empty duration";
    return false;
  }
  if (text.front() == '-') {
    reason = "must not be negative";
    return false;
  }
  u128 total_ns = 0;
  bool too_large = false;
  int previous_rank = -1;
  bool first = true;
  while (!text.empty()) {
    decimal value;
    if (!read_decimal(text, value, reason)) {
      if (reason.empty()) reason = "expected a number at '" + std::string(text) + "'";
      return false;
    }
    const std::string_view unit = read_unit(text);
    skip_spaces(text);
    u128 factor = ns_per_ms;  // a plain number is milliseconds
    if (unit.empty()) {
      if (!first || !text.empty()) {
        reason = "every number needs a unit: ms, s, m, h or d";
        return false;
      }
    } else {
      std::size_t index = 0;
      while (index < duration_units.size() && duration_units[index].name != unit) ++index;
      if (index == duration_units.size()) {
        reason = "unknown unit '" + std::string(unit) + "'; units are ms, s, m, h, d, lowercase";
        return false;
      }
      const int rank = duration_rank(index);
      if (rank <= previous_rank) {
        reason = "combine units from largest to smallest, each once, like 1h30m";
        return false;
      }
      previous_rank = rank;
      factor = duration_units[index].factor;
    }
    first = false;
    u128 part = 0;
    if (value.too_large) {
      too_large = true;
    } else if (!scale(value, factor, part)) {
      reason = "sub-millisecond durations are not supported: trove works in whole milliseconds";
      return false;
    }
    total_ns += part;
    if (total_ns > u128(std::numeric_limits<std::int64_t>::max()) * ns_per_ms) too_large = true;
  }
  if (too_large) {
    reason = "too large: at most about 292 million years";
    return false;
  }
  if (total_ns % ns_per_ms != 0) {
    reason = "sub-millisecond durations are not supported: trove works in whole milliseconds";
    return false;
  }
  out_ms = static_cast<std::int64_t>(total_ns / ns_per_ms);
  return true;
}

std::string format_duration(std::int64_t ms) {
  if (ms == 0) return "0ms";
  std::string text;
  std::uint64_t rest = 0;
  if (ms < 0) {
    text = "-";
    rest = static_cast<std::uint64_t>(-(ms + 1)) + 1;  // also right for INT64_MIN
  } else {
    rest = static_cast<std::uint64_t>(ms);
  }
  constexpr std::array<std::pair<std::string_view, std::uint64_t>, 5> units{
      {{"d", 86'400'000}, {"h", 3'600'000}, {"m", 60'000}, {"s", 1'000}, {"ms", 1}}};
  for (const auto& [name, factor] : units) {
    if (rest >= factor) {
      text += std::to_string(rest / factor);
      text += name;
      rest %= factor;
    }
  }
  return text;
}

bool parse_size(std::string_view text, std::uint64_t& out_bytes, std::string& reason) {
  text = trim(text);
  if (text.empty()) {
    reason = "empty size";
    return false;
  }
  if (text.front() == '-') {
    reason = "must not be negative";
    return false;
  }
  decimal value;
  if (!read_decimal(text, value, reason)) {
    if (reason.empty()) reason = "expected a number at '" + std::string(text) + "'";
    return false;
  }
  const std::string unit = to_lower(read_unit(text));
  skip_spaces(text);
  if (!text.empty()) {
    reason = "unexpected '" + std::string(text) + "' after the unit";
    return false;
  }
  constexpr u128 kib = 1024;
  constexpr u128 kb = 1000;
  static constexpr std::array<named_unit, 16> size_units{{
      {"", 1},
      {"b", 1},
      {"k", kb},
      {"kb", kb},
      {"ki", kib},
      {"kib", kib},
      {"m", kb * kb},
      {"mb", kb * kb},
      {"mi", kib * kib},
      {"mib", kib * kib},
      {"g", kb * kb * kb},
      {"gb", kb * kb * kb},
      {"gi", kib * kib * kib},
      {"gib", kib * kib * kib},
      {"t", kb * kb * kb * kb},
      {"tb", kb * kb * kb * kb},
  }};
  static constexpr std::array<named_unit, 6> large_units{{
      {"ti", kib * kib * kib * kib},
      {"tib", kib * kib * kib * kib},
      {"p", kb * kb * kb * kb * kb},
      {"pb", kb * kb * kb * kb * kb},
      {"pi", kib * kib * kib * kib * kib},
      {"pib", kib * kib * kib * kib * kib},
  }};
  u128 factor = 0;
  for (const auto& candidate : size_units) {
    if (candidate.name == unit) factor = candidate.factor;
  }
  for (const auto& candidate : large_units) {
    if (candidate.name == unit) factor = candidate.factor;
  }
  if (factor == 0) {
    reason = "unknown unit '" + unit + "'; units are B, KiB, MiB, GiB, TiB, KB, MB, GB, TB";
    return false;
  }
  u128 bytes = 0;
  if (value.too_large ||
      (scale(value, factor, bytes) && bytes > std::numeric_limits<std::uint64_t>::max())) {
    reason = "too large: at most 16EiB";
    return false;
  }
  if (!scale(value, factor, bytes)) {
    reason = "not a whole number of bytes";
    return false;
  }
  out_bytes = static_cast<std::uint64_t>(bytes);
  return true;
}

std::string format_size(std::uint64_t bytes) {
  if (bytes == 0) return "0";
  constexpr std::array<std::pair<std::string_view, std::uint64_t>, 10> units{{
      {"PiB", 1ull << 50},
      {"TiB", 1ull << 40},
      {"GiB", 1ull << 30},
      {"MiB", 1ull << 20},
      {"KiB", 1ull << 10},
      {"PB", 1'000'000'000'000'000},
      {"TB", 1'000'000'000'000},
      {"GB", 1'000'000'000},
      {"MB", 1'000'000},
      {"KB", 1'000},
  }};
  // The shortest exact spelling wins, binary units on a tie: 4GiB, 1GB (not 976562500KiB).
  std::string best = std::to_string(bytes);
  for (const auto& [name, factor] : units) {
    if (bytes % factor != 0) continue;
    std::string text = std::to_string(bytes / factor) + std::string(name);
    if (text.size() < best.size()) best = std::move(text);
  }
  return best;
}

}  // namespace trove::host
