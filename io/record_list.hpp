#pragma once
/// @file record_list.hpp
/// @brief Byte strings stored back to back with their end offsets: the records a forwarding
/// output passes on as received (and their Kafka keys), one allocation that grows and is reused.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace trove::io {

/// @brief A list of byte strings (records, keys) in one buffer.
class record_list {
 public:
  /// @brief Appends one string.
  void push_back(std::string_view text) {
    bytes_.append(text);
    ends_.push_back(bytes_.size());
  }
  /// @brief String i.
  [[nodiscard]] std::string_view operator[](std::size_t index) const noexcept {
    const std::size_t begin = index == 0 ? 0 : ends_[index - 1];
    return std::string_view(bytes_).substr(begin, ends_[index] - begin);
  }
  [[nodiscard]] std::size_t size() const noexcept { return ends_.size(); }
  /// @brief Bytes of every string together.
  [[nodiscard]] std::size_t bytes() const noexcept { return bytes_.size(); }
  /// @brief Drops every string, keeping the memory.
  void clear() noexcept {
    bytes_.clear();
    ends_.clear();
  }

 private:
  std::string bytes_;
  std::vector<std::size_t> ends_;
};

}  // namespace trove::io
