#include "io/synthetic.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <string>

namespace trove::io {

namespace {

constexpr std::uint32_t max_cents = 50'000;           // amounts 0.01 .. 500.00
constexpr std::size_t precomputed_type_names = 4096;  // beyond, names are formatted per event
constexpr const char* base_type_names[] = {"click", "view", "purchase", "add_to_cart"};

/// Uniform integer in [0, n) from one word (Lemire's multiply-shift; bias below n / 2^64).
inline std::uint64_t bounded(std::uint64_t word, std::uint64_t n) noexcept {
  return static_cast<std::uint64_t>((static_cast<unsigned __int128>(word) * n) >> 64);
}

template <typename Int>
inline void append_integer(std::string& out, Int value) {
  char buffer[24];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  out.append(buffer, result.ptr);
}

[[noreturn]] void invalid_option(const std::string& what) {
  throw std::invalid_argument("synthetic source: " + what);
}

void validate(const synthetic_options& options) {
  if (!(options.rate >= 0) || !std::isfinite(options.rate)) {
    invalid_option("rate must be a finite number of events per second >= 0 (got " +
                   std::to_string(options.rate) + ")");
  }
  if (options.keys == 0) invalid_option("keys must be at least 1");
  if (!(options.zipf >= 0) || !std::isfinite(options.zipf)) {
    invalid_option("zipf must be a finite exponent >= 0 (got " + std::to_string(options.zipf) +
                   ")");
  }
  if (!(options.duplicate_ratio >= 0 && options.duplicate_ratio <= 1)) {
    invalid_option("duplicate_ratio must be from 0 to 1 (got " +
                   std::to_string(options.duplicate_ratio) + ")");
  }
  if (options.disorder_ms < 0) invalid_option("disorder must not be negative");
  if (options.types == 0) invalid_option("types must be at least 1");
  if (options.span_ms <= 0) invalid_option("span must be greater than 0");
}

// Which batch column receives which W1 field (-1: none); the rest are nulled.
struct column_map {
  int event_id = -1;
  int user_id = -1;
  int type = -1;
  int ts = -1;
  int amount = -1;
  std::vector<std::size_t> nulls;
};

bool is_one_of(field_type type, std::initializer_list<field_type> allowed) {
  return std::find(allowed.begin(), allowed.end(), type) != allowed.end();
}

column_map map_columns(const schema& target) {
  column_map map;
  for (std::size_t column_idx = 0; column_idx < target.fields.size(); ++column_idx) {
    const field& f = target.fields[column_idx];
    const int index = static_cast<int>(column_idx);
    auto expect = [&](std::initializer_list<field_type> allowed, const char* expected) {
      if (!is_one_of(f.type, allowed)) {
        invalid_option("field '" + f.name + "' is generated as " + expected + ", but the schema " +
                       "declares it " + to_string(f.type));
      }
    };
    if (f.name == "event_id") {
      expect({field_type::u64, field_type::i64}, "u64 (or i64)");
      map.event_id = index;
    } else if (f.name == "user_id") {
      expect({field_type::u64, field_type::i64}, "u64 (or i64)");
      map.user_id = index;
    } else if (f.name == "type") {
      expect({field_type::string}, "string");
      map.type = index;
    } else if (f.name == "ts") {
      expect({field_type::timestamp_ms, field_type::i64, field_type::u64},
             "timestamp_ms (or i64, u64)");
      map.ts = index;
    } else if (f.name == "amount") {
      expect({field_type::f64}, "f64");
      map.amount = index;
    } else {
      map.nulls.push_back(column_idx);
    }
  }
  return map;
}

}  // namespace

// ---- zipf_sampler
// --------------------------------------------------------------------------------

namespace detail {

namespace {

// log1p(x)/x and expm1(x)/x, accurate near 0 (where the exponent is close to 1).
double helper1(double x) noexcept {
  return std::abs(x) > 1e-8 ? std::log1p(x) / x : 1 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
}
double helper2(double x) noexcept {
  return std::abs(x) > 1e-8 ? std::expm1(x) / x : 1 + x * 0.5 * (1 + x / 3.0 * (1 + 0.25 * x));
}

}  // namespace

zipf_sampler::zipf_sampler(std::uint64_t n, double exponent, method how)
    : n_(n), exponent_(exponent), uniform_(exponent == 0) {
  if (n == 0) throw std::invalid_argument("zipf_sampler: n must be at least 1");
  if (!(exponent >= 0) || !std::isfinite(exponent)) {
    throw std::invalid_argument("zipf_sampler: exponent must be finite and >= 0");
  }
  if (uniform_) return;
  if (how == method::alias && n > alias_max_keys) {
    throw std::invalid_argument("zipf_sampler: an alias table holds at most 2^20 ranks");
  }
  const bool alias = how == method::alias || (how == method::automatic && n <= alias_max_keys);
  if (!alias) {
    // Rejection-inversion (Hörmann & Derflinger 1996, as in Apache Commons RNG), on ranks 1..n.
    h_integral_x1_ = h_integral(1.5) - 1;
    h_integral_n_ = h_integral(static_cast<double>(n) + 0.5);
    s_ = 2 - h_integral_inverse(h_integral(2.5) - h(2));
    return;
  }

  // Vose's alias method. Scaled probabilities q = n * p: slots below 1 are topped up by one
  // slot above 1, so each slot holds at most two ranks and a sample needs one table read.
  const std::size_t size = static_cast<std::size_t>(n);
  std::vector<double> scaled(size);
  double total = 0;
  for (std::size_t rank = 0; rank < size; ++rank) {
    scaled[rank] = std::pow(static_cast<double>(rank + 1), -exponent);
    total += scaled[rank];
  }
  const double scale = static_cast<double>(n) / total;
  std::vector<std::uint32_t> small;
  std::vector<std::uint32_t> large;
  for (std::size_t rank = 0; rank < size; ++rank) {
    scaled[rank] *= scale;
    (scaled[rank] < 1 ? small : large).push_back(static_cast<std::uint32_t>(rank));
  }
  alias_.resize(size);
  while (!small.empty() && !large.empty()) {
    const std::uint32_t low = small.back();
    small.pop_back();
    const std::uint32_t high = large.back();
    const double threshold = std::ldexp(scaled[low], 32);
    alias_[low] = {static_cast<std::uint32_t>(std::min(threshold, 4294967295.0)), high};
    scaled[high] -= 1 - scaled[low];
    if (scaled[high] < 1) {
      large.pop_back();
      small.push_back(high);
    }
  }
  // What is left is 1 up to rounding: such a slot always keeps its own rank.
  for (std::uint32_t rank : large) alias_[rank] = {0, rank};
  for (std::uint32_t rank : small) alias_[rank] = {0, rank};
}

double zipf_sampler::h(double x) const noexcept {
  return std::exp(-exponent_ * std::log(x));
}

// ∫ h = (x^(1-s) - 1) / (1-s), written to stay exact at s = 1 (where it is log x).
double zipf_sampler::h_integral(double x) const noexcept {
  const double log_x = std::log(x);
  return helper2((1 - exponent_) * log_x) * log_x;
}

double zipf_sampler::h_integral_inverse(double x) const noexcept {
  double t = x * (1 - exponent_);
  if (t < -1) t = -1;  // rounding can push it just past the pole
  return std::exp(helper1(t) * x);
}

std::uint64_t zipf_sampler::sample(random_stream& rng) const noexcept {
  if (uniform_) return bounded(rng.next(), n_);
  if (!alias_.empty()) {
    // One word serves both draws: its product with n splits into the slot (high half) and a
    // uniform fraction (low half) whose top 32 bits are the coin.
    const unsigned __int128 product = static_cast<unsigned __int128>(rng.next()) * n_;
    const alias_slot slot = alias_[static_cast<std::size_t>(product >> 64)];
    const auto coin = static_cast<std::uint32_t>(static_cast<std::uint64_t>(product) >> 32);
    return coin < slot.threshold ? static_cast<std::uint64_t>(product >> 64) : slot.alias;
  }
  const double n = static_cast<double>(n_);
  for (;;) {
    const double u = h_integral_n_ + rng.next_double() * (h_integral_x1_ - h_integral_n_);
    const double x = h_integral_inverse(u);
    double k = std::floor(x + 0.5);
    if (k < 1) {
      k = 1;
    } else if (k > n) {
      k = n;
    }
    if (k - x <= s_ || u >= h_integral(k + 0.5) - h(k)) {
      // n as a double may round up above 2^53: clamp back into [0, n).
      return std::min(static_cast<std::uint64_t>(k) - 1, n_ - 1);
    }
  }
}

}  // namespace detail

// ---- synthetic_generator
// -------------------------------------------------------------------------

synthetic_generator::synthetic_generator(const synthetic_options& options)
    : options_((validate(options), options)),
      users_(options.keys, options.zipf),
      seed_key_(detail::mix64(options.seed ^ 0x7472'6F76'6557'3121ull)),
      duplicate_threshold_(0),
      always_duplicate_(options.duplicate_ratio >= 1),
      ring_(ring_capacity) {
  const double threshold = std::ldexp(options.duplicate_ratio, 64);
  if (threshold >= 18446744073709551616.0) {
    always_duplicate_ = true;
  } else {
    duplicate_threshold_ = static_cast<std::uint64_t>(threshold);
  }
  const std::size_t names = std::min<std::size_t>(options.types, precomputed_type_names);
  type_names_.reserve(names);
  for (std::size_t type_idx = 0; type_idx < names; ++type_idx) {
    type_names_.push_back(type_name(static_cast<std::uint32_t>(type_idx)));
  }
}

io::schema synthetic_generator::w1_schema() {
  return schema{{{"event_id", field_type::u64, true},
                 {"user_id", field_type::u64, true},
                 {"type", field_type::string, true},
                 {"ts", field_type::timestamp_ms, true},
                 {"amount", field_type::f64, true}}};
}

std::string synthetic_generator::type_name(std::uint32_t type_index) {
  if (type_index < std::size(base_type_names)) return base_type_names[type_index];
  return "type_" + std::to_string(type_index);
}

std::string_view synthetic_generator::name_of(std::uint32_t type_index,
                                              char (&buffer)[24]) const noexcept {
  if (type_index < type_names_.size()) return type_names_[type_index];
  constexpr std::string_view prefix = "type_";
  prefix.copy(buffer, prefix.size());
  const auto result = std::to_chars(buffer + prefix.size(), buffer + sizeof buffer, type_index);
  return {buffer, static_cast<std::size_t>(result.ptr - buffer)};
}

std::int64_t synthetic_generator::scheduled_ns(std::uint64_t event_index) const noexcept {
  if (options_.rate <= 0) return 0;
  return static_cast<std::int64_t>(static_cast<double>(event_index) * 1e9 / options_.rate);
}

std::int64_t synthetic_generator::base_time_ms(std::uint64_t event_index) const noexcept {
  if (options_.events != 0) {
    // 128-bit product: index * span overflows 64 bits for long spans of big runs.
    const auto offset = static_cast<unsigned __int128>(event_index) *
                        static_cast<std::uint64_t>(options_.span_ms) / options_.events;
    return options_.start_time_ms + static_cast<std::int64_t>(offset);
  }
  if (options_.rate > 0) {
    return options_.start_time_ms + static_cast<std::int64_t>(std::floor(
                                        static_cast<double>(event_index) * 1000.0 / options_.rate));
  }
  return options_.start_time_ms + static_cast<std::int64_t>(event_index / 1000);
}

bool synthetic_generator::generate(event& out) const noexcept {
  // Counter-based: the event's random words come from its own stream, so nothing but its index
  // (and the ring, for a re-send) decides it, however the run is split into batches.
  detail::random_stream rng{detail::mix64(seed_key_ + next_ * 0xD1B54A32D192ED03ull)};
  const std::uint64_t first = rng.next();
  if (ring_size_ > 0 && (always_duplicate_ || first < duplicate_threshold_)) {
    out = ring_[static_cast<std::size_t>(bounded(rng.next(), ring_size_))];
    return false;
  }
  out.event_id = next_;
  out.user_id = users_.sample(rng);
  const std::uint64_t word = rng.next();
  out.type = static_cast<std::uint32_t>(((word >> 32) * options_.types) >> 32);
  out.cents = 1 + static_cast<std::uint32_t>(((word & 0xFFFF'FFFFull) * max_cents) >> 32);
  out.ts = base_time_ms(next_);
  if (options_.disorder_ms > 0) {
    out.ts -= static_cast<std::int64_t>(
        bounded(rng.next(), static_cast<std::uint64_t>(options_.disorder_ms) + 1));
  }
  return true;
}

void synthetic_generator::advance(const event& e, bool original) noexcept {
  if (original) {
    ring_[ring_next_] = e;
    ring_next_ = (ring_next_ + 1) % ring_capacity;
    ring_size_ = std::min(ring_size_ + 1, ring_capacity);
  }
  ++next_;
}

std::uint64_t synthetic_generator::remaining(std::uint64_t wanted) const noexcept {
  if (options_.events == 0) return wanted;
  return next_ >= options_.events ? 0 : std::min(wanted, options_.events - next_);
}

void synthetic_generator::skip(std::uint64_t count) {
  // Re-sends depend on the ring, so skipping has to draw the events (fast: no output).
  for (std::uint64_t left = remaining(count); left > 0; --left) {
    event e;
    const bool original = generate(e);
    advance(e, original);
  }
}

std::size_t synthetic_generator::fill(host_batch& batch, std::size_t max_rows) {
  const column_map map = map_columns(batch.schema());
  const std::size_t rows =
      static_cast<std::size_t>(remaining(std::min(max_rows, batch.capacity() - batch.size())));
  char name_buffer[24];
  std::size_t added = 0;
  for (; added < rows; ++added) {
    event e;
    const bool original = generate(e);
    if (map.event_id >= 0) batch.set_u64(static_cast<std::size_t>(map.event_id), e.event_id);
    if (map.user_id >= 0) batch.set_u64(static_cast<std::size_t>(map.user_id), e.user_id);
    if (map.ts >= 0) batch.set_i64(static_cast<std::size_t>(map.ts), e.ts);
    if (map.amount >= 0) batch.set_f64(static_cast<std::size_t>(map.amount), e.cents / 100.0);
    for (std::size_t column : map.nulls) batch.set_null(column);
    if (map.type >= 0 &&
        !batch.set_string(static_cast<std::size_t>(map.type), name_of(e.type, name_buffer))) {
      // String bytes are full: the event stays the next one (nothing advanced), so the sequence
      // continues unchanged in the caller's next batch.
      batch.abort_row();
      if (batch.size() == 0) {
        throw std::length_error("synthetic source: a batch's string bytes (" +
                                std::to_string(batch.string_capacity()) +
                                ") cannot hold one event type name");
      }
      break;
    }
    batch.commit_row({0, static_cast<std::int64_t>(next_)});
    advance(e, original);
  }
  return added;
}

std::size_t synthetic_generator::write_json(std::size_t max_rows, std::string& out) {
  const auto rows = static_cast<std::size_t>(remaining(max_rows));
  char name_buffer[24];
  for (std::size_t row = 0; row < rows; ++row) {
    event e;
    const bool original = generate(e);
    out.append(R"({"event_id":)");
    append_integer(out, e.event_id);
    out.append(R"(,"user_id":)");
    append_integer(out, e.user_id);
    out.append(R"(,"type":")");
    out.append(name_of(e.type, name_buffer));  // names are plain ASCII: nothing to escape
    out.append(R"(","ts":)");
    append_integer(out, e.ts);
    // Whole cents written as decimal text parse back to exactly cents / 100.0 (both are the
    // correctly rounded value of the same decimal number).
    out.append(R"(,"amount":)");
    append_integer(out, e.cents / 100);
    const std::uint32_t fraction = e.cents % 100;
    const char decimals[3] = {'.', static_cast<char>('0' + fraction / 10),
                              static_cast<char>('0' + fraction % 10)};
    out.append(decimals, sizeof decimals);
    out.append("}\n");
    advance(e, original);
  }
  return rows;
}

}  // namespace trove::io
