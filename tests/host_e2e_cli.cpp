/// @file host_e2e_cli.cpp
/// @brief End-to-end tests of the `trove` command line: help and version, `validate` on the
/// shipped examples, configuration errors (exit code 2, every error named by its key), device
/// selection and runtime errors (exit code 1).

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "e2e_util.hpp"

namespace {

namespace e2e = trove::test::e2e;

constexpr int exit_ok = 0;
constexpr int exit_runtime_error = 1;
constexpr int exit_config_error = 2;

/// A valid pipeline; tests break one thing at a time.
const char* const valid_yaml = R"(source:    { type: file, path: events.jsonl, format: json }
schema:    { event_id: u64, user_id: u64, type: string, ts: timestamp_ms, amount: f64 }
event_time: ts
dedup:     { key: [event_id], ttl: 10m }
window:    { type: tumbling, size: 1m, allowed_lateness: 5s }
group_by:  [user_id, type]
aggregates: [count, sum(amount), min(amount), max(amount), avg(amount)]
emit:      final
sink:      { type: file, path: out.jsonl, format: json }
dead_letter: { path: bad.jsonl }
)";

std::string replace(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

/// Runs `trove validate` on YAML text written to a temporary file.
e2e::command_result validate(const e2e::temp_dir& dir, const std::string& yaml,
                             std::vector<std::string> extra = {}) {
  const std::string path = dir.file("pipeline.yaml");
  e2e::write_file(path, yaml);
  std::vector<std::string> args = {"validate", "-c", path};
  args.insert(args.end(), extra.begin(), extra.end());
  return e2e::trove(args);
}

/// Whether `trove devices` reports a usable CUDA device (never on a machine without a GPU).
bool cuda_usable() {
  const auto devices = e2e::trove({"devices"});
  return devices.exit_code == 0 && devices.out.find("no usable device") == std::string::npos &&
         devices.out.find("cuda:0") != std::string::npos;
}

TEST(E2eCli, HelpAndVersion) {
  const auto help = e2e::trove({"--help"});
  EXPECT_EQ(help.exit_code, exit_ok) << help.err;
  for (const char* command : {"run", "validate", "gen", "devices"}) {
    EXPECT_NE(help.out.find(command), std::string::npos) << command << " not in\n" << help.out;
  }
  const auto run_help = e2e::trove({"run", "--help"});
  EXPECT_EQ(run_help.exit_code, exit_ok);
  for (const char* option : {"--config", "--set", "--device", "--stats-json", "--strict"}) {
    EXPECT_NE(run_help.out.find(option), std::string::npos) << option;
  }
  const auto version = e2e::trove({"--version"});
  EXPECT_EQ(version.exit_code, exit_ok);
  EXPECT_EQ(version.out.rfind("trove ", 0), 0u) << version.out;
}

TEST(E2eCli, UsageErrorsExitTwo) {
  EXPECT_EQ(e2e::trove({}).exit_code, exit_config_error);
  EXPECT_EQ(e2e::trove({"frobnicate"}).exit_code, exit_config_error);
  EXPECT_EQ(e2e::trove({"run"}).exit_code, exit_config_error);  // -c is required
  EXPECT_EQ(e2e::trove({"run", "-c", "x.yaml", "--device", "tpu"}).exit_code, exit_config_error);
}

TEST(E2eCli, ValidateAcceptsTheExamples) {
  std::size_t examples = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::filesystem::path(TROVE_SOURCE_DIR) / "examples")) {
    if (entry.path().extension() != ".yaml") continue;
    ++examples;
    const auto result = e2e::trove({"validate", "-c", entry.path().string()});
    EXPECT_EQ(result.exit_code, exit_ok) << entry.path() << "\n" << result.err;
    const auto printed = e2e::trove({"validate", "-c", entry.path().string(), "--print"});
    EXPECT_EQ(printed.exit_code, exit_ok) << entry.path();
    // Every example but the forwarding one aggregates, so its effective config has a window.
    const bool forwards = entry.path().filename() == "forward.yaml";
    EXPECT_EQ(printed.out.find("window:") != std::string::npos, !forwards) << printed.out;
  }
  EXPECT_GE(examples, 3u);
}

TEST(E2eCli, PrintedConfigValidatesAgain) {
  e2e::temp_dir dir;
  const auto printed = validate(dir, valid_yaml, {"--print"});
  ASSERT_EQ(printed.exit_code, exit_ok) << printed.err;
  const auto again = validate(dir, printed.out);
  EXPECT_EQ(again.exit_code, exit_ok) << again.err;
  const auto printed_again = validate(dir, printed.out, {"--print"});
  EXPECT_EQ(printed_again.out, printed.out);
}

struct config_mistake {
  const char* name;
  std::string yaml;
  std::string key;  // stderr must name it
};

TEST(E2eCli, ConfigErrorsNameTheKey) {
  const std::vector<config_mistake> mistakes = {
      {"unknown top-level key", std::string(valid_yaml) + "windw: {size: 1m}\n", "windw"},
      {"unknown nested key", replace(valid_yaml, "allowed_lateness: 5s", "allowed_latenes: 5s"),
       "allowed_latenes"},
      {"bad duration", replace(valid_yaml, "size: 1m", "size: 5x"), "window.size"},
      {"negative duration", replace(valid_yaml, "ttl: 10m", "ttl: -10m"), "dedup.ttl"},
      {"missing section",
       replace(valid_yaml,
               "schema:    { event_id: u64, user_id: u64, type: "
               "string, ts: timestamp_ms, amount: f64 }\n",
               ""),
       "schema"},
      {"missing window",
       replace(valid_yaml, "window:    { type: tumbling, size: 1m, allowed_lateness: 5s }\n", ""),
       "window"},
      {"slide does not divide size",
       replace(valid_yaml, "{ type: tumbling, size: 1m,", "{ type: hopping, size: 5m, slide: 2m,"),
       "window.slide"},
      {"unknown schema type", replace(valid_yaml, "amount: f64", "amount: float128"),
       "schema.amount"},
      {"aggregate of an unknown field", replace(valid_yaml, "sum(amount)", "sum(amont)"),
       "aggregates"},
      {"group by an unknown field", replace(valid_yaml, "[user_id, type]", "[user_id, kind]"),
       "group_by"},
      {"bad emit mode", replace(valid_yaml, "emit:      final", "emit:      sometimes"), "emit"},
      {"not YAML", "source: {type: file\n  path: [\n", ""},
  };
  for (const config_mistake& m : mistakes) {
    SCOPED_TRACE(m.name);
    e2e::temp_dir dir;
    const auto result = validate(dir, m.yaml);
    EXPECT_EQ(result.exit_code, exit_config_error) << result.err;
    EXPECT_NE(result.err.find(m.key), std::string::npos) << result.err;
    // `run` rejects it the same way, before touching any input.
    const auto run = e2e::trove({"run", "-c", dir.file("pipeline.yaml"), "-q"});
    EXPECT_EQ(run.exit_code, exit_config_error) << run.err;
    EXPECT_NE(run.err.find(m.key), std::string::npos) << run.err;
  }
}

TEST(E2eCli, EveryMistakeInOneFileIsReported) {
  e2e::temp_dir dir;
  std::string yaml = valid_yaml;
  yaml = replace(yaml, "ttl: 10m", "ttl: 10x");
  yaml = replace(yaml, "{ type: tumbling, size: 1m,", "{ type: hopping, size: 5m, slide: 2m,");
  yaml = replace(yaml, "emit:      final", "emit:      sometimes");
  yaml += "windw: 3\n";
  const auto result = validate(dir, yaml);
  EXPECT_EQ(result.exit_code, exit_config_error);
  for (const char* key : {"dedup.ttl", "window.slide", "emit", "windw"}) {
    EXPECT_NE(result.err.find(key), std::string::npos) << key << " not in\n" << result.err;
  }
  EXPECT_NE(result.err.find("4 configuration errors"), std::string::npos) << result.err;
  // Each error line carries file:line.
  EXPECT_NE(result.err.find("pipeline.yaml:4:"), std::string::npos) << result.err;
}

TEST(E2eCli, SetOverridesAreValidated) {
  e2e::temp_dir dir;
  EXPECT_EQ(validate(dir, valid_yaml, {"--set", "window.size=2m"}).exit_code, exit_ok);
  const auto bad_value = validate(dir, valid_yaml, {"--set", "window.size=soon"});
  EXPECT_EQ(bad_value.exit_code, exit_config_error);
  EXPECT_NE(bad_value.err.find("window.size"), std::string::npos) << bad_value.err;
  const auto unknown = validate(dir, valid_yaml, {"--set", "window.colour=blue"});
  EXPECT_EQ(unknown.exit_code, exit_config_error);
  EXPECT_NE(unknown.err.find("colour"), std::string::npos) << unknown.err;
  const auto malformed = validate(dir, valid_yaml, {"--set", "no-equals-sign"});
  EXPECT_EQ(malformed.exit_code, exit_config_error) << malformed.err;
}

TEST(E2eCli, MissingConfigFile) {
  e2e::temp_dir dir;
  const std::string path = dir.file("nope.yaml");
  const auto result = e2e::trove({"validate", "-c", path});
  EXPECT_EQ(result.exit_code, exit_config_error);
  EXPECT_NE(result.err.find(path), std::string::npos) << result.err;
}

TEST(E2eCli, DevicesExplainsWhyNoGpuIsUsable) {
  const auto result = e2e::trove({"devices"});
  ASSERT_EQ(result.exit_code, exit_ok) << result.err;
  EXPECT_NE(result.out.find("cpu"), std::string::npos) << result.out;
  if (cuda_usable()) GTEST_SKIP() << "a CUDA device is usable here:\n" << result.out;
  const auto at = result.out.find("no usable device");
  ASSERT_NE(at, std::string::npos) << result.out;
  // ... followed by the reason on the same line.
  const std::string line = result.out.substr(at, result.out.find('\n', at) - at);
  EXPECT_GT(line.size(), std::string("no usable device: ").size() + 5) << line;
  EXPECT_NE(result.out.find("--device auto would use: cpu"), std::string::npos) << result.out;
}

// TROVE_CPU_STRATEGY picks the CPU backend's strategy for the whole run, and says so where an
// operator looks (the device of --stats-json and of the summary line, `trove devices`); anything
// but owned or atomic is a configuration error naming the variable and both values, before any
// input is read.
TEST(E2eCli, CpuStrategyEnvIsHonouredAndABadValueRefused) {
  e2e::temp_dir dir;
  const std::string input = dir.file("events.jsonl");
  const auto gen = e2e::trove({"gen", "-n", "5000", "--keys", "200", "-o", input});
  ASSERT_EQ(gen.exit_code, exit_ok) << gen.err;
  std::string yaml = replace(valid_yaml, "path: events.jsonl", "path: \"" + input + "\"");
  yaml = replace(yaml, "path: bad.jsonl", "path: \"" + dir.file("bad.jsonl") + "\"");
  e2e::write_file(dir.file("p.yaml"), yaml);
  struct outcome {
    std::string device;
    std::uint64_t accepted = 0;
    std::uint64_t duplicate = 0;
  };
  auto run = [&](const char* strategy) {
    const e2e::scoped_env env("TROVE_CPU_STRATEGY", strategy);
    const std::string name = strategy ? strategy : "unset";
    const std::string stats = dir.file(name + ".stats.json");
    const auto result =
        e2e::trove({"run", "-c", dir.file("p.yaml"), "-q", "--device", "cpu", "--set",
                    "sink.path=" + dir.file(name + ".jsonl"), "--stats-json", stats});
    EXPECT_EQ(result.exit_code, exit_ok) << name << ": " << result.err;
    const e2e::json_row row = e2e::read_stats(stats);
    outcome o{e2e::as_string(row.at("device")),
              static_cast<std::uint64_t>(e2e::as_i64(row.at("accepted"))),
              static_cast<std::uint64_t>(e2e::as_i64(row.at("duplicate")))};
    // The summary line names the same device.
    EXPECT_NE(result.err.find("device " + o.device), std::string::npos)
        << name << ": " << result.err;
    return o;
  };
  const outcome unset = run(nullptr);
  const outcome owned = run("owned");
  const outcome atomic = run("atomic");
  EXPECT_EQ(unset.device.rfind("cpu (", 0), 0u) << unset.device;
  EXPECT_EQ(unset.device.find("atomic"), std::string::npos) << unset.device;
  EXPECT_EQ(owned.device, unset.device);
  EXPECT_EQ(atomic.device.rfind("cpu (", 0), 0u) << atomic.device;
  EXPECT_NE(atomic.device.find(", atomic)"), std::string::npos) << atomic.device;
  EXPECT_GT(atomic.accepted, 0u);
  EXPECT_EQ(atomic.accepted, owned.accepted);
  EXPECT_EQ(atomic.duplicate, owned.duplicate);
  {
    const e2e::scoped_env env("TROVE_CPU_STRATEGY", "atomic");
    const auto devices = e2e::trove({"devices"});
    EXPECT_EQ(devices.exit_code, exit_ok);
    EXPECT_NE(devices.out.find("atomic strategy"), std::string::npos) << devices.out;
  }
  for (const char* bad : {"shared", "Atomic", "owned,atomic"}) {
    for (const char* device : {"cpu", "auto"}) {
      const e2e::scoped_env env("TROVE_CPU_STRATEGY", bad);
      const std::string out = dir.file(std::string("bad-") + device + ".jsonl");
      const auto result = e2e::trove(
          {"run", "-c", dir.file("p.yaml"), "-q", "--device", device, "--set", "sink.path=" + out});
      EXPECT_EQ(result.exit_code, exit_config_error) << bad << ", " << device << ": " << result.err;
      for (const std::string& word :
           std::vector<std::string>{"TROVE_CPU_STRATEGY", "owned", "atomic", bad}) {
        EXPECT_NE(result.err.find(word), std::string::npos) << word << " not in: " << result.err;
      }
      EXPECT_FALSE(std::filesystem::exists(out)) << "a refused run wrote its sink";
    }
  }
}

TEST(E2eCli, ForcedGpuDeviceWithoutAGpuFails) {
  if (cuda_usable()) GTEST_SKIP() << "a CUDA device is usable here";
  e2e::temp_dir dir;
  const std::string input = dir.file("events.jsonl");
  e2e::write_file(input, R"({"event_id":1,"user_id":1,"type":"a","ts":1700000000000,"amount":1})");
  std::string yaml = replace(valid_yaml, "path: events.jsonl", "path: \"" + input + "\"");
  yaml = replace(yaml, "path: out.jsonl", "path: \"" + dir.file("out.jsonl") + "\"");
  yaml = replace(yaml, "path: bad.jsonl", "path: \"" + dir.file("bad.jsonl") + "\"");
  e2e::write_file(dir.file("p.yaml"), yaml);
  const auto cuda = e2e::trove({"run", "-c", dir.file("p.yaml"), "-q", "--device", "cuda"});
  EXPECT_EQ(cuda.exit_code, exit_runtime_error) << cuda.err;
  EXPECT_TRUE(e2e::contains_nocase(cuda.err, "cuda")) << cuda.err;
  // The same through the config key.
  const auto key = e2e::trove({"run", "-c", dir.file("p.yaml"), "-q", "--set", "device=cuda"});
  EXPECT_EQ(key.exit_code, exit_runtime_error) << key.err;
  // auto and cpu run on the CPU backend.
  for (const char* device : {"auto", "cpu"}) {
    const auto run = e2e::trove({"run", "-c", dir.file("p.yaml"), "-q", "--device", device});
    EXPECT_EQ(run.exit_code, exit_ok) << device << "\n" << run.err;
  }
}

TEST(E2eCli, MissingInputFileIsARuntimeError) {
  e2e::temp_dir dir;
  const std::string input = dir.file("does_not_exist.jsonl");
  std::string yaml = replace(valid_yaml, "path: events.jsonl", "path: \"" + input + "\"");
  yaml = replace(yaml, "path: out.jsonl", "path: \"" + dir.file("out.jsonl") + "\"");
  yaml = replace(yaml, "path: bad.jsonl", "path: \"" + dir.file("bad.jsonl") + "\"");
  e2e::write_file(dir.file("p.yaml"), yaml);
  const auto result = e2e::trove({"run", "-c", dir.file("p.yaml"), "-q"});
  EXPECT_EQ(result.exit_code, exit_runtime_error) << result.err;
  EXPECT_NE(result.err.find(input), std::string::npos) << result.err;
}

TEST(E2eCli, UnwritableSinkIsARuntimeError) {
  e2e::temp_dir dir;
  const std::string input = dir.file("events.jsonl");
  e2e::write_file(input, R"({"event_id":1,"user_id":1,"type":"a","ts":1700000000000,"amount":1})");
  const std::string sink = dir.file("no_such_dir/out.jsonl");
  std::string yaml = replace(valid_yaml, "path: events.jsonl", "path: \"" + input + "\"");
  yaml = replace(yaml, "path: out.jsonl", "path: \"" + sink + "\"");
  yaml = replace(yaml, "path: bad.jsonl", "path: \"" + dir.file("bad.jsonl") + "\"");
  e2e::write_file(dir.file("p.yaml"), yaml);
  const auto result = e2e::trove({"run", "-c", dir.file("p.yaml"), "-q"});
  EXPECT_EQ(result.exit_code, exit_runtime_error) << result.err;
  EXPECT_NE(result.err.find(sink), std::string::npos) << result.err;
}

TEST(E2eCli, GenIsDeterministic) {
  e2e::temp_dir dir;
  const std::vector<std::string> args = {"gen",    "-n",     "2000",         "--keys", "50",
                                         "--zipf", "1.1",    "--duplicates", "0.1",    "--disorder",
                                         "5s",     "--span", "10m",          "--seed"};
  auto with_seed = [&](const std::string& seed, const std::string& out) {
    std::vector<std::string> a = args;
    a.push_back(seed);
    a.emplace_back("-o");
    a.push_back(out);
    return e2e::trove(a);
  };
  ASSERT_EQ(with_seed("3", dir.file("a.jsonl")).exit_code, exit_ok);
  ASSERT_EQ(with_seed("3", dir.file("b.jsonl")).exit_code, exit_ok);
  ASSERT_EQ(with_seed("4", dir.file("c.jsonl")).exit_code, exit_ok);
  const std::string a = e2e::read_file(dir.file("a.jsonl"));
  EXPECT_EQ(e2e::read_json_lines(dir.file("a.jsonl")).size(), 2000u);
  EXPECT_EQ(a, e2e::read_file(dir.file("b.jsonl")));
  EXPECT_NE(a, e2e::read_file(dir.file("c.jsonl")));
  // To stdout without -o.
  std::vector<std::string> to_stdout = args;
  to_stdout.emplace_back("3");
  EXPECT_EQ(e2e::trove(to_stdout).out, a);
  // A bad duration is a usage error.
  EXPECT_EQ(e2e::trove({"gen", "-n", "10", "--span", "forever"}).exit_code, exit_config_error);
}

}  // namespace
