// RoIAlign forward/backward on the CPU (semantics in vimdense/detection_ops.h), for float and
// double. Each roi's bilinear samples are tabulated once and reused for all channels. The forward
// splits (roi, channel chunk) items over worker threads; the backward splits channels, so every
// thread owns whole grad_input planes and no two threads write one element.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <thread>
#include <vector>

#include "vimdense/native.h"

namespace {

// One bilinear sample: the four neighbours and their weights, or none when out of range.
template <class T>
struct Bilinear {
    bool valid;
    int64_t y0, x0, y1, x1;
    T w00, w01, w10, w11;
};

template <class T>
Bilinear<T> bilinear(int64_t height, int64_t width, T y, T x) {
    Bilinear<T> s{};
    if (y < T(-1) || y > T(height) || x < T(-1) || x > T(width)) return s;
    if (y <= T(0)) y = T(0);
    if (x <= T(0)) x = T(0);
    s.y0 = static_cast<int64_t>(y);
    s.x0 = static_cast<int64_t>(x);
    if (s.y0 >= height - 1) {
        s.y0 = s.y1 = height - 1;
        y = T(s.y0);
    } else {
        s.y1 = s.y0 + 1;
    }
    if (s.x0 >= width - 1) {
        s.x0 = s.x1 = width - 1;
        x = T(s.x0);
    } else {
        s.x1 = s.x0 + 1;
    }
    const T ly = y - T(s.y0), lx = x - T(s.x0);
    const T hy = T(1) - ly, hx = T(1) - lx;
    s.w00 = hy * hx;
    s.w01 = hy * lx;
    s.w10 = ly * hx;
    s.w11 = ly * lx;
    s.valid = true;
    return s;
}

// The geometry of one roi: where its bins start, their size and the sampling grid.
template <class T>
struct RoiGeometry {
    int64_t batch_index;
    T start_x, start_y, bin_w, bin_h;
    int64_t grid_w, grid_h;
    T count;
};

template <class T>
RoiGeometry<T> roi_geometry(const T* roi, int64_t pooled_h, int64_t pooled_w, T scale, int32_t sampling_ratio,
                            bool aligned) {
    RoiGeometry<T> g{};
    g.batch_index = static_cast<int64_t>(roi[0]);
    const T offset = aligned ? T(0.5) : T(0);
    g.start_x = roi[1] * scale - offset;
    g.start_y = roi[2] * scale - offset;
    T roi_w = roi[3] * scale - offset - g.start_x;
    T roi_h = roi[4] * scale - offset - g.start_y;
    if (!aligned) {
        // The legacy (unaligned) op forces a roi to cover at least one pixel.
        roi_w = std::max(roi_w, T(1));
        roi_h = std::max(roi_h, T(1));
    }
    g.bin_w = roi_w / T(pooled_w);
    g.bin_h = roi_h / T(pooled_h);
    g.grid_h = sampling_ratio > 0 ? sampling_ratio : static_cast<int64_t>(std::ceil(roi_h / T(pooled_h)));
    g.grid_w = sampling_ratio > 0 ? sampling_ratio : static_cast<int64_t>(std::ceil(roi_w / T(pooled_w)));
    // Negative sizes (inverted rois with aligned=True) give an empty grid.
    g.grid_h = std::max<int64_t>(g.grid_h, 0);
    g.grid_w = std::max<int64_t>(g.grid_w, 0);
    g.count = T(std::max<int64_t>(g.grid_h * g.grid_w, 1));
    return g;
}

int worker_count(int64_t items) {
    int n = vimdense_scan_get_num_threads();
    if (n < 1) n = 1;
    return static_cast<int>(std::min<int64_t>(n, std::max<int64_t>(items, 1)));
}

// Runs fn(i) for every i in [0, items) on short-lived threads (the calling thread works too).
void parallel_for(int64_t items, const std::function<void(int64_t)>& fn) {
    const int workers = worker_count(items);
    if (workers <= 1) {
        for (int64_t i = 0; i < items; ++i) fn(i);
        return;
    }
    std::atomic<int64_t> next{0};
    auto job = [&] {
        for (;;) {
            const int64_t i = next.fetch_add(1, std::memory_order_relaxed);
            if (i >= items) break;
            fn(i);
        }
    };
    std::vector<std::thread> threads;
    threads.reserve(static_cast<size_t>(workers - 1));
    for (int w = 1; w < workers; ++w) threads.emplace_back(job);
    job();
    for (auto& t : threads) t.join();
}

int32_t check_sizes(int64_t batch, int64_t channels, int64_t height, int64_t width, int64_t num_rois, int64_t pooled_h,
                    int64_t pooled_w, double spatial_scale) {
    if (batch < 0 || channels < 0 || height < 0 || width < 0 || num_rois < 0 || pooled_h < 1 || pooled_w < 1)
        return VIMDENSE_DET_ERR_BAD_SHAPE;
    if (!(spatial_scale > 0.0) || !std::isfinite(spatial_scale)) return VIMDENSE_DET_ERR_BAD_ARGUMENT;
    return VIMDENSE_DET_OK;
}

// image: the (batch, channels, height, width) buffer; pooled: the (num_rois, channels, ph, pw) one.
bool pointers_missing(const void* image, const void* rois, const void* pooled, int64_t batch, int64_t channels,
                      int64_t height, int64_t width, int64_t num_rois, int64_t pooled_h, int64_t pooled_w) {
    return (batch * channels * height * width > 0 && !image) || (num_rois > 0 && !rois) ||
           (num_rois * channels * pooled_h * pooled_w > 0 && !pooled);
}

// The valid bilinear samples of one roi, bin by bin: identical for every channel, so they are
// computed once per roi and reused across channels (the kernels' main cost otherwise).
template <class T>
struct SampleTable {
    struct Entry {
        int64_t o00, o01, o10, o11;  // offsets into a (height, width) plane
        T w00, w01, w10, w11;
    };
    std::vector<Entry> entries;
    std::vector<int64_t> bin_start;  // bins + 1 offsets into entries
    T count = T(1);
    bool empty_roi = true;           // batch index out of range or no pixels: the roi reads nothing

    void build(const RoiGeometry<T>& g, int64_t batch, int64_t height, int64_t width, int64_t pooled_h,
               int64_t pooled_w) {
        entries.clear();
        bin_start.assign(static_cast<size_t>(pooled_h * pooled_w + 1), 0);
        count = g.count;
        empty_roi = g.batch_index < 0 || g.batch_index >= batch || height == 0 || width == 0;
        if (empty_roi) return;
        for (int64_t ph = 0; ph < pooled_h; ++ph)
            for (int64_t pw = 0; pw < pooled_w; ++pw) {
                for (int64_t iy = 0; iy < g.grid_h; ++iy) {
                    const T y = g.start_y + T(ph) * g.bin_h + (T(iy) + T(0.5)) * g.bin_h / T(g.grid_h);
                    for (int64_t ix = 0; ix < g.grid_w; ++ix) {
                        const T xx = g.start_x + T(pw) * g.bin_w + (T(ix) + T(0.5)) * g.bin_w / T(g.grid_w);
                        const Bilinear<T> s = bilinear<T>(height, width, y, xx);
                        if (!s.valid) continue;
                        entries.push_back({s.y0 * width + s.x0, s.y0 * width + s.x1, s.y1 * width + s.x0,
                                           s.y1 * width + s.x1, s.w00, s.w01, s.w10, s.w11});
                    }
                }
                bin_start[size_t(ph * pooled_w + pw + 1)] = int64_t(entries.size());
            }
    }
};

// Channels handled by one forward work item: enough items to feed the threads even for few rois,
// few enough that the per-roi sample table is rebuilt rarely.
constexpr int64_t kChannelChunk = 64;
// Rois whose sample tables the backward holds at once (bounds its scratch memory).
constexpr int64_t kBackwardRoiBlock = 128;

template <class T>
int32_t forward(const T* input, const T* rois, int64_t batch, int64_t channels, int64_t height, int64_t width,
                int64_t num_rois, int64_t pooled_h, int64_t pooled_w, double spatial_scale, int32_t sampling_ratio,
                int32_t aligned, T* output) {
    const int32_t rc = check_sizes(batch, channels, height, width, num_rois, pooled_h, pooled_w, spatial_scale);
    if (rc != VIMDENSE_DET_OK) return rc;
    if (pointers_missing(input, rois, output, batch, channels, height, width, num_rois, pooled_h, pooled_w))
        return VIMDENSE_DET_ERR_NULL_POINTER;
    if (channels == 0) return VIMDENSE_DET_OK;
    const int64_t plane = pooled_h * pooled_w, hw = height * width;
    const int64_t chunks = (channels + kChannelChunk - 1) / kChannelChunk;
    parallel_for(num_rois * chunks, [&](int64_t item) {
        const int64_t r = item / chunks, c0 = (item % chunks) * kChannelChunk;
        const int64_t c1 = std::min(channels, c0 + kChannelChunk);
        SampleTable<T> table;
        table.build(roi_geometry(rois + r * 5, pooled_h, pooled_w, T(spatial_scale), sampling_ratio, aligned != 0),
                    batch, height, width, pooled_h, pooled_w);
        for (int64_t c = c0; c < c1; ++c) {
            T* out = output + (r * channels + c) * plane;
            if (table.empty_roi) {
                std::fill(out, out + plane, T(0));
                continue;
            }
            const int64_t b = static_cast<int64_t>(rois[r * 5]);
            const T* x = input + (b * channels + c) * hw;
            for (int64_t bin = 0; bin < plane; ++bin) {
                T sum = T(0);
                for (int64_t e = table.bin_start[size_t(bin)]; e < table.bin_start[size_t(bin + 1)]; ++e) {
                    const auto& s = table.entries[size_t(e)];
                    sum += s.w00 * x[s.o00] + s.w01 * x[s.o01] + s.w10 * x[s.o10] + s.w11 * x[s.o11];
                }
                out[bin] = sum / table.count;
            }
        }
    });
    return VIMDENSE_DET_OK;
}

template <class T>
int32_t backward(const T* grad_output, const T* rois, int64_t batch, int64_t channels, int64_t height, int64_t width,
                 int64_t num_rois, int64_t pooled_h, int64_t pooled_w, double spatial_scale, int32_t sampling_ratio,
                 int32_t aligned, T* grad_input) {
    const int32_t rc = check_sizes(batch, channels, height, width, num_rois, pooled_h, pooled_w, spatial_scale);
    if (rc != VIMDENSE_DET_OK) return rc;
    if (pointers_missing(grad_input, rois, grad_output, batch, channels, height, width, num_rois, pooled_h, pooled_w))
        return VIMDENSE_DET_ERR_NULL_POINTER;
    const int64_t hw = height * width, plane = pooled_h * pooled_w;
    std::fill(grad_input, grad_input + batch * channels * hw, T(0));
    if (hw == 0 || channels == 0) return VIMDENSE_DET_OK;
    std::vector<SampleTable<T>> tables(static_cast<size_t>(std::min(num_rois, kBackwardRoiBlock)));
    for (int64_t r0 = 0; r0 < num_rois; r0 += kBackwardRoiBlock) {
        const int64_t r1 = std::min(num_rois, r0 + kBackwardRoiBlock);
        parallel_for(r1 - r0, [&](int64_t i) {
            tables[size_t(i)].build(
                roi_geometry(rois + (r0 + i) * 5, pooled_h, pooled_w, T(spatial_scale), sampling_ratio, aligned != 0),
                batch, height, width, pooled_h, pooled_w);
        });
        // Each thread owns whole channels, so no two threads write one grad_input element, and the
        // summation order (roi, bin, sample) does not depend on the thread count.
        parallel_for(channels, [&](int64_t c) {
            for (int64_t r = r0; r < r1; ++r) {
                const SampleTable<T>& table = tables[size_t(r - r0)];
                if (table.empty_roi) continue;
                const int64_t b = static_cast<int64_t>(rois[r * 5]);
                T* gx = grad_input + (b * channels + c) * hw;
                const T* go = grad_output + (r * channels + c) * plane;
                for (int64_t bin = 0; bin < plane; ++bin) {
                    const T share = go[bin] / table.count;
                    for (int64_t e = table.bin_start[size_t(bin)]; e < table.bin_start[size_t(bin + 1)]; ++e) {
                        const auto& s = table.entries[size_t(e)];
                        gx[s.o00] += share * s.w00;
                        gx[s.o01] += share * s.w01;
                        gx[s.o10] += share * s.w10;
                        gx[s.o11] += share * s.w11;
                    }
                }
            }
        });
    }
    return VIMDENSE_DET_OK;
}

}  // namespace

extern "C" {

const char* vimdense_det_error_string(int32_t code) {
    switch (code) {
        case VIMDENSE_DET_OK: return "ok";
        case VIMDENSE_DET_ERR_NULL_POINTER: return "a required pointer is null";
        case VIMDENSE_DET_ERR_BAD_SHAPE: return "a size is negative or out of range";
        case VIMDENSE_DET_ERR_ALLOC: return "memory could not be allocated";
        case VIMDENSE_DET_ERR_NO_CUDA: return "the native library was built without CUDA kernels";
        case VIMDENSE_DET_ERR_CUDA: return "a CUDA runtime call or kernel launch failed";
        case VIMDENSE_DET_ERR_BAD_ARGUMENT: return "an argument is out of range";
        default: return "unknown error";
    }
}

int32_t vimdense_roi_align_fwd_cpu_f32(const float* input, const float* rois, int64_t batch, int64_t channels,
                                       int64_t height, int64_t width, int64_t num_rois, int64_t pooled_h,
                                       int64_t pooled_w, double spatial_scale, int32_t sampling_ratio,
                                       int32_t aligned, float* output) {
    return forward<float>(input, rois, batch, channels, height, width, num_rois, pooled_h, pooled_w, spatial_scale,
                          sampling_ratio, aligned, output);
}

int32_t vimdense_roi_align_fwd_cpu_f64(const double* input, const double* rois, int64_t batch, int64_t channels,
                                       int64_t height, int64_t width, int64_t num_rois, int64_t pooled_h,
                                       int64_t pooled_w, double spatial_scale, int32_t sampling_ratio,
                                       int32_t aligned, double* output) {
    return forward<double>(input, rois, batch, channels, height, width, num_rois, pooled_h, pooled_w, spatial_scale,
                           sampling_ratio, aligned, output);
}

int32_t vimdense_roi_align_bwd_cpu_f32(const float* grad_output, const float* rois, int64_t batch, int64_t channels,
                                       int64_t height, int64_t width, int64_t num_rois, int64_t pooled_h,
                                       int64_t pooled_w, double spatial_scale, int32_t sampling_ratio,
                                       int32_t aligned, float* grad_input) {
    return backward<float>(grad_output, rois, batch, channels, height, width, num_rois, pooled_h, pooled_w,
                           spatial_scale, sampling_ratio, aligned, grad_input);
}

int32_t vimdense_roi_align_bwd_cpu_f64(const double* grad_output, const double* rois, int64_t batch,
                                       int64_t channels, int64_t height, int64_t width, int64_t num_rois,
                                       int64_t pooled_h, int64_t pooled_w, double spatial_scale,
                                       int32_t sampling_ratio, int32_t aligned, double* grad_input) {
    return backward<double>(grad_output, rois, batch, channels, height, width, num_rois, pooled_h, pooled_w,
                            spatial_scale, sampling_ratio, aligned, grad_input);
}

#ifndef VIMDENSE_WITH_CUDA
// Without CUDA the entry points exist (every build exports the same ABI) and say so.
int32_t vimdense_roi_align_fwd_cuda_f32(const float*, const float*, int64_t, int64_t, int64_t, int64_t, int64_t,
                                        int64_t, int64_t, double, int32_t, int32_t, float*, void*) {
    return VIMDENSE_DET_ERR_NO_CUDA;
}
int32_t vimdense_roi_align_bwd_cuda_f32(const float*, const float*, int64_t, int64_t, int64_t, int64_t, int64_t,
                                        int64_t, int64_t, double, int32_t, int32_t, float*, void*) {
    return VIMDENSE_DET_ERR_NO_CUDA;
}
#endif

}  // extern "C"
