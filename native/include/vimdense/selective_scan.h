// Selective scan (Mamba S6) kernels: C ABI shared by the CPU and CUDA implementations.
//
// Semantics (selective_scan_ref), for every batch b, channel d, step l, state n:
//   dt[b,d,l]   = delta[b,d,l] + delta_bias[d]          (bias optional)
//   dt          = softplus(dt) (threshold 20)            when delta_softplus != 0
//   h[b,d,n]    = exp(dt*A[d,n]) * h + dt * B[b,n,l] * u[b,d,l]       (h = 0 before l = 0)
//   y[b,d,l]    = sum_n h[b,d,n] * C[b,n,l]
//   out[b,d,l]  = (y + D[d] * u[b,d,l]) * silu(z[b,d,l])              (D, z optional)
// With reverse != 0 the recurrence runs from l = L-1 down to 0 (h = 0 before l = L-1), i.e. the
// result equals flip(scan(flip(u), flip(delta), A, flip(B), flip(C), D, flip(z))) with every
// sequence flipped along l, without materialising the flipped copies. Inputs and outputs stay in
// time order; last_state is then the state after l = 0.
//
// Layouts (all fp32, contiguous, row-major): u, delta, z, out: (batch, dim, length);
// A: (dim, dstate); B, C: (batch, dstate, length); D, delta_bias: (dim).
//
// Checkpoints: the forward may save the state before every chunk of
// vimdense_scan_chunk_length() steps so the backward recomputes states chunk by chunk instead of
// storing all of them. The buffer holds vimdense_scan_checkpoint_floats(...) floats; its layout is
// private to the library but identical for the CPU and CUDA kernels (so a CPU forward's
// checkpoints could feed a CUDA backward after a copy, and the tests compare them). Chunks follow
// the scan order, so a backward must use the same reverse flag as the forward that saved them.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Error codes (0 = success).
#define VIMDENSE_SCAN_OK 0
#define VIMDENSE_SCAN_ERR_NULL_POINTER (-1)   // a required pointer is null
#define VIMDENSE_SCAN_ERR_BAD_SHAPE (-2)      // batch/dim/length/dstate out of range
#define VIMDENSE_SCAN_ERR_ALLOC (-3)          // scratch memory could not be allocated
#define VIMDENSE_SCAN_ERR_NO_CUDA (-4)        // library built without CUDA kernels
#define VIMDENSE_SCAN_ERR_CUDA (-5)           // a CUDA runtime call or launch failed
#define VIMDENSE_SCAN_ERR_UNSUPPORTED (-6)    // e.g. dstate above what the CUDA kernel supports
#define VIMDENSE_SCAN_ERR_INTERNAL (-7)

// Human-readable message for an error code (static string).
const char* vimdense_scan_error_string(int32_t code);

// Steps per checkpoint chunk.
int32_t vimdense_scan_chunk_length(void);
// Floats needed for the checkpoint buffer of the given problem (negative on bad shape).
int64_t vimdense_scan_checkpoint_floats(int64_t batch, int64_t dim, int64_t length, int64_t dstate);

// CPU worker threads used by the CPU kernels; n <= 0 restores the default (CPUs this process may
// run on). Returns the count now in force.
int32_t vimdense_scan_set_num_threads(int32_t n);
int32_t vimdense_scan_get_num_threads(void);
// Keeping the worker threads' CPUs out of idle for a short window after each multi-threaded job
// (SCHED_IDLE spinning threads, see src/cpu_keep_awake.h): mode -1 = auto (the default: on unless
// two of the CPUs are SMT siblings), 0 = off, 1 = on. The environment variable
// VIMDENSE_KEEP_AWAKE=0|1|auto sets the initial mode. Both return 1 when it is in effect, else 0.
int32_t vimdense_cpu_keep_awake(int32_t mode);
int32_t vimdense_cpu_keep_awake_active(void);
// The window after each job, in microseconds.
int64_t vimdense_cpu_keep_awake_window_us(void);
// CPU time the spinning threads have used so far, in microseconds, less the pool work they did
// (process CPU time that did no work).
int64_t vimdense_cpu_keep_awake_cpu_us(void);
// The pool work the spinning threads took while spinning (a worker's share of a multi-threaded
// job, which they start without a wake-up): its CPU time in microseconds, and the number of shares.
int64_t vimdense_cpu_keep_awake_work_us(void);
int64_t vimdense_cpu_keep_awake_work_count(void);
// 1 once a spinning thread has started that takes pool work: one does only where it may raise itself
// from SCHED_IDLE back to the normal policy while it works (CAP_SYS_NICE, or RLIMIT_NICE 20); else 0.
int32_t vimdense_cpu_keep_awake_takes_work(void);
// Instruction set the CPU kernels dispatch to: "avx512", "avx2" or "scalar".
const char* vimdense_scan_cpu_isa(void);
// Force a narrower instruction set for testing: 0 = best available, 1 = avx2, 2 = scalar.
// Returns the ISA name now in force (a wider one than the CPU supports is never chosen).
const char* vimdense_scan_force_isa(int32_t level);

// Forward on the CPU. D, z, delta_bias, last_state (batch, dim, dstate) and checkpoints may be
// null. out must not alias an input.
int32_t vimdense_selective_scan_fwd_cpu(
    const float* u, const float* delta, const float* A, const float* B, const float* C,
    const float* D, const float* z, const float* delta_bias, int32_t delta_softplus, int32_t reverse,
    int64_t batch, int64_t dim, int64_t length, int64_t dstate,
    float* out, float* last_state, float* checkpoints);

// Backward on the CPU: given dout (batch, dim, length), writes (overwrites) the gradients.
// checkpoints: from the forward with the same inputs, or null to recompute them.
// du, ddelta, dA, dB, dC are required; dD, dz, ddelta_bias may be null (not computed); they are
// ignored when the corresponding input is null.
int32_t vimdense_selective_scan_bwd_cpu(
    const float* u, const float* delta, const float* A, const float* B, const float* C,
    const float* D, const float* z, const float* delta_bias, int32_t delta_softplus, int32_t reverse,
    int64_t batch, int64_t dim, int64_t length, int64_t dstate,
    const float* checkpoints, const float* dout,
    float* du, float* ddelta, float* dA, float* dB, float* dC,
    float* dD, float* dz, float* ddelta_bias);

// Fused depthwise conv1d + bias + SiLU that computes the scan input u from x in the Mamba mixer,
// per (batch, channel) row with `width` taps w = weight[d, 0..width-1] (at most 16):
//   reverse == 0 (causal):      s[t] = bias[d] + sum_j w[j] * x[t - (width-1) + j]
//   reverse != 0 (anti-causal): s[t] = bias[d] + sum_j w[j] * x[t + (width-1) - j]
//   out[t] = silu(s[t]), x taken as zero outside [0, length).
// The anti-causal form equals flip(causal conv(flip(x))), Vim's backward branch in time order.
// x: rows of `length` contiguous floats, channel d of batch b at x + b*x_batch_stride + d*length
// (x_batch_stride >= dim*length; lets x be a channel slice of a wider tensor); weight (dim, width);
// bias (dim) nullable; out, dout, dx (batch, dim, length) contiguous. The backward overwrites dx,
// dweight (dim, width) and dbias (dim; may be null).
int32_t vimdense_conv1d_silu_fwd_cpu(
    const float* x, int64_t x_batch_stride, const float* weight, const float* bias, int32_t reverse,
    int64_t batch, int64_t dim, int64_t length, int64_t width, float* out);

int32_t vimdense_conv1d_silu_bwd_cpu(
    const float* x, int64_t x_batch_stride, const float* weight, const float* bias, int32_t reverse,
    int64_t batch, int64_t dim, int64_t length, int64_t width, const float* dout,
    float* dx, float* dweight, float* dbias);

// CUDA versions: same arguments, device pointers, launched on `stream` (a cudaStream_t; null =
// the legacy default stream). They return after launching (asynchronous) unless an error occurs.
// The CUDA backward requires the checkpoints of the CUDA forward. Both return
// VIMDENSE_SCAN_ERR_NO_CUDA when the library was built without CUDA.
int32_t vimdense_selective_scan_fwd_cuda(
    const float* u, const float* delta, const float* A, const float* B, const float* C,
    const float* D, const float* z, const float* delta_bias, int32_t delta_softplus, int32_t reverse,
    int64_t batch, int64_t dim, int64_t length, int64_t dstate,
    float* out, float* last_state, float* checkpoints, void* stream);

int32_t vimdense_selective_scan_bwd_cuda(
    const float* u, const float* delta, const float* A, const float* B, const float* C,
    const float* D, const float* z, const float* delta_bias, int32_t delta_softplus, int32_t reverse,
    int64_t batch, int64_t dim, int64_t length, int64_t dstate,
    const float* checkpoints, const float* dout,
    float* du, float* ddelta, float* dA, float* dB, float* dC,
    float* dD, float* dz, float* ddelta_bias, void* stream);

#ifdef __cplusplus
}
#endif
