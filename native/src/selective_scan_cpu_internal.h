// Internal interface between the CPU selective-scan driver (selective_scan_cpu.cpp: validation,
// thread pool, layout preparation, reductions) and the per-instruction-set row kernels
// (selective_scan_cpu_kernel.h instantiated for AVX-512, AVX2 and scalar).
#pragma once
#include <stdint.h>

namespace vimdense_scan {

// 2^f for f in [0, 1) as a degree-5 polynomial, coefficients from the highest degree down (Horner
// with fused multiply-adds), used by the vector exp2 of every instruction set: relative error
// 1.5e-7, exactly 1 at f = 0 and 2 at f = 1. The top end matters most: a long-memory state's
// decay exp(Δ·A), |Δ·A| small, takes f just below 1 (see kernel::decay) at every step, so an
// error there is the same at every step and adds up over the thousands of steps such a state
// remembers. The plain minimax fit was 7.5e-8 low at f = 1, and with the reduction's own bias
// (see kernel::decay) a scan over 4096 steps with Δ ≈ 0.001 and A = -1..-16 (Mamba's initial
// ranges) was 3e-5 off, 1e-4 with |A| twenty times smaller (a float32 scan with a correctly
// rounded exp: 6e-7 and 1.5e-6). Fitted as
// 1 + f + f(f-1)·r(f) with r minimising the largest relative error, then the f³ coefficient moved
// up by one float step, the best of the steps tried on those two cases (2.3e-6 and 8e-6 now).
constexpr float kExp2Poly[6] = {1.8793186173e-03f, 8.9909955859e-03f, 5.5818676949e-02f,
                                2.4015928805e-01f, 6.9315171242e-01f, 1.0f};

// Steps per checkpoint chunk (also the recompute granularity of the backward).
constexpr int64_t kChunk = 64;
// The state dimension is padded to a multiple of this in every internal layout (and in the
// checkpoint layout), so all instruction sets share one layout. Padded lanes have A = B = C = 0,
// which keeps their state at exactly zero.
constexpr int64_t kLanePad = 16;

inline int64_t padded_state(int64_t n) { return (n + kLanePad - 1) / kLanePad * kLanePad; }
inline int64_t chunk_count(int64_t length) { return (length + kChunk - 1) / kChunk; }

// Everything a row kernel needs; a row is one (batch, channel) pair.
struct Problem {
    // Inputs in the caller's layout.
    const float* u;
    const float* delta;
    const float* z;           // nullable
    const float* D;           // nullable
    const float* bias;        // nullable
    int softplus;
    // Scan from the last step to the first. Every kernel works in scan order: the driver prepares
    // Bt/Ct in scan order, and the row kernels read u, delta, z, dout and write out, du, ddelta, dz
    // through seq_load/seq_store, which map scan step s to time L-1-s.
    int reverse;
    int64_t batch, dim, length, dstate, npad, nchunks;
    // Prepared inputs: A and A*log2(e) padded to (dim, npad); B and C transposed to
    // (batch, length, npad) in scan order so one step's states are contiguous.
    const float* A;
    const float* A2;
    const float* Bt;
    const float* Ct;
    // Forward outputs.
    float* out;
    float* last_state;        // nullable, (batch, dim, dstate)
    float* ckpt;              // nullable, (batch, dim, nchunks, npad), chunks in scan order
    // Backward inputs/outputs.
    const float* ckpt_in;     // nullable: recompute
    const float* dout;
    float* du;
    float* ddelta;
    float* dz;                // nullable
    float* gA_part;           // (batch, dim, npad), reduced over batch by the driver
    float* gD_part;           // nullable, (batch, dim)
    float* gbias_part;        // nullable, (batch, dim)
};

// Floats of per-thread scratch a row kernel needs.
inline int64_t row_scratch_floats(const Problem& p) {
    // 8 row vectors of length (padded), chunk buffers for states and decays, row checkpoints.
    int64_t lpad = (p.length + 63) / 64 * 64;
    return 8 * lpad + 2 * (kChunk + 1) * 64 + p.nchunks * p.npad + 64;
}

// The fused depthwise conv1d + bias + SiLU (selective_scan_cpu_conv_kernel.h): x rows of length
// `length`, batch elements `x_batch_stride` floats apart (x may be a channel slice of a wider
// tensor); weight (dim, width); out, dout, dx (batch, dim, length) contiguous.
constexpr int64_t kMaxConvWidth = 16;
struct ConvProblem {
    const float* x;
    int64_t x_batch_stride;
    const float* weight;
    const float* bias;        // nullable
    int reverse;              // anti-causal: step t reads t..t+width-1
    int64_t batch, dim, length, width;
    float* out;
    const float* dout;
    float* dx;
    float* gweight_part;      // (batch, dim, width), reduced over batch by the driver
    float* gbias_part;        // nullable, (batch, dim)
};
using ConvRowFn = void (*)(const ConvProblem&, int64_t b, int64_t d, float* scratch);

// Forward work items are blocks of up to kRowBlock consecutive channels of one batch element
// (the kernel interleaves their recurrences); scratch holds nrows areas of per_row floats.
constexpr int64_t kRowBlock = 4;
using RowBlockFn = void (*)(const Problem&, int64_t b, int64_t d0, int64_t nrows, float* scratch, int64_t per_row);
// Backward work items are the same blocks, whose rows the kernel takes one at a time (scratch: one
// row's area); they also accumulate into (batch, length, npad) dB and dC buffers, or overwrite them
// (store_gbc: the first item of a buffer, so that it needs no zeroing).
using RowBlockBwdFn = void (*)(const Problem&, int64_t b, int64_t d0, int64_t nrows, float* scratch,
                               float* gBt, float* gCt, bool store_gbc);

// The forward with the channels in the lanes (kernel::forward_lanes): blocks of up to `lanes`
// channels of one batch element, for npad == lanes only.
// A call runs chunks [c0, c1) of the block: from zero states when c0 is 0, else from the lanes×lanes
// floats at `states` (state k of the block's channels at states + k·lanes), where it leaves them
// when c1 is short of the last chunk.
using LaneBlockFn = void (*)(const Problem&, int64_t b, int64_t d0, int64_t nrows, float* scratch, int64_t c0,
                             int64_t c1, float* states);
// Its scratch: Δ, Δ·u and y of one chunk, as (step, channel), and two staging blocks of a chunk's
// rows, as (channel, step).
inline int64_t lanes_scratch_floats(int64_t lanes) { return 5 * kChunk * lanes; }

// B or C of one batch element, (n, L) in time order, into rows of np floats in scan order (time
// reversed for a reverse scan): dst[l·np + i] = src[i·L + t(l)] for scan steps l0 <= l < l1, and 0
// for n <= i < np.
using StepTransposeFn = void (*)(const float* src, int64_t n, int64_t L, int64_t np, bool reverse, int64_t l0,
                                 int64_t l1, float* dst);

struct Kernels {
    const char* name;
    StepTransposeFn to_steps;
    RowBlockFn forward;
    RowBlockBwdFn backward;
    ConvRowFn conv_forward;
    ConvRowFn conv_backward;
    LaneBlockFn forward_lanes;   // nullable: this instruction set has none
    int lanes;                   // channels per forward_lanes block
};

Kernels kernels_scalar();
Kernels kernels_avx2();
Kernels kernels_avx512();

}  // namespace vimdense_scan
