// Fused AdamW and SGD steps on the CPU (semantics in vimdense/optimizer_ops.h): one loop per tensor
// that the compiler vectorises (std::sqrt included: the library builds with -fno-math-errno), on the
// calling thread. The step is bound by memory bandwidth, and a second thread did not help: right
// after the backward, libtorch's OpenMP threads still spin on the other cores, and on a 2-core
// machine a helper thread doubled the step's CPU time and wall time (vim bench train, the demo
// Cascade Mask R-CNN: 60 ms CPU / 120 ms wall with two threads, 25 / 35 ms with one).
// This file builds with -ffp-contract=off: a contracted multiply-add would round differently from
// the TorchSharp path on machines where the compiler may emit FMAs.
#include <cmath>
#include <cstdint>

#include "flush_denormals.h"
#include "vimdense/native.h"

namespace {

int32_t check_tensors(int64_t count, const void* params, const void* grads, const int64_t* numels, const double* lrs,
                      const double* weight_decays) {
    if (count < 0) return VIMDENSE_OPT_ERR_BAD_SHAPE;
    if (count == 0) return VIMDENSE_OPT_OK;
    if (!params || !grads || !numels || !lrs || !weight_decays) return VIMDENSE_OPT_ERR_NULL_POINTER;
    for (int64_t i = 0; i < count; ++i)
        if (numels[i] < 0) return VIMDENSE_OPT_ERR_BAD_SHAPE;
    return VIMDENSE_OPT_OK;
}

bool any_null(int64_t count, const void* const* pointers, const int64_t* numels) {
    for (int64_t i = 0; i < count; ++i)
        if (numels[i] > 0 && !pointers[i]) return true;
    return false;
}

}  // namespace

extern "C" const char* vimdense_opt_error_string(int32_t code) {
    switch (code) {
        case VIMDENSE_OPT_OK: return "ok";
        case VIMDENSE_OPT_ERR_NULL_POINTER: return "a required pointer is null";
        case VIMDENSE_OPT_ERR_BAD_SHAPE: return "a tensor count or element count is negative";
        case VIMDENSE_OPT_ERR_BAD_ARGUMENT: return "an argument is out of range (AdamW step below 1)";
        default: return "unknown error";
    }
}

extern "C" int32_t vimdense_adamw_step_cpu_f32(int64_t count, float* const* params, const float* const* grads,
                                               float* const* exp_avgs, float* const* exp_avg_sqs,
                                               const int64_t* numels, const double* lrs,
                                               const double* weight_decays, double beta1, double beta2, double eps,
                                               int64_t step) {
    if (const int32_t rc = check_tensors(count, params, grads, numels, lrs, weight_decays)) return rc;
    if (count == 0) return VIMDENSE_OPT_OK;
    if (step < 1) return VIMDENSE_OPT_ERR_BAD_ARGUMENT;
    if (!exp_avgs || !exp_avg_sqs) return VIMDENSE_OPT_ERR_NULL_POINTER;
    if (any_null(count, reinterpret_cast<const void* const*>(params), numels) ||
        any_null(count, reinterpret_cast<const void* const*>(grads), numels) ||
        any_null(count, reinterpret_cast<const void* const*>(exp_avgs), numels) ||
        any_null(count, reinterpret_cast<const void* const*>(exp_avg_sqs), numels))
        return VIMDENSE_OPT_ERR_NULL_POINTER;

    // The bias corrections in double, then every scalar rounded to float32 once, as libtorch does.
    const double bias1 = 1 - std::pow(beta1, static_cast<double>(step));
    const float bias2_sqrt = static_cast<float>(std::sqrt(1 - std::pow(beta2, static_cast<double>(step))));
    const float beta1_f = static_cast<float>(beta1), one_minus_beta1 = static_cast<float>(1 - beta1);
    const float beta2_f = static_cast<float>(beta2), one_minus_beta2 = static_cast<float>(1 - beta2);
    const float eps_f = static_cast<float>(eps);

    // Second moments of near-zero gradients fall below 2^-126, where x86 arithmetic takes ~100-cycle assists
    // (measured: 3x the step's CPU time); flushed, they change an update by less than 1e-30.
    vimdense_cpu::FlushDenormals ftz;
    for (int64_t t = 0; t < count; ++t) {
        const double lr = lrs[t];
        const float decay = static_cast<float>(1 - lr * weight_decays[t]);
        const float step_size = static_cast<float>(-lr / bias1);
        float* __restrict p = params[t];
        const float* __restrict g = grads[t];
        float* __restrict m = exp_avgs[t];
        float* __restrict v = exp_avg_sqs[t];
        for (int64_t j = 0; j < numels[t]; ++j) {
            const float gj = g[j];
            const float mj = m[j] * beta1_f + one_minus_beta1 * gj;
            const float vj = v[j] * beta2_f + one_minus_beta2 * gj * gj;
            m[j] = mj;
            v[j] = vj;
            const float denom = std::sqrt(vj) / bias2_sqrt + eps_f;
            // A decay factor of 1 (no weight decay) multiplies exactly, as skipping the product would.
            p[j] = p[j] * decay + step_size * mj / denom;
        }
    }
    return VIMDENSE_OPT_OK;
}

extern "C" int32_t vimdense_sgd_step_cpu_f32(int64_t count, float* const* params, const float* const* grads,
                                             float* const* momentum_buffers, const int64_t* numels,
                                             const double* lrs, const double* weight_decays, double momentum,
                                             int32_t first_step) {
    if (const int32_t rc = check_tensors(count, params, grads, numels, lrs, weight_decays)) return rc;
    if (count == 0) return VIMDENSE_OPT_OK;
    const bool with_momentum = momentum != 0;
    if (with_momentum && !momentum_buffers) return VIMDENSE_OPT_ERR_NULL_POINTER;
    if (any_null(count, reinterpret_cast<const void* const*>(params), numels) ||
        any_null(count, reinterpret_cast<const void* const*>(grads), numels) ||
        (with_momentum && any_null(count, reinterpret_cast<const void* const*>(momentum_buffers), numels)))
        return VIMDENSE_OPT_ERR_NULL_POINTER;

    const float momentum_f = static_cast<float>(momentum);
    vimdense_cpu::FlushDenormals ftz;
    for (int64_t t = 0; t < count; ++t) {
        const float wd = static_cast<float>(weight_decays[t]);
        const float minus_lr = static_cast<float>(-lrs[t]);
        float* __restrict p = params[t];
        const float* __restrict g = grads[t];
        float* __restrict b = with_momentum ? momentum_buffers[t] : nullptr;
        for (int64_t j = 0; j < numels[t]; ++j) {
            // wd 0 adds an exact 0 (the TorchSharp path skips the sum; the result is the same).
            float d = g[j] + wd * p[j];
            if (with_momentum) {
                d = first_step ? d : b[j] * momentum_f + d;
                b[j] = d;
            }
            p[j] = p[j] + minus_lr * d;
        }
    }
    return VIMDENSE_OPT_OK;
}
