// Speed of the CUDA selective scan against the CPU kernel in the same run, on Vim-Ti's shapes (384
// channels, 16 states; one direction of one mixer). A benchmark, not a test: CTest does not run it.
// Run on a GPU machine without .NET: `artifacts/native/tests/vimdense_bench_scan_cuda [repeats]`.
// Prints one line per shape and pass: median milliseconds, billions of state updates per second
// (batch·channels·L·N / time) and the CUDA/CPU speed ratio, plus the CUDA/CPU relative error of the
// outputs, so a wrong kernel cannot pass for a fast one.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>

#include "cuda_test_common.h"
#include "scan_test_common.h"
#include "vimdense/selective_scan.h"

using namespace scan_test;
using DeviceBuffer = cuda_test::DeviceBuffer<float>;

namespace {

double median_ms(int repeats, const std::function<double()>& run_once_ms) {
    run_once_ms();   // warm-up: first-touch pages, CUDA module load, the CPU pool's threads
    std::vector<double> times;
    for (int i = 0; i < repeats; ++i) times.push_back(run_once_ms());
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}

double cpu_ms(const std::function<int()>& call) {
    auto start = std::chrono::steady_clock::now();
    int rc = call();
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (rc != 0) {
        std::printf("CPU kernel failed with code %d\n", rc);
        std::exit(1);
    }
    return ms;
}

double cuda_ms(const std::function<int()>& call) {
    cudaEvent_t start, stop;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    cudaEventRecord(start);
    int rc = call();
    cudaEventRecord(stop);
    cudaError_t err = cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    if (rc != 0 || err != cudaSuccess) {
        std::printf("CUDA kernel failed with code %d (%s)\n", rc, cudaGetErrorString(err));
        std::exit(1);
    }
    return ms;
}

void report(const char* pass, int64_t batch, int64_t L, double updates, double cpu, double gpu, double error) {
    std::printf("%-4s batch=%lld L=%-5lld  CPU %9.3f ms %7.2f G/s   CUDA %8.3f ms %8.2f G/s   "
                "CUDA/CPU speed %7.1fx   rel. error %.1e\n",
                pass, (long long)batch, (long long)L, cpu, updates / cpu / 1e6, gpu, updates / gpu / 1e6, cpu / gpu,
                error);
}

void bench_shape(int64_t batch, int64_t L, int repeats) {
    const int64_t dim = 384, N = 16;
    Problem p = random_problem(batch, dim, L, N, true, true, true, true, uint32_t(L));
    const double updates = double(batch) * dim * L * N;
    const size_t bdl = p.u.size();
    const size_t nck = size_t(vimdense_scan_checkpoint_floats(batch, dim, L, N));
    std::vector<float> out(bdl), last(size_t(batch * dim * N)), ck(nck), dout(bdl, 1.0f);
    std::vector<float> gu(bdl), gdl(bdl), gA(p.A.size()), gB(p.B.size()), gC(p.C.size()),
        gD(static_cast<size_t>(dim)), gz(bdl), gbias(static_cast<size_t>(dim));
    auto fwd_cpu = [&] {
        return vimdense_selective_scan_fwd_cpu(p.u.data(), p.delta.data(), p.A.data(), p.B.data(), p.C.data(),
                                               ptr(p.D), ptr(p.z), ptr(p.bias), 1, 0, batch, dim, L, N, out.data(),
                                               last.data(), ck.data());
    };
    auto bwd_cpu = [&] {
        return vimdense_selective_scan_bwd_cpu(p.u.data(), p.delta.data(), p.A.data(), p.B.data(), p.C.data(),
                                               ptr(p.D), ptr(p.z), ptr(p.bias), 1, 0, batch, dim, L, N, ck.data(),
                                               dout.data(), gu.data(), gdl.data(), gA.data(), gB.data(), gC.data(),
                                               gD.data(), gz.data(), gbias.data());
    };
    DeviceBuffer u(p.u), delta(p.delta), A(p.A), B(p.B), C(p.C), D(p.D), z(p.z), bias(p.bias), dO(dout);
    DeviceBuffer out_d(bdl), last_d(last.size()), ck_d(nck);
    DeviceBuffer gu_d(bdl), gdl_d(bdl), gA_d(gA.size()), gB_d(gB.size()), gC_d(gC.size()), gD_d(gD.size()), gz_d(bdl),
        gbias_d(gbias.size());
    auto fwd_cuda = [&] {
        return vimdense_selective_scan_fwd_cuda(u.p, delta.p, A.p, B.p, C.p, D.optional(), z.optional(),
                                                bias.optional(), 1, 0, batch, dim, L, N, out_d.p, last_d.p, ck_d.p,
                                                nullptr);
    };
    auto bwd_cuda = [&] {
        return vimdense_selective_scan_bwd_cuda(u.p, delta.p, A.p, B.p, C.p, D.optional(), z.optional(),
                                                bias.optional(), 1, 0, batch, dim, L, N, ck_d.p, dO.p, gu_d.p,
                                                gdl_d.p, gA_d.p, gB_d.p, gC_d.p, gD_d.p, gz_d.p, gbias_d.p, nullptr);
    };
    const int cpu_repeats = std::max(3, repeats / 4);
    double fwd_cpu_ms = median_ms(cpu_repeats, [&] { return cpu_ms(fwd_cpu); });
    double fwd_cuda_ms = median_ms(repeats, [&] { return cuda_ms(fwd_cuda); });
    report("fwd", batch, L, updates, fwd_cpu_ms, fwd_cuda_ms, rel_error(out_d.host(), out));
    double bwd_cpu_ms = median_ms(cpu_repeats, [&] { return cpu_ms(bwd_cpu); });
    double bwd_cuda_ms = median_ms(repeats, [&] { return cuda_ms(bwd_cuda); });
    report("bwd", batch, L, updates, bwd_cpu_ms, bwd_cuda_ms,
           std::max(rel_error(gu_d.host(), gu), rel_error(gB_d.host(), gB)));
}

}  // namespace

int main(int argc, char** argv) {
    switch (cuda_test::probe_device("vimdense_bench_scan_cuda")) {
        case cuda_test::DeviceState::absent: return VIMDENSE_SKIP_CODE;
        case cuda_test::DeviceState::broken: return 1;
        case cuda_test::DeviceState::usable: break;
    }
    const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 20;
    std::printf("CPU kernel: %d thread(s); medians of %d CUDA and %d CPU runs after one warm-up\n",
                vimdense_scan_get_num_threads(), repeats, std::max(3, repeats / 4));
    // Vim-Ti's token counts at 224², 512² and 1024² (with the class token), then a batch of 8 at 1024².
    for (int64_t L : {197, 1025, 4097}) bench_shape(1, L, repeats);
    bench_shape(8, 4097, repeats);
    return 0;
}
