// CUDA on the CPU, for tests: the part of the CUDA language and runtime that native/cuda/*.cu and the
// CUDA CTest programs use, so that the same kernel text runs on a machine without a GPU. It shadows
// the toolkit's <cuda_runtime.h> when this folder comes first on the include path, and is
// force-included (-include) into the translated .cu copies, as nvcc includes the real one implicitly.
// native/tests/cuda_emulation/CMakeLists.txt builds with it; docs/ARCHITECTURE.md ("The CUDA kernels")
// says what it checks and what it cannot.
//
// Semantics kept from a GPU: a kernel's blocks run one after another, the threads of a block run
// concurrently (as fibers, cuda_emulation_executor.h), so __syncthreads is a real block barrier and
// a warp shuffle a real exchange among the lanes its mask names; launch configurations are checked
// against CUDA's limits; device memory is only what cudaMalloc returned. Not kept: timing, memory
// coalescing, the GPU memory model, the fast approximate intrinsics (here the precise std
// functions), asynchrony (every call finishes before it returns).
#pragma once
#define VIMDENSE_CUDA_EMULATION_RUNTIME 1

#include <cmath>
#include <math.h>
#include <stdint.h>

#include <cstddef>
#include <cstring>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

// --- Types and constants of the runtime API (the real numeric values) -----------------------------

enum cudaError_t {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInitializationError = 3,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevicePointer = 17,
    cudaErrorInvalidMemcpyDirection = 21,
    cudaErrorInsufficientDriver = 35,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101,
    cudaErrorInvalidResourceHandle = 400,
    cudaErrorIllegalAddress = 700,
    cudaErrorLaunchOutOfResources = 701,
    cudaErrorLaunchTimeout = 702,
    cudaErrorLaunchFailure = 719,
    cudaErrorNotSupported = 801,
};
typedef cudaError_t cudaError;

enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4,
};

enum cudaMemoryType {
    cudaMemoryTypeUnregistered = 0,
    cudaMemoryTypeHost = 1,
    cudaMemoryTypeDevice = 2,
    cudaMemoryTypeManaged = 3,
};

struct cudaPointerAttributes {
    cudaMemoryType type;
    int device;
    void* devicePointer;
    void* hostPointer;
};

struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem;
    size_t sharedMemPerBlock;
    int regsPerBlock;
    int warpSize;
    int maxThreadsPerBlock;
    int maxThreadsDim[3];
    int maxGridSize[3];
    int major;
    int minor;
    int multiProcessorCount;
};

typedef struct CUstream_st* cudaStream_t;
#define cudaStreamLegacy ((cudaStream_t)0x1)
#define cudaStreamPerThread ((cudaStream_t)0x2)

struct uint3 {
    unsigned x, y, z;
};

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
    constexpr operator uint3() const { return uint3{x, y, z}; }
};

// --- Language keywords --------------------------------------------------------------------------
// Every function is a host function here; a kernel is an ordinary function the executor calls once
// per thread. __shared__ becomes static: blocks run one at a time on the launching OS thread, so a
// static is exactly "one per block, seen by all its threads" (not re-initialised between blocks, as
// shared memory is not either). extern __shared__ (dynamic shared memory) and __constant__ are not
// emulated and fail to compile.
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __shared__ static

// The built-in index variables: set by the executor before each fiber runs (thread_local, so
// launches from different OS threads keep theirs apart).
inline thread_local uint3 threadIdx{0, 0, 0};
inline thread_local uint3 blockIdx{0, 0, 0};
inline thread_local dim3 blockDim{1, 1, 1};
inline thread_local dim3 gridDim{1, 1, 1};
constexpr int warpSize = 32;

#include "cuda_emulation_executor.h"

// --- Device functions ---------------------------------------------------------------------------

#define __syncthreads() ::vimdense_cuda_emulation::Executor::current().block_barrier(__FILE__, __LINE__)

// Lane lane ^ laneMask of the same width-wide group; a source in a later group yields the caller's
// own value (CUDA's rule). Every lane named in `mask` must make the same call; the executor waits for
// all of them, as the hardware does.
template <class T>
inline T __shfl_xor_sync(unsigned mask, T var, int laneMask, int width = warpSize) {
    static_assert(std::is_trivially_copyable<T>::value && sizeof(T) <= 8, "shuffles move at most 8 bytes");
    auto& executor = ::vimdense_cuda_emulation::Executor::current();
    if (width < 1 || width > warpSize || (width & (width - 1)) != 0)
        executor.fail_thread("__shfl_xor_sync with width " + std::to_string(width) +
                             ": it must be a power of 2 from 1 to 32");
    const unsigned lane = executor.current_lane();
    unsigned source = lane ^ unsigned(laneMask);
    if (source >= (lane / unsigned(width) + 1) * unsigned(width)) source = lane;
    uint64_t bits = 0;
    std::memcpy(&bits, &var, sizeof(T));
    bits = executor.warp_exchange(mask, bits, source, "__shfl_xor_sync");
    T result;
    std::memcpy(&result, &bits, sizeof(T));
    return result;
}

// Float atomicAdd as the hardware defines it (read, add, write as one step; returns the old value),
// by compare-and-swap on the bits so it is also atomic between OS threads.
inline float atomicAdd(float* address, float value) {
    uint32_t* word = reinterpret_cast<uint32_t*>(address);
    uint32_t expected = __atomic_load_n(word, __ATOMIC_RELAXED);
    for (;;) {
        float old;
        std::memcpy(&old, &expected, sizeof old);
        const float sum = old + value;
        uint32_t desired;
        std::memcpy(&desired, &sum, sizeof desired);
        if (__atomic_compare_exchange_n(word, &expected, desired, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            return old;
    }
}

// IEEE round-to-nearest arithmetic: on a GPU these stop FMA contraction; the emulated sources are
// compiled with -ffp-contract=off, so plain operators round the same way.
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
// The fast approximate intrinsics, computed with the precise functions: a kernel that depends on
// their error bounds is not tested by this emulation.
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }

// --- Runtime API ----------------------------------------------------------------------------------
// Synchronous: a kernel has run, and a copy is done, when the call returns. Errors follow the real
// runtime's two kinds: a call's own error is the thread's "last error" (cleared by cudaGetLastError),
// an error inside a kernel is sticky (every later call returns it, until cudaDeviceReset).

namespace vimdense_cuda_emulation {

inline std::mutex& stream_mutex() {
    static std::mutex m;
    return m;
}
inline std::set<cudaStream_t>& created_streams() {
    static std::set<cudaStream_t> s;
    return s;
}

inline bool known_stream(cudaStream_t stream) {
    if (stream == nullptr || stream == cudaStreamLegacy || stream == cudaStreamPerThread) return true;
    std::lock_guard<std::mutex> lock(stream_mutex());
    return created_streams().count(stream) != 0;
}

// What the device side of a copy or memset may be: a range inside one cudaMalloc block.
inline bool device_range(const void* p, size_t bytes) { return DeviceMemory::instance().contains(p, bytes); }
inline bool host_range(const void* p, size_t bytes) {
    return bytes == 0 || (p != nullptr && !DeviceMemory::instance().overlaps(p, bytes));
}

inline cudaError_t copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
    if (sticky_error() != cudaSuccess) return sticky_error();
    if (!known_stream(stream)) return record(cudaErrorInvalidResourceHandle);
    if (bytes == 0) return cudaSuccess;
    if (kind == cudaMemcpyDefault)
        kind = device_range(src, bytes) ? (device_range(dst, bytes) ? cudaMemcpyDeviceToDevice : cudaMemcpyDeviceToHost)
                                        : (device_range(dst, bytes) ? cudaMemcpyHostToDevice : cudaMemcpyHostToHost);
    bool ok = false;
    switch (kind) {
        case cudaMemcpyHostToHost: ok = host_range(dst, bytes) && host_range(src, bytes); break;
        case cudaMemcpyHostToDevice: ok = device_range(dst, bytes) && host_range(src, bytes); break;
        case cudaMemcpyDeviceToHost: ok = host_range(dst, bytes) && device_range(src, bytes); break;
        case cudaMemcpyDeviceToDevice: ok = device_range(dst, bytes) && device_range(src, bytes); break;
        default: return record(cudaErrorInvalidMemcpyDirection);
    }
    if (!ok) return record(cudaErrorInvalidValue);
    std::memmove(dst, src, bytes);
    return cudaSuccess;
}

inline cudaError_t fill(void* dst, int value, size_t bytes, cudaStream_t stream) {
    if (sticky_error() != cudaSuccess) return sticky_error();
    if (!known_stream(stream)) return record(cudaErrorInvalidResourceHandle);
    if (bytes == 0) return cudaSuccess;
    if (!device_range(dst, bytes)) return record(cudaErrorInvalidValue);
    std::memset(dst, value, bytes);
    return cudaSuccess;
}

}  // namespace vimdense_cuda_emulation

inline cudaError_t cudaGetLastError() {
    namespace emu = vimdense_cuda_emulation;
    if (emu::sticky_error() != cudaSuccess) return emu::sticky_error();
    const cudaError_t err = emu::last_error();
    emu::last_error() = cudaSuccess;
    return err;
}
inline cudaError_t cudaPeekAtLastError() {
    namespace emu = vimdense_cuda_emulation;
    const cudaError_t sticky = emu::sticky_error();
    return sticky != cudaSuccess ? sticky : emu::last_error();
}
inline const char* cudaGetErrorName(cudaError_t err) { return vimdense_cuda_emulation::error_name(err); }
inline const char* cudaGetErrorString(cudaError_t err) { return vimdense_cuda_emulation::error_string(err); }

// One device, number 0.
inline cudaError_t cudaGetDeviceCount(int* count) {
    if (!count) return vimdense_cuda_emulation::record(cudaErrorInvalidValue);
    *count = 1;
    return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int device) {
    return device == 0 ? cudaSuccess : vimdense_cuda_emulation::record(cudaErrorInvalidDevice);
}
inline cudaError_t cudaGetDevice(int* device) {
    if (!device) return vimdense_cuda_emulation::record(cudaErrorInvalidValue);
    *device = 0;
    return cudaSuccess;
}
// Compute capability 7.0: the oldest architecture the kernels are built for, and the first with the
// independent thread scheduling this executor models (no implicit warp lockstep).
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
    if (!prop) return vimdense_cuda_emulation::record(cudaErrorInvalidValue);
    if (device != 0) return vimdense_cuda_emulation::record(cudaErrorInvalidDevice);
    std::memset(prop, 0, sizeof *prop);
    std::strncpy(prop->name, "CPU emulation of CUDA (vimdense tests, one fiber per thread)", sizeof prop->name - 1);
    prop->totalGlobalMem = size_t(16) << 30;
    prop->sharedMemPerBlock = 48 * 1024;
    prop->regsPerBlock = 65536;
    prop->warpSize = warpSize;
    prop->maxThreadsPerBlock = vimdense_cuda_emulation::kMaxThreadsPerBlock;
    prop->maxThreadsDim[0] = 1024;
    prop->maxThreadsDim[1] = 1024;
    prop->maxThreadsDim[2] = 64;
    prop->maxGridSize[0] = 2147483647;
    prop->maxGridSize[1] = 65535;
    prop->maxGridSize[2] = 65535;
    prop->major = 7;
    prop->minor = 0;
    prop->multiProcessorCount = 1;
    return cudaSuccess;
}
inline cudaError_t cudaDeviceSynchronize() { return vimdense_cuda_emulation::sticky_error(); }
inline cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
    namespace emu = vimdense_cuda_emulation;
    if (emu::sticky_error() != cudaSuccess) return emu::sticky_error();
    return emu::known_stream(stream) ? cudaSuccess : emu::record(cudaErrorInvalidResourceHandle);
}
// Frees every allocation and clears all errors, sticky ones included (a fresh context).
inline cudaError_t cudaDeviceReset() {
    vimdense_cuda_emulation::DeviceMemory::instance().release_all();
    vimdense_cuda_emulation::sticky_error() = cudaSuccess;
    vimdense_cuda_emulation::last_error() = cudaSuccess;
    return cudaSuccess;
}

inline cudaError_t cudaStreamCreate(cudaStream_t* stream) {
    namespace emu = vimdense_cuda_emulation;
    if (!stream) return emu::record(cudaErrorInvalidValue);
    *stream = reinterpret_cast<cudaStream_t>(new char);   // a unique handle; work on it runs synchronously
    std::lock_guard<std::mutex> lock(emu::stream_mutex());
    emu::created_streams().insert(*stream);
    return cudaSuccess;
}
inline cudaError_t cudaStreamDestroy(cudaStream_t stream) {
    namespace emu = vimdense_cuda_emulation;
    std::lock_guard<std::mutex> lock(emu::stream_mutex());
    if (emu::created_streams().erase(stream) == 0) return emu::record(cudaErrorInvalidResourceHandle);
    delete reinterpret_cast<char*>(stream);
    return cudaSuccess;
}

// Device memory: see DeviceMemory (guard page after each block, contents poisoned).
inline cudaError_t cudaMalloc(void** ptr, size_t bytes) {
    namespace emu = vimdense_cuda_emulation;
    if (emu::sticky_error() != cudaSuccess) return emu::sticky_error();
    if (!ptr) return emu::record(cudaErrorInvalidValue);
    return emu::record(emu::DeviceMemory::instance().allocate(ptr, bytes));
}
template <class T>
inline cudaError_t cudaMalloc(T** ptr, size_t bytes) {
    return cudaMalloc(reinterpret_cast<void**>(ptr), bytes);
}
inline cudaError_t cudaFree(void* ptr) {
    namespace emu = vimdense_cuda_emulation;
    if (emu::sticky_error() != cudaSuccess) return emu::sticky_error();
    if (!ptr) return cudaSuccess;
    return emu::record(emu::DeviceMemory::instance().release(ptr));
}
inline cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
    return vimdense_cuda_emulation::copy(dst, src, bytes, kind, nullptr);
}
inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                                   cudaStream_t stream = nullptr) {
    return vimdense_cuda_emulation::copy(dst, src, bytes, kind, stream);
}
inline cudaError_t cudaMemset(void* dst, int value, size_t bytes) {
    return vimdense_cuda_emulation::fill(dst, value, bytes, nullptr);
}
inline cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream = nullptr) {
    return vimdense_cuda_emulation::fill(dst, value, bytes, stream);
}
// Device only for pointers into a live cudaMalloc block; any other pointer, null included, is
// unregistered host memory (as CUDA 11+ reports it), so a host pointer passed for a device one is seen.
inline cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* attr, const void* ptr) {
    namespace emu = vimdense_cuda_emulation;
    if (!attr) return emu::record(cudaErrorInvalidValue);
    const bool device = emu::DeviceMemory::instance().contains(ptr, 1);
    attr->type = device ? cudaMemoryTypeDevice : cudaMemoryTypeUnregistered;
    attr->device = device ? 0 : -2;
    attr->devicePointer = device ? const_cast<void*>(ptr) : nullptr;
    attr->hostPointer = device ? nullptr : const_cast<void*>(ptr);
    return cudaSuccess;
}
