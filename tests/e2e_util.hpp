#pragma once
/// @file e2e_util.hpp
/// @brief Helpers of the end-to-end tests (tests/host_e2e_*.cpp), which run the real `trove`
/// binary (TROVE_BINARY) as a child process: spawning a command with its output captured,
/// temporary directories, reading JSON lines (simdjson) and CSV, and the stats JSON file.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <simdjson.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

extern char** environ;

namespace trove::test::e2e {

/// @brief What a finished child process left behind.
struct command_result {
  int exit_code = -1;  ///< exit status; 128 + signal number when killed by a signal
  std::string out;     ///< everything written to stdout
  std::string err;     ///< everything written to stderr
};

/// @brief Reads a whole file as bytes ("" when it does not exist).
inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

/// @brief Writes bytes to a file, replacing it.
inline void write_file(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) ADD_FAILURE() << "cannot write " << path;
}

/// @brief Splits text into lines at '\n' (no empty last line for a final newline).
inline std::vector<std::string> split_lines(std::string_view text) {
  std::vector<std::string> lines;
  std::size_t begin = 0;
  while (begin < text.size()) {
    std::size_t end = text.find('\n', begin);
    if (end == std::string_view::npos) end = text.size();
    lines.emplace_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  return lines;
}

/// @brief A fresh directory under testing::TempDir(), removed with everything in it at the end
/// of its scope (kept when TROVE_E2E_KEEP is set, for debugging a failure).
class temp_dir {
 public:
  temp_dir() {
    std::string pattern = testing::TempDir();
    if (pattern.empty() || pattern.back() != '/') pattern += '/';
    pattern += "trove_e2e_XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp(" << pattern << "): " << std::strerror(errno);
    }
    path_ = pattern;
  }
  ~temp_dir() {
    if (std::getenv("TROVE_E2E_KEEP") != nullptr) return;
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  /// @brief The directory.
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  /// @brief Absolute path of a file inside the directory, as a string for configs and args.
  [[nodiscard]] std::string file(std::string_view name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

/// @brief Runs argv[0] with the given arguments, stdin fed from stdin_text (or /dev/null), and
/// stdout/stderr captured through temporary files (no pipes: a chatty child cannot deadlock).
/// With interrupt_after_ms >= 0 the child gets SIGINT after that long (and SIGKILL if it is still
/// running kill_after_ms later, so that a hung child fails the test instead of hanging it).
inline command_result run_command(const std::vector<std::string>& args,
                                  const std::optional<std::string>& stdin_text = std::nullopt,
                                  int interrupt_after_ms = -1, int kill_after_ms = 60'000) {
  command_result result;
  temp_dir io;
  const std::string in_path = stdin_text ? io.file("stdin") : std::string("/dev/null");
  if (stdin_text) write_file(in_path, *stdin_text);
  const std::string out_path = io.file("stdout");
  const std::string err_path = io.file("stderr");

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, in_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  // The child inherits this environment. OpenMP threads that busy-wait between parallel regions
  // (libgomp's default) make runs of many small batches up to 50x slower on a loaded 2-core
  // machine, where they compete with the pipeline's own threads; unless the caller chose a wait
  // policy, the child gets a passive one (results do not depend on it, only the run time).
  std::vector<char*> env;
  bool has_wait_policy = false;
  for (char** var = environ; *var != nullptr; ++var) {
    has_wait_policy = has_wait_policy || std::strncmp(*var, "OMP_WAIT_POLICY=", 16) == 0;
    env.push_back(*var);
  }
  std::string passive = "OMP_WAIT_POLICY=passive";
  if (!has_wait_policy) env.push_back(passive.data());
  env.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    ADD_FAILURE() << "posix_spawn(" << args[0] << "): " << std::strerror(spawned);
    return result;
  }
  int status = 0;
  if (interrupt_after_ms >= 0) {
    const auto start = std::chrono::steady_clock::now();
    bool interrupted = false;
    bool killed = false;
    for (;;) {
      const pid_t done = ::waitpid(pid, &status, WNOHANG);
      if (done == pid) break;
      if (done < 0 && errno != EINTR) {
        ADD_FAILURE() << "waitpid: " << std::strerror(errno);
        return result;
      }
      const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now() - start)
                               .count();
      if (!interrupted && elapsed >= interrupt_after_ms) {
        ::kill(pid, SIGINT);
        interrupted = true;
      } else if (!killed && elapsed >= interrupt_after_ms + kill_after_ms) {
        killed = true;
        ADD_FAILURE() << args[0] << " still running " << kill_after_ms
                      << " ms after SIGINT: killed";
        ::kill(pid, SIGKILL);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  } else {
    while (::waitpid(pid, &status, 0) < 0) {
      if (errno != EINTR) {
        ADD_FAILURE() << "waitpid: " << std::strerror(errno);
        return result;
      }
    }
  }
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.exit_code = 128 + WTERMSIG(status);
  }
  result.out = read_file(out_path);
  result.err = read_file(err_path);
  return result;
}

/// @brief Starts `trove args...` (output discarded) and SIGKILLs it `kill_after_ms` after
/// `armed()` first returns true (polled every 5 ms; null: at once), the way a crash or an OOM kill
/// ends a process; returns its exit code (128 + 9 when the kill landed).
inline int run_trove_and_kill(std::vector<std::string> args, int kill_after_ms,
                              const std::function<bool()>& armed = {}) {
  args.insert(args.begin(), TROVE_BINARY);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    ADD_FAILURE() << "posix_spawn(" << args[0] << "): " << std::strerror(spawned);
    return -1;
  }
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (armed && !armed() && std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, &status, WNOHANG) == pid) {  // ended before the trigger
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(kill_after_ms));
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/// @brief Runs the trove binary under test with the given arguments.
inline command_result trove(std::vector<std::string> args,
                            const std::optional<std::string>& stdin_text = std::nullopt,
                            int interrupt_after_ms = -1) {
  args.insert(args.begin(), TROVE_BINARY);
  return run_command(args, stdin_text, interrupt_after_ms);
}

/// @brief A JSON scalar as read back from output: null, bool, integer, float or string.
using json_scalar =
    std::variant<std::monostate, bool, std::int64_t, std::uint64_t, double, std::string>;

/// @brief Whether the value is JSON null.
inline bool is_null(const json_scalar& value) {
  return std::holds_alternative<std::monostate>(value);
}

/// @brief A numeric value as double (NaN for non-numbers).
inline double as_double(const json_scalar& value) {
  if (const auto* v = std::get_if<std::int64_t>(&value)) return static_cast<double>(*v);
  if (const auto* v = std::get_if<std::uint64_t>(&value)) return static_cast<double>(*v);
  if (const auto* v = std::get_if<double>(&value)) return *v;
  return std::numeric_limits<double>::quiet_NaN();
}

/// @brief An integer value as int64 (a failure and 0 for anything else).
inline std::int64_t as_i64(const json_scalar& value) {
  if (const auto* v = std::get_if<std::int64_t>(&value)) return *v;
  if (const auto* v = std::get_if<std::uint64_t>(&value)) return static_cast<std::int64_t>(*v);
  ADD_FAILURE() << "not an integer";
  return 0;
}

/// @brief A string value ("" and a failure for anything else).
inline std::string as_string(const json_scalar& value) {
  if (const auto* v = std::get_if<std::string>(&value)) return *v;
  ADD_FAILURE() << "not a string";
  return {};
}

/// @brief One JSON object of a JSON-lines file: its keys in order, and its flat values (nested
/// arrays/objects are kept as their JSON text).
struct json_row {
  std::vector<std::string> keys;
  std::map<std::string, json_scalar> values;

  /// @brief The value of a key (null, with a test failure, when it is absent).
  [[nodiscard]] const json_scalar& at(const std::string& key) const {
    static const json_scalar null_value;
    const auto it = values.find(key);
    if (it == values.end()) {
      ADD_FAILURE() << "missing key '" << key << "'";
      return null_value;
    }
    return it->second;
  }
  [[nodiscard]] bool has(const std::string& key) const { return values.count(key) != 0; }
};

/// @brief Parses one JSON object; nullopt (and a test failure naming where) when it is not one.
inline std::optional<json_row> parse_json_object(simdjson::dom::parser& parser,
                                                 std::string_view text,
                                                 const std::string& where = "") {
  simdjson::dom::element root;
  if (const auto error = parser.parse(text.data(), text.size()).get(root)) {
    ADD_FAILURE() << where << ": invalid JSON (" << simdjson::error_message(error)
                  << "): " << text.substr(0, 200);
    return std::nullopt;
  }
  simdjson::dom::object object;
  if (root.get_object().get(object) != simdjson::SUCCESS) {
    ADD_FAILURE() << where << ": not a JSON object: " << text.substr(0, 200);
    return std::nullopt;
  }
  json_row row;
  for (const auto member : object) {
    json_scalar value;
    switch (member.value.type()) {
      case simdjson::dom::element_type::NULL_VALUE:
        break;
      case simdjson::dom::element_type::BOOL:
        value = member.value.get_bool().value_unsafe();
        break;
      case simdjson::dom::element_type::INT64:
        value = member.value.get_int64().value_unsafe();
        break;
      case simdjson::dom::element_type::UINT64:
        value = member.value.get_uint64().value_unsafe();
        break;
      case simdjson::dom::element_type::DOUBLE:
        value = member.value.get_double().value_unsafe();
        break;
      case simdjson::dom::element_type::STRING:
        value = std::string(member.value.get_string().value_unsafe());
        break;
      default:
        value = simdjson::minify(member.value);
        break;
    }
    row.keys.emplace_back(member.key);
    row.values[std::string(member.key)] = std::move(value);
  }
  return row;
}

/// @brief Reads a JSON-lines file: one object per non-empty line (a failure per bad line).
inline std::vector<json_row> read_json_lines(const std::filesystem::path& path) {
  std::vector<json_row> rows;
  simdjson::dom::parser parser;
  std::size_t number = 0;
  for (const std::string& line : split_lines(read_file(path))) {
    ++number;
    if (line.empty()) continue;
    if (auto row = parse_json_object(parser, line, path.string() + ":" + std::to_string(number))) {
      rows.push_back(std::move(*row));
    }
  }
  return rows;
}

/// @brief Reads the --stats-json file of a run (an empty row, with a failure, when unreadable).
inline json_row read_stats(const std::filesystem::path& path) {
  simdjson::dom::parser parser;
  const std::string text = read_file(path);
  auto row = parse_json_object(parser, text, path.string());
  return row ? *row : json_row{};
}

/// @brief One CSV field: its text and whether it was quoted ("" quoted is an empty string, an
/// empty unquoted field is null in trove's CSV).
struct csv_field {
  std::string text;
  bool quoted = false;
};

/// @brief Splits one CSV line per RFC 4180 (quoted fields, "" inside quotes is one quote).
inline std::vector<csv_field> parse_csv_line(std::string_view line) {
  std::vector<csv_field> fields;
  csv_field field;
  std::size_t pos = 0;
  for (;;) {
    field = {};
    if (pos < line.size() && line[pos] == '"') {
      field.quoted = true;
      ++pos;
      while (pos < line.size()) {
        if (line[pos] == '"') {
          if (pos + 1 < line.size() && line[pos + 1] == '"') {
            field.text += '"';
            pos += 2;
            continue;
          }
          ++pos;
          break;
        }
        field.text += line[pos++];
      }
    }
    while (pos < line.size() && line[pos] != ',') field.text += line[pos++];
    fields.push_back(std::move(field));
    if (pos >= line.size()) break;
    ++pos;  // the comma
  }
  return fields;
}

/// @brief Writes a JSON string literal for test input (escapes quotes, backslashes, controls).
inline std::string json_quote(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\u%04x", static_cast<unsigned>(c));
      out += buffer;
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

/// @brief Whether the text contains the needle, ignoring ASCII letter case.
inline bool contains_nocase(std::string_view text, std::string_view needle) {
  auto lower = [](std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  };
  return lower(text).find(lower(needle)) != std::string::npos;
}

/// @brief Sets (or, with nullptr, unsets) an environment variable for a scope; the children a test
/// spawns meanwhile inherit it. Restores the previous value, so a variable the whole run was
/// started with (CI's TROVE_CPU_STRATEGY=atomic pass) holds again afterwards.
class scoped_env {
 public:
  scoped_env(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~scoped_env() {
    if (old_) {
      setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }
  scoped_env(const scoped_env&) = delete;
  scoped_env& operator=(const scoped_env&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

/// @brief Whether the trove children of this test run use the CPU backend's atomic strategy
/// (TROVE_CPU_STRATEGY=atomic, the second CI pass of the end-to-end tests): float sums may then
/// differ from a reference that adds in arrival order in their last bits.
inline bool atomic_cpu_strategy() {
  const char* value = std::getenv("TROVE_CPU_STRATEGY");
  return value != nullptr && std::string_view(value) == "atomic";
}

/// @brief The relative tolerance of float sums against an arrival-order reference: `requested`,
/// at least 1e-9 under the atomic strategy (the bound the README states for atomics).
inline double float_sum_tolerance(double requested = 0) {
  return atomic_cpu_strategy() ? std::max(requested, 1e-9) : requested;
}

}  // namespace trove::test::e2e
