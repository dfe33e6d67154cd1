// CUDA selective scan vs the CPU kernel (itself tested against a double-precision oracle) on
// random inputs: forward output, last state, checkpoints and every gradient. Built where CUDA is
// enabled (CTest selective_scan_cuda, needs a GPU) and, elsewhere, against the CPU emulation of
// CUDA (selective_scan_cuda_emulated, tests/cuda_emulation). Runs without .NET:
// `ctest --test-dir artifacts/native`.
#include <cuda_runtime.h>

#include "cuda_test_common.h"
#include "scan_test_common.h"
#include "vimdense/selective_scan.h"

using namespace scan_test;

namespace {

using DeviceBuffer = cuda_test::DeviceBuffer<float>;

// Vim-Ti's sequence at 512x512 (1024 patches + the class token). The CPU emulation
// (tests/cuda_emulation, one fiber per CUDA thread) runs that case on a quarter of it, keeping its
// three blocks of channels and the one step past a chunk boundary: the whole program then takes a few
// seconds on two cores instead of twenty.
#ifdef VIMDENSE_CUDA_EMULATION
constexpr int64_t kVimTiLength = 257;
#else
constexpr int64_t kVimTiLength = 1025;
#endif

void check_direction(int64_t batch, int64_t dim, int64_t L, int64_t N, bool hasD, bool hasZ, bool hasBias,
                     bool softplus, int reverse, uint32_t seed, Checker& chk) {
    Problem p = random_problem(batch, dim, L, N, hasD, hasZ, hasBias, softplus, seed);
    std::printf("case batch=%lld dim=%lld L=%lld N=%lld D=%d z=%d bias=%d softplus=%d reverse=%d\n", (long long)batch,
                (long long)dim, (long long)L, (long long)N, hasD, hasZ, hasBias, softplus, reverse);
    const size_t bdl = p.u.size();
    const int64_t nck = vimdense_scan_checkpoint_floats(batch, dim, L, N);

    // CPU
    std::vector<float> out(bdl), last(static_cast<size_t>(batch * dim * N)), ck(static_cast<size_t>(nck));
    int rc = vimdense_selective_scan_fwd_cpu(p.u.data(), p.delta.data(), p.A.data(), p.B.data(), p.C.data(), ptr(p.D),
                                             ptr(p.z), ptr(p.bias), softplus, reverse, batch, dim, L, N, out.data(),
                                             last.data(), ck.data());
    chk.expect(rc == 0, "CPU forward return code", rc, 0);
    std::mt19937 rng(seed + 7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> dout(bdl);
    for (auto& v : dout) v = normal(rng);
    std::vector<float> gu(bdl), gdl(bdl), gA(p.A.size()), gB(p.B.size()), gC(p.C.size()), gD(static_cast<size_t>(dim)),
        gz(bdl), gbias(static_cast<size_t>(dim));
    rc = vimdense_selective_scan_bwd_cpu(p.u.data(), p.delta.data(), p.A.data(), p.B.data(), p.C.data(), ptr(p.D),
                                         ptr(p.z), ptr(p.bias), softplus, reverse, batch, dim, L, N, ck.data(), dout.data(),
                                         gu.data(), gdl.data(), gA.data(), gB.data(), gC.data(), gD.data(),
                                         gz.data(), gbias.data());
    chk.expect(rc == 0, "CPU backward return code", rc, 0);

    // CUDA
    DeviceBuffer u(p.u), delta(p.delta), A(p.A), B(p.B), C(p.C), D(p.D), z(p.z), bias(p.bias), dO(dout);
    DeviceBuffer out_d(bdl), last_d(last.size()), ck_d(static_cast<size_t>(nck));
    rc = vimdense_selective_scan_fwd_cuda(u.p, delta.p, A.p, B.p, C.p, D.optional(), z.optional(), bias.optional(),
                                          softplus, reverse,
                                          batch, dim, L, N, out_d.p, last_d.p, ck_d.p, nullptr);
    chk.expect(rc == 0, "CUDA forward return code", rc, 0);
    DeviceBuffer gu_d(bdl), gdl_d(bdl), gA_d(gA.size()), gB_d(gB.size()), gC_d(gC.size()), gD_d(gD.size()),
        gz_d(bdl), gbias_d(gbias.size());
    rc = vimdense_selective_scan_bwd_cuda(u.p, delta.p, A.p, B.p, C.p, D.optional(), z.optional(), bias.optional(),
                                          softplus, reverse,
                                          batch, dim, L, N, ck_d.p, dO.p, gu_d.p, gdl_d.p, gA_d.p, gB_d.p, gC_d.p,
                                          hasD ? gD_d.p : nullptr, hasZ ? gz_d.p : nullptr,
                                          hasBias ? gbias_d.p : nullptr, nullptr);
    chk.expect(rc == 0, "CUDA backward return code", rc, 0);
    cudaError_t err = cudaDeviceSynchronize();
    chk.expect(err == cudaSuccess, "CUDA synchronize", double(err), 0);
    if (err != cudaSuccess) {
        std::printf("  CUDA error: %s\n", cudaGetErrorString(err));
        return;
    }

    chk.le("forward: CUDA vs CPU", rel_error(out_d.host(), out), 1e-5);
    chk.le("last state: CUDA vs CPU", rel_error(last_d.host(), last), 1e-5);
    chk.le("checkpoints: CUDA vs CPU", rel_error(ck_d.host(), ck), 1e-5);
    chk.le("du: CUDA vs CPU", rel_error(gu_d.host(), gu), 1e-4);
    chk.le("ddelta: CUDA vs CPU", rel_error(gdl_d.host(), gdl), 1e-4);
    chk.le("dA: CUDA vs CPU", rel_error(gA_d.host(), gA), 1e-4);
    chk.le("dB: CUDA vs CPU", rel_error(gB_d.host(), gB), 1e-4);
    chk.le("dC: CUDA vs CPU", rel_error(gC_d.host(), gC), 1e-4);
    if (hasD) chk.le("dD: CUDA vs CPU", rel_error(gD_d.host(), gD), 1e-4);
    if (hasZ) chk.le("dz: CUDA vs CPU", rel_error(gz_d.host(), gz), 1e-4);
    if (hasBias) chk.le("ddelta_bias: CUDA vs CPU", rel_error(gbias_d.host(), gbias), 1e-4);
}

// Both scan directions (the CPU reverse scan is checked against the flipped oracle in the CPU test).
void check_case(int64_t batch, int64_t dim, int64_t L, int64_t N, bool hasD, bool hasZ, bool hasBias, bool softplus,
                uint32_t seed, Checker& chk) {
    for (int reverse = 0; reverse <= 1; ++reverse)
        check_direction(batch, dim, L, N, hasD, hasZ, hasBias, softplus, reverse, seed, chk);
}

}  // namespace

int main() {
    switch (cuda_test::probe_device("vimdense_test_scan_cuda")) {
        case cuda_test::DeviceState::absent: return VIMDENSE_SKIP_CODE;
        case cuda_test::DeviceState::broken: return 1;
        case cuda_test::DeviceState::usable: break;
    }
    Checker chk;
    check_case(1, 3, 1, 1, false, false, false, false, 1, chk);
    check_case(2, 70, 130, 16, true, true, true, true, 2, chk);     // channels not a multiple of 32
    check_case(3, 5, 7, 4, true, false, true, false, 3, chk);
    check_case(1, 33, 65, 20, false, true, false, true, 4, chk);
    check_case(2, 40, 200, 64, true, true, true, true, 5, chk);
    check_case(1, 50, 100, 40, true, true, true, true, 7, chk);     // state tiles 32+8 (fwd), 16+16+8 (bwd)
    check_case(1, 384, kVimTiLength, 16, true, true, true, true, 6, chk);   // Vim-Ti channels
    // Errors: the CUDA backward needs checkpoints; N above 64 is not supported.
    int rc = vimdense_selective_scan_bwd_cuda(reinterpret_cast<float*>(16), reinterpret_cast<float*>(16),
                                              reinterpret_cast<float*>(16), reinterpret_cast<float*>(16),
                                              reinterpret_cast<float*>(16), nullptr, nullptr, nullptr, 0, 0, 1, 1, 1, 1,
                                              nullptr, reinterpret_cast<float*>(16), reinterpret_cast<float*>(16),
                                              reinterpret_cast<float*>(16), reinterpret_cast<float*>(16),
                                              reinterpret_cast<float*>(16), reinterpret_cast<float*>(16), nullptr,
                                              nullptr, nullptr, nullptr);
    chk.expect(rc == VIMDENSE_SCAN_ERR_NULL_POINTER, "CUDA backward without checkpoints -> ERR_NULL_POINTER", rc,
               VIMDENSE_SCAN_ERR_NULL_POINTER);
    rc = vimdense_selective_scan_fwd_cuda(reinterpret_cast<float*>(16), reinterpret_cast<float*>(16),
                                          reinterpret_cast<float*>(16), reinterpret_cast<float*>(16),
                                          reinterpret_cast<float*>(16), nullptr, nullptr, nullptr, 0, 0, 1, 1, 1, 65,
                                          reinterpret_cast<float*>(16), nullptr, nullptr, nullptr);
    chk.expect(rc == VIMDENSE_SCAN_ERR_UNSUPPORTED, "CUDA forward with N=65 -> ERR_UNSUPPORTED", rc,
               VIMDENSE_SCAN_ERR_UNSUPPORTED);
    std::printf("%s: %d failure(s)\n", chk.failures ? "FAILED" : "PASSED", chk.failures);
    return chk.failures ? 1 : 0;
}
