// Greedy non-maximum suppression on the CPU (semantics in vimdense/detection_ops.h).
#include <algorithm>
#include <vector>

#include "vimdense/native.h"

namespace {

// Same expression, in the same order, as the CUDA kernel so both make identical decisions.
inline float iou(const float* a, const float* b) {
    const float left = std::max(a[0], b[0]), top = std::max(a[1], b[1]);
    const float right = std::min(a[2], b[2]), bottom = std::min(a[3], b[3]);
    const float w = std::max(right - left, 0.0f), h = std::max(bottom - top, 0.0f);
    const float inter = w * h;
    const float area_a = (a[2] - a[0]) * (a[3] - a[1]);
    const float area_b = (b[2] - b[0]) * (b[3] - b[1]);
    return inter / (area_a + area_b - inter);
}

}  // namespace

extern "C" int32_t vimdense_nms_cpu_f32(const float* boxes, const int64_t* order, int64_t n, double iou_threshold,
                                        int64_t* keep, int64_t* num_keep) {
    if (!num_keep) return VIMDENSE_DET_ERR_NULL_POINTER;
    *num_keep = 0;
    if (n < 0) return VIMDENSE_DET_ERR_BAD_SHAPE;
    if (n == 0) return VIMDENSE_DET_OK;
    if (!boxes || !keep) return VIMDENSE_DET_ERR_NULL_POINTER;
    if (order)
        for (int64_t i = 0; i < n; ++i)
            if (order[i] < 0 || order[i] >= n) return VIMDENSE_DET_ERR_BAD_ARGUMENT;
    const float threshold = static_cast<float>(iou_threshold);
    std::vector<char> suppressed(static_cast<size_t>(n), 0);
    int64_t kept = 0;
    for (int64_t i = 0; i < n; ++i) {
        const int64_t bi = order ? order[i] : i;
        if (suppressed[size_t(bi)]) continue;
        keep[kept++] = bi;
        const float* a = boxes + bi * 4;
        for (int64_t j = i + 1; j < n; ++j) {
            const int64_t bj = order ? order[j] : j;
            if (suppressed[size_t(bj)]) continue;
            // NaN (two zero-area boxes) compares false: such boxes never suppress each other.
            if (iou(a, boxes + bj * 4) > threshold) suppressed[size_t(bj)] = 1;
        }
    }
    *num_keep = kept;
    return VIMDENSE_DET_OK;
}

#ifndef VIMDENSE_WITH_CUDA
extern "C" int32_t vimdense_nms_cuda_f32(const float*, const int64_t*, int64_t, double, int64_t*, int64_t*, void*) {
    return VIMDENSE_DET_ERR_NO_CUDA;
}
#endif
