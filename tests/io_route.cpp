// The routing template of a sink target (io/route.hpp): parsing, and the one rule for values that
// would make an unsafe topic name. Rendered names are checked against the rule's properties on
// random values (only safe bytes, at most 249, safe values unchanged) and on its edge cases.
#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "io/route.hpp"

namespace trove::io {
namespace {

route_template parsed(std::string_view text) {
  std::string error;
  std::optional<route_template> t = route_template::parse(text, error);
  EXPECT_TRUE(t.has_value()) << text << ": " << error;
  return t ? *t : route_template{};
}

std::string render(const route_template& t, std::vector<std::optional<std::string_view>> values,
                   bool* rewritten = nullptr) {
  std::string out;
  const bool r = t.render(values, out);
  if (rewritten) *rewritten = r;
  return out;
}

TEST(IoRoute, PlaceholdersAndLiteralsParseInOrder) {
  const route_template fixed = parsed("results");
  EXPECT_FALSE(fixed.routed());
  EXPECT_EQ(render(fixed, {}), "results");
  const route_template t = parsed("events.{type}.by-{user_id}.{type}");
  EXPECT_TRUE(t.routed());
  EXPECT_EQ(t.fields(), (std::vector<std::string>{"type", "user_id", "type"}));
  bool rewritten = true;
  EXPECT_EQ(render(t, {"view", "42", "view"}, &rewritten), "events.view.by-42.view");
  EXPECT_FALSE(rewritten);
  for (const char* bad : {"events.{type", "events.type}", "{}", "a{b{c}}", "x}{y"}) {
    std::string error;
    EXPECT_FALSE(route_template::parse(bad, error).has_value()) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
}

TEST(IoRoute, UnsafeValuesFollowOneRuleAndAreReported) {
  const route_template t = parsed("clean.{type}");
  bool rewritten = false;
  EXPECT_EQ(render(t, {std::nullopt}, &rewritten), "clean._");
  EXPECT_TRUE(rewritten);
  EXPECT_EQ(render(t, {""}, &rewritten), "clean._");
  EXPECT_TRUE(rewritten);
  EXPECT_EQ(render(t, {".."}, &rewritten), "clean._");
  EXPECT_TRUE(rewritten);
  EXPECT_EQ(render(t, {"a/b c\xc3\xa9"}, &rewritten), "clean.a_b_c__");
  EXPECT_TRUE(rewritten);
  EXPECT_EQ(render(t, {"v1.2_x-Y"}, &rewritten), "clean.v1.2_x-Y");
  EXPECT_FALSE(rewritten);
  EXPECT_EQ(render(t, {std::string(300, 'z')}, &rewritten).size(), max_topic_length);
  EXPECT_TRUE(rewritten);
}

/// The bytes a topic name may hold, by Kafka's rule.
bool topic_byte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

TEST(IoRoute, RandomValuesGiveSafeNamesAndSafeValuesPassUnchanged) {
  const route_template t = parsed("t-{a}.{b}");
  std::mt19937_64 rng(7);
  const std::string safe = "abcXYZ019._-";  // picked often, so that many values are all safe
  for (int round = 0; round < 5000; ++round) {
    std::string a(rng() % 12, ' ');
    std::string b(rng() % 300, ' ');
    bool all_safe = !a.empty() && !b.empty();
    for (auto* value : {&a, &b}) {
      for (char& c : *value) {
        c = rng() % 4 ? safe[rng() % safe.size()] : static_cast<char>(rng() % 256);
        all_safe = all_safe && topic_byte(c);
      }
      if (value->find_first_not_of('.') == std::string::npos) all_safe = false;
    }
    bool rewritten = false;
    const std::string name = render(t, {a, b}, &rewritten);
    ASSERT_LE(name.size(), max_topic_length);
    for (const char c : name) ASSERT_TRUE(topic_byte(c)) << name;
    const std::string plain = "t-" + a + "." + b;
    if (all_safe && plain.size() <= max_topic_length) {
      EXPECT_FALSE(rewritten) << plain;
      EXPECT_EQ(name, plain);
    } else {
      EXPECT_TRUE(rewritten) << plain;
    }
  }
}

}  // namespace
}  // namespace trove::io
