#pragma once
/// @file route.hpp
/// @brief A sink target named by a template with `{field}` placeholders (`events.clean.{type}`):
/// each record or result row goes to the target its field values name.
///
/// The rule for values that would make an unsafe Kafka topic name (one rule, documented in the
/// README, every use counted): a byte outside `[A-Za-z0-9._-]` becomes `_`; a null, empty or
/// all-dots value (`.`, `..` name no topic) becomes `_`; a name longer than 249 bytes (Kafka's
/// limit) is cut to 249. Such a row still goes to the rewritten target, never dropped.

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace trove::io {

/// @brief Longest Kafka topic name.
inline constexpr std::size_t max_topic_length = 249;

/// @brief A parsed target template: literal text and field placeholders.
class route_template {
 public:
  /// @brief Parses `text`; nullopt with `error` set when a brace is unmatched, a placeholder is
  /// empty or nested.
  static std::optional<route_template> parse(std::string_view text, std::string& error);

  /// @brief Whether the template has placeholders (else every row has the same target).
  [[nodiscard]] bool routed() const noexcept { return !fields_.empty(); }
  /// @brief The placeholders' field names, in order of appearance (a field may repeat).
  [[nodiscard]] const std::vector<std::string>& fields() const noexcept { return fields_; }

  /// @brief The target for one row: `values[i]` fills placeholder i (nullopt: a null value).
  /// @return whether a value or the name was rewritten by the rule above
  bool render(std::span<const std::optional<std::string_view>> values, std::string& out) const;

 private:
  std::vector<std::string> literals_;  // literals_[i] before fields_[i]; one more at the end
  std::vector<std::string> fields_;
};

}  // namespace trove::io
