#pragma once
/// @file macros.hpp
/// @brief Single-source annotations: one definition compiled by g++ (CPU backend) and nvcc (CUDA).

#if defined(__CUDACC__)
/// @brief Marks a function callable from host and device code (empty under a host compiler).
#define TROVE_HD __host__ __device__
/// @brief Marks a function callable only from device code under nvcc (host code under g++).
#define TROVE_DEVICE __device__
#else
#define TROVE_HD
#define TROVE_DEVICE
#endif

/// @brief Forces inlining on both compilers; used on per-row functors in the hot path.
#if defined(__CUDACC__)
#define TROVE_FORCEINLINE __forceinline__
#else
#define TROVE_FORCEINLINE inline __attribute__((always_inline))
#endif
