#pragma once
/// @file atomics.hpp
/// @brief Single-source atomic helpers over cuda::atomic_ref (libcu++ runs on the host too).
/// Device-scope atomics: on the CPU backend "device" is the whole process.

#include <cstdint>
#include <cuda/atomic>

#include "kernels/macros.hpp"

namespace trove::kernels::detail {

template <class T>
using atomic_ref = cuda::atomic_ref<T, cuda::thread_scope_device>;

template <class T>
TROVE_HD TROVE_FORCEINLINE T load_acquire(T& obj) noexcept {
  return atomic_ref<T>(obj).load(cuda::std::memory_order_acquire);
}
template <class T>
TROVE_HD TROVE_FORCEINLINE T load_relaxed(T& obj) noexcept {
  return atomic_ref<T>(obj).load(cuda::std::memory_order_relaxed);
}
template <class T>
TROVE_HD TROVE_FORCEINLINE void store_release(T& obj, T value) noexcept {
  atomic_ref<T>(obj).store(value, cuda::std::memory_order_release);
}
template <class T>
TROVE_HD TROVE_FORCEINLINE void store_relaxed(T& obj, T value) noexcept {
  atomic_ref<T>(obj).store(value, cuda::std::memory_order_relaxed);
}
/// @brief Compare-and-swap; on failure `expected` holds the current value.
template <class T>
TROVE_HD TROVE_FORCEINLINE bool cas(T& obj, T& expected, T desired) noexcept {
  return atomic_ref<T>(obj).compare_exchange_strong(
      expected, desired, cuda::std::memory_order_acq_rel, cuda::std::memory_order_acquire);
}
template <class T>
TROVE_HD TROVE_FORCEINLINE T fetch_add(T& obj, T value) noexcept {
  return atomic_ref<T>(obj).fetch_add(value, cuda::std::memory_order_relaxed);
}

template <class T>
TROVE_HD TROVE_FORCEINLINE T fetch_or(T& obj, T value) noexcept {
  return atomic_ref<T>(obj).fetch_or(value, cuda::std::memory_order_relaxed);
}

/// @brief Atomically obj = max(obj, value) for any totally ordered T (CAS loop; reads first so
/// the common case, no improvement, costs one plain load and no write).
template <class T>
TROVE_HD TROVE_FORCEINLINE void fetch_max(T& obj, T value) noexcept {
  T current = load_relaxed(obj);
  while (current < value && !atomic_ref<T>(obj).compare_exchange_weak(
                                current, value, cuda::std::memory_order_relaxed)) {
  }
}
/// @brief Atomically obj = min(obj, value); see fetch_max.
template <class T>
TROVE_HD TROVE_FORCEINLINE void fetch_min(T& obj, T value) noexcept {
  T current = load_relaxed(obj);
  while (value < current && !atomic_ref<T>(obj).compare_exchange_weak(
                                current, value, cuda::std::memory_order_relaxed)) {
  }
}

}  // namespace trove::kernels::detail
