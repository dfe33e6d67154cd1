// Shared start of the CUDA CTest programs: decide whether this machine can run them at all.
#pragma once
#include <cuda_runtime.h>

#include <cstdio>
#include <vector>

// CTest reports a test as skipped when it exits with this code (SKIP_RETURN_CODE in
// tests/CMakeLists.txt, which passes the same number).
#ifndef VIMDENSE_SKIP_CODE
#define VIMDENSE_SKIP_CODE 77
#endif

namespace cuda_test {

enum class DeviceState { usable, absent, broken };

// `absent` (skip): no driver, a driver too old for this runtime, or no device. `broken` (fail): a
// device is reported but the runtime cannot use it, which on a GPU machine is a real fault.
inline DeviceState probe_device(const char* program) {
    int devices = 0;
    cudaError_t err = cudaGetDeviceCount(&devices);
    if (err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver || (err == cudaSuccess && devices == 0)) {
        std::printf("SKIPPED: %s needs a CUDA device; none is usable here (cudaGetDeviceCount: %s, %d device(s))\n",
                    program, err == cudaSuccess ? "no error" : cudaGetErrorString(err), devices);
        return DeviceState::absent;
    }
    if (err == cudaSuccess) err = cudaSetDevice(0);
    if (err == cudaSuccess) err = cudaFree(nullptr);   // creates the context now, not in the first test
    if (err != cudaSuccess) {
        std::printf("FAILED: %s: the CUDA runtime cannot use device 0: %s (%s)\n", program, cudaGetErrorName(err),
                    cudaGetErrorString(err));
        return DeviceState::broken;
    }
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
        std::printf("%s on device 0: %s (sm_%d%d), %d device(s)\n", program, prop.name, prop.major, prop.minor,
                    devices);
    return DeviceState::usable;
}

// A device array that frees itself; `p` stays null where cudaMalloc failed (callers check the kernels'
// return codes, which report null pointers).
template <class T>
struct DeviceBuffer {
    T* p = nullptr;
    size_t n = 0;
    explicit DeviceBuffer(size_t count) : n(count) {
        if (count && cudaMalloc(reinterpret_cast<void**>(&p), count * sizeof(T)) != cudaSuccess) p = nullptr;
    }
    explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) {
        if (p) cudaMemcpy(p, host.data(), n * sizeof(T), cudaMemcpyHostToDevice);
    }
    ~DeviceBuffer() { if (p) cudaFree(p); }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    std::vector<T> host() const {
        std::vector<T> v(n);
        if (p) cudaMemcpy(v.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost);
        return v;
    }
    // Null for an empty buffer, as the kernels take absent optional inputs (D, z, delta_bias).
    T* optional() { return n ? p : nullptr; }
};

}  // namespace cuda_test
