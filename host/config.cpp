#include "host/config.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include "host/duration.hpp"
#include "io/route.hpp"

namespace trove::host {
namespace {

// ---- enum spellings --------------------------------------------------------------------------

template <class Enum>
struct enum_entry {
  std::string_view name;
  Enum value;
};

// The first entry of a value is how it is written back; later ones are accepted aliases.
constexpr enum_entry<data_format> data_formats[] = {{"json", data_format::json},
                                                    {"csv", data_format::csv}};
constexpr enum_entry<source_type> source_types[] = {{"file", source_type::file},
                                                    {"stdin", source_type::stdin_stream},
                                                    {"synthetic", source_type::synthetic},
                                                    {"kafka", source_type::kafka}};
constexpr enum_entry<kafka_start> kafka_starts[] = {{"committed", kafka_start::committed},
                                                    {"earliest", kafka_start::earliest},
                                                    {"latest", kafka_start::latest}};
constexpr enum_entry<window_type> window_types[] = {{"tumbling", window_type::tumbling},
                                                    {"hopping", window_type::hopping}};
constexpr enum_entry<aggregate_fn> aggregate_fns[] = {
    {"count", aggregate_fn::count}, {"sum", aggregate_fn::sum},
    {"min", aggregate_fn::min},     {"max", aggregate_fn::max},
    {"avg", aggregate_fn::avg},     {"approx_count_distinct", aggregate_fn::approx_count_distinct},
    {"p50", aggregate_fn::p50},     {"p90", aggregate_fn::p90},
    {"p95", aggregate_fn::p95},     {"p99", aggregate_fn::p99},
    {"p999", aggregate_fn::p999}};
constexpr enum_entry<compare_op> compare_ops[] = {
    {"==", compare_op::eq}, {"!=", compare_op::ne}, {"<", compare_op::lt},  {"<=", compare_op::le},
    {">", compare_op::gt},  {">=", compare_op::ge}, {"eq", compare_op::eq}, {"ne", compare_op::ne},
    {"lt", compare_op::lt}, {"le", compare_op::le}, {"gt", compare_op::gt}, {"ge", compare_op::ge}};
constexpr enum_entry<emit_mode> emit_modes[] = {{"final", emit_mode::final},
                                                {"update", emit_mode::update}};
constexpr enum_entry<late_policy> late_policies[] = {{"drop", late_policy::drop},
                                                     {"dead_letter", late_policy::dead_letter}};
constexpr enum_entry<sink_type> sink_types[] = {
    {"file", sink_type::file}, {"stdout", sink_type::stdout_stream}, {"kafka", sink_type::kafka}};
constexpr enum_entry<device_choice> device_choices[] = {
    {"auto", device_choice::automatic}, {"cpu", device_choice::cpu}, {"cuda", device_choice::cuda}};
constexpr enum_entry<log_format> log_formats[] = {{"text", log_format::text},
                                                  {"json", log_format::json}};
constexpr enum_entry<log_level> log_levels[] = {{"trace", log_level::trace},
                                                {"debug", log_level::debug},
                                                {"info", log_level::info},
                                                {"warn", log_level::warn},
                                                {"error", log_level::error}};

template <class Enum, std::size_t N>
const char* name_of(const enum_entry<Enum> (&table)[N], Enum value) noexcept {
  for (const auto& entry : table) {
    if (entry.value == value) return entry.name.data();  // literals: NUL-terminated
  }
  return "unknown";
}

// ---- small text helpers ------------------------------------------------------------------------

std::string_view trim(std::string_view text) noexcept {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

std::string join(const std::vector<std::string>& items, std::string_view separator) {
  std::string text;
  for (std::size_t index = 0; index < items.size(); ++index) {
    if (index > 0) text += separator;
    text += items[index];
  }
  return text;
}

/// "a, b or c"
std::string one_of(const std::vector<std::string>& items) {
  if (items.size() <= 1) return join(items, "");
  std::vector<std::string> head(items.begin(), items.end() - 1);
  return join(head, ", ") + " or " + items.back();
}

template <class Enum, std::size_t N>
std::vector<std::string> canonical_names(const enum_entry<Enum> (&table)[N]) {
  std::vector<std::string> names;
  std::set<Enum> seen;
  for (const auto& entry : table) {
    if (seen.insert(entry.value).second) names.emplace_back(entry.name);
  }
  return names;
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions), ignoring case.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  auto lower = [](char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  };
  // One allocation for the whole table: d(row, col) is d[row * width + col].
  const std::size_t width = b.size() + 1;
  std::vector<std::size_t> d((a.size() + 1) * width);
  for (std::size_t row = 0; row <= a.size(); ++row) d[row * width] = row;
  for (std::size_t col = 0; col <= b.size(); ++col) d[col] = col;
  for (std::size_t row = 1; row <= a.size(); ++row) {
    for (std::size_t col = 1; col <= b.size(); ++col) {
      const std::size_t cost = lower(a[row - 1]) == lower(b[col - 1]) ? 0 : 1;
      std::size_t& cell = d[row * width + col];
      cell = std::min({d[(row - 1) * width + col] + 1, d[row * width + col - 1] + 1,
                       d[(row - 1) * width + col - 1] + cost});
      if (row > 1 && col > 1 && lower(a[row - 1]) == lower(b[col - 2]) &&
          lower(a[row - 2]) == lower(b[col - 1])) {
        cell = std::min(cell, d[(row - 2) * width + col - 2] + 1);
      }
    }
  }
  return d[a.size() * width + b.size()];
}

/// The candidate closest to word when it is close enough to be a likely typo, else "".
std::string closest(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_distance = std::numeric_limits<std::size_t>::max();
  for (const auto& candidate : candidates) {
    // Short names tolerate one edit, longer ones up to three: "windw" → "window" but not
    // "foo" → "log".
    const std::size_t allowed = std::clamp<std::size_t>(candidate.size() / 3, 1, 3);
    // The distance is at least the difference in length, so a word whose length differs by more
    // than `allowed` is not close (but for the prefix rule below): no table for it, which keeps
    // a long unknown key (a pasted line, fuzzed input) from costing its length times each name.
    const std::size_t shorter = std::min(word.size(), candidate.size());
    const std::size_t longer = std::max(word.size(), candidate.size());
    std::size_t distance = longer - shorter <= allowed ? edit_distance(word, candidate)
                                                       : std::numeric_limits<std::size_t>::max();
    // A truncated or extended name ("warning" for "warn", "max_bytes" for "max") counts as close.
    if (shorter >= 3 &&
        (word.substr(0, shorter) == std::string_view(candidate).substr(0, shorter))) {
      distance = std::min<std::size_t>(distance, 1);
    }
    if (distance <= allowed && distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  const std::string suggestion = closest(word, candidates);
  return suggestion.empty() ? std::string() : "did you mean '" + suggestion + "'?";
}

std::string child_path(const std::string& parent, std::string_view key) {
  return parent.empty() ? std::string(key) : parent + "." + std::string(key);
}

std::string item_path(const std::string& parent, std::size_t index) {
  return fmt::format("{}[{}]", parent, index);
}

// ---- YAML helpers ------------------------------------------------------------------------------

/// A key that is absent or written without a value (`ttl:` or `ttl: ~`) takes its default.
bool present(const YAML::Node& node) {
  return node.IsDefined() && !node.IsNull();
}

std::string as_written(const YAML::Node& node) {
  if (!present(node)) return "";
  std::string text;
  if (node.IsScalar()) {
    text = node.Scalar();
  } else {
    YAML::Emitter out;
    out << YAML::Flow << node;
    text = out.c_str();
  }
  constexpr std::size_t max_shown = 80;
  if (text.size() > max_shown) text = text.substr(0, max_shown - 3) + "...";
  return text;
}

int line_of(const YAML::Node& node) {
  if (!node.IsDefined()) return 0;
  const YAML::Mark mark = node.Mark();
  return mark.is_null() ? 0 : mark.line + 1;
}

// ---- error collection --------------------------------------------------------------------------

class checker {
 public:
  explicit checker(std::vector<config_error>& errors) : errors_(errors) {}

  void invalid(std::string key, const YAML::Node& node, std::string expected,
               std::string detail = {}) {
    add(std::move(key), as_written(node), std::move(expected), std::move(detail),
        config_error::kind::invalid_value, line_of(node));
  }
  void missing(std::string key, int line, std::string expected) {
    add(std::move(key), "", std::move(expected), "", config_error::kind::missing_key, line);
  }
  void add(std::string key, std::string value, std::string expected, std::string detail,
           config_error::kind what, int line) {
    config_error error;
    error.key = std::move(key);
    error.value = std::move(value);
    error.expected = std::move(expected);
    error.detail = std::move(detail);
    error.what = what;
    error.line = line;
    errors_.push_back(std::move(error));
  }
  [[nodiscard]] std::size_t count() const noexcept { return errors_.size(); }

 private:
  std::vector<config_error>& errors_;
};

/// The entries of one YAML map, read by name; keys nobody asked for are reported by finish().
class map_reader {
 public:
  map_reader(checker& check, const YAML::Node& map, std::string path,
             std::vector<std::string> allowed)
      : check_(check), path_(std::move(path)), line_(line_of(map)), allowed_(std::move(allowed)) {
    std::set<std::string> seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
      const YAML::Node key = it->first;
      if (!key.IsScalar()) {
        check_.invalid(path_.empty() ? "(key)" : path_, key, "a plain key name");
        continue;
      }
      if (!seen.insert(key.Scalar()).second) {
        check_.add(child_path(path_, key.Scalar()), "", "", "each key may appear once",
                   config_error::kind::duplicate_key, line_of(key));
        continue;
      }
      entries_.push_back({key.Scalar(), key, it->second, std::nullopt});
    }
  }

  /// The value of key, or a null node when absent.
  [[nodiscard]] YAML::Node get(std::string_view key) const {
    for (const auto& entry : entries_) {
      if (entry.name == key) return entry.value;
    }
    return YAML::Node();
  }

  [[nodiscard]] std::string path(std::string_view key) const { return child_path(path_, key); }
  [[nodiscard]] int line() const noexcept { return line_; }

  /// Restricts the accepted keys (e.g. to those of the chosen source type); a key in
  /// `elsewhere` is reported with its explanation instead of a spelling suggestion.
  void allow_only(std::vector<std::string> allowed, std::map<std::string, std::string> elsewhere) {
    allowed_ = std::move(allowed);
    elsewhere_ = std::move(elsewhere);
    for (const auto& entry : entries_) entry.suggestion.reset();
  }

  /// Reports a missing required key, unless an unknown key looks like its misspelling (then the
  /// unknown-key error already says what to fix).
  void missing(std::string_view key, std::string expected) const {
    for (const auto& entry : entries_) {
      if (!is_allowed(entry.name) && suggestion(entry) == key) return;
    }
    check_.missing(path(key), line_, std::move(expected));
  }

  /// Reports every key that is not allowed here.
  void finish() const {
    for (const auto& entry : entries_) {
      if (is_allowed(entry.name)) continue;
      std::string detail;
      if (auto it = elsewhere_.find(entry.name); it != elsewhere_.end()) {
        detail = it->second;
      } else {
        const std::string& suggested = suggestion(entry);
        if (!suggested.empty()) detail = "did you mean '" + path(suggested) + "'?";
      }
      check_.add(path(entry.name), as_written(entry.value), "one of " + join(allowed_, ", "),
                 std::move(detail), config_error::kind::unknown_key, line_of(entry.key));
    }
  }

 private:
  struct entry {
    std::string name;
    YAML::Node key;
    YAML::Node value;
    mutable std::optional<std::string> suggestion;  ///< closest(name, allowed_), once computed
  };
  [[nodiscard]] bool is_allowed(const std::string& name) const {
    return std::find(allowed_.begin(), allowed_.end(), name) != allowed_.end();
  }
  /// The allowed key an unknown entry looks like a misspelling of ("" when none), computed once
  /// per entry and accepted set: missing() asks it for every absent required key.
  [[nodiscard]] const std::string& suggestion(const entry& e) const {
    if (!e.suggestion) e.suggestion = closest(e.name, allowed_);
    return *e.suggestion;
  }

  checker& check_;
  std::string path_;
  int line_;
  std::vector<std::string> allowed_;
  std::map<std::string, std::string> elsewhere_;
  std::vector<entry> entries_;
};

// ---- scalar readers: each reports its own error and returns false on failure -------------------

enum class number_status { ok, invalid, out_of_range };

number_status to_u64(std::string_view text, std::uint64_t& out) {
  text = trim(text);
  // YAML 1.1 allows '_' between digits ("1_000_000").
  std::string digits;
  for (std::size_t index = 0; index < text.size(); ++index) {
    const char c = text[index];
    if (c >= '0' && c <= '9') {
      digits.push_back(c);
    } else if (c == '_' && index > 0 && index + 1 < text.size() &&
               std::isdigit(static_cast<unsigned char>(text[index - 1])) &&
               std::isdigit(static_cast<unsigned char>(text[index + 1]))) {
      continue;
    } else {
      return number_status::invalid;
    }
  }
  if (digits.empty()) return number_status::invalid;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
  if (ec == std::errc::result_out_of_range) return number_status::out_of_range;
  return ec == std::errc() && end == digits.data() + digits.size() ? number_status::ok
                                                                   : number_status::invalid;
}

number_status to_i64(std::string_view text, std::int64_t& out) {
  text = trim(text);
  const bool negative = !text.empty() && text.front() == '-';
  if (negative) text.remove_prefix(1);
  std::uint64_t magnitude = 0;
  const number_status status = to_u64(text, magnitude);
  if (status != number_status::ok) return status;
  constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (magnitude > max + (negative ? 1 : 0)) return number_status::out_of_range;
  out = negative ? static_cast<std::int64_t>(0 - magnitude) : static_cast<std::int64_t>(magnitude);
  return number_status::ok;
}

bool to_f64(std::string_view text, double& out) {
  text = trim(text);
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty()) return false;
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) return false;
  out = value;
  return true;
}

std::string integer_expected(std::uint64_t min, std::uint64_t max) {
  if (max == std::numeric_limits<std::uint64_t>::max()) {
    return min == 0 ? "a non-negative integer" : fmt::format("an integer >= {}", min);
  }
  return fmt::format("an integer from {} to {}", min, max);
}

bool read_u64(checker& check, const std::string& key, const YAML::Node& node, std::uint64_t& out,
              std::uint64_t min = 0,
              std::uint64_t max = std::numeric_limits<std::uint64_t>::max()) {
  const std::string expected = integer_expected(min, max);
  if (!node.IsScalar()) {
    check.invalid(key, node, expected);
    return false;
  }
  std::uint64_t value = 0;
  const number_status status = to_u64(node.Scalar(), value);
  if (status != number_status::ok) {
    check.invalid(key, node, expected, status == number_status::out_of_range ? "too large" : "");
    return false;
  }
  if (value < min || value > max) {
    check.invalid(key, node, expected);
    return false;
  }
  out = value;
  return true;
}

bool read_i64(checker& check, const std::string& key, const YAML::Node& node, std::int64_t& out,
              std::int64_t min) {
  const std::string expected =
      min == 0 ? "a non-negative integer" : fmt::format("an integer >= {}", min);
  std::int64_t value = 0;
  if (!node.IsScalar() || to_i64(node.Scalar(), value) != number_status::ok || value < min) {
    check.invalid(key, node, expected);
    return false;
  }
  out = value;
  return true;
}

bool read_f64(checker& check, const std::string& key, const YAML::Node& node, double& out,
              double min, double max, std::string expected) {
  double value = 0;
  if (!node.IsScalar() || !to_f64(node.Scalar(), value) || value < min || value > max) {
    check.invalid(key, node, std::move(expected));
    return false;
  }
  out = value;
  return true;
}

bool read_bool(checker& check, const std::string& key, const YAML::Node& node, bool& out) {
  bool value = false;
  if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) {
    check.invalid(key, node, "true or false");
    return false;
  }
  out = value;
  return true;
}

bool read_string(checker& check, const std::string& key, const YAML::Node& node, std::string& out,
                 std::string_view expected = "a non-empty string") {
  if (!node.IsScalar() || node.Scalar().empty()) {
    check.invalid(key, node, std::string(expected));
    return false;
  }
  out = node.Scalar();
  return true;
}

/// A duration in milliseconds; `positive` rejects 0.
bool read_duration(checker& check, const std::string& key, const YAML::Node& node,
                   std::int64_t& out, bool positive = false) {
  std::string reason;
  std::int64_t value = 0;
  if (!node.IsScalar()) {
    check.invalid(key, node, std::string(duration_expected));
    return false;
  }
  if (!parse_duration(node.Scalar(), value, reason)) {
    check.invalid(key, node, std::string(duration_expected), reason);
    return false;
  }
  if (positive && value == 0) {
    check.invalid(key, node, std::string(duration_expected), "must be greater than 0");
    return false;
  }
  out = value;
  return true;
}

bool read_size(checker& check, const std::string& key, const YAML::Node& node, std::uint64_t& out,
               std::uint64_t min = 1,
               std::uint64_t max = std::numeric_limits<std::uint64_t>::max()) {
  std::string reason;
  std::uint64_t value = 0;
  if (!node.IsScalar()) {
    check.invalid(key, node, std::string(size_expected));
    return false;
  }
  if (!parse_size(node.Scalar(), value, reason)) {
    check.invalid(key, node, std::string(size_expected), reason);
    return false;
  }
  if (value < min) {
    check.invalid(key, node, std::string(size_expected),
                  fmt::format("must be at least {}", format_size(min)));
    return false;
  }
  if (value > max) {
    const std::string max_text = format_size(max);
    const bool plain = max_text.find_first_not_of("0123456789") == std::string::npos;
    check.invalid(key, node, std::string(size_expected),
                  fmt::format("must be at most {}{}", max_text, plain ? " bytes" : ""));
    return false;
  }
  out = value;
  return true;
}

template <class Enum, std::size_t N>
bool read_enum(checker& check, const std::string& key, const YAML::Node& node,
               const enum_entry<Enum> (&table)[N], Enum& out) {
  const std::vector<std::string> names = canonical_names(table);
  if (node.IsScalar()) {
    for (const auto& entry : table) {
      if (entry.name == node.Scalar()) {
        out = entry.value;
        return true;
      }
    }
  }
  check.invalid(key, node, one_of(names),
                node.IsScalar() ? did_you_mean(node.Scalar(), names) : std::string());
  return false;
}

/// A list of non-empty names; a single name is accepted for a one-element list.
bool read_name_list(checker& check, const std::string& key, const YAML::Node& node,
                    std::vector<std::string>& out, std::vector<YAML::Node>* items = nullptr) {
  constexpr std::string_view expected = "a list of field names like [a, b]";
  out.clear();
  if (node.IsScalar() && !node.Scalar().empty()) {
    out.push_back(node.Scalar());
    if (items) items->push_back(node);
    return true;
  }
  if (!node.IsSequence()) {
    check.invalid(key, node, std::string(expected));
    return false;
  }
  bool ok = true;
  for (std::size_t index = 0; index < node.size(); ++index) {
    const YAML::Node item = node[index];
    if (!item.IsScalar() || item.Scalar().empty()) {
      check.invalid(item_path(key, index), item, "a field name");
      ok = false;
      continue;
    }
    out.push_back(item.Scalar());
    if (items) items->push_back(item);
  }
  return ok;
}

/// A map of string → string (librdkafka properties).
void read_string_map(checker& check, const std::string& key, const YAML::Node& node,
                     std::map<std::string, std::string>& out) {
  if (!node.IsMap()) {
    check.invalid(key, node, "a map of name: value strings");
    return;
  }
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!it->first.IsScalar() || it->first.Scalar().empty()) {
      check.invalid(key, it->first, "a property name");
      continue;
    }
    const std::string path = key + "." + it->first.Scalar();
    if (!it->second.IsScalar()) {
      check.invalid(path, it->second, "a string value");
      continue;
    }
    if (!out.emplace(it->first.Scalar(), it->second.Scalar()).second) {
      check.add(path, "", "", "each key may appear once", config_error::kind::duplicate_key,
                line_of(it->first));
    }
  }
}

// ---- schema lookups for cross-field checks -----------------------------------------------------

struct schema_info {
  bool usable = false;  ///< schema present and a map: an unknown name is the user's error
  std::vector<std::string> names;
  std::map<std::string, std::optional<io::field>, std::less<>> fields;  ///< nullopt: bad type
};

bool is_numeric(io::field_type type) noexcept {
  return type == io::field_type::u64 || type == io::field_type::i64 || type == io::field_type::f64;
}

/// The declared field called name, or nullptr: then an error was reported when the name is not
/// declared (and nothing when the field's own type was already reported as invalid).
const io::field* resolve_field(checker& check, const schema_info& schema, const std::string& key,
                               const YAML::Node& node, const std::string& name,
                               std::string expected = "a field declared in schema") {
  const auto it = schema.fields.find(name);
  if (it == schema.fields.end()) {
    if (schema.usable) {
      std::string detail = did_you_mean(name, schema.names);
      if (detail.empty()) detail = "schema declares " + join(schema.names, ", ");
      check.invalid(key, node, std::move(expected), std::move(detail));
    }
    return nullptr;
  }
  return it->second ? &*it->second : nullptr;
}

// ---- sections ----------------------------------------------------------------------------------

const std::vector<std::string> top_level_keys = {"source",
                                                 "schema",
                                                 "event_time",
                                                 "dedup",
                                                 "window",
                                                 "group_by",
                                                 "aggregates",
                                                 "filter",
                                                 "emit",
                                                 "late",
                                                 "sink",
                                                 "outputs",
                                                 "dead_letter",
                                                 "batch",
                                                 "device",
                                                 "metrics",
                                                 "sketch",
                                                 "log",
                                                 "shutdown_timeout",
                                                 "progress_interval",
                                                 "checkpoint"};

/// Keys each type of a section accepts, for per-type unknown-key checks.
using keys_by_type = std::vector<std::pair<std::string, std::vector<std::string>>>;

/// Allows the keys of `chosen` (plus `common`); keys of the other types are explained.
void restrict_to_type(map_reader& reader, std::string_view section, const keys_by_type& types,
                      std::string_view chosen, const std::vector<std::string>& common) {
  std::vector<std::string> allowed = common;
  std::map<std::string, std::vector<std::string>> owners;
  for (const auto& [type, keys] : types) {
    for (const auto& key : keys) {
      if (type == chosen) {
        allowed.push_back(key);
      } else {
        owners[key].push_back(type);
      }
    }
  }
  std::map<std::string, std::string> elsewhere;
  for (const auto& [key, owner_types] : owners) {
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    elsewhere[key] = fmt::format("'{}' applies to {} type{} {}, not {}", key, section,
                                 owner_types.size() > 1 ? "s" : "", one_of(owner_types), chosen);
  }
  reader.allow_only(std::move(allowed), std::move(elsewhere));
}

std::vector<std::string> all_keys(const keys_by_type& types, std::vector<std::string> common) {
  for (const auto& [type, keys] : types) {
    for (const auto& key : keys) {
      if (std::find(common.begin(), common.end(), key) == common.end()) common.push_back(key);
    }
  }
  return common;
}

void parse_source(checker& check, const map_reader& top, source_config& out) {
  const YAML::Node node = top.get("source");
  constexpr std::string_view expected = "a map like {type: file, path: events.jsonl}";
  if (!present(node)) {
    top.missing("source", std::string(expected));
    return;
  }
  if (!node.IsMap()) {
    check.invalid("source", node, std::string(expected));
    return;
  }
  const keys_by_type types = {
      {"file", {"path", "format", "max_record_bytes"}},
      {"stdin", {"format", "max_record_bytes"}},
      {"synthetic",
       {"events", "rate", "keys", "zipf", "duplicate_ratio", "disorder", "types", "span", "windows",
        "seed", "start_time"}},
      {"kafka",
       {"brokers", "topics", "group_id", "instance_id", "start", "exit_at_end", "idle_timeout",
        "properties", "format", "max_record_bytes"}}};
  map_reader reader(check, node, "source", all_keys(types, {"type"}));

  const YAML::Node type = reader.get("type");
  if (!present(type)) {
    reader.missing("type", one_of(canonical_names(source_types)));
    reader.finish();
    return;
  }
  if (!read_enum(check, reader.path("type"), type, source_types, out.type)) {
    reader.finish();  // the type is unknown: accept the keys of every type
    return;
  }
  restrict_to_type(reader, "source", types, to_string(out.type), {"type"});

  if (out.type != source_type::synthetic) {
    bool format_set = false;
    if (const YAML::Node n = reader.get("format"); present(n)) {
      format_set = read_enum(check, reader.path("format"), n, data_formats, out.format);
    }
    if (out.type == source_type::file) {
      if (const YAML::Node n = reader.get("path"); present(n)) {
        read_string(check, reader.path("path"), n, out.path, "a file path");
      } else {
        reader.missing("path", "a file path like events.jsonl");
      }
      if (!format_set && reader.get("format").IsNull()) out.format = format_from_path(out.path);
    }
    if (const YAML::Node n = reader.get("max_record_bytes"); present(n)) {
      read_size(check, reader.path("max_record_bytes"), n, out.max_record_bytes);
    }
  }

  if (out.type == source_type::synthetic) {
    auto& syn = out.synthetic;
    if (const YAML::Node n = reader.get("events"); present(n)) {
      read_u64(check, reader.path("events"), n, syn.events);
    }
    if (const YAML::Node n = reader.get("rate"); present(n)) {
      read_f64(check, reader.path("rate"), n, syn.rate, 0, std::numeric_limits<double>::max(),
               "events per second >= 0 (0 = as fast as possible)");
    }
    if (const YAML::Node n = reader.get("keys"); present(n)) {
      read_u64(check, reader.path("keys"), n, syn.keys, 1);
    }
    if (const YAML::Node n = reader.get("zipf"); present(n)) {
      read_f64(check, reader.path("zipf"), n, syn.zipf, 0, 100,
               "a Zipf exponent from 0 (uniform) to 100");
    }
    if (const YAML::Node n = reader.get("duplicate_ratio"); present(n)) {
      read_f64(check, reader.path("duplicate_ratio"), n, syn.duplicate_ratio, 0, 1,
               "a fraction from 0 to 1");
    }
    if (const YAML::Node n = reader.get("disorder"); present(n)) {
      read_duration(check, reader.path("disorder"), n, syn.disorder_ms);
    }
    if (const YAML::Node n = reader.get("types"); present(n)) {
      std::uint64_t types_count = syn.types;
      if (read_u64(check, reader.path("types"), n, types_count, 1,
                   std::numeric_limits<std::uint32_t>::max())) {
        syn.types = static_cast<std::uint32_t>(types_count);
      }
    }
    const YAML::Node span = reader.get("span");
    const YAML::Node windows = reader.get("windows");
    if (present(span) && present(windows)) {
      check.invalid(reader.path("windows"), windows, "only one of span and windows",
                    "windows is another name for span");
    } else if (present(span) || present(windows)) {
      read_duration(check, reader.path(present(span) ? "span" : "windows"),
                    present(span) ? span : windows, syn.span_ms, true);
    }
    if (const YAML::Node n = reader.get("seed"); present(n)) {
      read_u64(check, reader.path("seed"), n, syn.seed);
    }
    if (const YAML::Node n = reader.get("start_time"); present(n)) {
      read_i64(check, reader.path("start_time"), n, syn.start_time_ms, 0);
    }
  }

  if (out.type == source_type::kafka) {
    auto& kafka = out.kafka;
    if (const YAML::Node n = reader.get("brokers"); present(n)) {
      read_string(check, reader.path("brokers"), n, kafka.brokers,
                  "bootstrap servers like host:9092, or embedded");
    } else {
      reader.missing("brokers", "bootstrap servers like host:9092, or embedded");
    }
    if (const YAML::Node n = reader.get("topics"); present(n)) {
      if (!n.IsScalar() && !n.IsSequence()) {
        check.invalid(reader.path("topics"), n, "a list of topic names like [events]");
      } else if (read_name_list(check, reader.path("topics"), n, kafka.topics) &&
                 kafka.topics.empty()) {
        check.invalid(reader.path("topics"), n, "a non-empty list of topic names like [events]");
      }
    } else {
      reader.missing("topics", "a list of topic names like [events]");
    }
    if (const YAML::Node n = reader.get("group_id"); present(n)) {
      read_string(check, reader.path("group_id"), n, kafka.group_id, "a consumer group id");
    }
    if (const YAML::Node n = reader.get("instance_id"); present(n)) {
      if (read_string(check, reader.path("instance_id"), n, kafka.instance_id,
                      "a name unique in the group and stable across restarts, like the pod name") &&
          kafka.instance_id.empty()) {
        check.invalid(reader.path("instance_id"), n,
                      "a non-empty name (or leave instance_id out for dynamic membership)");
      }
    }
    if (const YAML::Node n = reader.get("start"); present(n)) {
      read_enum(check, reader.path("start"), n, kafka_starts, kafka.start);
    }
    if (const YAML::Node n = reader.get("exit_at_end"); present(n)) {
      read_bool(check, reader.path("exit_at_end"), n, kafka.exit_at_end);
    }
    if (const YAML::Node n = reader.get("idle_timeout"); present(n)) {
      read_duration(check, reader.path("idle_timeout"), n, kafka.idle_timeout_ms);
    }
    if (const YAML::Node n = reader.get("properties"); present(n)) {
      read_string_map(check, reader.path("properties"), n, kafka.properties);
    }
    if (const YAML::Node n = reader.get("delivery"); present(n)) {
      std::string delivery;
      if (read_string(check, reader.path("delivery"), n, delivery, "at_least_once")) {
        if (delivery == "exactly_once") {
          check.invalid(reader.path("delivery"), n, "at_least_once",
                        "exactly-once is a property of the output: set sink.delivery: "
                        "exactly_once (a Kafka sink, with checkpoints)");
        } else if (delivery != "at_least_once") {
          check.invalid(reader.path("delivery"), n, "at_least_once");
        }
      }
    }
  }
  reader.finish();
}

schema_info parse_schema(checker& check, const map_reader& top, io::schema& out) {
  schema_info info;
  const YAML::Node node = top.get("schema");
  constexpr std::string_view expected = "a map of field: type, like {user_id: u64, amount: f64?}";
  if (!present(node)) {
    top.missing("schema", std::string(expected));
    return info;
  }
  if (!node.IsMap() || node.size() == 0) {
    check.invalid("schema", node, std::string(expected));
    return info;
  }
  info.usable = true;
  const std::vector<std::string> type_names = {"u64",          "i64",  "f64",
                                               "timestamp_ms", "bool", "string"};
  const std::string type_expected =
      "a type: u64, i64, f64, timestamp_ms, bool or string, with ? appended for an optional "
      "field";
  std::set<std::string> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!it->first.IsScalar() || it->first.Scalar().empty()) {
      check.invalid("schema", it->first, "a field name");
      continue;
    }
    const std::string name = it->first.Scalar();
    const std::string path = "schema." + name;
    if (!seen.insert(name).second) {
      check.add(path, "", "", "each field may be declared once", config_error::kind::duplicate_key,
                line_of(it->first));
      continue;
    }
    info.names.push_back(name);
    info.fields[name] = std::nullopt;

    io::field field;
    field.name = name;
    YAML::Node type_node;
    type_node.reset(it->second);
    std::string type_path = path;
    std::optional<bool> required_flag;
    YAML::Node required_node;
    if (type_node.IsMap()) {  // long form {type: f64, required: false}
      map_reader reader(check, type_node, path, {"type", "required"});
      required_node.reset(reader.get("required"));
      if (present(required_node)) {
        bool flag = true;
        if (read_bool(check, reader.path("required"), required_node, flag)) required_flag = flag;
      }
      type_node.reset(reader.get("type"));
      type_path = reader.path("type");
      if (!present(type_node)) reader.missing("type", type_expected);
      reader.finish();
      if (!present(type_node)) continue;
    }
    if (!type_node.IsScalar()) {
      check.invalid(type_path, type_node, type_expected);
      continue;
    }
    std::string_view type_text = trim(type_node.Scalar());
    bool optional_mark = false;
    if (!type_text.empty() && type_text.back() == '?') {
      optional_mark = true;
      type_text.remove_suffix(1);
    }
    if (!io::parse_field_type(type_text, field.type)) {
      check.invalid(type_path, type_node, type_expected, did_you_mean(type_text, type_names));
      continue;
    }
    if (optional_mark && required_flag.value_or(false)) {
      check.invalid(path + ".required", required_node, "false for a type marked optional with ?",
                    "'" + std::string(type_node.Scalar()) + "' says optional");
      continue;
    }
    field.required = !optional_mark && required_flag.value_or(true);
    info.fields[name] = field;
    out.fields.push_back(field);
  }
  return info;
}

void parse_event_time(checker& check, const map_reader& top, const schema_info& schema,
                      std::string& out) {
  const YAML::Node node = top.get("event_time");
  const std::string expected = "the name of a timestamp_ms, i64 or u64 field of the schema";
  if (!present(node)) {
    top.missing("event_time", expected);
    return;
  }
  if (!read_string(check, "event_time", node, out, expected)) return;
  const io::field* field = resolve_field(check, schema, "event_time", node, out, expected);
  if (field == nullptr) return;
  if (field->type != io::field_type::timestamp_ms && field->type != io::field_type::i64 &&
      field->type != io::field_type::u64) {
    check.invalid("event_time", node, expected,
                  fmt::format("'{}' is {}", out, io::to_string(field->type)));
  } else if (!field->required) {
    check.invalid("event_time", node, expected,
                  fmt::format("'{}' is optional; the event-time field must be required", out));
  }
}

std::string list_item_path(const std::string& key, const YAML::Node& list, std::size_t index) {
  return list.IsSequence() ? item_path(key, index) : key;
}

void parse_dedup(checker& check, const map_reader& top, const schema_info& schema,
                 std::optional<dedup_config>& out) {
  const YAML::Node node = top.get("dedup");
  if (!present(node)) return;
  if (!node.IsMap()) {
    check.invalid("dedup", node, "a map like {key: [event_id], ttl: 10m}");
    return;
  }
  dedup_config dedup;
  map_reader reader(check, node, "dedup",
                    {"key", "ttl", "max_bytes", "initial_capacity", "incremental_rebuild"});
  if (const YAML::Node n = reader.get("key"); present(n)) {
    std::vector<YAML::Node> items;
    if (read_name_list(check, reader.path("key"), n, dedup.key, &items)) {
      if (dedup.key.empty()) {
        check.invalid(reader.path("key"), n, "a non-empty list of field names like [event_id]");
      }
      std::set<std::string> seen;
      for (std::size_t index = 0; index < dedup.key.size(); ++index) {
        const std::string path = list_item_path(reader.path("key"), n, index);
        if (!seen.insert(dedup.key[index]).second) {
          check.invalid(path, items[index], "each field once", "listed twice");
          continue;
        }
        const io::field* field = resolve_field(check, schema, path, items[index], dedup.key[index]);
        if (field != nullptr && !field->required) {
          check.invalid(path, items[index], "a required field",
                        fmt::format("'{}' is optional; a record without its dedup key cannot be "
                                    "deduplicated",
                                    field->name));
        }
      }
    }
  } else {
    reader.missing("key", "a list of field names like [event_id]");
  }
  if (const YAML::Node n = reader.get("ttl"); present(n)) {
    read_duration(check, reader.path("ttl"), n, dedup.ttl_ms, true);
  } else {
    reader.missing("ttl", std::string(duration_expected));
  }
  if (const YAML::Node n = reader.get("max_bytes"); present(n)) {
    read_size(check, reader.path("max_bytes"), n, dedup.max_bytes);
  }
  if (const YAML::Node n = reader.get("initial_capacity"); present(n)) {
    read_u64(check, reader.path("initial_capacity"), n, dedup.initial_capacity, 1);
  }
  if (const YAML::Node n = reader.get("incremental_rebuild"); present(n)) {
    read_bool(check, reader.path("incremental_rebuild"), n, dedup.incremental_rebuild);
  }
  reader.finish();
  out = std::move(dedup);
}

/// Whether the document asks for no aggregation at all (then the accepted events are forwarded).
bool forwards(const map_reader& top) {
  for (const char* key : {"window", "group_by", "aggregates", "emit", "late"}) {
    if (present(top.get(key))) return false;
  }
  return true;
}

void parse_window(checker& check, const map_reader& top, window_config& out) {
  const YAML::Node node = top.get("window");
  constexpr std::string_view expected =
      "a map like {type: tumbling, size: 1m} (group_by, aggregates, emit and late need a window; "
      "without any of them the accepted events themselves are forwarded to the sink)";
  if (!present(node)) {
    top.missing("window", std::string(expected));
    return;
  }
  if (!node.IsMap()) {
    check.invalid(top.path("window"), node, std::string(expected));
    return;
  }
  const keys_by_type types = {{"tumbling", {}}, {"hopping", {"slide"}}};
  const std::vector<std::string> common = {
      "type", "size", "allowed_lateness", "idle_timeout", "initial_capacity", "max_bytes"};
  map_reader reader(check, node, top.path("window"), all_keys(types, common));

  bool type_ok = false;
  if (const YAML::Node n = reader.get("type"); present(n)) {
    type_ok = read_enum(check, reader.path("type"), n, window_types, out.type);
  } else {
    reader.missing("type", one_of(canonical_names(window_types)));
  }
  if (type_ok) restrict_to_type(reader, "window", types, to_string(out.type), common);

  bool size_ok = false;
  if (const YAML::Node n = reader.get("size"); present(n)) {
    size_ok = read_duration(check, reader.path("size"), n, out.size_ms, true);
  } else {
    reader.missing("size", std::string(duration_expected));
  }
  if (type_ok && out.type == window_type::tumbling) out.slide_ms = out.size_ms;
  if (type_ok && out.type == window_type::hopping) {
    const YAML::Node n = reader.get("slide");
    const std::string expected_slide = "a duration that divides window.size, like 1m";
    if (!present(n)) {
      reader.missing("slide", expected_slide);
    } else if (read_duration(check, reader.path("slide"), n, out.slide_ms, true) && size_ok) {
      const std::string size_text = format_duration(out.size_ms);
      if (out.slide_ms > out.size_ms) {
        check.invalid(reader.path("slide"), n,
                      fmt::format("a slide no longer than window.size ({})", size_text),
                      "windows would leave gaps between them");
      } else if (out.size_ms % out.slide_ms != 0) {
        check.invalid(reader.path("slide"), n,
                      fmt::format("a slide that divides window.size ({}) evenly", size_text),
                      fmt::format("window.size must be a multiple of slide: {} is not a multiple "
                                  "of {}",
                                  size_text, format_duration(out.slide_ms)));
      }
    }
  }
  if (const YAML::Node n = reader.get("allowed_lateness"); present(n)) {
    read_duration(check, reader.path("allowed_lateness"), n, out.allowed_lateness_ms);
  }
  if (const YAML::Node n = reader.get("idle_timeout"); present(n)) {
    read_duration(check, reader.path("idle_timeout"), n, out.idle_timeout_ms);
  }
  if (const YAML::Node n = reader.get("initial_capacity"); present(n)) {
    read_u64(check, reader.path("initial_capacity"), n, out.initial_capacity, 1);
  }
  if (const YAML::Node n = reader.get("max_bytes"); present(n)) {
    read_size(check, reader.path("max_bytes"), n, out.max_bytes);
  }
  reader.finish();
}

constexpr std::string_view window_start_column = "window_start";
constexpr std::string_view window_end_column = "window_end";

void parse_group_by(checker& check, const map_reader& top, const schema_info& schema,
                    std::vector<std::string>& out) {
  const YAML::Node node = top.get("group_by");
  if (!present(node)) return;
  std::vector<YAML::Node> items;
  const std::string key = top.path("group_by");
  if (!read_name_list(check, key, node, out, &items)) return;
  std::set<std::string> seen;
  for (std::size_t index = 0; index < out.size(); ++index) {
    const std::string path = list_item_path(key, node, index);
    if (!seen.insert(out[index]).second) {
      check.invalid(path, items[index], "each field once", "listed twice");
      continue;
    }
    const io::field* field = resolve_field(check, schema, path, items[index], out[index]);
    if (field != nullptr &&
        (out[index] == window_start_column || out[index] == window_end_column)) {
      check.invalid(path, items[index], "a field not named window_start or window_end",
                    "every output row has window_start and window_end columns");
    }
  }
}

/// Parses "count", "sum(amount)", ...; on failure sets the reason.
bool parse_aggregate_text(std::string_view text, aggregate_spec& out, std::string& reason) {
  text = trim(text);
  const std::vector<std::string> names = canonical_names(aggregate_fns);
  const std::size_t open = text.find('(');
  const std::string_view name = trim(text.substr(0, open));
  const aggregate_fn* fn = nullptr;
  for (const auto& entry : aggregate_fns) {
    if (entry.name == name) fn = &entry.value;
  }
  if (fn == nullptr) {
    reason = did_you_mean(name, names);
    return false;
  }
  std::string_view argument;
  if (open != std::string_view::npos) {
    if (text.back() != ')') {
      reason = "missing ')'";
      return false;
    }
    argument = trim(text.substr(open + 1, text.size() - open - 2));
  }
  if (*fn == aggregate_fn::count) {
    if (!argument.empty() && argument != "*") {
      reason = "count takes no field: it counts records";
      return false;
    }
  } else if (argument.empty()) {
    reason = fmt::format("{} needs a field, like {}(amount)", name, name);
    return false;
  }
  out.fn = *fn;
  out.field = *fn == aggregate_fn::count ? std::string() : std::string(argument);
  return true;
}

void parse_aggregates(checker& check, const map_reader& top, const schema_info& schema,
                      const std::vector<std::string>& group_by, std::vector<aggregate_spec>& out) {
  const YAML::Node node = top.get("aggregates");
  constexpr std::string_view expected_list = "a non-empty list like [count, sum(amount)]";
  const std::string expected =
      "count, sum(field), min(field), max(field), avg(field), approx_count_distinct(field) or "
      "p50/p90/p95/p99/p999(field)";
  if (!present(node)) return;  // default [count]
  if (!(node.IsSequence() && node.size() > 0) && !(node.IsScalar() && !node.Scalar().empty())) {
    check.invalid(top.path("aggregates"), node, std::string(expected_list));
    return;
  }
  out.clear();
  std::map<std::string, std::string> columns;  // output column → what produces it
  for (const auto& name : group_by) columns[name] = "group_by field '" + name + "'";
  columns[std::string(window_start_column)] = "the window bounds";
  columns[std::string(window_end_column)] = "the window bounds";
  const std::size_t count = node.IsSequence() ? node.size() : 1;
  for (std::size_t index = 0; index < count; ++index) {
    const YAML::Node item = node.IsSequence() ? node[index] : node;
    const std::string path = list_item_path(top.path("aggregates"), node, index);
    aggregate_spec aggregate;
    std::string reason;
    if (!item.IsScalar() || !parse_aggregate_text(item.Scalar(), aggregate, reason)) {
      check.invalid(path, item, expected, reason);
      continue;
    }
    if (aggregate.fn == aggregate_fn::approx_count_distinct) {
      // Distinct values are counted by their hash: integers, timestamps and strings. A float's
      // distinct bit patterns are rarely what is meant (-0.0, NaNs, rounding).
      const io::field* field = resolve_field(check, schema, path, item, aggregate.field,
                                             "an aggregate of a field declared in schema");
      if (field != nullptr &&
          (field->type == io::field_type::f64 || field->type == io::field_type::boolean)) {
        check.invalid(path, item, "approx_count_distinct of an integer, timestamp or string field",
                      fmt::format("'{}' is {}", field->name, io::to_string(field->type)));
        continue;
      }
    } else if (aggregate.fn != aggregate_fn::count) {
      const io::field* field = resolve_field(check, schema, path, item, aggregate.field,
                                             "an aggregate of a field declared in schema");
      if (field != nullptr && !is_numeric(field->type)) {
        check.invalid(path, item, "an aggregate of a numeric field (u64, i64 or f64)",
                      fmt::format("'{}' is {}", field->name, io::to_string(field->type)));
        continue;
      }
    }
    const std::string column = output_column(aggregate);
    if (auto it = columns.find(column); it != columns.end()) {
      check.invalid(path, item, "an aggregate with its own output column",
                    fmt::format("column '{}' is already {}", column, it->second));
      continue;
    }
    columns[column] = "used by " + to_string(aggregate);
    out.push_back(std::move(aggregate));
  }
}

void parse_filter(checker& check, const map_reader& top, const schema_info& schema,
                  std::vector<filter_predicate>& out) {
  const YAML::Node node = top.get("filter");
  if (!present(node)) return;
  if (!node.IsSequence() && !node.IsMap()) {
    check.invalid(top.path("filter"), node,
                  "a list of predicates like [{field: amount, op: \">\", value: 0}]");
    return;
  }
  const std::size_t count = node.IsSequence() ? node.size() : 1;
  const std::vector<std::string> op_names = canonical_names(compare_ops);
  for (std::size_t index = 0; index < count; ++index) {
    const YAML::Node item = node.IsSequence() ? node[index] : node;
    const std::string path = list_item_path(top.path("filter"), node, index);
    if (!item.IsMap()) {
      check.invalid(path, item, "a predicate like {field: amount, op: \">\", value: 0}");
      continue;
    }
    map_reader reader(check, item, path, {"field", "op", "value"});
    filter_predicate predicate;
    bool ok = true;
    const io::field* field = nullptr;
    if (const YAML::Node n = reader.get("field"); present(n)) {
      if (read_string(check, reader.path("field"), n, predicate.field, "a field name")) {
        field = resolve_field(check, schema, reader.path("field"), n, predicate.field);
      }
      ok = field != nullptr;
    } else {
      reader.missing("field", "a field name");
      ok = false;
    }
    // An unquoted `op: !=` reads as the YAML tag "!=" on an empty value.
    const YAML::Node op_node = reader.get("op");
    const bool op_as_tag = op_node.IsDefined() && op_node.Tag() == "!=" &&
                           (op_node.IsNull() || (op_node.IsScalar() && op_node.Scalar().empty()));
    if (op_as_tag) {
      predicate.op = compare_op::ne;
    } else if (present(op_node)) {
      ok = read_enum(check, reader.path("op"), op_node, compare_ops, predicate.op) && ok;
    } else {
      reader.missing("op", one_of(op_names) + " (quote it: op: \">=\")");
      ok = false;
    }
    const YAML::Node value = reader.get("value");
    if (!present(value)) {
      reader.missing("value", "a constant to compare the field with");
      ok = false;
    } else if (!value.IsScalar()) {
      check.invalid(reader.path("value"), value, "a constant to compare the field with");
      ok = false;
    }
    reader.finish();
    if (!ok) continue;
    const std::string value_path = reader.path("value");
    const std::string& text = value.Scalar();
    switch (field->type) {
      case io::field_type::u64: {
        std::uint64_t number = 0;
        if (to_u64(text, number) != number_status::ok) {
          check.invalid(value_path, value, "a non-negative integer",
                        fmt::format("'{}' is u64", field->name));
          continue;
        }
        predicate.value = number;
        break;
      }
      case io::field_type::i64:
      case io::field_type::timestamp_ms: {
        std::int64_t number = 0;
        if (to_i64(text, number) != number_status::ok) {
          check.invalid(value_path, value, "an integer",
                        fmt::format("'{}' is {}", field->name, io::to_string(field->type)));
          continue;
        }
        predicate.value = number;
        break;
      }
      case io::field_type::f64: {
        double number = 0;
        if (!to_f64(text, number)) {
          check.invalid(value_path, value, "a number", fmt::format("'{}' is f64", field->name));
          continue;
        }
        predicate.value = number;
        break;
      }
      case io::field_type::boolean: {
        bool flag = false;
        if (!YAML::convert<bool>::decode(value, flag)) {
          check.invalid(value_path, value, "true or false",
                        fmt::format("'{}' is bool", field->name));
          continue;
        }
        predicate.value = flag;
        break;
      }
      case io::field_type::string:
        predicate.value = text;
        break;
    }
    if ((field->type == io::field_type::string || field->type == io::field_type::boolean) &&
        predicate.op != compare_op::eq && predicate.op != compare_op::ne) {
      check.invalid(reader.path("op"), op_node, "== or !=",
                    fmt::format("'{}' is {}: only equality applies", field->name,
                                io::to_string(field->type)));
      continue;
    }
    out.push_back(std::move(predicate));
  }
}

/// `{field}` placeholders of sink.topic: fields a row has a value of (a forwarded record: string
/// or integer schema fields; a result row: its group_by fields).
void check_route(checker& check, const std::string& key, const YAML::Node& node,
                 const std::string& text, const schema_info& schema,
                 const std::vector<std::string>& group_by, bool forward) {
  std::string error;
  const std::optional<io::route_template> route = io::route_template::parse(text, error);
  if (!route) {
    check.invalid(key, node, "a topic name, optionally with {field} placeholders", error);
    return;
  }
  for (const std::string& name : route->fields()) {
    if (!forward && std::find(group_by.begin(), group_by.end(), name) == group_by.end()) {
      check.invalid(key, node, "placeholders naming group_by fields",
                    fmt::format("'{{{}}}' is not a group_by field (result rows are routed by "
                                "their group key){}",
                                name, group_by.empty() ? "" : ": " + join(group_by, ", ")));
      continue;
    }
    const io::field* f =
        resolve_field(check, schema, key, node, name, "placeholders naming schema fields");
    if (f && (f->type == io::field_type::f64 || f->type == io::field_type::boolean)) {
      check.invalid(key, node, "placeholders naming string or integer fields",
                    fmt::format("'{}' is {}", name, io::to_string(f->type)));
    }
  }
}

void parse_sink(checker& check, const map_reader& top, const source_config& source,
                const schema_info& schema, const std::vector<std::string>& group_by, bool forward,
                sink_config& out) {
  const YAML::Node node = top.get("sink");
  if (!present(node)) return;  // stdout, json
  if (!node.IsMap()) {
    check.invalid(top.path("sink"), node, "a map like {type: file, path: out.jsonl}");
    return;
  }
  const keys_by_type types = {
      {"file", {"path", "format"}},
      {"stdout", {"format"}},
      {"kafka", {"brokers", "topic", "max_topics", "key", "format", "properties", "delivery"}}};
  map_reader reader(check, node, top.path("sink"), all_keys(types, {"type"}));
  if (const YAML::Node n = reader.get("type"); present(n)) {
    if (!read_enum(check, reader.path("type"), n, sink_types, out.type)) {
      reader.finish();
      return;
    }
  }
  restrict_to_type(reader, "sink", types, to_string(out.type), {"type"});

  bool format_set = false;
  if (const YAML::Node n = reader.get("format"); present(n)) {
    format_set = read_enum(check, reader.path("format"), n, data_formats, out.format);
  }
  if (out.type == sink_type::file) {
    if (const YAML::Node n = reader.get("path"); present(n)) {
      if (read_string(check, reader.path("path"), n, out.path, "a file path") &&
          out.path.find_first_of("{}") != std::string::npos) {
        check.invalid(reader.path("path"), n, "a file path without { }",
                      "routing a file sink by a field is not built yet; a Kafka sink's topic "
                      "can be routed");
      }
    } else {
      reader.missing("path", "a file path like out.jsonl");
    }
    if (!format_set && reader.get("format").IsNull()) out.format = format_from_path(out.path);
  }
  if (out.type == sink_type::kafka) {
    auto& kafka = out.kafka;
    const std::string brokers_expected = "bootstrap servers like host:9092, or embedded";
    if (const YAML::Node n = reader.get("brokers"); present(n)) {
      read_string(check, reader.path("brokers"), n, kafka.brokers, brokers_expected);
    } else if (source.type == source_type::kafka) {
      kafka.brokers = source.kafka.brokers;
    } else {
      reader.missing("brokers", brokers_expected + " (required when the source is not kafka)");
    }
    if (const YAML::Node n = reader.get("topic"); present(n)) {
      if (read_string(check, reader.path("topic"), n, kafka.topic, "a topic name")) {
        check_route(check, reader.path("topic"), n, kafka.topic, schema, group_by, forward);
      }
    } else {
      reader.missing("topic", "a topic name");
    }
    if (const YAML::Node n = reader.get("max_topics"); present(n)) {
      std::uint64_t max_topics = 0;
      if (read_u64(check, reader.path("max_topics"), n, max_topics, 1, 100'000)) {
        kafka.max_topics = static_cast<std::uint32_t>(max_topics);
      }
    }
    if (const YAML::Node n = reader.get("key"); forward) {
      // check_forwarding() refuses a key: forwarded records keep their own
    } else if (present(n)) {
      std::vector<YAML::Node> items;
      if (read_name_list(check, reader.path("key"), n, kafka.key, &items)) {
        for (std::size_t index = 0; index < kafka.key.size(); ++index) {
          const std::string& column = kafka.key[index];
          if (column != window_start_column && column != window_end_column &&
              std::find(group_by.begin(), group_by.end(), column) == group_by.end()) {
            std::vector<std::string> choices = group_by;
            choices.emplace_back(window_start_column);
            choices.emplace_back(window_end_column);
            check.invalid(list_item_path(reader.path("key"), n, index), items[index],
                          "a group_by field, window_start or window_end",
                          did_you_mean(column, choices));
          }
        }
      }
    } else {
      kafka.key = group_by;
    }
    if (const YAML::Node n = reader.get("properties"); present(n)) {
      read_string_map(check, reader.path("properties"), n, kafka.properties);
    }
    if (const YAML::Node n = reader.get("delivery"); present(n)) {
      std::string delivery;
      if (read_string(check, reader.path("delivery"), n, delivery,
                      "at_least_once or exactly_once")) {
        if (delivery == "exactly_once") {
          kafka.delivery = delivery_mode::exactly_once;
        } else if (delivery != "at_least_once") {
          check.invalid(reader.path("delivery"), n, "at_least_once or exactly_once");
        }
      }
    }
  }
  reader.finish();
}

/// A forwarding pipeline writes records as received: the sink takes the source's format, and a
/// Kafka record keeps its message key.
void check_forwarding(checker& check, const map_reader& top, const source_config& source,
                      sink_config& out) {
  const YAML::Node sink = top.get("sink");
  const data_format records =
      source.type == source_type::synthetic ? data_format::json : source.format;
  if (present(sink) && sink.IsMap()) {
    const YAML::Node format = sink["format"];
    if (present(format) && out.format != records) {
      check.invalid(top.path("sink") + ".format", format,
                    fmt::format("{} (the source's format) or nothing", to_string(records)),
                    "without a window the accepted records are forwarded as received");
    }
    const YAML::Node key = sink["key"];
    if (present(key)) {
      check.invalid(top.path("sink") + ".key", key, "no key",
                    "forwarded records keep their Kafka message key (none from a file)");
    }
  }
  out.format = records;
}

// ---- outputs -----------------------------------------------------------------------------------

constexpr std::size_t max_outputs = 16;
constexpr std::size_t max_output_name_bytes = 64;

/// Keys of one entry of `outputs`.
const std::vector<std::string> output_keys = {"name",       "filter", "window", "group_by",
                                              "aggregates", "emit",   "late",   "sink"};

/// Top-level keys that describe the single output; with `outputs` each entry has its own.
const std::vector<std::string> single_output_keys = {"window", "group_by", "aggregates",
                                                     "emit",   "late",     "sink"};

bool valid_output_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > max_output_name_bytes) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

/// "outputs[0] (per_user)", or "outputs[0]" when the entry has no valid name.
std::string describe_output(std::size_t index, const std::string& name) {
  const std::string path = item_path("outputs", index);
  return name.empty() ? path : fmt::format("{} ({})", path, name);
}

/// One entry of `outputs`: the same rules as the top-level single output, every key under
/// `outputs[i].`.
void parse_output(checker& check, const YAML::Node& node, const std::string& path,
                  const source_config& source, const schema_info& schema, output_config& out) {
  map_reader entry(check, node, path, output_keys);

  const std::string name_expected = fmt::format(
      "a name of 1 to {} letters, digits, _ or -, like per_user", max_output_name_bytes);
  if (const YAML::Node n = entry.get("name"); present(n)) {
    if (read_string(check, entry.path("name"), n, out.name, name_expected) &&
        !valid_output_name(out.name)) {
      check.invalid(entry.path("name"), n, name_expected,
                    out.name.size() > max_output_name_bytes
                        ? fmt::format("{} bytes long", out.name.size())
                        : "only letters, digits, _ and - (the name labels the output's metrics)");
      out.name.clear();
    }
  } else {
    entry.missing("name", name_expected);
  }

  parse_filter(check, entry, schema, out.filter);
  out.forward = forwards(entry);
  if (out.forward) {
    // As at top level: the 1 ms window no row is ever late for.
    out.aggregates.clear();
    out.window.size_ms = out.window.slide_ms = 1;
  } else {
    parse_window(check, entry, out.window);
    parse_group_by(check, entry, schema, out.group_by);
    parse_aggregates(check, entry, schema, out.group_by, out.aggregates);
  }
  if (const YAML::Node n = entry.get("emit"); present(n)) {
    read_enum(check, entry.path("emit"), n, emit_modes, out.emit);
  }
  if (const YAML::Node n = entry.get("late"); present(n)) {
    read_enum(check, entry.path("late"), n, late_policies, out.late);
  }

  const YAML::Node sink = entry.get("sink");
  if (present(sink)) {
    parse_sink(check, entry, source, schema, out.group_by, out.forward, out.sink);
  } else {
    entry.missing("sink", "a map like {type: file, path: out.jsonl}");
  }
  if (out.forward) check_forwarding(check, entry, source, out.sink);
  if (out.sink.type == sink_type::kafka && out.sink.kafka.delivery == delivery_mode::exactly_once) {
    const YAML::Node delivery = sink.IsMap() ? sink["delivery"] : YAML::Node();
    check.add(entry.path("sink") + ".delivery", "exactly_once", "at_least_once in an output",
              "exactly_once writes one transaction per checkpoint, and outputs do not yet "
              "share one",
              config_error::kind::invalid_value, line_of(delivery));
  }
  entry.finish();
}

/// `outputs`: the entries, then what must hold across them (unique names, one writer per file,
/// at most one stdout sink).
void parse_outputs(checker& check, const map_reader& top, const source_config& source,
                   const schema_info& schema, std::vector<output_config>& out) {
  const YAML::Node node = top.get("outputs");
  constexpr std::string_view expected =
      "a non-empty list of outputs like [{name: all, sink: {type: stdout}}]";
  if (!node.IsSequence() || node.size() == 0) {
    check.invalid("outputs", node, std::string(expected));
    return;
  }
  if (node.size() > max_outputs) {
    check.invalid("outputs", node, fmt::format("at most {} outputs", max_outputs),
                  fmt::format("{} given", node.size()));
  }
  std::map<std::string, std::size_t> names;  // name → index of the entry that has it
  std::map<std::string, std::size_t> files;  // normalised sink path → index of its writer
  out.reserve(node.size());
  std::optional<std::size_t> stdout_writer;
  for (std::size_t index = 0; index < node.size(); ++index) {
    const YAML::Node item = node[index];
    const std::string path = item_path("outputs", index);
    if (!item.IsMap()) {
      check.invalid(path, item,
                    "a map like {name: per_user, window: {type: tumbling, size: 1m}, sink: "
                    "{type: file, path: per_user.jsonl}}");
      out.emplace_back();  // keeps out[i] the entry outputs[i]
      continue;
    }
    output_config output;
    parse_output(check, item, path, source, schema, output);

    if (!output.name.empty()) {
      const auto [it, inserted] = names.emplace(output.name, index);
      if (!inserted) {
        check.invalid(
            path + ".name", item["name"], "a name no other output uses",
            fmt::format("{} is already named '{}'", item_path("outputs", it->second), output.name));
      }
    }
    const YAML::Node sink = item["sink"];
    if (present(sink) && sink.IsMap()) {
      if (output.sink.type == sink_type::file && !output.sink.path.empty()) {
        const std::string file =
            std::filesystem::path(output.sink.path).lexically_normal().string();
        const auto [it, inserted] = files.emplace(file, index);
        if (!inserted) {
          const output_config& first = out[it->second];
          check.invalid(path + ".sink.path", sink["path"], "a file no other output writes",
                        fmt::format("{} writes {} already; two writers would interleave their "
                                    "rows",
                                    describe_output(it->second, first.name), first.sink.path));
        }
      }
      if (output.sink.type == sink_type::stdout_stream) {
        if (stdout_writer) {
          const bool typed = present(sink["type"]);
          check.invalid(path + (typed ? ".sink.type" : ".sink"), typed ? sink["type"] : sink,
                        "a file or kafka sink",
                        fmt::format("one output at most writes to stdout, and {} does already: "
                                    "two would interleave their rows",
                                    describe_output(*stdout_writer, out[*stdout_writer].name)));
        } else {
          stdout_writer = index;
        }
      }
    }
    out.push_back(std::move(output));
  }
}

/// With `outputs` the top-level window is the shared one every output's is derived from: 1 ms,
/// the largest allowed_lateness and the smallest idle_timeout of the aggregating outputs.
void derive_shared_window(pipeline_config& config) {
  config.forward = false;
  config.window = window_config{};
  config.window.size_ms = config.window.slide_ms = 1;
  config.group_by.clear();
  config.aggregates.clear();
  bool aggregating = false;
  for (const auto& output : config.outputs) {
    if (output.forward) continue;
    config.window.allowed_lateness_ms =
        std::max(config.window.allowed_lateness_ms, output.window.allowed_lateness_ms);
    config.window.idle_timeout_ms =
        aggregating ? std::min(config.window.idle_timeout_ms, output.window.idle_timeout_ms)
                    : output.window.idle_timeout_ms;
    aggregating = true;
  }
}

void parse_dead_letter(checker& check, const map_reader& top, dead_letter_config& out) {
  const YAML::Node node = top.get("dead_letter");
  if (!present(node)) return;
  if (!node.IsMap()) {
    check.invalid("dead_letter", node, "a map like {path: bad.jsonl}");
    return;
  }
  map_reader reader(check, node, "dead_letter", {"path"});
  if (const YAML::Node n = reader.get("path"); present(n)) {
    read_string(check, reader.path("path"), n, out.path, "a file path");
  }
  reader.finish();
}

void parse_batch(checker& check, const map_reader& top, batch_config& out) {
  const YAML::Node node = top.get("batch");
  bool string_bytes_set = false;
  if (present(node) && !node.IsMap()) {
    check.invalid("batch", node, "a map like {max_events: 262144, linger: 50ms}");
  } else if (present(node)) {
    map_reader reader(check, node, "batch",
                      {"max_events", "linger", "buffers", "max_string_bytes"});
    if (const YAML::Node n = reader.get("max_events"); present(n)) {
      // Row indices of a batch are 32-bit signed on every backend.
      read_u64(check, reader.path("max_events"), n, out.max_events, 1,
               std::numeric_limits<std::int32_t>::max());
    }
    if (const YAML::Node n = reader.get("linger"); present(n)) {
      read_duration(check, reader.path("linger"), n, out.linger_ms);
    }
    if (const YAML::Node n = reader.get("buffers"); present(n)) {
      std::uint64_t buffers = out.buffers;
      if (read_u64(check, reader.path("buffers"), n, buffers, 2, 1024)) {
        out.buffers = static_cast<std::uint32_t>(buffers);
      }
    }
    if (const YAML::Node n = reader.get("max_string_bytes"); present(n)) {
      // String offsets are 32-bit (Arrow layout).
      string_bytes_set = true;
      read_size(check, reader.path("max_string_bytes"), n, out.max_string_bytes, 1,
                std::numeric_limits<std::uint32_t>::max());
    }
    reader.finish();
  }
  if (!string_bytes_set) {
    out.max_string_bytes =
        std::min<std::uint64_t>(32 * out.max_events, std::numeric_limits<std::uint32_t>::max());
  }
}

void parse_sketch(checker& check, const map_reader& top, sketch_config& out) {
  const YAML::Node node = top.get("sketch");
  if (!present(node)) return;
  if (!node.IsMap()) {
    check.invalid("sketch", node, "a map like {hll_precision: 14, quantile_accuracy: 0.01}");
    return;
  }
  map_reader reader(check, node, "sketch", {"hll_precision", "quantile_accuracy"});
  if (const YAML::Node n = reader.get("quantile_accuracy"); present(n)) {
    read_f64(check, reader.path("quantile_accuracy"), n, out.quantile_accuracy, 0.001, 0.1,
             "a relative accuracy from 0.001 to 0.1, like 0.01");
  }
  if (const YAML::Node n = reader.get("hll_precision"); present(n)) {
    std::uint64_t p = out.hll_precision;
    if (read_u64(check, reader.path("hll_precision"), n, p, 4, 18)) {
      out.hll_precision = static_cast<std::uint32_t>(p);
    }
  }
  reader.finish();
}

void parse_metrics(checker& check, const map_reader& top, metrics_config& out) {
  const YAML::Node node = top.get("metrics");
  if (!present(node)) return;
  if (!node.IsMap()) {
    check.invalid("metrics", node, "a map like {listen: 0.0.0.0:9464}");
    return;
  }
  map_reader reader(check, node, "metrics", {"listen", "stall_timeout"});
  if (const YAML::Node n = reader.get("listen"); present(n)) {
    const std::string expected = "host:port, like 0.0.0.0:9464 or :9464";
    std::string listen;
    if (read_string(check, reader.path("listen"), n, listen, expected)) {
      const std::size_t colon = listen.rfind(':');
      std::uint64_t port = 0;
      if (colon == std::string::npos ||
          to_u64(std::string_view(listen).substr(colon + 1), port) != number_status::ok ||
          port > 65535) {
        check.invalid(reader.path("listen"), n, expected);
      } else {
        out.listen = listen;
      }
    }
  }
  if (const YAML::Node n = reader.get("stall_timeout"); present(n)) {
    read_duration(check, reader.path("stall_timeout"), n, out.stall_timeout_ms,
                  /*positive=*/true);
  }
  reader.finish();
}

void parse_checkpoint(checker& check, const map_reader& top, const source_config& source,
                      std::optional<checkpoint_config>& out) {
  const YAML::Node node = top.get("checkpoint");
  if (!present(node)) return;
  if (!node.IsMap()) {
    check.invalid("checkpoint", node, "a map like {dir: /var/lib/trove, interval: 10s, retain: 3}");
    return;
  }
  map_reader reader(check, node, "checkpoint", {"dir", "interval", "retain"});
  checkpoint_config config;
  if (const YAML::Node n = reader.get("dir"); present(n)) {
    read_string(check, reader.path("dir"), n, config.dir, "a directory path");
  } else {
    reader.missing("dir", "a directory path (created when missing)");
  }
  if (const YAML::Node n = reader.get("interval"); present(n)) {
    read_duration(check, reader.path("interval"), n, config.interval_ms, /*positive=*/true);
  }
  if (const YAML::Node n = reader.get("retain"); present(n)) {
    std::uint64_t retain = config.retain;
    if (read_u64(check, reader.path("retain"), n, retain, 1, 1000)) {
      config.retain = static_cast<std::uint32_t>(retain);
    }
  }
  reader.finish();
  if (source.type == source_type::stdin_stream) {
    check.add("checkpoint", "", "a source that can resume at a position (file, synthetic, kafka)",
              "source.type stdin cannot seek back to a checkpoint's position; remove the "
              "checkpoint section or read from a file",
              config_error::kind::invalid_value, line_of(node));
  }
  out = std::move(config);
}

/// exactly_once needs what its transactions are made of: a Kafka source (the offsets committed
/// with the rows), checkpoints (a transaction per checkpoint) and a previous checkpoint to fall
/// back to when the newest one's transaction never committed.
void check_delivery(checker& check, const map_reader& top, const pipeline_config& config) {
  if (config.sink.type != sink_type::kafka ||
      config.sink.kafka.delivery != delivery_mode::exactly_once) {
    return;
  }
  const YAML::Node sink = top.get("sink");
  const int line =
      present(sink) && sink.IsMap() && present(sink["delivery"]) ? line_of(sink["delivery"]) : 0;
  if (config.source.type != source_type::kafka) {
    check.add("sink.delivery", "exactly_once", "at_least_once with this source",
              "exactly_once commits the Kafka source's offsets in the sink's transactions; the "
              "source is " +
                  std::string(to_string(config.source.type)),
              config_error::kind::invalid_value, line);
  } else if (!config.checkpoint) {
    check.add("sink.delivery", "exactly_once", "a checkpoint section as well",
              "exactly_once writes one transaction per checkpoint; add checkpoint: {dir: ...}",
              config_error::kind::invalid_value, line);
  } else if (config.checkpoint->retain < 2) {
    const YAML::Node ck = top.get("checkpoint");
    check.add("checkpoint.retain", std::to_string(config.checkpoint->retain),
              "2 or more with sink.delivery: exactly_once",
              "the newest checkpoint's transaction may not have committed when the run stops; "
              "the one before it must still be there",
              config_error::kind::invalid_value,
              present(ck) && ck.IsMap() && present(ck["retain"]) ? line_of(ck["retain"]) : 0);
  }
}

/// With checkpoints a Kafka source's state moves with its partitions, one whole assignment at a
/// time: the rebalance protocol must be eager (partition_moves.cpp).
void check_rebalancing(checker& check, const pipeline_config& config) {
  if (config.source.type != source_type::kafka || !config.checkpoint) return;
  const auto& props = config.source.kafka.properties;
  const auto it = props.find("partition.assignment.strategy");
  if (it == props.end() || it->second.find("cooperative") == std::string::npos) return;
  check.add("source.properties.partition.assignment.strategy", it->second,
            "an eager assignor (range, roundrobin) with a checkpoint section",
            "with checkpoints the state of every partition moves with its assignment, one whole "
            "assignment per rebalance; leave the property out (trove uses roundrobin)",
            config_error::kind::invalid_value, 0);
}

void parse_log(checker& check, const map_reader& top, log_config& out) {
  const YAML::Node node = top.get("log");
  if (!present(node)) return;
  if (!node.IsMap()) {
    check.invalid("log", node, "a map like {format: text, level: info}");
    return;
  }
  map_reader reader(check, node, "log", {"format", "level"});
  if (const YAML::Node n = reader.get("format"); present(n)) {
    read_enum(check, reader.path("format"), n, log_formats, out.format);
  }
  if (const YAML::Node n = reader.get("level"); present(n)) {
    read_enum(check, reader.path("level"), n, log_levels, out.level);
  }
  reader.finish();
}

// ---- overrides ---------------------------------------------------------------------------------

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = path.find('.', start);
    parts.emplace_back(trim(path.substr(start, dot - start)));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts;
}

/// yaml-cpp cannot read a plain scalar ending in '?' inside {...} (`{amount: f64?}`): when a
/// line that failed to parse looks like that, says how to write it.
std::string question_mark_hint(std::string_view line) {
  const bool question_mark = line.find("?,") != std::string_view::npos ||
                             line.find("?}") != std::string_view::npos ||
                             line.find("? ") != std::string_view::npos;
  if (!question_mark || line.find('{') == std::string_view::npos) return "";
  return "; inside {...} quote a type ending in ?, like \"f64?\"";
}

/// The key path of an override ("window.size" for "window.size=5m"), or "" when malformed.
std::string override_key(std::string_view assignment) {
  assignment = trim(assignment);
  if (assignment.rfind("--set=", 0) == 0) {
    assignment.remove_prefix(6);
  } else if (assignment.rfind("--set ", 0) == 0) {
    assignment.remove_prefix(6);
  }
  const std::size_t equals = assignment.find('=');
  return equals == std::string_view::npos ? std::string()
                                          : std::string(trim(assignment.substr(0, equals)));
}

pipeline_config load_impl(const std::string& text, const std::string& name,
                          const std::vector<std::string>& overrides,
                          std::vector<config_error>& errors) {
  YAML::Node root;
  try {
    root.reset(YAML::Load(text));
  } catch (const YAML::Exception& error) {
    config_error problem;
    problem.what = config_error::kind::unreadable;
    problem.value = name;
    problem.expected = "a YAML document";
    problem.line = error.mark.is_null() ? 0 : error.mark.line + 1;
    problem.detail = problem.line > 0 ? fmt::format("invalid YAML at line {}, column {}: {}",
                                                    problem.line, error.mark.column + 1, error.msg)
                                      : fmt::format("invalid YAML: {}", error.msg);
    if (problem.line > 0) {
      std::istringstream lines(text);
      std::string line_text;
      for (int line = 0; line < problem.line && std::getline(lines, line_text); ++line) {
      }
      problem.detail += question_mark_hint(line_text);
    }
    errors.push_back(std::move(problem));
    return {};
  }
  std::vector<std::string> overridden;
  for (const auto& assignment : overrides) {
    if (apply_override(root, assignment, errors)) overridden.push_back(override_key(assignment));
  }
  const std::size_t first = errors.size();
  pipeline_config config = parse_config(root, errors);
  // Values set by --set carry positions in the override text, not in the file.
  for (std::size_t index = first; index < errors.size(); ++index) {
    for (const auto& key : overridden) {
      const std::string& error_key = errors[index].key;
      if (error_key == key || error_key.rfind(key + ".", 0) == 0 ||
          error_key.rfind(key + "[", 0) == 0) {
        errors[index].line = 0;
      }
    }
  }
  return config;
}

// ---- writing -----------------------------------------------------------------------------------

template <class Value>
void write(YAML::Emitter& out, std::string_view key, const Value& value) {
  out << YAML::Key << std::string(key) << YAML::Value << value;
}

void write_list(YAML::Emitter& out, std::string_view key, const std::vector<std::string>& items) {
  out << YAML::Key << std::string(key) << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (const auto& item : items) out << item;
  out << YAML::EndSeq;
}

void write_map(YAML::Emitter& out, std::string_view key,
               const std::map<std::string, std::string>& items) {
  out << YAML::Key << std::string(key) << YAML::Value << YAML::BeginMap;
  for (const auto& [name, value] : items) write(out, name, value);
  out << YAML::EndMap;
}

std::string value_text(const filter_value& value) {
  return std::visit(
      [](const auto& v) -> std::string {
        using type = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<type, bool>) {
          return v ? "true" : "false";
        } else if constexpr (std::is_same_v<type, std::string>) {
          return v;
        } else {
          return fmt::format("{}", v);
        }
      },
      value);
}

}  // namespace

// ---- public ------------------------------------------------------------------------------------

const char* to_string(data_format value) noexcept {
  return name_of(data_formats, value);
}
const char* to_string(source_type value) noexcept {
  return name_of(source_types, value);
}
const char* to_string(kafka_start value) noexcept {
  return name_of(kafka_starts, value);
}
const char* to_string(window_type value) noexcept {
  return name_of(window_types, value);
}
const char* to_string(aggregate_fn value) noexcept {
  return name_of(aggregate_fns, value);
}
const char* to_string(compare_op value) noexcept {
  return name_of(compare_ops, value);
}
const char* to_string(emit_mode value) noexcept {
  return name_of(emit_modes, value);
}
const char* to_string(late_policy value) noexcept {
  return name_of(late_policies, value);
}
const char* to_string(sink_type value) noexcept {
  return name_of(sink_types, value);
}
const char* to_string(device_choice value) noexcept {
  return name_of(device_choices, value);
}
const char* to_string(log_format value) noexcept {
  return name_of(log_formats, value);
}
const char* to_string(log_level value) noexcept {
  return name_of(log_levels, value);
}

std::string to_string(const aggregate_spec& aggregate) {
  if (aggregate.fn == aggregate_fn::count) return "count";
  return fmt::format("{}({})", to_string(aggregate.fn), aggregate.field);
}

std::string output_column(const aggregate_spec& aggregate) {
  if (aggregate.fn == aggregate_fn::count) return "count";
  return fmt::format("{}_{}", to_string(aggregate.fn), aggregate.field);
}

io::synthetic_options to_synthetic_options(const synthetic_source_config& config) {
  io::synthetic_options o;
  o.events = config.events;
  o.rate = config.rate;
  o.keys = config.keys;
  o.zipf = config.zipf;
  o.duplicate_ratio = config.duplicate_ratio;
  o.disorder_ms = config.disorder_ms;
  o.types = config.types;
  o.span_ms = config.span_ms;
  o.seed = config.seed;
  o.start_time_ms = config.start_time_ms;
  return o;
}

std::vector<std::string> output_columns(const pipeline_config& config) {
  if (config.forward) return {};  // records as received
  std::vector<std::string> columns = config.group_by;
  columns.emplace_back(window_start_column);
  columns.emplace_back(window_end_column);
  for (const auto& aggregate : config.aggregates) columns.push_back(output_column(aggregate));
  return columns;
}

std::vector<output_config> outputs_of(const pipeline_config& config) {
  if (!config.outputs.empty()) return config.outputs;
  output_config one;
  one.forward = config.forward;
  one.window = config.window;
  one.group_by = config.group_by;
  one.aggregates = config.aggregates;
  one.emit = config.emit;
  one.late = config.late;
  one.sink = config.sink;
  return {std::move(one)};
}

std::vector<std::string> output_columns(const pipeline_config& /*config*/,
                                        const output_config& output) {
  if (output.forward) return {};  // records as received
  std::vector<std::string> columns = output.group_by;
  columns.emplace_back(window_start_column);
  columns.emplace_back(window_end_column);
  for (const auto& aggregate : output.aggregates) columns.push_back(output_column(aggregate));
  return columns;
}

data_format format_from_path(std::string_view path) noexcept {
  constexpr std::string_view csv = ".csv";
  if (path.size() >= csv.size()) {
    const std::string_view extension = path.substr(path.size() - csv.size());
    bool match = true;
    for (std::size_t index = 0; index < csv.size(); ++index) {
      match = match && std::tolower(static_cast<unsigned char>(extension[index])) == csv[index];
    }
    if (match) return data_format::csv;
  }
  return data_format::json;
}

std::string config_error::message() const {
  const std::string suffix = detail.empty() ? std::string() : " (" + detail + ")";
  const std::string prefix = key.empty() ? std::string() : key + ": ";
  switch (what) {
    case kind::invalid_value:
      return fmt::format("{}got \"{}\", expected {}{}", prefix, value, expected, suffix);
    case kind::missing_key:
      return fmt::format("{}required but missing, expected {}{}", prefix, expected, suffix);
    case kind::unknown_key:
      if (!detail.empty()) return fmt::format("unknown key '{}' ({})", key, detail);
      return fmt::format("unknown key '{}', expected {}", key, expected);
    case kind::duplicate_key:
      return fmt::format("{}duplicate key{}", prefix, suffix);
    case kind::unreadable:
      return fmt::format("{}: {}", value, detail);
  }
  return prefix + expected;
}

std::string config_error::located_message(std::string_view file) const {
  if (what == kind::unreadable) return message();
  if (line > 0) return fmt::format("{}:{}: {}", file, line, message());
  return fmt::format("{}: {}", file, message());
}

pipeline_config parse_config(const YAML::Node& root, std::vector<config_error>& errors) {
  pipeline_config config;
  checker check(errors);
  // reset(), not operator=: assigning to a node that refers to a document overwrites the document.
  YAML::Node document;
  document.reset(present(root) ? root : YAML::Node(YAML::NodeType::Map));  // empty file: no keys
  if (!document.IsMap()) {
    check.invalid("", document,
                  "a map of sections (source, schema, event_time, window, aggregates, sink, ...)");
    return config;
  }
  map_reader top(check, document, "", top_level_keys);
  // `outputs`: each entry has its own window ... sink; the top-level ones are refused.
  const bool with_outputs = present(top.get("outputs"));
  if (with_outputs) {
    std::vector<std::string> allowed;
    std::map<std::string, std::string> elsewhere;
    for (const auto& key : top_level_keys) {
      if (std::find(single_output_keys.begin(), single_output_keys.end(), key) ==
          single_output_keys.end()) {
        allowed.push_back(key);
      } else {
        elsewhere[key] = fmt::format(
            "with outputs, each output has its own {}; move it into an entry of outputs", key);
      }
    }
    top.allow_only(std::move(allowed), std::move(elsewhere));
  }
  parse_source(check, top, config.source);
  const schema_info schema = parse_schema(check, top, config.schema);
  parse_event_time(check, top, schema, config.event_time);
  parse_dedup(check, top, schema, config.dedup);
  config.forward = !with_outputs && forwards(top);
  if (with_outputs) {
    parse_outputs(check, top, config.source, schema, config.outputs);
    derive_shared_window(config);
  } else if (config.forward) {
    // No window: a 1 ms tumbling one that no row is ever late for keeps the watermark (dedup
    // expiry) and every window computation well defined.
    config.aggregates.clear();
    config.window.size_ms = config.window.slide_ms = 1;
  } else {
    parse_window(check, top, config.window);
    parse_group_by(check, top, schema, config.group_by);
    parse_aggregates(check, top, schema, config.group_by, config.aggregates);
  }
  parse_filter(check, top, schema, config.filter);
  if (!with_outputs) {
    if (const YAML::Node n = top.get("emit"); present(n)) {
      read_enum(check, "emit", n, emit_modes, config.emit);
    }
    if (const YAML::Node n = top.get("late"); present(n)) {
      read_enum(check, "late", n, late_policies, config.late);
    }
    parse_sink(check, top, config.source, schema, config.group_by, config.forward, config.sink);
    if (config.forward) check_forwarding(check, top, config.source, config.sink);
  }
  parse_dead_letter(check, top, config.dead_letter);
  parse_batch(check, top, config.batch);
  if (const YAML::Node n = top.get("device"); present(n)) {
    read_enum(check, "device", n, device_choices, config.device);
  }
  parse_metrics(check, top, config.metrics);
  parse_sketch(check, top, config.sketch);
  parse_log(check, top, config.log);
  parse_checkpoint(check, top, config.source, config.checkpoint);
  if (const YAML::Node n = top.get("checkpoint");
      with_outputs && present(n) && config.source.type == source_type::kafka) {
    // A Kafka source's state moves with its partitions (a shared checkpoint.dir), and that
    // path keeps one output's groups so far.
    check.add("checkpoint", as_written(n),
              "no checkpoint section together with outputs and a Kafka source",
              "with a Kafka source, checkpoints do not yet cover outputs (file and synthetic "
              "sources do); run without checkpoint, or use the single-output form",
              config_error::kind::invalid_value, line_of(n));
  }
  check_delivery(check, top, config);
  check_rebalancing(check, config);
  if (const YAML::Node n = top.get("shutdown_timeout"); present(n)) {
    read_duration(check, "shutdown_timeout", n, config.shutdown_timeout_ms);
  }
  if (const YAML::Node n = top.get("progress_interval"); present(n)) {
    read_duration(check, "progress_interval", n, config.progress_interval_ms);
  }
  top.finish();
  return config;
}

bool apply_override(YAML::Node& root, std::string_view assignment,
                    std::vector<config_error>& errors) {
  checker check(errors);
  std::string_view text = trim(assignment);
  if (text.rfind("--set=", 0) == 0) {
    text.remove_prefix(6);
  } else if (text.rfind("--set ", 0) == 0) {
    text = trim(text.substr(6));
  }
  const std::string expected = "key.path=value, like window.size=5m";
  const std::size_t equals = text.find('=');
  const std::string key(trim(text.substr(0, equals)));
  if (equals == std::string_view::npos || key.empty()) {
    check.add("--set", std::string(text), expected, "", config_error::kind::invalid_value, 0);
    return false;
  }
  const std::vector<std::string> parts = split_path(key);
  for (const auto& part : parts) {
    if (part.empty()) {
      check.add("--set", std::string(text), expected, "a key path has no empty parts",
                config_error::kind::invalid_value, 0);
      return false;
    }
  }
  constexpr std::string_view list_entries =
      "list entries (like outputs[0]) cannot be overridden with --set; set the whole list "
      "(outputs=[...]) or edit the file";
  if (key.find_first_of("[]") != std::string::npos) {
    check.add(key, std::string(trim(text.substr(equals + 1))),
              "a path of map keys, like window.size", std::string(list_entries),
              config_error::kind::invalid_value, 0);
    return false;
  }
  const std::string value_text(trim(text.substr(equals + 1)));
  YAML::Node value;
  try {
    value.reset(YAML::Load(value_text));
  } catch (const YAML::Exception& error) {
    check.add(key, value_text, "a YAML value (quote it when it has special characters)",
              error.msg + question_mark_hint(value_text), config_error::kind::invalid_value, 0);
    return false;
  }
  if (!present(root)) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap()) {
    check.add(key, value_text, "a document that is a map of sections", "",
              config_error::kind::invalid_value, 0);
    return false;
  }
  // yaml-cpp's operator= on a bound node overwrites the node it refers to, so the walk rebinds
  // with reset() and only assigns where the tree must change.
  YAML::Node current;
  current.reset(root);
  std::string walked;
  for (std::size_t index = 0; index + 1 < parts.size(); ++index) {
    walked = child_path(walked, parts[index]);
    YAML::Node child = current[parts[index]];
    if (!present(child)) {
      child = YAML::Node(YAML::NodeType::Map);
    } else if (!child.IsMap()) {
      check.add(key, value_text, fmt::format("a path through maps, but {} is not a map", walked),
                child.IsSequence() ? std::string(list_entries) : std::string(),
                config_error::kind::invalid_value, 0);
      return false;
    }
    current.reset(child);
  }
  current[parts.back()] = value;
  return true;
}

pipeline_config load_config_string(std::string_view yaml, const std::vector<std::string>& overrides,
                                   std::vector<config_error>& errors) {
  return load_impl(std::string(yaml), "<config>", overrides, errors);
}

pipeline_config load_config_file(const std::string& path, const std::vector<std::string>& overrides,
                                 std::vector<config_error>& errors) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    config_error problem;
    problem.what = config_error::kind::unreadable;
    problem.value = path;
    problem.expected = "a readable YAML file";
    problem.detail = std::string("cannot open: ") + std::strerror(errno);
    errors.push_back(std::move(problem));
    return {};
  }
  std::ostringstream text;
  text << in.rdbuf();
  return load_impl(text.str(), path, overrides, errors);
}

/// The window, group_by and aggregates of an aggregating output.
static void write_aggregation(YAML::Emitter& out, const window_config& window,
                              const std::vector<std::string>& group_by,
                              const std::vector<aggregate_spec>& aggregate_list) {
  out << YAML::Key << "window" << YAML::Value << YAML::BeginMap;
  write(out, "type", to_string(window.type));
  write(out, "size", format_duration(window.size_ms));
  if (window.type == window_type::hopping) write(out, "slide", format_duration(window.slide_ms));
  write(out, "allowed_lateness", format_duration(window.allowed_lateness_ms));
  write(out, "idle_timeout", format_duration(window.idle_timeout_ms));
  write(out, "initial_capacity", window.initial_capacity);
  write(out, "max_bytes", format_size(window.max_bytes));
  out << YAML::EndMap;

  write_list(out, "group_by", group_by);
  std::vector<std::string> aggregates;
  for (const auto& aggregate : aggregate_list) aggregates.push_back(to_string(aggregate));
  write_list(out, "aggregates", aggregates);
}

/// `filter` (nothing when empty).
static void write_filter(YAML::Emitter& out, const std::vector<filter_predicate>& filter) {
  if (filter.empty()) return;
  out << YAML::Key << "filter" << YAML::Value << YAML::BeginSeq;
  for (const auto& predicate : filter) {
    out << YAML::Flow << YAML::BeginMap;
    write(out, "field", predicate.field);
    out << YAML::Key << "op" << YAML::Value << YAML::DoubleQuoted << to_string(predicate.op);
    if (std::holds_alternative<std::string>(predicate.value)) {
      out << YAML::Key << "value" << YAML::Value << YAML::DoubleQuoted
          << value_text(predicate.value);
    } else {
      write(out, "value", value_text(predicate.value));
    }
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
}

/// `sink` of an output (a forwarding one has no Kafka key: records keep their own).
static void write_sink(YAML::Emitter& out, const sink_config& sink, bool forward) {
  out << YAML::Key << "sink" << YAML::Value << YAML::BeginMap;
  write(out, "type", to_string(sink.type));
  if (sink.type == sink_type::file) write(out, "path", sink.path);
  write(out, "format", to_string(sink.format));
  if (sink.type == sink_type::kafka) {
    write(out, "brokers", sink.kafka.brokers);
    write(out, "topic", sink.kafka.topic);
    if (sink.kafka.topic.find('{') != std::string::npos ||
        sink.kafka.max_topics != kafka_sink_config{}.max_topics) {
      write(out, "max_topics", sink.kafka.max_topics);
    }
    if (!forward) write_list(out, "key", sink.kafka.key);
    write(out, "delivery",
          sink.kafka.delivery == delivery_mode::exactly_once ? "exactly_once" : "at_least_once");
    if (!sink.kafka.properties.empty()) write_map(out, "properties", sink.kafka.properties);
  }
  out << YAML::EndMap;
}

/// `outputs`: every entry with every default written out.
static void write_outputs(YAML::Emitter& out, const std::vector<output_config>& outputs) {
  out << YAML::Key << "outputs" << YAML::Value << YAML::BeginSeq;
  for (const auto& output : outputs) {
    out << YAML::BeginMap;
    write(out, "name", output.name);
    write_filter(out, output.filter);
    if (!output.forward) {
      write_aggregation(out, output.window, output.group_by, output.aggregates);
      write(out, "emit", to_string(output.emit));
      write(out, "late", to_string(output.late));
    }
    write_sink(out, output.sink, output.forward);
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
}

std::string to_yaml(const pipeline_config& config) {
  YAML::Emitter out;
  out << YAML::BeginMap;

  const auto& source = config.source;
  out << YAML::Key << "source" << YAML::Value << YAML::BeginMap;
  write(out, "type", to_string(source.type));
  switch (source.type) {
    case source_type::file:
      write(out, "path", source.path);
      write(out, "format", to_string(source.format));
      write(out, "max_record_bytes", format_size(source.max_record_bytes));
      break;
    case source_type::stdin_stream:
      write(out, "format", to_string(source.format));
      write(out, "max_record_bytes", format_size(source.max_record_bytes));
      break;
    case source_type::synthetic: {
      const auto& syn = source.synthetic;
      write(out, "events", syn.events);
      write(out, "rate", fmt::format("{}", syn.rate));
      write(out, "keys", syn.keys);
      write(out, "zipf", fmt::format("{}", syn.zipf));
      write(out, "duplicate_ratio", fmt::format("{}", syn.duplicate_ratio));
      write(out, "disorder", format_duration(syn.disorder_ms));
      write(out, "types", syn.types);
      write(out, "span", format_duration(syn.span_ms));
      write(out, "seed", syn.seed);
      write(out, "start_time", syn.start_time_ms);
      break;
    }
    case source_type::kafka: {
      const auto& kafka = source.kafka;
      write(out, "brokers", kafka.brokers);
      write_list(out, "topics", kafka.topics);
      write(out, "group_id", kafka.group_id);
      if (!kafka.instance_id.empty()) write(out, "instance_id", kafka.instance_id);
      write(out, "start", to_string(kafka.start));
      write(out, "exit_at_end", kafka.exit_at_end);
      write(out, "idle_timeout", format_duration(kafka.idle_timeout_ms));
      write(out, "format", to_string(source.format));
      write(out, "max_record_bytes", format_size(source.max_record_bytes));
      if (!kafka.properties.empty()) write_map(out, "properties", kafka.properties);
      break;
    }
  }
  out << YAML::EndMap;

  out << YAML::Key << "schema" << YAML::Value << YAML::BeginMap;
  for (const auto& field : config.schema.fields) {
    write(out, field.name, std::string(io::to_string(field.type)) + (field.required ? "" : "?"));
  }
  out << YAML::EndMap;
  write(out, "event_time", config.event_time);

  if (config.dedup) {
    out << YAML::Key << "dedup" << YAML::Value << YAML::BeginMap;
    write_list(out, "key", config.dedup->key);
    write(out, "ttl", format_duration(config.dedup->ttl_ms));
    write(out, "max_bytes", format_size(config.dedup->max_bytes));
    write(out, "initial_capacity", config.dedup->initial_capacity);
    write(out, "incremental_rebuild", config.dedup->incremental_rebuild);
    out << YAML::EndMap;
  }

  // With outputs, each entry has its own window ... sink; the top-level ones are derived.
  const bool single = config.outputs.empty();
  if (single && !config.forward) {
    write_aggregation(out, config.window, config.group_by, config.aggregates);
  }
  out << YAML::Key << "sketch" << YAML::Value << YAML::BeginMap;
  write(out, "hll_precision", config.sketch.hll_precision);
  write(out, "quantile_accuracy", config.sketch.quantile_accuracy);
  out << YAML::EndMap;

  write_filter(out, config.filter);

  if (single) {
    if (!config.forward) {
      write(out, "emit", to_string(config.emit));
      write(out, "late", to_string(config.late));
    }
    write_sink(out, config.sink, config.forward);
  } else {
    write_outputs(out, config.outputs);
  }

  if (!config.dead_letter.path.empty()) {
    out << YAML::Key << "dead_letter" << YAML::Value << YAML::BeginMap;
    write(out, "path", config.dead_letter.path);
    out << YAML::EndMap;
  }

  out << YAML::Key << "batch" << YAML::Value << YAML::BeginMap;
  write(out, "max_events", config.batch.max_events);
  write(out, "linger", format_duration(config.batch.linger_ms));
  write(out, "buffers", config.batch.buffers);
  write(out, "max_string_bytes", format_size(config.batch.max_string_bytes));
  out << YAML::EndMap;

  write(out, "device", to_string(config.device));
  if (!config.metrics.listen.empty()) {
    out << YAML::Key << "metrics" << YAML::Value << YAML::BeginMap;
    write(out, "listen", config.metrics.listen);
    write(out, "stall_timeout", format_duration(config.metrics.stall_timeout_ms));
    out << YAML::EndMap;
  }
  out << YAML::Key << "log" << YAML::Value << YAML::BeginMap;
  write(out, "format", to_string(config.log.format));
  write(out, "level", to_string(config.log.level));
  out << YAML::EndMap;
  if (config.checkpoint) {
    out << YAML::Key << "checkpoint" << YAML::Value << YAML::BeginMap;
    write(out, "dir", config.checkpoint->dir);
    write(out, "interval", format_duration(config.checkpoint->interval_ms));
    write(out, "retain", config.checkpoint->retain);
    out << YAML::EndMap;
  }
  write(out, "shutdown_timeout", format_duration(config.shutdown_timeout_ms));
  write(out, "progress_interval", format_duration(config.progress_interval_ms));
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace trove::host
