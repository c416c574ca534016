#!/usr/bin/env bash
# Installs trove's build dependencies from Debian/Ubuntu packages, idempotently: only the packages
# that are missing are installed (as root, or through sudo). The CUDA toolkit is not an apt package
# here; it provides CCCL (Thrust, CUB, libcu++) and nvcc, and is detected under /usr/local/cuda.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev libsimdjson-dev
  librdkafka-dev libxxhash-dev libzstd-dev liblz4-dev zlib1g-dev libcpp-httplib-dev libabsl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  kcat gnuplot-nox python3
  python3-prometheus-client python3-yaml  # tests/tools/parse_prometheus.py, docker/check.sh
)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]})); then
  echo "trove: installing missing packages: ${missing[*]}"
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "trove: need root or sudo to install packages" >&2; exit 1; }
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [[ ! -f /usr/local/cuda/include/cccl/thrust/version.h && ! -f /usr/local/cuda/include/thrust/version.h ]]; then
  echo "trove: CCCL headers (Thrust/CUB/libcu++) not found under /usr/local/cuda." >&2
  echo "       Install the CUDA toolkit (12.x or 13.x) from NVIDIA's repository; it provides CCCL" >&2
  echo "       for both backends and nvcc for the CUDA backend (the CPU backend needs only CCCL)." >&2
  exit 1
fi
