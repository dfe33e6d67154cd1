// Greedy NMS on CUDA (semantics in vimdense/detection_ops.h), the bitmask scheme: the boxes are
// gathered in priority order, then block (row, col) of 64 x 64 boxes writes, for each row box, a
// 64-bit word whose bit j says "row box suppresses column box j" (only later columns count). The
// host then walks the boxes in order and ORs the words of each kept box into a removal mask.
#include <cuda_runtime.h>

#include <cstdint>
#include <new>
#include <vector>

#include "device_guard.cuh"
#include "vimdense/native.h"

namespace {

constexpr int kBlock = 64;  // bits per mask word = boxes per block side

// std::max / std::min exactly (a NaN argument propagates as there), where fmaxf/fminf would drop it.
__device__ __forceinline__ float std_max(float a, float b) { return a < b ? b : a; }
__device__ __forceinline__ float std_min(float a, float b) { return b < a ? b : a; }

// The CPU kernel's expression; __fmul_rn/__fadd_rn/__fsub_rn stop FMA contraction so both make
// bitwise the same decisions.
__device__ __forceinline__ float iou(const float* a, const float* b) {
    const float left = std_max(a[0], b[0]), top = std_max(a[1], b[1]);
    const float right = std_min(a[2], b[2]), bottom = std_min(a[3], b[3]);
    const float w = std_max(__fsub_rn(right, left), 0.0f), h = std_max(__fsub_rn(bottom, top), 0.0f);
    const float inter = __fmul_rn(w, h);
    const float area_a = __fmul_rn(__fsub_rn(a[2], a[0]), __fsub_rn(a[3], a[1]));
    const float area_b = __fmul_rn(__fsub_rn(b[2], b[0]), __fsub_rn(b[3], b[1]));
    return __fdiv_rn(inter, __fsub_rn(__fadd_rn(area_a, area_b), inter));
}

__global__ void gather_kernel(const float* __restrict__ boxes, const int64_t* __restrict__ order, int64_t n,
                              float* __restrict__ sorted) {
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
        const int64_t src = order ? order[i] : i;
        for (int k = 0; k < 4; ++k) sorted[i * 4 + k] = boxes[src * 4 + k];
    }
}

__global__ void mask_kernel(const float* __restrict__ sorted, int64_t n, int64_t col_blocks, float threshold,
                            unsigned long long* __restrict__ mask) {
    const int64_t row_block = blockIdx.y, col_block = blockIdx.x;
    // Only the upper triangle matters: a box is suppressed by earlier boxes only.
    if (row_block > col_block) return;
    const int64_t row_left = n - row_block * kBlock, col_left = n - col_block * kBlock;
    const int64_t row_size = row_left < kBlock ? row_left : kBlock;
    const int64_t col_size = col_left < kBlock ? col_left : kBlock;
    __shared__ float block_boxes[kBlock * 4];
    if (int64_t(threadIdx.x) < col_size)
        for (int k = 0; k < 4; ++k)
            block_boxes[threadIdx.x * 4 + k] = sorted[(col_block * kBlock + threadIdx.x) * 4 + k];
    __syncthreads();
    if (int64_t(threadIdx.x) < row_size) {
        const int64_t row = row_block * kBlock + threadIdx.x;
        const float* a = sorted + row * 4;
        unsigned long long bits = 0;
        const int64_t start = row_block == col_block ? int64_t(threadIdx.x) + 1 : 0;
        for (int64_t j = start; j < col_size; ++j)
            if (iou(a, block_boxes + j * 4) > threshold) bits |= 1ULL << j;
        mask[row * col_blocks + col_block] = bits;
    }
}

struct DeviceMemory {
    void* p = nullptr;
    cudaError_t status;
    explicit DeviceMemory(size_t bytes) : status(cudaMalloc(&p, bytes > 0 ? bytes : 1)) {}
    ~DeviceMemory() { if (p) cudaFree(p); }
    DeviceMemory(const DeviceMemory&) = delete;
    DeviceMemory& operator=(const DeviceMemory&) = delete;
};

int32_t nms(const float* boxes, const int64_t* order, int64_t n, double iou_threshold, int64_t* keep,
            int64_t* num_keep, void* stream) {
    if (!num_keep) return VIMDENSE_DET_ERR_NULL_POINTER;
    *num_keep = 0;
    if (n < 0) return VIMDENSE_DET_ERR_BAD_SHAPE;
    if (n == 0) return VIMDENSE_DET_OK;
    if (!boxes || !keep) return VIMDENSE_DET_ERR_NULL_POINTER;
    const vimdense_cuda::DeviceGuard device(boxes);
    if (!device.ok()) return VIMDENSE_DET_ERR_CUDA;
    const int64_t col_blocks = (n + kBlock - 1) / kBlock;
    if (col_blocks > 65535) return VIMDENSE_DET_ERR_BAD_SHAPE;  // grid y limit
    const cudaStream_t s = static_cast<cudaStream_t>(stream);

    std::vector<int64_t> host_order;
    if (order) {
        host_order.resize(static_cast<size_t>(n));
        if (cudaMemcpyAsync(host_order.data(), order, size_t(n) * sizeof(int64_t), cudaMemcpyDeviceToHost, s) !=
                cudaSuccess ||
            cudaStreamSynchronize(s) != cudaSuccess)
            return VIMDENSE_DET_ERR_CUDA;
        for (int64_t v : host_order)
            if (v < 0 || v >= n) return VIMDENSE_DET_ERR_BAD_ARGUMENT;
    }

    DeviceMemory sorted(size_t(n) * 4 * sizeof(float));
    DeviceMemory mask(size_t(n) * size_t(col_blocks) * sizeof(unsigned long long));
    if (sorted.status != cudaSuccess || mask.status != cudaSuccess) {
        cudaGetLastError();  // reported here: do not let the next launch check see this error
        return VIMDENSE_DET_ERR_ALLOC;
    }
    const unsigned gather_blocks = static_cast<unsigned>((n + 255) / 256 < 4096 ? (n + 255) / 256 : 4096);
    gather_kernel<<<gather_blocks, 256, 0, s>>>(boxes, order, n, static_cast<float*>(sorted.p));
    const dim3 grid(static_cast<unsigned>(col_blocks), static_cast<unsigned>(col_blocks));
    mask_kernel<<<grid, kBlock, 0, s>>>(static_cast<const float*>(sorted.p), n, col_blocks,
                                        static_cast<float>(iou_threshold),
                                        static_cast<unsigned long long*>(mask.p));
    if (cudaGetLastError() != cudaSuccess) return VIMDENSE_DET_ERR_CUDA;

    std::vector<unsigned long long> host_mask(size_t(n) * size_t(col_blocks));
    if (cudaMemcpyAsync(host_mask.data(), mask.p, host_mask.size() * sizeof(unsigned long long),
                        cudaMemcpyDeviceToHost, s) != cudaSuccess ||
        cudaStreamSynchronize(s) != cudaSuccess)
        return VIMDENSE_DET_ERR_CUDA;

    // Words below the diagonal block were never written; the walk only reads words j >= i / 64.
    std::vector<unsigned long long> removed(size_t(col_blocks), 0ULL);
    int64_t kept = 0;
    for (int64_t i = 0; i < n; ++i) {
        const int64_t word = i / kBlock, bit = i % kBlock;
        if (removed[size_t(word)] & (1ULL << bit)) continue;
        keep[kept++] = order ? host_order[size_t(i)] : i;
        const unsigned long long* row = host_mask.data() + size_t(i) * size_t(col_blocks);
        for (int64_t j = word; j < col_blocks; ++j) removed[size_t(j)] |= row[j];
    }
    *num_keep = kept;
    return VIMDENSE_DET_OK;
}

}  // namespace

extern "C" int32_t vimdense_nms_cuda_f32(const float* boxes, const int64_t* order, int64_t n, double iou_threshold,
                                         int64_t* keep, int64_t* num_keep, void* stream) {
    // The host buffers (order copy, n * ceil(n/64) mask words) must not throw across the C ABI.
    try {
        return nms(boxes, order, n, iou_threshold, keep, num_keep, stream);
    } catch (const std::bad_alloc&) {
        return VIMDENSE_DET_ERR_ALLOC;
    }
}
