// Shared helpers of the detection-op CTest programs: random problems, a naive double-precision
// RoIAlign written from the definition (the independent oracle), a naive NMS and checks.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>

namespace det_test {

struct RoiProblem {
    int64_t batch, channels, height, width, num_rois, pooled_h, pooled_w;
    double scale;
    int32_t sampling_ratio;
    bool aligned;
    std::vector<float> input, rois;
};

// Rois in image coordinates (feature size / scale), some partly or fully outside the map, some tiny,
// some inverted, so every branch of the sampling rules is exercised.
inline RoiProblem random_roi_problem(int64_t batch, int64_t channels, int64_t height, int64_t width,
                                     int64_t num_rois, int64_t pooled, double scale, int32_t sampling_ratio,
                                     bool aligned, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_real_distribution<float> uni(0.0f, 1.0f);
    RoiProblem p{batch, channels, height, width, num_rois, pooled, pooled, scale, sampling_ratio, aligned, {}, {}};
    p.input.resize(size_t(batch * channels * height * width));
    for (auto& v : p.input) v = normal(rng);
    const float img_w = float(width / scale), img_h = float(height / scale);
    p.rois.resize(size_t(num_rois * 5));
    for (int64_t r = 0; r < num_rois; ++r) {
        float* roi = p.rois.data() + r * 5;
        roi[0] = float(int64_t(uni(rng) * float(batch)) % batch);
        const int kind = int(r % 5);
        float x1 = (uni(rng) * 1.4f - 0.2f) * img_w, y1 = (uni(rng) * 1.4f - 0.2f) * img_h;
        float w = uni(rng) * img_w * 0.8f, h = uni(rng) * img_h * 0.8f;
        if (kind == 3) { w = uni(rng) * 1.5f; h = uni(rng) * 1.5f; }            // tiny
        if (kind == 4) { w = -uni(rng) * 3.0f; h = uni(rng) * 5.0f; }           // inverted width
        roi[1] = x1; roi[2] = y1; roi[3] = x1 + w; roi[4] = y1 + h;
    }
    return p;
}

// Bilinear read at (y, x) with torchvision's border rules, in double.
inline double naive_sample(const float* plane, int64_t H, int64_t W, double y, double x) {
    if (y < -1.0 || y > double(H) || x < -1.0 || x > double(W)) return 0.0;
    y = std::max(y, 0.0);
    x = std::max(x, 0.0);
    int64_t y0 = int64_t(std::floor(y)), x0 = int64_t(std::floor(x));
    int64_t y1 = y0 + 1, x1 = x0 + 1;
    if (y0 >= H - 1) { y0 = y1 = H - 1; y = double(y0); }
    if (x0 >= W - 1) { x0 = x1 = W - 1; x = double(x0); }
    const double ly = y - double(y0), lx = x - double(x0);
    auto at = [&](int64_t yy, int64_t xx) { return double(plane[yy * W + xx]); };
    return (1 - ly) * ((1 - lx) * at(y0, x0) + lx * at(y0, x1)) + ly * ((1 - lx) * at(y1, x0) + lx * at(y1, x1));
}

// output (num_rois, channels, ph, pw) in double.
inline std::vector<double> naive_roi_align(const RoiProblem& p) {
    std::vector<double> out(size_t(p.num_rois * p.channels * p.pooled_h * p.pooled_w), 0.0);
    const double off = p.aligned ? 0.5 : 0.0;
    for (int64_t r = 0; r < p.num_rois; ++r) {
        const float* roi = p.rois.data() + r * 5;
        const int64_t b = int64_t(roi[0]);
        const double x1 = roi[1] * p.scale - off, y1 = roi[2] * p.scale - off;
        double rw = roi[3] * p.scale - off - x1, rh = roi[4] * p.scale - off - y1;
        if (!p.aligned) { rw = std::max(rw, 1.0); rh = std::max(rh, 1.0); }
        const double bw = rw / double(p.pooled_w), bh = rh / double(p.pooled_h);
        const int64_t gh = p.sampling_ratio > 0 ? p.sampling_ratio : std::max<int64_t>(0, int64_t(std::ceil(bh)));
        const int64_t gw = p.sampling_ratio > 0 ? p.sampling_ratio : std::max<int64_t>(0, int64_t(std::ceil(bw)));
        for (int64_t c = 0; c < p.channels; ++c) {
            const float* plane = p.input.data() + (b * p.channels + c) * p.height * p.width;
            for (int64_t ph = 0; ph < p.pooled_h; ++ph)
                for (int64_t pw = 0; pw < p.pooled_w; ++pw) {
                    double sum = 0.0;
                    for (int64_t iy = 0; iy < gh; ++iy)
                        for (int64_t ix = 0; ix < gw; ++ix) {
                            const double y = y1 + bh * (double(ph) + (double(iy) + 0.5) / double(gh));
                            const double x = x1 + bw * (double(pw) + (double(ix) + 0.5) / double(gw));
                            sum += naive_sample(plane, p.height, p.width, y, x);
                        }
                    out[size_t(((r * p.channels + c) * p.pooled_h + ph) * p.pooled_w + pw)] =
                        sum / double(std::max<int64_t>(gh * gw, 1));
                }
        }
    }
    return out;
}

// Random boxes in clusters so that many overlap around any threshold.
inline std::vector<float> random_boxes(int64_t n, uint32_t seed, std::vector<float>* scores) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> uni(0.0f, 1.0f);
    std::vector<float> boxes(size_t(n * 4));
    const int64_t clusters = std::max<int64_t>(1, n / 12);
    std::vector<float> cx(static_cast<size_t>(clusters)), cy(static_cast<size_t>(clusters));
    for (int64_t k = 0; k < clusters; ++k) { cx[size_t(k)] = uni(rng) * 500; cy[size_t(k)] = uni(rng) * 500; }
    for (int64_t i = 0; i < n; ++i) {
        const int64_t k = int64_t(uni(rng) * float(clusters)) % clusters;
        const float x = cx[size_t(k)] + uni(rng) * 30, y = cy[size_t(k)] + uni(rng) * 30;
        const float w = 10 + uni(rng) * 60, h = 10 + uni(rng) * 60;
        boxes[size_t(i * 4 + 0)] = x; boxes[size_t(i * 4 + 1)] = y;
        boxes[size_t(i * 4 + 2)] = x + w; boxes[size_t(i * 4 + 3)] = y + h;
    }
    if (scores) {
        scores->resize(size_t(n));
        for (auto& s : *scores) s = uni(rng);
    }
    return boxes;
}

// Indices sorted by decreasing score, ties by index.
inline std::vector<int64_t> priority_order(const std::vector<float>& scores) {
    std::vector<int64_t> order(scores.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return scores[size_t(a)] > scores[size_t(b)]; });
    return order;
}

// Naive NMS in double: repeatedly take the best remaining box, drop every remaining box over the threshold.
inline std::vector<int64_t> naive_nms(const std::vector<float>& boxes, const std::vector<int64_t>& order, double thr) {
    std::vector<int64_t> remaining = order, kept;
    auto iou = [&](int64_t a, int64_t b) {
        const float* p = boxes.data() + a * 4;
        const float* q = boxes.data() + b * 4;
        const double iw = std::max(0.0, double(std::min(p[2], q[2])) - double(std::max(p[0], q[0])));
        const double ih = std::max(0.0, double(std::min(p[3], q[3])) - double(std::max(p[1], q[1])));
        const double inter = iw * ih;
        const double ua = (double(p[2]) - p[0]) * (double(p[3]) - p[1]) + (double(q[2]) - q[0]) * (double(q[3]) - q[1]) - inter;
        return inter / ua;
    };
    while (!remaining.empty()) {
        const int64_t best = remaining.front();
        kept.push_back(best);
        std::vector<int64_t> next;
        for (size_t i = 1; i < remaining.size(); ++i)
            if (!(iou(best, remaining[i]) > thr)) next.push_back(remaining[i]);
        remaining.swap(next);
    }
    return kept;
}

template <class TA, class TB>
inline double max_abs_diff(const std::vector<TA>& a, const std::vector<TB>& b) {
    double m = 0.0;
    for (size_t i = 0; i < b.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - double(b[i])));
    return m;
}

struct Checker {
    int failures = 0;
    void expect(bool ok, const char* what, double value, double limit) {
        std::printf("  %-58s %.3e (limit %.1e) %s\n", what, value, limit, ok ? "ok" : "FAIL");
        if (!ok) ++failures;
    }
    void le(const char* what, double value, double limit) { expect(value <= limit, what, value, limit); }
    void is(bool ok, const char* what) {
        std::printf("  %-58s %s\n", what, ok ? "ok" : "FAIL");
        if (!ok) ++failures;
    }
};

}  // namespace det_test
