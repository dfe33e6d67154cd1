// RoIAlign forward/backward CUDA kernels (float32), the same semantics and arithmetic as
// native/src/roi_align_cpu.cpp (see vimdense/detection_ops.h). One thread per output element;
// the backward scatters with atomicAdd into a zero-filled grad_input.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "device_guard.cuh"
#include "vimdense/native.h"

namespace {

constexpr int kThreads = 256;

struct Sample {
    bool valid;
    int64_t y0, x0, y1, x1;
    float w00, w01, w10, w11;
};

__device__ __forceinline__ Sample bilinear(int64_t height, int64_t width, float y, float x) {
    Sample s;
    s.valid = false;
    s.y0 = s.x0 = s.y1 = s.x1 = 0;
    s.w00 = s.w01 = s.w10 = s.w11 = 0.0f;
    if (y < -1.0f || y > float(height) || x < -1.0f || x > float(width)) return s;
    if (y <= 0.0f) y = 0.0f;
    if (x <= 0.0f) x = 0.0f;
    s.y0 = static_cast<int64_t>(y);
    s.x0 = static_cast<int64_t>(x);
    if (s.y0 >= height - 1) {
        s.y0 = s.y1 = height - 1;
        y = float(s.y0);
    } else {
        s.y1 = s.y0 + 1;
    }
    if (s.x0 >= width - 1) {
        s.x0 = s.x1 = width - 1;
        x = float(s.x0);
    } else {
        s.x1 = s.x0 + 1;
    }
    const float ly = y - float(s.y0), lx = x - float(s.x0);
    const float hy = 1.0f - ly, hx = 1.0f - lx;
    // __fmul_rn keeps these products from being contracted into FMAs, so the weights are bitwise
    // those of the CPU kernel.
    s.w00 = __fmul_rn(hy, hx);
    s.w01 = __fmul_rn(hy, lx);
    s.w10 = __fmul_rn(ly, hx);
    s.w11 = __fmul_rn(ly, lx);
    s.valid = true;
    return s;
}

struct Geometry {
    int64_t batch_index;
    float start_x, start_y, bin_w, bin_h;
    int64_t grid_w, grid_h;
    float count;
};

__device__ __forceinline__ Geometry geometry(const float* roi, int64_t pooled_h, int64_t pooled_w, float scale,
                                             int32_t sampling_ratio, bool aligned) {
    Geometry g;
    g.batch_index = static_cast<int64_t>(roi[0]);
    const float offset = aligned ? 0.5f : 0.0f;
    g.start_x = __fsub_rn(__fmul_rn(roi[1], scale), offset);
    g.start_y = __fsub_rn(__fmul_rn(roi[2], scale), offset);
    float roi_w = __fsub_rn(__fsub_rn(__fmul_rn(roi[3], scale), offset), g.start_x);
    float roi_h = __fsub_rn(__fsub_rn(__fmul_rn(roi[4], scale), offset), g.start_y);
    if (!aligned) {
        // std::max(roi_w, 1) as on the CPU (fmaxf would turn a NaN size into 1).
        roi_w = roi_w < 1.0f ? 1.0f : roi_w;
        roi_h = roi_h < 1.0f ? 1.0f : roi_h;
    }
    g.bin_w = roi_w / float(pooled_w);
    g.bin_h = roi_h / float(pooled_h);
    g.grid_h = sampling_ratio > 0 ? sampling_ratio : static_cast<int64_t>(ceilf(roi_h / float(pooled_h)));
    g.grid_w = sampling_ratio > 0 ? sampling_ratio : static_cast<int64_t>(ceilf(roi_w / float(pooled_w)));
    if (g.grid_h < 0) g.grid_h = 0;
    if (g.grid_w < 0) g.grid_w = 0;
    const int64_t n = g.grid_h * g.grid_w;
    g.count = float(n > 1 ? n : 1);
    return g;
}

// Sample coordinate start + p·bin + (i + 0.5)·bin / grid, evaluated in the CPU kernel's order.
__device__ __forceinline__ float sample_coord(float start, int64_t p, float bin, int64_t i, int64_t grid) {
    const float a = __fadd_rn(start, __fmul_rn(float(p), bin));
    const float b = __fmul_rn(__fadd_rn(float(i), 0.5f), bin) / float(grid);
    return __fadd_rn(a, b);
}

__global__ void roi_align_forward_kernel(const float* __restrict__ input, const float* __restrict__ rois,
                                         int64_t batch, int64_t channels, int64_t height, int64_t width,
                                         int64_t total, int64_t pooled_h, int64_t pooled_w, float scale,
                                         int32_t sampling_ratio, bool aligned, float* __restrict__ output) {
    for (int64_t index = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; index < total;
         index += int64_t(blockDim.x) * gridDim.x) {
        const int64_t pw = index % pooled_w;
        const int64_t ph = (index / pooled_w) % pooled_h;
        const int64_t c = (index / pooled_w / pooled_h) % channels;
        const int64_t r = index / pooled_w / pooled_h / channels;
        const Geometry g = geometry(rois + r * 5, pooled_h, pooled_w, scale, sampling_ratio, aligned);
        if (g.batch_index < 0 || g.batch_index >= batch || height == 0 || width == 0) {
            output[index] = 0.0f;
            continue;
        }
        const float* x = input + (g.batch_index * channels + c) * height * width;
        float sum = 0.0f;
        for (int64_t iy = 0; iy < g.grid_h; ++iy) {
            const float y = sample_coord(g.start_y, ph, g.bin_h, iy, g.grid_h);
            for (int64_t ix = 0; ix < g.grid_w; ++ix) {
                const float xx = sample_coord(g.start_x, pw, g.bin_w, ix, g.grid_w);
                const Sample s = bilinear(height, width, y, xx);
                if (!s.valid) continue;
                sum += s.w00 * x[s.y0 * width + s.x0] + s.w01 * x[s.y0 * width + s.x1] +
                       s.w10 * x[s.y1 * width + s.x0] + s.w11 * x[s.y1 * width + s.x1];
            }
        }
        output[index] = sum / g.count;
    }
}

__global__ void roi_align_backward_kernel(const float* __restrict__ grad_output, const float* __restrict__ rois,
                                          int64_t batch, int64_t channels, int64_t height, int64_t width,
                                          int64_t total, int64_t pooled_h, int64_t pooled_w, float scale,
                                          int32_t sampling_ratio, bool aligned, float* __restrict__ grad_input) {
    for (int64_t index = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; index < total;
         index += int64_t(blockDim.x) * gridDim.x) {
        const int64_t pw = index % pooled_w;
        const int64_t ph = (index / pooled_w) % pooled_h;
        const int64_t c = (index / pooled_w / pooled_h) % channels;
        const int64_t r = index / pooled_w / pooled_h / channels;
        const Geometry g = geometry(rois + r * 5, pooled_h, pooled_w, scale, sampling_ratio, aligned);
        if (g.batch_index < 0 || g.batch_index >= batch || height == 0 || width == 0) continue;
        float* gx = grad_input + (g.batch_index * channels + c) * height * width;
        const float share = grad_output[index] / g.count;
        for (int64_t iy = 0; iy < g.grid_h; ++iy) {
            const float y = sample_coord(g.start_y, ph, g.bin_h, iy, g.grid_h);
            for (int64_t ix = 0; ix < g.grid_w; ++ix) {
                const float xx = sample_coord(g.start_x, pw, g.bin_w, ix, g.grid_w);
                const Sample s = bilinear(height, width, y, xx);
                if (!s.valid) continue;
                atomicAdd(gx + s.y0 * width + s.x0, share * s.w00);
                atomicAdd(gx + s.y0 * width + s.x1, share * s.w01);
                atomicAdd(gx + s.y1 * width + s.x0, share * s.w10);
                atomicAdd(gx + s.y1 * width + s.x1, share * s.w11);
            }
        }
    }
}

int32_t check(int64_t batch, int64_t channels, int64_t height, int64_t width, int64_t num_rois, int64_t pooled_h,
              int64_t pooled_w, double spatial_scale, const void* image, const void* rois, const void* pooled) {
    if (batch < 0 || channels < 0 || height < 0 || width < 0 || num_rois < 0 || pooled_h < 1 || pooled_w < 1)
        return VIMDENSE_DET_ERR_BAD_SHAPE;
    if (!(spatial_scale > 0.0) || !std::isfinite(spatial_scale)) return VIMDENSE_DET_ERR_BAD_ARGUMENT;
    if ((batch * channels * height * width > 0 && !image) || (num_rois > 0 && !rois) ||
        (num_rois * channels * pooled_h * pooled_w > 0 && !pooled))
        return VIMDENSE_DET_ERR_NULL_POINTER;
    return VIMDENSE_DET_OK;
}

unsigned blocks_for(int64_t total) {
    const int64_t wanted = (total + kThreads - 1) / kThreads;
    // The kernels loop (grid-stride), so the grid can be capped.
    return static_cast<unsigned>(wanted < 65535 * 8 ? wanted : 65535 * 8);
}

}  // namespace

extern "C" int32_t vimdense_roi_align_fwd_cuda_f32(const float* input, const float* rois, int64_t batch,
                                                   int64_t channels, int64_t height, int64_t width, int64_t num_rois,
                                                   int64_t pooled_h, int64_t pooled_w, double spatial_scale,
                                                   int32_t sampling_ratio, int32_t aligned, float* output,
                                                   void* stream) {
    const int32_t rc =
        check(batch, channels, height, width, num_rois, pooled_h, pooled_w, spatial_scale, input, rois, output);
    if (rc != VIMDENSE_DET_OK) return rc;
    const int64_t total = num_rois * channels * pooled_h * pooled_w;
    if (total == 0) return VIMDENSE_DET_OK;
    const vimdense_cuda::DeviceGuard device(output);
    if (!device.ok()) return VIMDENSE_DET_ERR_CUDA;
    roi_align_forward_kernel<<<blocks_for(total), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
        input, rois, batch, channels, height, width, total, pooled_h, pooled_w, float(spatial_scale), sampling_ratio,
        aligned != 0, output);
    return cudaGetLastError() == cudaSuccess ? VIMDENSE_DET_OK : VIMDENSE_DET_ERR_CUDA;
}

extern "C" int32_t vimdense_roi_align_bwd_cuda_f32(const float* grad_output, const float* rois, int64_t batch,
                                                   int64_t channels, int64_t height, int64_t width, int64_t num_rois,
                                                   int64_t pooled_h, int64_t pooled_w, double spatial_scale,
                                                   int32_t sampling_ratio, int32_t aligned, float* grad_input,
                                                   void* stream) {
    const int32_t rc = check(batch, channels, height, width, num_rois, pooled_h, pooled_w, spatial_scale, grad_input,
                             rois, grad_output);
    if (rc != VIMDENSE_DET_OK) return rc;
    const cudaStream_t s = static_cast<cudaStream_t>(stream);
    const int64_t image_count = batch * channels * height * width;
    if (image_count == 0) return VIMDENSE_DET_OK;  // nothing to fill or scatter into
    const vimdense_cuda::DeviceGuard device(grad_input);
    if (!device.ok()) return VIMDENSE_DET_ERR_CUDA;
    if (cudaMemsetAsync(grad_input, 0, static_cast<size_t>(image_count) * sizeof(float), s) != cudaSuccess)
        return VIMDENSE_DET_ERR_CUDA;
    const int64_t total = num_rois * channels * pooled_h * pooled_w;
    if (total == 0) return VIMDENSE_DET_OK;
    roi_align_backward_kernel<<<blocks_for(total), kThreads, 0, s>>>(grad_output, rois, batch, channels, height,
                                                                     width, total, pooled_h, pooled_w,
                                                                     float(spatial_scale), sampling_ratio,
                                                                     aligned != 0, grad_input);
    return cudaGetLastError() == cudaSuccess ? VIMDENSE_DET_OK : VIMDENSE_DET_ERR_CUDA;
}
