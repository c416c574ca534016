#pragma once
/// @file synthetic.hpp
/// @brief The built-in synthetic event generator (`source: {type: synthetic}`, `trove gen`, the
/// load harness and the benchmarks).
///
/// Event shape "W1" (w1_schema(), in this column order):
///   event_id: u64, user_id: u64, type: string, ts: timestamp_ms, amount: f64
///
/// What the values are:
///   - event_id: the index of the original event (an original's event_id equals its source
///     offset; a re-send carries the event_id of the event it repeats, which is smaller).
///   - user_id: in [0, keys); Zipf(zipf) by rank, user 0 the most frequent; uniform when zipf = 0.
///   - type: uniform over `types` names: "click", "view", "purchase", "add_to_cart", then
///     "type_4", "type_5", ...
///   - amount: uniform over whole cents from 0.01 to 500.00 (so its JSON text is exact).
///   - ts: the event's base time minus a uniform jitter in [0, disorder_ms]. Base time of event i
///     is start + i*span/events for a bounded run; for an unbounded run (events = 0) it is
///     start + i*1000/rate ms when rate > 0 (event time follows the offered real time), else
///     start + i/1000 (1 ms per 1000 events). Base time never decreases.
///   - re-sends: with probability duplicate_ratio an event is a re-send of one of the last 4096
///     originals, picked uniformly: same event_id, user_id, type, ts and amount (its own offset).
/// Every row's source position is (partition 0, offset = event index).
///
/// Determinism: event i is drawn from a counter-based random stream seeded by
/// splitmix64(seed, i), so it depends only on (options, i) and on the ring of earlier originals,
/// which evolves only with i. fill() and write_json() of any batch sizes, in any mix, therefore
/// produce the same event sequence for the same options.
///
/// The generator never sleeps: with rate > 0 the caller paces by scheduled_ns(i) (and measures
/// open-loop latency against it).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "io/batch.hpp"

namespace trove::io {

/// @brief Settings of the synthetic generator (same meaning as the `source` keys of the config).
struct synthetic_options {
  std::uint64_t events = 1'000'000;  ///< events to generate; 0 = unbounded
  double rate = 0;                   ///< offered events per second; 0 = as fast as possible
  std::uint64_t keys = 100'000;      ///< distinct users (>= 1)
  double zipf = 1.1;                 ///< user skew exponent (>= 0); 0 = uniform
  double duplicate_ratio = 0.05;     ///< fraction of events that re-send a recent original (0..1)
  std::int64_t disorder_ms = 0;      ///< event times jittered backwards by up to this much
  std::uint32_t types = 4;           ///< distinct event types (>= 1)
  std::int64_t span_ms = 600'000;    ///< event time covered by a bounded run (> 0)
  std::uint64_t seed = 42;           ///< same seed, same events
  std::int64_t start_time_ms = 1'700'000'000'000;  ///< base time of event 0 (epoch ms)
};

namespace detail {

/// @brief splitmix64's output function: a bijective 64-bit mixer.
constexpr std::uint64_t mix64(std::uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// @brief A splitmix64 stream: each event gets its own, seeded from (seed, event index).
struct random_stream {
  static constexpr std::uint64_t gamma = 0x9E3779B97F4A7C15ull;
  std::uint64_t state = 0;

  /// @brief Next uniform 64-bit word.
  std::uint64_t next() noexcept {
    state += gamma;
    return mix64(state);
  }
  /// @brief Next uniform double in [0, 1) (53 bits).
  double next_double() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
};

/// @brief Samples ranks in [0, n) with P(rank k) ∝ (k+1)^-s; uniform when s = 0.
///
/// Up to alias_max_keys ranks it uses a Walker/Vose alias table (8 bytes per rank, one random
/// word and one table read per sample, ~5 ns while the table stays in cache); above that,
/// Hörmann–Derflinger rejection-inversion (no table, a few log/exp per sample, ~35 ns), which
/// measured faster than alias lookups that miss the cache (2^21 ranks and up).
class zipf_sampler {
 public:
  enum class method { automatic, alias, rejection_inversion };
  static constexpr std::uint64_t alias_max_keys = std::uint64_t{1} << 20;

  /// @brief Precomputes the table (alias) or constants (rejection-inversion) once.
  zipf_sampler(std::uint64_t n, double exponent, method how = method::automatic);

  /// @brief One rank; consumes one word of rng (alias, uniform) or a few (rejection-inversion).
  std::uint64_t sample(random_stream& rng) const noexcept;
  [[nodiscard]] std::uint64_t size() const noexcept { return n_; }
  [[nodiscard]] bool uses_alias_table() const noexcept { return !alias_.empty(); }

 private:
  struct alias_slot {
    std::uint32_t threshold;  ///< keep this slot when the 32-bit coin is below it
    std::uint32_t alias;      ///< else take this one (== own index for a full slot)
  };
  [[nodiscard]] double h(double x) const noexcept;
  [[nodiscard]] double h_integral(double x) const noexcept;
  [[nodiscard]] double h_integral_inverse(double x) const noexcept;

  std::uint64_t n_;
  double exponent_;
  bool uniform_;
  std::vector<alias_slot> alias_;
  double h_integral_x1_ = 0;
  double h_integral_n_ = 0;
  double s_ = 0;
};

}  // namespace detail

/// @brief Deterministic clickstream-like event generator (see the file comment for the values).
class synthetic_generator {
 public:
  /// @brief Validates options (std::invalid_argument naming the option) and precomputes tables.
  explicit synthetic_generator(const synthetic_options& options);

  /// @brief Appends up to max_rows events to batch (fewer at the end of a bounded run, when the
  /// batch is full, or when its string bytes run out); returns the rows added.
  ///
  /// Columns are mapped by field name, so a batch of any schema works: event_id and user_id go
  /// to u64/i64 columns, type to a string column, ts to a timestamp_ms/i64/u64 column, amount to
  /// an f64 column; every other column is null (even if required). A named column of another type
  /// throws std::invalid_argument. Throws std::length_error when an empty batch cannot hold one
  /// type name.
  std::size_t fill(host_batch& batch, std::size_t max_rows);

  /// @brief Appends the next events (up to max_rows) as JSON lines, keys in W1 order, e.g.
  /// `{"event_id":7,"user_id":0,"type":"view","ts":1700000004200,"amount":12.05}`; same sequence
  /// as fill(). Returns the lines added.
  std::size_t write_json(std::size_t max_rows, std::string& out);

  /// @brief Advances past count events without writing them (e.g. to resume at an offset);
  /// the events after it are the same as without the skip.
  void skip(std::uint64_t count);

  /// @brief Whether a bounded run has produced all its events (never for events = 0).
  [[nodiscard]] bool done() const noexcept {
    return options_.events != 0 && next_ >= options_.events;
  }
  /// @brief Events produced so far (= index of the next event).
  [[nodiscard]] std::uint64_t produced() const noexcept { return next_; }
  [[nodiscard]] const synthetic_options& options() const noexcept { return options_; }

  /// @brief Offered time of event i relative to the start, i*1e9/rate ns; 0 when rate = 0.
  [[nodiscard]] std::int64_t scheduled_ns(std::uint64_t event_index) const noexcept;
  /// @brief Base (undisordered) event time of event i in epoch ms; never decreases with i.
  [[nodiscard]] std::int64_t base_time_ms(std::uint64_t event_index) const noexcept;

  /// @brief The W1 schema: event_id u64, user_id u64, type string, ts timestamp_ms, amount f64.
  static io::schema w1_schema();
  /// @brief Name of type index t: "click", "view", "purchase", "add_to_cart", "type_4", ...
  static std::string type_name(std::uint32_t type_index);

 private:
  struct event {
    std::uint64_t event_id;
    std::uint64_t user_id;
    std::int64_t ts;
    std::uint32_t type;
    std::uint32_t cents;
  };
  static constexpr std::size_t ring_capacity = 4096;

  /// Draws event next_ without advancing: true when it is an original (to remember on commit).
  bool generate(event& out) const noexcept;
  void advance(const event& e, bool original) noexcept;
  std::string_view name_of(std::uint32_t type_index, char (&buffer)[24]) const noexcept;
  [[nodiscard]] std::uint64_t remaining(std::uint64_t wanted) const noexcept;

  synthetic_options options_;
  detail::zipf_sampler users_;
  std::uint64_t seed_key_;
  std::uint64_t duplicate_threshold_;  // a re-send when the event's first word is below this
  bool always_duplicate_;
  std::vector<std::string> type_names_;  // the first few thousand names, precomputed
  std::vector<event> ring_;              // last originals; slot = original count % capacity
  std::size_t ring_size_ = 0;
  std::size_t ring_next_ = 0;
  std::uint64_t next_ = 0;
};

}  // namespace trove::io
