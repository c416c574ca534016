#pragma once
/// @file error.hpp
/// @brief Exceptions and checking macros shared by every layer of trove.

#include <stdexcept>
#include <string>

namespace trove {

/// @brief A precondition a caller (or a user's configuration) violated; the message says what to
/// do.
class logic_error : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

/// @brief A CUDA runtime call failed; the message names the call, the error, file and line.
class cuda_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// @brief A device table reached its configured memory cap (see README, "Memory caps").
class capacity_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
[[noreturn]] void throw_expects(const char* cond, const std::string& msg, const char* file,
                                int line);
[[noreturn]] void throw_cuda(const char* call, int code, const char* name, const char* what,
                             const char* file, int line);
}  // namespace detail

}  // namespace trove

/// @brief Checks a precondition; throws trove::logic_error with the message when it does not hold.
#define TROVE_EXPECTS(cond, msg)                                                   \
  do {                                                                             \
    if (!(cond)) ::trove::detail::throw_expects(#cond, (msg), __FILE__, __LINE__); \
  } while (0)

/// @brief Runs a CUDA runtime call; throws trove::cuda_error naming the call, file and line on
/// error. Only usable in translation units compiled with the CUDA runtime headers.
#define TROVE_CUDA_TRY(call)                                                                   \
  do {                                                                                         \
    cudaError_t trove_cuda_status_ = (call);                                                   \
    if (trove_cuda_status_ != cudaSuccess) {                                                   \
      ::trove::detail::throw_cuda(#call, static_cast<int>(trove_cuda_status_),                 \
                                  cudaGetErrorName(trove_cuda_status_),                        \
                                  cudaGetErrorString(trove_cuda_status_), __FILE__, __LINE__); \
    }                                                                                          \
  } while (0)
