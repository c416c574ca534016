/// @file config_fuzz.cpp
/// @brief libFuzzer target: the configuration loader on arbitrary YAML and `--set` overrides.
///
/// Input: YAML text, then zero or more overrides, each after a NUL byte
/// ("<yaml>\0window.size=5m\0batch.max_events=10"). Checks: load_config_string() reports problems
/// only as config_error entries (any exception escaping it, a crash or a hang is a bug), every
/// error reads as a message; and a config that loads without errors round-trips: its effective
/// YAML (to_yaml) loads again without errors, to the same effective YAML.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "host/config.hpp"

namespace {

void require(bool ok, const char* what, const std::string& detail = {}) {
  if (!ok) {
    std::fprintf(stderr, "trove fuzz: check failed: %s\n%s\n", what, detail.c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace trove::host;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::size_t nul = input.find('\0');
  const std::string_view yaml = input.substr(0, nul);
  std::vector<std::string> overrides;
  while (nul != std::string_view::npos) {
    const std::size_t next = input.find('\0', nul + 1);
    overrides.emplace_back(input.substr(
        nul + 1, next == std::string_view::npos ? std::string_view::npos : next - nul - 1));
    nul = next;
  }

  std::vector<config_error> errors;
  const pipeline_config config = load_config_string(yaml, overrides, errors);
  for (const config_error& error : errors) {
    require(!error.message().empty(), "every error has a message");
    require(!error.located_message("<config>").empty(), "every error has a located message");
  }
  if (!errors.empty()) return 0;

  const std::string first = to_yaml(config);
  std::vector<config_error> again;
  const pipeline_config reloaded = load_config_string(first, {}, again);
  std::string why;
  for (const config_error& error : again) why += error.message() + "\n";
  require(again.empty(), "the effective YAML of a valid config loads without errors",
          "--- effective YAML:\n" + first + "--- errors:\n" + why);
  const std::string second = to_yaml(reloaded);
  require(first == second, "the effective YAML round-trips",
          "--- first:\n" + first + "--- second:\n" + second);
  return 0;
}
