#include "kernels/error.hpp"

#include <string>

namespace trove::detail {

void throw_expects(const char* cond, const std::string& msg, const char* file, int line) {
  throw logic_error(msg + " (expected " + cond + " at " + file + ":" + std::to_string(line) + ")");
}

void throw_cuda(const char* call, int code, const char* name, const char* what, const char* file,
                int line) {
  throw cuda_error(std::string("CUDA call ") + call + " failed: " + name + " (" +
                   std::to_string(code) + "): " + what + " at " + file + ":" +
                   std::to_string(line));
}

}  // namespace trove::detail
