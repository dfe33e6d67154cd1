// CPU RoIAlign and NMS kernels against naive double-precision references written from the
// definitions, plus hand-computed cases, the adjoint identity of the backward, thread-count
// independence and error codes. Runs without .NET: `ctest --test-dir artifacts/native`.
#include <cstring>

#include "detection_test_common.h"
#include "vimdense/native.h"

using namespace det_test;

namespace {

std::vector<float> run_forward_f32(const RoiProblem& p) {
    std::vector<float> out(size_t(p.num_rois * p.channels * p.pooled_h * p.pooled_w), -7.0f);
    int rc = vimdense_roi_align_fwd_cpu_f32(p.input.data(), p.rois.data(), p.batch, p.channels, p.height, p.width,
                                            p.num_rois, p.pooled_h, p.pooled_w, p.scale, p.sampling_ratio, p.aligned,
                                            out.data());
    if (rc != 0) std::printf("  forward f32 returned %d\n", rc);
    return out;
}

void roi_forward_case(int64_t batch, int64_t channels, int64_t H, int64_t W, int64_t rois, int64_t pooled, double scale,
                      int32_t ratio, bool aligned, uint32_t seed, Checker& chk) {
    RoiProblem p = random_roi_problem(batch, channels, H, W, rois, pooled, scale, ratio, aligned, seed);
    std::printf("roi_align case %lldx%lldx%lldx%lld rois=%lld pooled=%lld scale=%g ratio=%d aligned=%d\n",
                (long long)batch, (long long)channels, (long long)H, (long long)W, (long long)rois,
                (long long)pooled, scale, ratio, int(aligned));
    const std::vector<double> expected = naive_roi_align(p);
    const std::vector<float> out32 = run_forward_f32(p);
    chk.le("f32 forward vs naive (max abs)", max_abs_diff(out32, expected), 2e-5);

    std::vector<double> in64(p.input.begin(), p.input.end()), rois64(p.rois.begin(), p.rois.end());
    std::vector<double> out64(expected.size());
    int rc = vimdense_roi_align_fwd_cpu_f64(in64.data(), rois64.data(), batch, channels, H, W, rois, pooled, pooled,
                                            scale, ratio, aligned, out64.data());
    chk.expect(rc == 0, "f64 forward return code", rc, 0);
    chk.le("f64 forward vs naive (max abs)", max_abs_diff(out64, expected), 1e-10);

    // The op is linear in its input, so the backward is its adjoint: <g, A x> = <A^T g, x>.
    std::mt19937 rng(seed + 1);
    std::normal_distribution<double> normal(0.0, 1.0);
    std::vector<double> g(expected.size());
    for (auto& v : g) v = normal(rng);
    std::vector<double> gx(in64.size(), 123.0);
    rc = vimdense_roi_align_bwd_cpu_f64(g.data(), rois64.data(), batch, channels, H, W, rois, pooled, pooled, scale,
                                        ratio, aligned, gx.data());
    chk.expect(rc == 0, "f64 backward return code", rc, 0);
    double lhs = 0.0, rhs = 0.0, scale_ref = 0.0;
    for (size_t i = 0; i < g.size(); ++i) { lhs += g[i] * out64[i]; scale_ref += std::fabs(g[i] * out64[i]); }
    for (size_t i = 0; i < gx.size(); ++i) rhs += gx[i] * in64[i];
    chk.le("backward is the adjoint of forward (relative)", std::fabs(lhs - rhs) / std::max(scale_ref, 1e-30), 1e-12);

    std::vector<float> g32(g.begin(), g.end()), gx32(in64.size(), 5.0f);
    rc = vimdense_roi_align_bwd_cpu_f32(g32.data(), p.rois.data(), batch, channels, H, W, rois, pooled, pooled, scale,
                                        ratio, aligned, gx32.data());
    chk.expect(rc == 0, "f32 backward return code", rc, 0);
    chk.le("f32 backward vs f64 backward (max abs)", max_abs_diff(gx32, gx), 1e-4);

    // Thread count must not change a single bit (each thread owns whole planes).
    const int before = vimdense_scan_get_num_threads();
    vimdense_scan_set_num_threads(1);
    const std::vector<float> one = run_forward_f32(p);
    std::vector<float> gx_one(gx32.size());
    vimdense_roi_align_bwd_cpu_f32(g32.data(), p.rois.data(), batch, channels, H, W, rois, pooled, pooled, scale, ratio,
                                   aligned, gx_one.data());
    vimdense_scan_set_num_threads(before);
    chk.is(std::memcmp(one.data(), out32.data(), one.size() * sizeof(float)) == 0 &&
               std::memcmp(gx_one.data(), gx32.data(), gx_one.size() * sizeof(float)) == 0,
           "1 thread and N threads agree bitwise");
}

void roi_hand_cases(Checker& chk) {
    std::printf("roi_align hand cases\n");
    // f(y, x) = 4y + x on a 4x4 map: bilinear sampling of a linear function is exact.
    std::vector<float> map(16);
    for (int y = 0; y < 4; ++y)
        for (int x = 0; x < 4; ++x) map[size_t(y * 4 + x)] = float(4 * y + x);
    // aligned: roi [0.5, 2.5] -> [0, 2] in pixel centres; 1 bin, adaptive grid 2x2 at 0.5, 1.5 -> mean f(1, 1) = 5.
    float roi[5] = {0, 0.5f, 0.5f, 2.5f, 2.5f};
    float out = -1;
    int rc = vimdense_roi_align_fwd_cpu_f32(map.data(), roi, 1, 1, 4, 4, 1, 1, 1, 1.0, 0, 1, &out);
    chk.expect(rc == 0 && std::fabs(out - 5.0f) < 1e-6f, "aligned 1x1 bin over a linear map = f(centre)", out, 5);
    // Same roi unaligned: [0.5, 2.5], samples at 1.0 and 2.0 -> f(1.5, 1.5) = 7.5.
    rc = vimdense_roi_align_fwd_cpu_f32(map.data(), roi, 1, 1, 4, 4, 1, 1, 1, 1.0, 0, 0, &out);
    chk.expect(rc == 0 && std::fabs(out - 7.5f) < 1e-6f, "unaligned shifts by half a pixel", out, 7.5);
    // Scale 0.5 with a 2x2 output: image roi [2, 6] -> feature [1, 3] - 0.5 = [0.5, 2.5]; bins of 1, one sample
    // each at 1.0 and 2.0 -> f at (1,1), (1,2), (2,1), (2,2) = 5, 6, 9, 10.
    float roi2[5] = {0, 2, 2, 6, 6};
    float out4[4];
    rc = vimdense_roi_align_fwd_cpu_f32(map.data(), roi2, 1, 1, 4, 4, 1, 2, 2, 0.5, 0, 1, out4);
    chk.is(rc == 0 && std::fabs(out4[0] - 5) < 1e-6f && std::fabs(out4[1] - 6) < 1e-6f &&
               std::fabs(out4[2] - 9) < 1e-6f && std::fabs(out4[3] - 10) < 1e-6f,
           "scale 0.5, 2x2 bins read f(1,1) f(1,2) f(2,1) f(2,2)");
    // Past the border: samples beyond the last pixel read the last pixel, beyond width+1 read nothing.
    float roi3[5] = {0, 3.5f, 0.5f, 4.5f, 1.5f};  // x samples at 3.5 -> clamped to 3 (value 4*1+3 at y = 0.5 -> 5)
    rc = vimdense_roi_align_fwd_cpu_f32(map.data(), roi3, 1, 1, 4, 4, 1, 1, 1, 1.0, 1, 1, &out);
    chk.expect(rc == 0 && std::fabs(out - 5.0f) < 1e-6f, "sample past the last column reads the last column", out, 5);
    float roi4[5] = {0, 10, 10, 12, 12};
    rc = vimdense_roi_align_fwd_cpu_f32(map.data(), roi4, 1, 1, 4, 4, 1, 1, 1, 1.0, 0, 1, &out);
    chk.expect(rc == 0 && out == 0.0f, "roi fully outside the map gives 0", out, 0);
    float roi5[5] = {3, 0, 0, 2, 2};  // batch index 3 of a batch of 1
    rc = vimdense_roi_align_fwd_cpu_f32(map.data(), roi5, 1, 1, 4, 4, 1, 1, 1, 1.0, 0, 1, &out);
    chk.expect(rc == 0 && out == 0.0f, "roi with an out-of-range batch index gives 0", out, 0);
    float roi6[5] = {0, 2, 2, 1, 3};  // inverted: empty grid
    rc = vimdense_roi_align_fwd_cpu_f32(map.data(), roi6, 1, 1, 4, 4, 1, 1, 1, 1.0, 0, 1, &out);
    chk.expect(rc == 0 && out == 0.0f, "inverted roi (aligned) gives 0", out, 0);
    // Error codes and empty work.
    chk.is(vimdense_roi_align_fwd_cpu_f32(map.data(), roi, 1, 1, 4, 4, 0, 7, 7, 1.0, 0, 1, nullptr) == 0,
           "no rois: ok without an output buffer");
    chk.is(vimdense_roi_align_fwd_cpu_f32(nullptr, roi, 1, 1, 4, 4, 1, 1, 1, 1.0, 0, 1, &out) ==
               VIMDENSE_DET_ERR_NULL_POINTER, "null input is reported");
    chk.is(vimdense_roi_align_fwd_cpu_f32(map.data(), roi, 1, 1, 4, 4, 1, 0, 1, 1.0, 0, 1, &out) ==
               VIMDENSE_DET_ERR_BAD_SHAPE, "pooled size 0 is reported");
    chk.is(vimdense_roi_align_fwd_cpu_f32(map.data(), roi, 1, 1, 4, 4, 1, 1, 1, 0.0, 0, 1, &out) ==
               VIMDENSE_DET_ERR_BAD_ARGUMENT, "spatial scale 0 is reported");
}

std::vector<int64_t> run_nms(const std::vector<float>& boxes, const std::vector<int64_t>* order, double thr, int* rc) {
    const int64_t n = int64_t(boxes.size() / 4);
    std::vector<int64_t> keep(size_t(n) + 1, -1);
    int64_t count = -1;
    *rc = vimdense_nms_cpu_f32(boxes.data(), order ? order->data() : nullptr, n, thr, keep.data(), &count);
    keep.resize(size_t(std::max<int64_t>(count, 0)));
    return keep;
}

void nms_cases(Checker& chk) {
    std::printf("nms\n");
    int rc = 0;
    for (uint32_t seed = 1; seed <= 4; ++seed)
        for (double thr : {0.3, 0.5, 0.7}) {
            std::vector<float> scores;
            const std::vector<float> boxes = random_boxes(300 * seed, seed, &scores);
            const std::vector<int64_t> order = priority_order(scores);
            const std::vector<int64_t> keep = run_nms(boxes, &order, thr, &rc);
            const std::vector<int64_t> expected = naive_nms(boxes, order, thr);
            char what[96];
            std::snprintf(what, sizeof what, "random n=%u thr=%.1f: %zu kept, same as naive", 300 * seed, thr, keep.size());
            chk.is(rc == 0 && keep == expected && keep.size() < order.size() && keep.size() > 1, what);
        }
    // Identical boxes: the first in priority order survives. Ties in score keep the order given.
    const std::vector<float> same = {0, 0, 10, 10, 0, 0, 10, 10, 0, 0, 10, 10, 20, 20, 30, 30};
    std::vector<int64_t> order = {2, 0, 1, 3};
    chk.is(run_nms(same, &order, 0.5, &rc) == std::vector<int64_t>({2, 3}) && rc == 0,
           "identical boxes: only the first in order survives");
    chk.is(run_nms(same, nullptr, 0.99, &rc) == std::vector<int64_t>({0, 3}), "null order = given order");
    // IoU exactly at the threshold is kept (strictly greater suppresses): [0,10] vs [5,15] in x, equal y: 1/3.
    const std::vector<float> third = {0, 0, 10, 10, 5, 0, 15, 10};
    chk.is(run_nms(third, nullptr, 1.0 / 3.0 + 1e-6, &rc).size() == 2, "IoU 1/3 below threshold: both kept");
    chk.is(run_nms(third, nullptr, 0.3, &rc).size() == 1, "IoU 1/3 above threshold 0.3: suppressed");
    // Zero-area boxes: 0/0 is NaN and never suppresses.
    const std::vector<float> flat = {1, 1, 1, 1, 1, 1, 1, 1};
    chk.is(run_nms(flat, nullptr, 0.5, &rc).size() == 2, "zero-area duplicates are both kept");
    // Empty input.
    int64_t count = -1;
    chk.is(vimdense_nms_cpu_f32(nullptr, nullptr, 0, 0.5, nullptr, &count) == 0 && count == 0, "empty input");
    std::vector<int64_t> bad = {0, 5};
    run_nms(third, &bad, 0.5, &rc);
    chk.is(rc == VIMDENSE_DET_ERR_BAD_ARGUMENT, "order index out of range is reported");
}

}  // namespace

int main() {
    Checker chk;
    roi_hand_cases(chk);
    roi_forward_case(1, 3, 9, 11, 12, 7, 1.0, 0, true, 1, chk);
    roi_forward_case(2, 4, 16, 12, 25, 7, 0.25, 0, true, 2, chk);
    roi_forward_case(2, 2, 10, 10, 20, 14, 0.125, 2, true, 3, chk);
    roi_forward_case(3, 2, 8, 13, 20, 3, 0.5, 0, false, 4, chk);
    roi_forward_case(1, 5, 32, 32, 40, 7, 1.0 / 32, 0, true, 5, chk);
    roi_forward_case(2, 1, 1, 1, 10, 2, 1.0, 0, true, 6, chk);
    nms_cases(chk);
    std::printf("%s: %d failure(s)\n", chk.failures ? "FAILED" : "PASSED", chk.failures);
    return chk.failures ? 1 : 0;
}
