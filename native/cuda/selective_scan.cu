// CUDA selective scan, forward and backward, same C ABI shape as the CPU kernels
// (native/include/vimdense/selective_scan.h). Deliberately simple: one thread per (batch, channel),
// sequential over the sequence, the N states in registers (N <= 64); blocks of 128 channels of
// one batch element, so B and C loads are uniform across a block (broadcast). The backward
// recomputes states from the forward's checkpoints (every 64 steps) in sub-chunks of 16 steps
// kept in per-thread local memory, runs the adjoint recurrence backwards, and reduces dB and dC
// over the channels of a warp with shuffles before one atomicAdd per warp. A reverse scan keeps
// every loop in scan order (step l, chunks and checkpoints as in the forward direction) and maps
// each memory access to time t = L-1-l.
#include <cuda_runtime.h>
#include <stdint.h>

#include "device_guard.cuh"
#include "vimdense/selective_scan.h"

namespace {

constexpr int kChunk = 64;      // must equal vimdense_scan::kChunk (CPU) — the checkpoint layout
constexpr int kLanePad = 16;    // must equal vimdense_scan::kLanePad
constexpr int kSub = 16;        // recompute granularity inside a chunk (backward)
constexpr int kThreads = 128;   // channels per block
constexpr float kLog2e = 1.4426950408889634f;

__device__ __forceinline__ float softplus_f(float x) { return x <= 20.0f ? log1pf(expf(x)) : x; }
__device__ __forceinline__ float sigmoid_f(float x) { return 1.0f / (1.0f + expf(-x)); }

__device__ __forceinline__ float warp_sum(float v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

struct Args {
    const float* u;
    const float* delta;
    const float* A;
    const float* B;
    const float* C;
    const float* D;
    const float* z;
    const float* bias;
    int softplus;
    int reverse;
    int64_t batch, dim, length, dstate, npad, nchunks;
    // forward
    float* out;
    float* last_state;
    float* ckpt;
    // backward
    const float* ckpt_in;
    const float* dout;
    float* du;
    float* ddelta;
    float* dA;
    float* dB;
    float* dC;
    float* dD;
    float* dz;
    float* dbias;
};

// States in tiles of NMAX (at most 32; 64 states at once took all 255 registers and spilled).
// The output is linear in the tiles' partial sums of y, so the first tile writes y + D·u, later
// ones add theirs, and the last applies the z gate.
template <int NMAX>
__global__ void __launch_bounds__(kThreads) scan_forward_kernel(Args a) {
    const int64_t b = blockIdx.y;
    const int64_t d = int64_t(blockIdx.x) * kThreads + threadIdx.x;
    if (d >= a.dim) return;
    const int N = int(a.dstate);
    const int64_t L = a.length;
    const int64_t row = b * a.dim + d;
    const float bias = a.bias ? a.bias[d] : 0.0f;
    const float Dd = a.D ? a.D[d] : 0.0f;
    const float* u = a.u + row * L;
    const float* dl = a.delta + row * L;
    const float* z = a.z ? a.z + row * L : nullptr;
    float* out = a.out + row * L;
    for (int n0 = 0; n0 < N; n0 += NMAX) {
        const bool first = n0 == 0, last = n0 + NMAX >= N;
        const int NT = N - n0 < NMAX ? N - n0 : NMAX;   // states in this tile
        const float* Bb = a.B + (b * N + n0) * L;
        const float* Cb = a.C + (b * N + n0) * L;
        float a2[NMAX], h[NMAX];
#pragma unroll
        for (int n = 0; n < NMAX; ++n) {
            a2[n] = n < NT ? a.A[d * N + n0 + n] * kLog2e : 0.0f;
            h[n] = 0.0f;
        }
        for (int64_t l = 0; l < L; ++l) {
            if (a.ckpt && l % kChunk == 0) {
                float* ck = a.ckpt + (row * a.nchunks + l / kChunk) * a.npad;
#pragma unroll
                for (int n = 0; n < NMAX; ++n)
                    if (n < NT) ck[n0 + n] = h[n];
                if (last)
                    for (int n = N; n < a.npad; ++n) ck[n] = 0.0f;
            }
            const int64_t t = a.reverse ? L - 1 - l : l;   // time of scan step l
            float dt = dl[t] + bias;
            if (a.softplus) dt = softplus_f(dt);
            const float uv = u[t];
            const float x = dt * uv;
            float y = 0.0f;
#pragma unroll
            for (int n = 0; n < NMAX; ++n) {
                if (n < NT) {
                    h[n] = exp2f(dt * a2[n]) * h[n] + x * Bb[int64_t(n) * L + t];
                    y += h[n] * Cb[int64_t(n) * L + t];
                }
            }
            float o = first ? y + Dd * uv : out[t] + y;
            if (last && z) {
                const float zv = z[t];
                o *= zv * sigmoid_f(zv);
            }
            out[t] = o;
        }
        if (a.last_state) {
#pragma unroll
            for (int n = 0; n < NMAX; ++n)
                if (n < NT) a.last_state[row * N + n0 + n] = h[n];
        }
    }
}

// States are processed in tiles of NMAX (at most 16): everything summed over the states (y, and
// through r1/r2 the gradients of delta, u and z) is linear in the per-state terms, so a tile adds
// its part to what the earlier tiles wrote. With all 64 states at once the adjoint, decay and dA
// accumulators alone needed 192 registers and ptxas spilled kilobytes per thread.
template <int NMAX>
__global__ void __launch_bounds__(kThreads) scan_backward_kernel(Args a) {
    const int64_t b = blockIdx.y;
    const int64_t d = int64_t(blockIdx.x) * kThreads + threadIdx.x;
    // Threads past the last channel stay in the loops with zero contributions: every lane of a
    // warp must take part in the shuffles.
    const bool active = d < a.dim;
    const int64_t dc = active ? d : 0;
    const int N = int(a.dstate);
    const int64_t L = a.length;
    const int64_t row = b * a.dim + dc;
    const float bias = a.bias ? a.bias[dc] : 0.0f;
    const float Dd = a.D ? a.D[dc] : 0.0f;
    const float* u = a.u + row * L;
    const float* dl = a.delta + row * L;
    const float* z = a.z ? a.z + row * L : nullptr;
    const float* go = a.dout + row * L;
    const bool lane0 = (threadIdx.x & 31) == 0;
    float gD = 0.0f, gbias = 0.0f;
    float hs[kSub + 1][NMAX];   // states of one sub-chunk: hs[j] = state before step ls + j

    for (int n0 = 0; n0 < N; n0 += NMAX) {
        const bool first = n0 == 0;
        const int NT = N - n0 < NMAX ? N - n0 : NMAX;   // states in this tile
        const float* Bb = a.B + (b * N + n0) * L;
        const float* Cb = a.C + (b * N + n0) * L;
        float* dBb = a.dB + (b * N + n0) * L;
        float* dCb = a.dC + (b * N + n0) * L;
        float a2[NMAX], an[NMAX], gh[NMAX], ga[NMAX];
#pragma unroll
        for (int n = 0; n < NMAX; ++n) {
            an[n] = n < NT ? a.A[dc * N + n0 + n] : 0.0f;
            a2[n] = an[n] * kLog2e;
            gh[n] = 0.0f;
            ga[n] = 0.0f;
        }

        for (int64_t c = a.nchunks - 1; c >= 0; --c) {
            const int64_t l0 = c * kChunk;
            const int64_t l1 = l0 + kChunk < L ? l0 + kChunk : L;
            const int64_t nsub = (l1 - l0 + kSub - 1) / kSub;
            for (int64_t s = nsub - 1; s >= 0; --s) {
                const int64_t ls = l0 + s * kSub;
                const int64_t le = ls + kSub < l1 ? ls + kSub : l1;
                // Recompute from the chunk checkpoint up to the end of this sub-chunk.
                float h[NMAX];
                const float* ck = a.ckpt_in + (row * a.nchunks + c) * a.npad + n0;
#pragma unroll
                for (int n = 0; n < NMAX; ++n) h[n] = (active && n < NT) ? ck[n] : 0.0f;
                for (int64_t l = l0; l < le; ++l) {
                    if (l >= ls) {
#pragma unroll
                        for (int n = 0; n < NMAX; ++n) hs[l - ls][n] = h[n];
                    }
                    const int64_t t = a.reverse ? L - 1 - l : l;
                    float dt = (active ? dl[t] : 0.0f) + bias;
                    if (a.softplus) dt = softplus_f(dt);
                    const float x = dt * (active ? u[t] : 0.0f);
#pragma unroll
                    for (int n = 0; n < NMAX; ++n)
                        if (n < NT) h[n] = exp2f(dt * a2[n]) * h[n] + x * Bb[int64_t(n) * L + t];
                }
#pragma unroll
                for (int n = 0; n < NMAX; ++n) hs[le - ls][n] = h[n];

                // Adjoint, backwards through the sub-chunk.
                for (int64_t l = le - 1; l >= ls; --l) {
                    const int j = int(l - ls);
                    const int64_t t = a.reverse ? L - 1 - l : l;
                    const float raw = (active ? dl[t] : 0.0f) + bias;
                    const float dt = a.softplus ? softplus_f(raw) : raw;
                    const float uv = active ? u[t] : 0.0f;
                    const float gout = active ? go[t] : 0.0f;
                    float gy = gout;
                    float zv = 0.0f, sg = 0.0f;
                    if (z) {
                        zv = active ? z[t] : 0.0f;
                        sg = sigmoid_f(zv);
                        gy = gout * zv * sg;
                    }
                    float y = 0.0f, r1 = 0.0f, r2 = 0.0f;
#pragma unroll
                    for (int n = 0; n < NMAX; ++n) {
                        if (n < NT) {
                            const float bl = Bb[int64_t(n) * L + t];
                            const float cl = Cb[int64_t(n) * L + t];
                            const float hcur = hs[j + 1][n];
                            y += hcur * cl;
                            gh[n] += gy * cl;
                            const float gc = warp_sum(gy * hcur);
                            const float gb = warp_sum(gh[n] * dt * uv);
                            if (lane0) {
                                atomicAdd(dCb + int64_t(n) * L + t, gc);
                                atomicAdd(dBb + int64_t(n) * L + t, gb);
                            }
                            const float da = exp2f(dt * a2[n]);
                            const float sv = gh[n] * hs[j][n] * da;
                            ga[n] += sv * dt;
                            r1 += sv * an[n];
                            r2 += gh[n] * bl;
                            gh[n] *= da;
                        }
                    }
                    float gdt = r1 + uv * r2;
                    if (a.softplus && raw <= 20.0f) gdt *= sigmoid_f(raw);
                    if (active) {
                        // The first tile writes (the buffers hold garbage), later tiles add.
                        const int64_t i = row * L + t;
                        const float du_part = dt * r2;
                        a.ddelta[i] = first ? gdt : a.ddelta[i] + gdt;
                        a.du[i] = first ? du_part + gy * Dd : a.du[i] + du_part;
                        if (z && a.dz) {
                            const float dsilu = sg * (1.0f + zv * (1.0f - sg));
                            a.dz[i] = first ? gout * (y + Dd * uv) * dsilu : a.dz[i] + gout * y * dsilu;
                        }
                    }
                    gbias += gdt;
                    if (first) gD += gy * uv;
                }
            }
        }
        if (active) {
#pragma unroll
            for (int n = 0; n < NMAX; ++n)
                if (n < NT) atomicAdd(a.dA + d * N + n0 + n, ga[n]);
        }
    }
    if (active) {
        if (a.D && a.dD) atomicAdd(a.dD + d, gD);
        if (a.bias && a.dbias) atomicAdd(a.dbias + d, gbias);
    }
}

int32_t check(int64_t batch, int64_t dim, int64_t length, int64_t dstate) {
    if (batch < 1 || dim < 1 || length < 1 || dstate < 1) return VIMDENSE_SCAN_ERR_BAD_SHAPE;
    if (batch > 65535) return VIMDENSE_SCAN_ERR_UNSUPPORTED;   // grid.y limit
    if (dstate > 64) return VIMDENSE_SCAN_ERR_UNSUPPORTED;
    return VIMDENSE_SCAN_OK;
}

template <int NMAX>
cudaError_t launch_forward(const Args& a, dim3 grid, cudaStream_t s) {
    scan_forward_kernel<NMAX><<<grid, kThreads, 0, s>>>(a);
    return cudaGetLastError();
}

template <int NMAX>
cudaError_t launch_backward(const Args& a, dim3 grid, cudaStream_t s) {
    scan_backward_kernel<NMAX><<<grid, kThreads, 0, s>>>(a);
    return cudaGetLastError();
}

Args make_args(const float* u, const float* delta, const float* A, const float* B, const float* C,
               const float* D, const float* z, const float* bias, int32_t softplus, int32_t reverse,
               int64_t batch, int64_t dim, int64_t length, int64_t dstate) {
    Args a{};
    a.u = u; a.delta = delta; a.A = A; a.B = B; a.C = C; a.D = D; a.z = z; a.bias = bias;
    a.softplus = softplus != 0;
    a.reverse = reverse != 0;
    a.batch = batch; a.dim = dim; a.length = length; a.dstate = dstate;
    a.npad = (dstate + kLanePad - 1) / kLanePad * kLanePad;
    a.nchunks = (length + kChunk - 1) / kChunk;
    return a;
}

}  // namespace

extern "C" {

int32_t vimdense_selective_scan_fwd_cuda(
    const float* u, const float* delta, const float* A, const float* B, const float* C,
    const float* D, const float* z, const float* delta_bias, int32_t delta_softplus, int32_t reverse,
    int64_t batch, int64_t dim, int64_t length, int64_t dstate,
    float* out, float* last_state, float* checkpoints, void* stream) {
    if (!u || !delta || !A || !B || !C || !out) return VIMDENSE_SCAN_ERR_NULL_POINTER;
    int32_t rc = check(batch, dim, length, dstate);
    if (rc != VIMDENSE_SCAN_OK) return rc;
    const vimdense_cuda::DeviceGuard device(u);
    if (!device.ok()) return VIMDENSE_SCAN_ERR_CUDA;
    Args a = make_args(u, delta, A, B, C, D, z, delta_bias, delta_softplus, reverse, batch, dim, length, dstate);
    a.out = out;
    a.last_state = last_state;
    a.ckpt = checkpoints;
    dim3 grid(unsigned((dim + kThreads - 1) / kThreads), unsigned(batch));
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    cudaError_t err;
    if (dstate <= 4) err = launch_forward<4>(a, grid, s);
    else if (dstate <= 8) err = launch_forward<8>(a, grid, s);
    else if (dstate <= 16) err = launch_forward<16>(a, grid, s);
    else err = launch_forward<32>(a, grid, s);   // tiles of 32 states (see scan_forward_kernel)
    return err == cudaSuccess ? VIMDENSE_SCAN_OK : VIMDENSE_SCAN_ERR_CUDA;
}

int32_t vimdense_selective_scan_bwd_cuda(
    const float* u, const float* delta, const float* A, const float* B, const float* C,
    const float* D, const float* z, const float* delta_bias, int32_t delta_softplus, int32_t reverse,
    int64_t batch, int64_t dim, int64_t length, int64_t dstate,
    const float* checkpoints, const float* dout,
    float* du, float* ddelta, float* dA, float* dB, float* dC,
    float* dD, float* dz, float* ddelta_bias, void* stream) {
    if (!u || !delta || !A || !B || !C || !dout || !du || !ddelta || !dA || !dB || !dC)
        return VIMDENSE_SCAN_ERR_NULL_POINTER;
    // The CUDA backward needs the forward's checkpoints (no internal recompute pass).
    if (!checkpoints) return VIMDENSE_SCAN_ERR_NULL_POINTER;
    int32_t rc = check(batch, dim, length, dstate);
    if (rc != VIMDENSE_SCAN_OK) return rc;
    const vimdense_cuda::DeviceGuard device(u);
    if (!device.ok()) return VIMDENSE_SCAN_ERR_CUDA;
    Args a = make_args(u, delta, A, B, C, D, z, delta_bias, delta_softplus, reverse, batch, dim, length, dstate);
    a.ckpt_in = checkpoints;
    a.dout = dout;
    a.du = du;
    a.ddelta = ddelta;
    a.dA = dA;
    a.dB = dB;
    a.dC = dC;
    a.dD = D ? dD : nullptr;
    a.dz = z ? dz : nullptr;
    a.dbias = delta_bias ? ddelta_bias : nullptr;
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    // Accumulated with atomics: start from zero.
    cudaError_t err = cudaMemsetAsync(dA, 0, sizeof(float) * size_t(dim * dstate), s);
    if (err == cudaSuccess) err = cudaMemsetAsync(dB, 0, sizeof(float) * size_t(batch * dstate * length), s);
    if (err == cudaSuccess) err = cudaMemsetAsync(dC, 0, sizeof(float) * size_t(batch * dstate * length), s);
    if (err == cudaSuccess && a.dD) err = cudaMemsetAsync(a.dD, 0, sizeof(float) * size_t(dim), s);
    if (err == cudaSuccess && a.dbias) err = cudaMemsetAsync(a.dbias, 0, sizeof(float) * size_t(dim), s);
    if (err != cudaSuccess) return VIMDENSE_SCAN_ERR_CUDA;
    dim3 grid(unsigned((dim + kThreads - 1) / kThreads), unsigned(batch));
    // Tiles of at most 16 states (see scan_backward_kernel).
    if (dstate <= 4) err = launch_backward<4>(a, grid, s);
    else if (dstate <= 8) err = launch_backward<8>(a, grid, s);
    else err = launch_backward<16>(a, grid, s);
    return err == cudaSuccess ? VIMDENSE_SCAN_OK : VIMDENSE_SCAN_ERR_CUDA;
}

}  // extern "C"
