// Fused optimiser steps on the CPU: one pass over each parameter's data, gradient and state instead
// of the half-dozen tensor operations (each a pass over memory) the TorchSharp path takes, over all
// of a model's parameters in one call (Vim.Core/Engine/FusedOptimizerStep.cs).
//
// Every tensor i of the `count` given is `numels[i]` contiguous float32 elements at params[i],
// grads[i] and its state buffers, updated in place with its own scalars. The results are bit-identical
// to the TorchSharp path (AdamWOptimizer / SgdOptimizer on libtorch's CPU kernels): the same ops in the
// same order, each Scalar rounded to float32 as libtorch rounds it, fma where libtorch's kernel fuses,
// and the square root from the MKL that libtorch calls (optimizer_cpu.cpp lists each op's rounding).
//
// AdamW (torch.optim.AdamW, amsgrad off; decoupled decay, bias corrections), per tensor with its own
// step t (torch's state["step"]): decays[i] = 1 - lr * wd (exactly 1 without weight decay),
// step_sizes[i] = -lr / (1 - beta1^t), bias2_sqrts[i] = sqrt(1 - beta2^t), all computed by the caller
// in double as the TorchSharp path computes them:
//   p *= decay;  m = m * beta1 + (1 - beta1) * g;  v = v * beta2 + (1 - beta2) * g * g
//   p += step_size * m / (sqrt(v) / bias2_sqrt + eps)
// SGD (torch.optim.SGD, no dampening, not Nesterov; L2 decay):
//   d = g + wd * p;  with momentum: b = d on the first step, else b = b * momentum + d; d = b
//   p += -lr * d
// beta1 and momentum are arguments of each call, so a schedule may change them between steps.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VIMDENSE_OPT_OK 0
#define VIMDENSE_OPT_ERR_NULL_POINTER (-1)   // a required pointer is null
#define VIMDENSE_OPT_ERR_BAD_SHAPE (-2)      // a count or element count is negative
#define VIMDENSE_OPT_ERR_BAD_ARGUMENT (-3)   // e.g. an AdamW bias correction that is not positive (step < 1)

// Human-readable message for an error code (static string).
const char* vimdense_opt_error_string(int32_t code);

// Both run on the calling thread (the step is bound by memory bandwidth; see optimizer_cpu.cpp).
int32_t vimdense_adamw_step_cpu_f32(int64_t count, float* const* params, const float* const* grads,
                                    float* const* exp_avgs, float* const* exp_avg_sqs, const int64_t* numels,
                                    const double* decays, const double* step_sizes, const double* bias2_sqrts,
                                    double beta1, double beta2, double eps);

// momentum_buffers may be null when momentum is 0. first_step != 0 initialises the buffers with d.
int32_t vimdense_sgd_step_cpu_f32(int64_t count, float* const* params, const float* const* grads,
                                  float* const* momentum_buffers, const int64_t* numels, const double* lrs,
                                  const double* weight_decays, double momentum, int32_t first_step);

#ifdef __cplusplus
}
#endif
