#include "io/route.hpp"

namespace trove::io {
namespace {

bool safe_byte(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

/// Appends a value by the rule; true when it had to be rewritten.
bool append_value(std::string& out, const std::optional<std::string_view>& value) {
  if (!value || value->find_first_not_of('.') == std::string_view::npos) {
    out += '_';  // null, empty, "." or "..": no name of its own
    return true;
  }
  bool rewritten = false;
  for (const char c : *value) {
    if (safe_byte(c)) {
      out += c;
    } else {
      out += '_';
      rewritten = true;
    }
  }
  return rewritten;
}

}  // namespace

std::optional<route_template> route_template::parse(std::string_view text, std::string& error) {
  route_template t;
  std::string literal;
  for (std::size_t at = 0; at < text.size(); ++at) {
    const char c = text[at];
    if (c == '}') {
      error = "a '}' without its '{' at byte " + std::to_string(at);
      return std::nullopt;
    }
    if (c != '{') {
      literal += c;
      continue;
    }
    const std::size_t end = text.find_first_of("{}", at + 1);
    if (end == std::string_view::npos || text[end] == '{') {
      error = "the '{' at byte " + std::to_string(at) + " is not closed by a '}'";
      return std::nullopt;
    }
    const std::string_view name = text.substr(at + 1, end - at - 1);
    if (name.empty()) {
      error = "an empty placeholder '{}' at byte " + std::to_string(at);
      return std::nullopt;
    }
    t.literals_.push_back(std::move(literal));
    literal.clear();
    t.fields_.emplace_back(name);
    at = end;
  }
  t.literals_.push_back(std::move(literal));
  return t;
}

bool route_template::render(std::span<const std::optional<std::string_view>> values,
                            std::string& out) const {
  out.clear();
  bool rewritten = false;
  for (std::size_t idx = 0; idx < fields_.size(); ++idx) {
    out += literals_[idx];
    rewritten |= append_value(out, idx < values.size() ? values[idx] : std::nullopt);
  }
  out += literals_.back();
  if (out.size() > max_topic_length) {
    out.resize(max_topic_length);
    rewritten = true;
  }
  return rewritten;
}

}  // namespace trove::io
