// Fused optimiser steps on the CPU: one pass over each parameter's data, gradient and state instead
// of the half-dozen tensor operations (each a pass over memory) the TorchSharp path takes, over all
// of a model's parameters in one call (Vim.Core/Engine/FusedOptimizerStep.cs).
//
// Every tensor i of the `count` given is `numels[i]` contiguous float32 elements at params[i],
// grads[i] and its state buffers, updated in place with its group's lrs[i] and weight_decays[i].
// The scalars are rounded to float32 as libtorch rounds a Scalar argument for a float32 tensor, and
// the operations run in the order of the TorchSharp path, so results equal it within float32
// rounding (libtorch's vectorised add with alpha rounds once through an FMA, we round twice).
//
// AdamW (torch.optim.AdamW, amsgrad off; decoupled decay, bias corrections), step t >= 1:
//   p *= 1 - lr * wd;  m = m * beta1 + (1 - beta1) * g;  v = v * beta2 + (1 - beta2) * g * g
//   p += (-lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
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
#define VIMDENSE_OPT_ERR_BAD_ARGUMENT (-3)   // e.g. an AdamW step below 1

// Human-readable message for an error code (static string).
const char* vimdense_opt_error_string(int32_t code);

// Both run on the calling thread (the step is bound by memory bandwidth; see optimizer_cpu.cpp) and
// flush denormals to zero while they run: a flushed second moment below 2^-126 changes an update by
// less than 1e-30.
int32_t vimdense_adamw_step_cpu_f32(int64_t count, float* const* params, const float* const* grads,
                                    float* const* exp_avgs, float* const* exp_avg_sqs, const int64_t* numels,
                                    const double* lrs, const double* weight_decays, double beta1, double beta2,
                                    double eps, int64_t step);

// momentum_buffers may be null when momentum is 0. first_step != 0 initialises the buffers with d.
int32_t vimdense_sgd_step_cpu_f32(int64_t count, float* const* params, const float* const* grads,
                                  float* const* momentum_buffers, const int64_t* numels, const double* lrs,
                                  const double* weight_decays, double momentum, int32_t first_step);

#ifdef __cplusplus
}
#endif
