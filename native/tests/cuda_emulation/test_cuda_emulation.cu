// Checks of the CUDA-on-CPU emulation itself (CTest cuda_emulation_self_test): that correct kernels
// give the values CUDA defines (worked out by hand below), and that the mistakes the emulation
// exists to catch are caught: a missing __syncthreads, launches over CUDA's limits, barriers and
// shuffles a GPU would hang on, writes past the end of a buffer, host pointers used as device ones.
// Without these, a passing *_cuda_emulated test could mean a harness that checks nothing.
// Built from this .cu through the same launch translation as native/cuda/*.cu.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "detection_test_common.h"
#include "vimdense/native.h"

using det_test::Checker;

namespace {

constexpr int kTile = 64;

__global__ void reverse_each_block(const int* in, int* out) {
    __shared__ int tile[kTile];
    const int base = blockIdx.x * kTile;
    tile[threadIdx.x] = in[base + threadIdx.x];
    __syncthreads();
    out[base + threadIdx.x] = tile[kTile - 1 - threadIdx.x];
}

// The same without the barrier: a thread may read its partner's slot before the partner wrote it.
__global__ void reverse_each_block_without_barrier(const int* in, int* out) {
    __shared__ int tile[kTile];
    const int base = blockIdx.x * kTile;
    tile[threadIdx.x] = in[base + threadIdx.x];
    out[base + threadIdx.x] = tile[kTile - 1 - threadIdx.x];
}

__global__ void warp_shuffles(const float* in, float* warp_sum, float* group_sum, float* xor8_width8) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    const float v = in[i];
    float s = v;
    for (int offset = 16; offset > 0; offset >>= 1) s += __shfl_xor_sync(0xffffffffu, s, offset);
    warp_sum[i] = s;
    float g = v;
    for (int offset = 4; offset > 0; offset >>= 1) g += __shfl_xor_sync(0xffffffffu, g, offset, 8);
    group_sum[i] = g;
    xor8_width8[i] = __shfl_xor_sync(0xffffffffu, v, 8, 8);
}

__global__ void count_with_atomics(float* counter, float* old_values) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    old_values[i] = atomicAdd(counter, 1.0f);
}

__global__ void count_blocks(float* counter) {
    if (threadIdx.x == 0 && threadIdx.y == 0 && threadIdx.z == 0) atomicAdd(counter, 1.0f);
}

__global__ void barriers_at_two_places(int* out) {
    if (threadIdx.x < 16) {
        __syncthreads();
        out[threadIdx.x] = 1;
    } else {
        __syncthreads();
        out[threadIdx.x] = 2;
    }
}

__global__ void shuffle_with_exited_lanes(float* out) {
    if (threadIdx.x >= 16) return;
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1);
}

// Lane 0 waits at the block barrier for lanes that wait in a shuffle for lane 0.
__global__ void barrier_against_shuffle(float* out) {
    if (threadIdx.x == 0) {
        __syncthreads();
    } else {
        out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1);
        __syncthreads();
    }
}

__global__ void write_at(float* data, int index) {
    if (threadIdx.x == 0) data[index] = 1.0f;
}

__global__ void read_at(const float* data, int index, float* out) {
    if (threadIdx.x == 0) out[0] = data[index];
}

template <class T>
struct Buffer {
    T* p = nullptr;
    explicit Buffer(size_t n) { cudaMalloc(&p, n * sizeof(T)); }
    ~Buffer() { cudaFree(p); }
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
};

template <class T>
std::vector<T> to_host(const T* device, size_t n) {
    std::vector<T> host(n);
    cudaMemcpy(host.data(), device, n * sizeof(T), cudaMemcpyDeviceToHost);
    return host;
}

void check_barrier_race(Checker& chk) {
    const int blocks = 2, n = blocks * kTile;
    std::vector<int> in(n), reversed(n);
    for (int i = 0; i < n; ++i) in[i] = 1000 + i;
    for (int b = 0; b < blocks; ++b)
        for (int t = 0; t < kTile; ++t) reversed[b * kTile + t] = in[b * kTile + kTile - 1 - t];
    Buffer<int> in_d(n), out_d(n);
    cudaMemcpy(in_d.p, in.data(), n * sizeof(int), cudaMemcpyHostToDevice);
    reverse_each_block<<<blocks, kTile>>>(in_d.p, out_d.p);
    chk.is(cudaDeviceSynchronize() == cudaSuccess && to_host(out_d.p, n) == reversed,
           "block reversal through shared memory with __syncthreads");
    reverse_each_block_without_barrier<<<blocks, kTile>>>(in_d.p, out_d.p);
    const std::vector<int> racy = to_host(out_d.p, n);
    // Block 0 runs its threads upwards (early threads read slots not yet written), block 1 downwards
    // (late threads do): both directions of the race must show.
    const bool block0_wrong = !std::equal(racy.begin(), racy.begin() + kTile, reversed.begin());
    const bool block1_wrong = !std::equal(racy.begin() + kTile, racy.end(), reversed.begin() + kTile);
    chk.is(block0_wrong && block1_wrong, "missing __syncthreads gives wrong results in both blocks");
}

void check_shuffles_and_atomics(Checker& chk) {
    const int n = 128;   // 2 blocks of 64 threads: 4 warps
    std::vector<float> in(n);
    for (int i = 0; i < n; ++i) in[i] = float(i);
    Buffer<float> in_d(n), sum_d(n), group_d(n), xor_d(n);
    cudaMemcpy(in_d.p, in.data(), n * sizeof(float), cudaMemcpyHostToDevice);
    warp_shuffles<<<2, 64>>>(in_d.p, sum_d.p, group_d.p, xor_d.p);
    chk.is(cudaDeviceSynchronize() == cudaSuccess, "shuffle kernel runs");
    const std::vector<float> sums = to_host(sum_d.p, n), groups = to_host(group_d.p, n), xors = to_host(xor_d.p, n);
    bool sums_ok = true, groups_ok = true, xors_ok = true;
    for (int i = 0; i < n; ++i) {
        const int warp_base = i / 32 * 32, group_base = i / 8 * 8, lane = i % 32;
        // 0 + 1 + ... + 31 = 496 over a warp's lanes, 0 + ... + 7 = 28 over a group of 8.
        sums_ok &= sums[i] == float(32 * warp_base + 496);
        groups_ok &= groups[i] == float(8 * group_base + 28);
        // width 8, lane ^ 8: a source in a later group of 8 gives the lane's own value, an earlier one
        // that lane's value.
        const int source = lane ^ 8;
        xors_ok &= xors[i] == float(source > lane ? i : warp_base + source);
    }
    chk.is(sums_ok, "butterfly sum over each warp (__shfl_xor_sync) = 496 + 1024 * warp");
    chk.is(groups_ok, "butterfly sum over groups of 8 (width 8) = 28 + 64 * group");
    chk.is(xors_ok, "xor 8 with width 8: own value from later groups, the earlier group's otherwise");

    Buffer<float> counter(1), olds(1024);
    cudaMemset(counter.p, 0, sizeof(float));
    count_with_atomics<<<4, 256>>>(counter.p, olds.p);
    std::vector<float> old_values = to_host(olds.p, 1024);
    std::sort(old_values.begin(), old_values.end());
    bool each_once = true;
    for (int i = 0; i < 1024; ++i) each_once &= old_values[i] == float(i);
    chk.is(to_host(counter.p, 1)[0] == 1024.0f && each_once,
           "1024 atomicAdd(1): total 1024, old values 0..1023 each once");
}

void check_launch_limits(Checker& chk) {
    Buffer<float> counter(1);
    struct Case {
        dim3 grid, block;
        const char* what;
    };
    const Case bad[] = {
        {dim3(1, 65536), dim3(1), "grid.y = 65536"},
        {dim3(1, 1, 65536), dim3(1), "grid.z = 65536"},
        {dim3(2147483648u), dim3(1), "grid.x = 2^31"},
        {dim3(0), dim3(32), "grid.x = 0"},
        {dim3(1), dim3(0), "block.x = 0"},
        {dim3(1), dim3(1025), "block of 1025 threads"},
        {dim3(1), dim3(32, 32, 2), "block 32x32x2 (2048 threads)"},
        {dim3(1), dim3(1, 1, 65), "block.z = 65"},
    };
    for (const Case& c : bad) {
        cudaMemset(counter.p, 0, sizeof(float));
        count_blocks<<<c.grid, c.block>>>(counter.p);
        const cudaError_t launch = cudaGetLastError();
        const cudaError_t after = cudaGetLastError();
        char what[96];
        std::snprintf(what, sizeof what, "%s: invalid configuration, cleared once read, not run", c.what);
        chk.is(launch == cudaErrorInvalidConfiguration && after == cudaSuccess && to_host(counter.p, 1)[0] == 0.0f,
               what);
    }
    cudaMemset(counter.p, 0, sizeof(float));
    count_blocks<<<dim3(3, 65535), dim3(1)>>>(counter.p);
    chk.is(cudaGetLastError() == cudaSuccess && to_host(counter.p, 1)[0] == 3.0f * 65535.0f,
           "grid 3 x 65535 (the largest grid.y): every block runs once");
    cudaMemset(counter.p, 0, sizeof(float));
    count_blocks<<<dim3(2, 1, 2), dim3(16, 16, 4)>>>(counter.p);
    chk.is(cudaGetLastError() == cudaSuccess && to_host(counter.p, 1)[0] == 4.0f,
           "blocks of 16x16x4 = 1024 threads (the limit) run");
    count_blocks<<<1, 32, 1024>>>(counter.p);
    chk.is(cudaGetLastError() == cudaErrorNotSupported, "dynamic shared memory is refused, not ignored");
    count_blocks<<<1, 32, 0, reinterpret_cast<cudaStream_t>(0x1234)>>>(counter.p);
    chk.is(cudaGetLastError() == cudaErrorInvalidResourceHandle, "a stream that was never created is refused");
}

// A kernel failure is sticky (later calls return it) until cudaDeviceReset.
void expect_kernel_failure(Checker& chk, cudaError_t expected, const char* what) {
    const cudaError_t sync = cudaDeviceSynchronize();
    const cudaError_t last = cudaGetLastError(), again = cudaGetLastError();
    void* p = nullptr;
    const cudaError_t malloc_after = cudaMalloc(&p, 4);
    char text[128];
    std::snprintf(text, sizeof text, "%s: %s, sticky", what, cudaGetErrorName(expected));
    chk.is(sync == expected && last == expected && again == expected && malloc_after == expected, text);
    cudaDeviceReset();
}

void check_kernel_failures(Checker& chk) {
    std::printf("  (the lines from \"vimdense CUDA emulation:\" below are the reports these checks expect)\n");
    {
        Buffer<int> out(64);
        barriers_at_two_places<<<1, 64>>>(out.p);
    }
    expect_kernel_failure(chk, cudaErrorLaunchFailure, "__syncthreads at two places");
    {
        Buffer<float> out(32);
        shuffle_with_exited_lanes<<<1, 32>>>(out.p);
    }
    expect_kernel_failure(chk, cudaErrorLaunchFailure, "shuffle naming exited lanes");
    {
        Buffer<float> out(32);
        barrier_against_shuffle<<<1, 32>>>(out.p);
    }
    expect_kernel_failure(chk, cudaErrorLaunchFailure, "barrier against shuffle (deadlock)");
    {
        Buffer<float> data(16);   // 64 bytes: the next float is on the guard page
        write_at<<<1, 32>>>(data.p, 16);
    }
    expect_kernel_failure(chk, cudaErrorIllegalAddress, "write 1 float past a 16-float buffer");
    {
        Buffer<float> data(16), out(1);
        read_at<<<1, 32>>>(data.p, 16, out.p);
    }
    expect_kernel_failure(chk, cudaErrorIllegalAddress, "read 1 float past a 16-float buffer");
    {
        Buffer<float> data(13);   // 52 bytes: the next float lies in the slack before the guard page
        write_at<<<1, 32>>>(data.p, 13);
    }
    expect_kernel_failure(chk, cudaErrorIllegalAddress, "write 1 float past a 13-float buffer");
    {
        float* freed = nullptr;
        cudaMalloc(&freed, 16 * sizeof(float));
        cudaFree(freed);
        write_at<<<1, 32>>>(freed, 0);
    }
    expect_kernel_failure(chk, cudaErrorIllegalAddress, "write after cudaFree");
    {
        Buffer<float> data(16);
        write_at<<<1, 32>>>(data.p, 15);
        chk.is(cudaDeviceSynchronize() == cudaSuccess && to_host(data.p, 16)[15] == 1.0f,
               "after cudaDeviceReset: the last float of a buffer is writable");
    }
}

void check_memory(Checker& chk) {
    Buffer<float> data(16);
    const std::vector<float> fresh = to_host(data.p, 16);
    chk.is(std::all_of(fresh.begin(), fresh.end(), [](float v) { return v != v; }),
           "new device memory is poisoned (reads as NaN)");
    std::vector<float> host(16, 1.0f);
    cudaPointerAttributes attr{};
    chk.is(cudaPointerGetAttributes(&attr, data.p + 5) == cudaSuccess && attr.type == cudaMemoryTypeDevice,
           "a pointer inside a cudaMalloc block is device memory");
    chk.is(cudaPointerGetAttributes(&attr, host.data()) == cudaSuccess && attr.type == cudaMemoryTypeUnregistered,
           "a host pointer is not device memory");
    chk.is(cudaPointerGetAttributes(&attr, data.p + 16) == cudaSuccess && attr.type == cudaMemoryTypeUnregistered,
           "one past the end of a block is not device memory");
    const cudaError_t to_host_as_device = cudaMemcpy(host.data(), host.data(), 64, cudaMemcpyHostToDevice);
    chk.is(to_host_as_device == cudaErrorInvalidValue && cudaGetLastError() == cudaErrorInvalidValue &&
               cudaGetLastError() == cudaSuccess,
           "cudaMemcpy HostToDevice into host memory: invalid value, then cleared");
    std::vector<float> large(17);
    chk.is(cudaMemcpy(large.data(), data.p, 17 * sizeof(float), cudaMemcpyDeviceToHost) == cudaErrorInvalidValue,
           "cudaMemcpy of 17 floats from a 16-float block: invalid value");
    cudaGetLastError();
    // The kernels' device guard sees a host pointer passed for a device one.
    const std::vector<float> boxes = {0, 0, 1, 1, 0, 0, 1, 1};
    std::vector<int64_t> keep(2);
    int64_t kept = -1;
    chk.is(vimdense_nms_cuda_f32(boxes.data(), nullptr, 2, 0.5, keep.data(), &kept, nullptr) == VIMDENSE_DET_ERR_CUDA,
           "CUDA NMS given host boxes: ERR_CUDA");
}

}  // namespace

int main() {
    Checker chk;
    check_barrier_race(chk);
    check_shuffles_and_atomics(chk);
    check_launch_limits(chk);
    check_kernel_failures(chk);
    check_memory(chk);
    std::printf("%s: %d failure(s)\n", chk.failures ? "FAILED" : "PASSED", chk.failures);
    return chk.failures ? 1 : 0;
}
