// Fused AdamW and SGD steps on the CPU (semantics in vimdense/optimizer_ops.h): one pass per tensor
// on the calling thread, bit-identical to the TorchSharp path's libtorch ops. The step is bound by
// memory bandwidth, and a second thread did not help: right after the backward, libtorch's OpenMP
// threads still spin on the other cores, and on a 2-core machine a helper thread doubled the step's
// CPU time and wall time (vim bench train, the demo Cascade Mask R-CNN).
//
// How each libtorch op rounds on float32 (libtorch 2.10's CPU kernels, checked element by element
// against torch on sizes 1 to 100,003, so both the vectorised bodies and the scalar tails, and
// tensors split between OpenMP threads):
//   mul_(s), div_(s), add_(s)   one rounding, the double Scalar first cast to float
//   add_(x, alpha)              fma(x, alpha, self): one rounding, body and tail alike
//   addcmul_(a, b, value)       fma(value * a, b, self): the product value * a rounded, then one fma
//   addcdiv_(a, b, value)       self + (value * a) / b, three roundings, no fma
//   sqrt()                      MKL's vsSqrt in high-accuracy mode (within 1 ulp, not correctly
//                               rounded), so it is called here too, from the libtorch in the process
// So this file builds with -ffp-contract=off and spells every fma out; the AVX2 + FMA variant below
// is the same source compiled for hardware FMA, which the portable variant gets from libm.
// libtorch does not flush denormals (torch.set_flush_denormal is off by default), so neither do we.
#include <dlfcn.h>

#include <cmath>
#include <cstdint>

#include "vimdense/native.h"

namespace {

int32_t check_tensors(int64_t count, const void* params, const void* grads, const int64_t* numels) {
    if (count < 0) return VIMDENSE_OPT_ERR_BAD_SHAPE;
    if (count == 0) return VIMDENSE_OPT_OK;
    if (!params || !grads || !numels) return VIMDENSE_OPT_ERR_NULL_POINTER;
    for (int64_t i = 0; i < count; ++i)
        if (numels[i] < 0) return VIMDENSE_OPT_ERR_BAD_SHAPE;
    return VIMDENSE_OPT_OK;
}

bool any_null(int64_t count, const void* const* pointers, const int64_t* numels) {
    for (int64_t i = 0; i < count; ++i)
        if (numels[i] > 0 && !pointers[i]) return true;
    return false;
}

// MKL's Fortran-style vmsSqrt(n, a, r, mode), exported by libtorch_cpu.so, which links MKL statically;
// ATen's sqrt calls it with this mode (VML_HA | VML_FTZDAZ_OFF | VML_ERRMODE_IGNORE). n is an MKL_INT,
// 32 bits in the LP64 interface libtorch 2.10 links and 64 in ILP64: it is passed as an int64 below
// 2^31, whose first four bytes on x86-64 (little-endian) are the same number, so either interface
// reads the right count instead of 4 bytes of stack beside it. mode is 64 bits in both.
using VmsSqrt = void (*)(const int64_t* n, const float* a, float* r, const int64_t* mode);
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "MKL_INT's width is bridged by a little-endian int64");
constexpr int64_t kVmlMode = 0x2 | 0x140000 | 0x100;

// Null where no libtorch with MKL is loaded (the native tests, a libtorch built without MKL): ATen
// then takes its own vectorised sqrt, which is correctly rounded like std::sqrt.
VmsSqrt libtorch_sqrt() {
    static const VmsSqrt resolved = []() -> VmsSqrt {
        void* torch = dlopen("libtorch_cpu.so", RTLD_LAZY | RTLD_NOLOAD);
        if (!torch) return nullptr;
        auto symbol = reinterpret_cast<VmsSqrt>(dlsym(torch, "VMSSQRT_"));
        dlclose(torch);  // only drops the reference RTLD_NOLOAD added; libtorch stays loaded
        return symbol;
    }();
    return resolved;
}

// Elements per block: MKL's square root runs over a block of second moments between the two passes
// (its results do not depend on where a block starts or ends; checked against torch.sqrt).
constexpr int64_t kBlock = 1024;

struct AdamWScalars {
    float beta1, one_minus_beta1, beta2, one_minus_beta2, eps, decay, step_size, bias2_sqrt;
    bool decays;
};

// The TorchSharp path's ops, one block at a time:
//   if wd: p.mul_(decay); m.mul_(beta1).add_(g, alpha: 1 - beta1); v.mul_(beta2).addcmul_(g, g, value: 1 - beta2)
//   p.addcdiv_(m, v.sqrt().div_(bias2_sqrt).add_(eps), value: step_size)
__attribute__((always_inline)) inline void adamw_tensor(float* __restrict p, const float* __restrict g,
                                                        float* __restrict m, float* __restrict v, int64_t n,
                                                        const AdamWScalars& s, VmsSqrt vml_sqrt) {
    float root[kBlock];
    for (int64_t start = 0; start < n; start += kBlock) {
        const int64_t len = n - start < kBlock ? n - start : kBlock;
        float* __restrict pb = p + start;
        const float* __restrict gb = g + start;
        float* __restrict mb = m + start;
        float* __restrict vb = v + start;
        for (int64_t j = 0; j < len; ++j) {
            const float gj = gb[j];
            mb[j] = __builtin_fmaf(gj, s.one_minus_beta1, mb[j] * s.beta1);
            vb[j] = __builtin_fmaf(s.one_minus_beta2 * gj, gj, vb[j] * s.beta2);
        }
        if (vml_sqrt) {
            vml_sqrt(&len, vb, root, &kVmlMode);
        } else {
            for (int64_t j = 0; j < len; ++j) root[j] = std::sqrt(vb[j]);
        }
        for (int64_t j = 0; j < len; ++j) {
            const float denom = root[j] / s.bias2_sqrt + s.eps;
            const float pj = s.decays ? pb[j] * s.decay : pb[j];
            pb[j] = pj + s.step_size * mb[j] / denom;
        }
    }
}

// The TorchSharp path's ops: d = wd ? g.add(p, alpha: wd) : g; with momentum b = first ? d : b.mul_(mu).add_(d), d = b;
// p.add_(d, alpha: -lr).
__attribute__((always_inline)) inline void sgd_tensor(float* __restrict p, const float* __restrict g,
                                                      float* __restrict b, int64_t n, float wd, float momentum,
                                                      float minus_lr, bool first_step) {
    for (int64_t j = 0; j < n; ++j) {
        float d = wd != 0 ? __builtin_fmaf(p[j], wd, g[j]) : g[j];
        if (b) {
            d = first_step ? d : b[j] * momentum + d;
            b[j] = d;
        }
        p[j] = __builtin_fmaf(d, minus_lr, p[j]);
    }
}

#if defined(__x86_64__)
#define VIMDENSE_FMA_TARGET __attribute__((target("avx2,fma")))
bool has_fma() {
    static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return yes;
}
#else
#define VIMDENSE_FMA_TARGET
bool has_fma() { return false; }
#endif

VIMDENSE_FMA_TARGET void adamw_tensor_fma(float* p, const float* g, float* m, float* v, int64_t n,
                                          const AdamWScalars& s, VmsSqrt vml_sqrt) {
    adamw_tensor(p, g, m, v, n, s, vml_sqrt);
}
void adamw_tensor_portable(float* p, const float* g, float* m, float* v, int64_t n, const AdamWScalars& s,
                           VmsSqrt vml_sqrt) {
    adamw_tensor(p, g, m, v, n, s, vml_sqrt);
}
VIMDENSE_FMA_TARGET void sgd_tensor_fma(float* p, const float* g, float* b, int64_t n, float wd, float momentum,
                                        float minus_lr, bool first_step) {
    sgd_tensor(p, g, b, n, wd, momentum, minus_lr, first_step);
}
void sgd_tensor_portable(float* p, const float* g, float* b, int64_t n, float wd, float momentum, float minus_lr,
                         bool first_step) {
    sgd_tensor(p, g, b, n, wd, momentum, minus_lr, first_step);
}

}  // namespace

extern "C" const char* vimdense_opt_error_string(int32_t code) {
    switch (code) {
        case VIMDENSE_OPT_OK: return "ok";
        case VIMDENSE_OPT_ERR_NULL_POINTER: return "a required pointer is null";
        case VIMDENSE_OPT_ERR_BAD_SHAPE: return "a tensor count or element count is negative";
        case VIMDENSE_OPT_ERR_BAD_ARGUMENT: return "an argument is out of range (AdamW bias correction not positive)";
        default: return "unknown error";
    }
}

extern "C" int32_t vimdense_adamw_step_cpu_f32(int64_t count, float* const* params, const float* const* grads,
                                               float* const* exp_avgs, float* const* exp_avg_sqs,
                                               const int64_t* numels, const double* decays,
                                               const double* step_sizes, const double* bias2_sqrts, double beta1,
                                               double beta2, double eps) {
    if (const int32_t rc = check_tensors(count, params, grads, numels)) return rc;
    if (count == 0) return VIMDENSE_OPT_OK;
    if (!exp_avgs || !exp_avg_sqs || !decays || !step_sizes || !bias2_sqrts) return VIMDENSE_OPT_ERR_NULL_POINTER;
    if (any_null(count, reinterpret_cast<const void* const*>(params), numels) ||
        any_null(count, reinterpret_cast<const void* const*>(grads), numels) ||
        any_null(count, reinterpret_cast<const void* const*>(exp_avgs), numels) ||
        any_null(count, reinterpret_cast<const void* const*>(exp_avg_sqs), numels))
        return VIMDENSE_OPT_ERR_NULL_POINTER;
    for (int64_t t = 0; t < count; ++t)
        if (!(bias2_sqrts[t] > 0)) return VIMDENSE_OPT_ERR_BAD_ARGUMENT;

    const VmsSqrt vml_sqrt = libtorch_sqrt();
    const bool fma = has_fma();
    // Every Scalar rounded to float32 once, as libtorch rounds it for a float32 tensor; 1 - beta in double first,
    // as the TorchSharp path computes it.
    AdamWScalars s{};
    s.beta1 = static_cast<float>(beta1);
    s.one_minus_beta1 = static_cast<float>(1 - beta1);
    s.beta2 = static_cast<float>(beta2);
    s.one_minus_beta2 = static_cast<float>(1 - beta2);
    s.eps = static_cast<float>(eps);
    for (int64_t t = 0; t < count; ++t) {
        // The TorchSharp path skips the decay's multiply without weight decay (a factor of exactly 1).
        s.decays = decays[t] != 1;
        s.decay = static_cast<float>(decays[t]);
        s.step_size = static_cast<float>(step_sizes[t]);
        s.bias2_sqrt = static_cast<float>(bias2_sqrts[t]);
        if (fma)
            adamw_tensor_fma(params[t], grads[t], exp_avgs[t], exp_avg_sqs[t], numels[t], s, vml_sqrt);
        else
            adamw_tensor_portable(params[t], grads[t], exp_avgs[t], exp_avg_sqs[t], numels[t], s, vml_sqrt);
    }
    return VIMDENSE_OPT_OK;
}

extern "C" int32_t vimdense_sgd_step_cpu_f32(int64_t count, float* const* params, const float* const* grads,
                                             float* const* momentum_buffers, const int64_t* numels,
                                             const double* lrs, const double* weight_decays, double momentum,
                                             int32_t first_step) {
    if (const int32_t rc = check_tensors(count, params, grads, numels)) return rc;
    if (count == 0) return VIMDENSE_OPT_OK;
    if (!lrs || !weight_decays) return VIMDENSE_OPT_ERR_NULL_POINTER;
    const bool with_momentum = momentum != 0;
    if (with_momentum && !momentum_buffers) return VIMDENSE_OPT_ERR_NULL_POINTER;
    if (any_null(count, reinterpret_cast<const void* const*>(params), numels) ||
        any_null(count, reinterpret_cast<const void* const*>(grads), numels) ||
        (with_momentum && any_null(count, reinterpret_cast<const void* const*>(momentum_buffers), numels)))
        return VIMDENSE_OPT_ERR_NULL_POINTER;

    const bool fma = has_fma();
    const float momentum_f = static_cast<float>(momentum);
    for (int64_t t = 0; t < count; ++t) {
        const float wd = static_cast<float>(weight_decays[t]);
        const float minus_lr = static_cast<float>(-lrs[t]);
        float* buffer = with_momentum ? momentum_buffers[t] : nullptr;
        if (fma)
            sgd_tensor_fma(params[t], grads[t], buffer, numels[t], wd, momentum_f, minus_lr, first_step != 0);
        else
            sgd_tensor_portable(params[t], grads[t], buffer, numels[t], wd, momentum_f, minus_lr, first_step != 0);
    }
    return VIMDENSE_OPT_OK;
}
