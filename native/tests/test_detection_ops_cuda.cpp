// CUDA RoIAlign and NMS vs the CPU kernels (themselves tested against naive references in
// test_detection_ops_cpu.cpp) on random problems. Built where CUDA is enabled (CTest
// detection_ops_cuda, needs a GPU) and, elsewhere, against the CPU emulation of CUDA
// (detection_ops_cuda_emulated, tests/cuda_emulation). Runs without .NET:
// `ctest --test-dir artifacts/native`.
#include <cuda_runtime.h>

#include "cuda_test_common.h"
#include "detection_test_common.h"
#include "vimdense/native.h"

using namespace det_test;

namespace {

using cuda_test::DeviceBuffer;

void roi_case(int64_t batch, int64_t channels, int64_t H, int64_t W, int64_t rois, int64_t pooled, double scale,
              int32_t ratio, bool aligned, uint32_t seed, Checker& chk) {
    RoiProblem p = random_roi_problem(batch, channels, H, W, rois, pooled, scale, ratio, aligned, seed);
    std::printf("roi_align case %lldx%lldx%lldx%lld rois=%lld pooled=%lld scale=%g ratio=%d aligned=%d\n",
                (long long)batch, (long long)channels, (long long)H, (long long)W, (long long)rois,
                (long long)pooled, scale, ratio, int(aligned));
    const size_t out_n = size_t(rois * channels * pooled * pooled);
    std::vector<float> out_cpu(out_n), grad_cpu(p.input.size());
    int rc = vimdense_roi_align_fwd_cpu_f32(p.input.data(), p.rois.data(), batch, channels, H, W, rois, pooled, pooled,
                                            scale, ratio, aligned, out_cpu.data());
    chk.expect(rc == 0, "CPU forward return code", rc, 0);
    std::mt19937 rng(seed + 11);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> g(out_n);
    for (auto& v : g) v = normal(rng);
    rc = vimdense_roi_align_bwd_cpu_f32(g.data(), p.rois.data(), batch, channels, H, W, rois, pooled, pooled, scale,
                                        ratio, aligned, grad_cpu.data());
    chk.expect(rc == 0, "CPU backward return code", rc, 0);

    DeviceBuffer<float> input(p.input), roi_d(p.rois), g_d(g), out_d(out_n), grad_d(p.input.size());
    // Poison the gradient buffer: the CUDA backward must zero-fill it.
    if (grad_d.p) cudaMemset(grad_d.p, 0x7f, grad_d.n * sizeof(float));
    rc = vimdense_roi_align_fwd_cuda_f32(input.p, roi_d.p, batch, channels, H, W, rois, pooled, pooled, scale, ratio,
                                         aligned, out_d.p, nullptr);
    chk.expect(rc == 0, "CUDA forward return code", rc, 0);
    rc = vimdense_roi_align_bwd_cuda_f32(g_d.p, roi_d.p, batch, channels, H, W, rois, pooled, pooled, scale, ratio,
                                         aligned, grad_d.p, nullptr);
    chk.expect(rc == 0, "CUDA backward return code", rc, 0);
    const cudaError_t err = cudaDeviceSynchronize();
    chk.expect(err == cudaSuccess, "CUDA synchronize", double(err), 0);
    if (err != cudaSuccess) {
        std::printf("  CUDA error: %s\n", cudaGetErrorString(err));
        return;
    }
    double out_scale = 1e-30, grad_scale = 1e-30;
    for (float v : out_cpu) out_scale = std::max(out_scale, double(std::fabs(v)));
    for (float v : grad_cpu) grad_scale = std::max(grad_scale, double(std::fabs(v)));
    chk.le("forward: max |CUDA - CPU| / max |CPU|", max_abs_diff(out_d.host(), out_cpu) / out_scale, 1e-5);
    chk.le("backward: max |CUDA - CPU| / max |CPU|", max_abs_diff(grad_d.host(), grad_cpu) / grad_scale, 1e-5);
}

void nms_case(int64_t n, double thr, bool with_order, uint32_t seed, Checker& chk) {
    std::vector<float> scores;
    const std::vector<float> boxes = random_boxes(n, seed, &scores);
    const std::vector<int64_t> order = priority_order(scores);
    std::vector<int64_t> keep_cpu(static_cast<size_t>(n)), keep_cuda(static_cast<size_t>(n));
    int64_t count_cpu = -1, count_cuda = -1;
    int rc = vimdense_nms_cpu_f32(boxes.data(), with_order ? order.data() : nullptr, n, thr, keep_cpu.data(),
                                  &count_cpu);
    DeviceBuffer<float> boxes_d(boxes);
    DeviceBuffer<int64_t> order_d(order);
    const int rc_cuda = vimdense_nms_cuda_f32(boxes_d.p, with_order ? order_d.p : nullptr, n, thr, keep_cuda.data(),
                                              &count_cuda, nullptr);
    keep_cpu.resize(size_t(std::max<int64_t>(count_cpu, 0)));
    keep_cuda.resize(size_t(std::max<int64_t>(count_cuda, 0)));
    char what[112];
    std::snprintf(what, sizeof what, "nms n=%lld thr=%.2f order=%d: CUDA keeps %lld, CPU %lld, identical",
                  (long long)n, thr, int(with_order), (long long)count_cuda, (long long)count_cpu);
    chk.is(rc == 0 && rc_cuda == 0 && keep_cpu == keep_cuda, what);
}

}  // namespace

int main() {
    switch (cuda_test::probe_device("vimdense_test_detection_cuda")) {
        case cuda_test::DeviceState::absent: return VIMDENSE_SKIP_CODE;
        case cuda_test::DeviceState::broken: return 1;
        case cuda_test::DeviceState::usable: break;
    }
    Checker chk;
    roi_case(1, 3, 9, 11, 12, 7, 1.0, 0, true, 1, chk);
    roi_case(2, 16, 64, 48, 200, 7, 0.25, 0, true, 2, chk);
    roi_case(2, 8, 40, 40, 100, 14, 0.125, 2, true, 3, chk);
    roi_case(3, 4, 8, 13, 50, 3, 0.5, 0, false, 4, chk);
    roi_case(2, 1, 1, 1, 10, 2, 1.0, 0, true, 6, chk);
    roi_case(1, 4, 8, 8, 0, 7, 1.0, 0, true, 7, chk);
    for (int64_t n : {1, 63, 64, 65, 500, 3000})
        for (double thr : {0.3, 0.5, 0.7}) nms_case(n, thr, true, uint32_t(n * 7 + int(thr * 10)), chk);
    nms_case(777, 0.5, false, 99, chk);
    int64_t count = -1;
    chk.is(vimdense_nms_cuda_f32(nullptr, nullptr, 0, 0.5, nullptr, &count, nullptr) == 0 && count == 0,
           "nms empty input");
    std::printf("%s: %d failure(s)\n", chk.failures ? "FAILED" : "PASSED", chk.failures);
    return chk.failures ? 1 : 0;
}
