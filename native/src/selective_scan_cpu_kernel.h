// Row kernels of the CPU selective scan, written once over a small vector abstraction `V` and
// instantiated per instruction set (each instantiating file defines V in an anonymous namespace,
// so every instantiation has internal linkage and is compiled for that file's target only).
//
// V provides: W (lanes), T (register type), zero, set1, load, store (unaligned), add, sub, mul,
// div, fmadd(a,b,c)=a*b+c, max, neg_abs (−|x|: one bitwise or where min(x, −x) took two
// instructions), reverse (lane order reversed), reduce (horizontal sum),
// reduce_many (lane j of the result = horizontal sum of the j-th of W vectors), exp2 (2^x, 0
// for x <= -150, +inf for x >= 129) and exp2_shifted (2^(y-1), see decay).
//
// The state dimension is vectorised: a row's npad lanes are processed in groups of up to four
// registers (states stay in registers over the whole sequence); steps are sequential. The forward
// interleaves several rows (channels of one batch element) when a row needs fewer than four
// registers, so independent recurrences fill the pipeline and share the B and C loads. Elementwise
// work over the sequence (softplus, gate) is vectorised over steps.
#pragma once
#include "selective_scan_cpu_internal.h"

namespace vimdense_scan {
namespace kernel {

constexpr float kLog2e = 1.4426950408889634f;

template <class V>
inline typename V::T vexp(typename V::T x) { return V::exp2(V::mul(x, V::set1(kLog2e))); }

// The recurrence's decay exp(Δ·A) from Δ and a2 = A·log2(e), as 2^(y - 1) with y = Δ·a2 + 1 formed
// by one fused multiply-add. For a long-memory state (|Δ·a2| small) the exp2 reduction then takes
// f = y itself, rounded once to nearest, where 2^(Δ·a2) would reduce Δ·a2 to Δ·a2 + 1 rounded down
// by vreduceps: half an ulp too low on average, the same way at every step, which added up over
// the thousands of steps such a state remembers (kExp2Poly has the numbers).
template <class V>
inline typename V::T decay(typename V::T dt, typename V::T a2) {
    return V::exp2_shifted(V::fmadd(dt, a2, V::set1(1.0f)));
}
// decay() of K registers at once, a2 of register j at a2[j·stride], with the exponentials
// interleaved (V::exp2_many; instruction sets that have it).
template <class V, int K>
inline void decay_many(typename V::T dt, const float* a2, int64_t stride, typename V::T* out) {
    const auto one = V::set1(1.0f);
#pragma GCC unroll 16
    for (int j = 0; j < K; ++j) out[j] = V::fmadd(dt, V::load(a2 + j * stride), one);
    V::template exp2_many<K, true>(out);
}

// log(1+t) for t in [0, 1] as t·Q(t), Q of degree 9 (Chebyshev fit to log1p(t)/t: approximation
// error 5e-9, 1.1e-7 relative evaluated in float with FMA). No division and no log: the softplus
// runs once per element of Δ, and the log-based form (two divisions) cost as much as 1/8 of the
// whole forward. Coefficients from the highest degree down, for Horner's rule.
constexpr float kLog1pQ[10] = {-3.176057013e-03f, 1.954252645e-02f, -5.637361109e-02f, 1.054362357e-01f,
                               -1.526966691e-01f, 1.966327429e-01f, -2.495161593e-01f, 3.332971036e-01f,
                               -4.999989271e-01f, 1.0f};
template <class V>
inline typename V::T vlog1p_unit(typename V::T t) {
    auto q = V::set1(kLog1pQ[0]);
#pragma GCC unroll 16
    for (int c = 1; c < 10; ++c) q = V::fmadd(q, t, V::set1(kLog1pQ[c]));
    return q;
}

// softplus(x) = log(1+e^x) = max(x,0) + log1p(e^-|x|); equals x in float for x > 20, matching
// PyTorch's threshold 20.
template <class V>
inline typename V::T vsoftplus(typename V::T x) {
    auto t = vexp<V>(V::neg_abs(x));
    return V::fmadd(t, vlog1p_unit<V>(t), V::max(x, V::zero()));
}

template <class V>
inline typename V::T vsigmoid(typename V::T x) {
    auto one = V::set1(1.0f);
    // e^-x as 2^(x·(−log2 e)): one multiply, the same value as negating x first.
    return V::div(one, V::add(one, V::exp2(V::mul(x, V::set1(-kLog2e)))));
}

template <class V>
inline typename V::T vsilu(typename V::T x) { return V::mul(x, vsigmoid<V>(x)); }

// Softplus and SiLU of K registers in place, each step done for all K before the next (as
// V::exp2_many does): the same operations on each element as vsoftplus and vsilu, so the same
// results to the bit, but K independent dependency chains side by side in program order, which the
// out-of-order core overlaps; one register after another, a chain of ~20 dependent instructions
// filled the scheduler and the elementwise passes ran at half the FMA ports' rate.
template <class V, int K>
inline void softplus_many(typename V::T* x) {
    using T = typename V::T;
    T t[K], q[K];
#pragma GCC unroll 16
    for (int k = 0; k < K; ++k) t[k] = V::mul(V::neg_abs(x[k]), V::set1(kLog2e));
    V::template exp2_many<K>(t);
#pragma GCC unroll 16
    for (int k = 0; k < K; ++k) q[k] = V::set1(kLog1pQ[0]);
#pragma GCC unroll 16
    for (int c = 1; c < 10; ++c)
#pragma GCC unroll 16
        for (int k = 0; k < K; ++k) q[k] = V::fmadd(q[k], t[k], V::set1(kLog1pQ[c]));
#pragma GCC unroll 16
    for (int k = 0; k < K; ++k) x[k] = V::fmadd(t[k], q[k], V::max(x[k], V::zero()));
}
template <class V, int K>
inline void silu_many(typename V::T* x) {
    using T = typename V::T;
    T e[K];
#pragma GCC unroll 16
    for (int k = 0; k < K; ++k) e[k] = V::mul(x[k], V::set1(-kLog2e));
    V::template exp2_many<K>(e);
    const T one = V::set1(1.0f);
#pragma GCC unroll 16
    for (int k = 0; k < K; ++k) x[k] = V::mul(x[k], V::div(one, V::add(one, e[k])));
}

// Loads/stores of a possibly partial vector at the end of a row.
template <class V>
inline typename V::T load_n(const float* p, int64_t n) {
    if (n >= V::W) return V::load(p);
    alignas(64) float tmp[V::W];
    for (int i = 0; i < V::W; ++i) tmp[i] = i < n ? p[i] : 0.0f;
    return V::load(tmp);
}
template <class V>
inline void store_n(float* p, typename V::T v, int64_t n) {
    if (n >= V::W) { V::store(p, v); return; }
    alignas(64) float tmp[V::W];
    V::store(tmp, v);
    for (int64_t i = 0; i < n; ++i) p[i] = tmp[i];
}

// A row of the caller's (batch, dim, length) tensors seen in scan order: scan step l is time l, or
// time L-1-l for a reverse scan. seq_load returns scan steps l..l+W-1 (n of them valid, the rest
// zero); seq_store writes the first n lanes of v to scan steps l.. .
template <class V>
inline typename V::T seq_load(const float* row, int64_t L, int64_t l, int64_t n, bool reverse) {
    if (!reverse) return load_n<V>(row + l, n);
    if (n >= V::W) return V::reverse(V::load(row + L - l - V::W));
    alignas(64) float tmp[V::W];
    for (int i = 0; i < V::W; ++i) tmp[i] = i < n ? row[L - 1 - l - i] : 0.0f;
    return V::load(tmp);
}
template <class V>
inline void seq_store(float* row, int64_t L, int64_t l, typename V::T v, int64_t n, bool reverse) {
    if (!reverse) { store_n<V>(row + l, v, n); return; }
    if (n >= V::W) { V::store(row + L - l - V::W, V::reverse(v)); return; }
    alignas(64) float tmp[V::W];
    V::store(tmp, v);
    for (int64_t i = 0; i < n; ++i) row[L - 1 - l - i] = tmp[i];
}

// StepTransposeFn for B and C. Whole tiles of W steps and W states go through V::transpose (as
// forward_lanes reads rows: in a reverse scan, the transposed vectors are taken in reverse order);
// the last steps of the sequence element by element.
template <class V>
void transpose_to_steps(const float* src, int64_t n, int64_t L, int64_t np, bool reverse, int64_t l0, int64_t l1,
                        float* dst) {
    constexpr int W = V::W;
    int64_t l = l0;
    if (np % W == 0)
        for (; l + W <= l1; l += W) {
            const int64_t t0 = reverse ? L - l - W : l;
            for (int64_t s0 = 0; s0 < np; s0 += W) {
                typename V::T tile[W];
                for (int i = 0; i < W; ++i) tile[i] = s0 + i < n ? V::load(src + (s0 + i) * L + t0) : V::zero();
                V::transpose(tile);
                for (int j = 0; j < W; ++j) V::store(dst + (l + j) * np + s0, tile[reverse ? W - 1 - j : j]);
            }
        }
    for (; l < l1; ++l) {
        const int64_t t = reverse ? L - 1 - l : l;
        for (int64_t i = 0; i < np; ++i) dst[l * np + i] = i < n ? src[i * L + t] : 0.0f;
    }
}

// Row scratch layout (floats): dt, dtu, y, gy, gdt, gu, dtraw, us (each lpad) then chunk buffers.
struct RowBuffers {
    float* dt;      // Δ after bias and softplus
    float* dtu;     // Δ·u
    float* y;       // Σ_n h·C (accumulated over lane groups)
    float* gy;      // dL/dy = dout·silu(z)
    float* gdt;     // dL/dΔ accumulated over lane groups
    float* gu;      // dL/du from the recurrence, accumulated over lane groups
    float* dtraw;   // delta + bias (softplus input)
    float* us;      // u in scan order
    float* hbuf;    // (kChunk+1, 64) states of a chunk: hbuf[j] = h before step j
    float* abuf;    // (kChunk, 64) decays exp(Δ·A) of a chunk
    float* ckrow;   // (nchunks, npad) checkpoints recomputed in the backward
};

// static: this header is compiled for several targets, and an external inline copy built for
// AVX-512 could be the one the linker keeps for every caller.
static inline RowBuffers split_scratch(const Problem& p, float* s) {
    int64_t lpad = (p.length + 63) / 64 * 64;
    RowBuffers r;
    r.dt = s; r.dtu = s + lpad; r.y = s + 2 * lpad; r.gy = s + 3 * lpad; r.gdt = s + 4 * lpad;
    r.gu = s + 5 * lpad; r.dtraw = s + 6 * lpad; r.us = s + 7 * lpad;
    r.hbuf = s + 8 * lpad;
    r.abuf = r.hbuf + (kChunk + 1) * 64;
    r.ckrow = r.abuf + (kChunk + 1) * 64;
    return r;
}

// Scan steps l..l+W-1 (n of them valid) of row `row` (channel d): the softplus input Δ + bias, Δ
// after the softplus (when asked) and u.
template <class V>
struct DeltaSteps {
    typename V::T raw, dt, u;
};
template <class V>
inline DeltaSteps<V> load_delta_steps(const Problem& p, int64_t row, int64_t d, int64_t l, int64_t n) {
    const int64_t L = p.length;
    const bool rev = p.reverse != 0;
    const auto raw = V::add(seq_load<V>(p.delta + row * L, L, l, n, rev), V::set1(p.bias ? p.bias[d] : 0.0f));
    return {raw, p.softplus ? vsoftplus<V>(raw) : raw, seq_load<V>(p.u + row * L, L, l, n, rev)};
}

// The forward's output at scan steps l..l+n-1 of row `row` (channel d): (y + D·u)·silu(z), written
// in the caller's order.
template <class V>
inline void store_gated_output(const Problem& p, int64_t row, int64_t d, int64_t l, int64_t n, typename V::T y,
                               typename V::T u) {
    const int64_t L = p.length;
    const bool rev = p.reverse != 0;
    auto o = V::fmadd(V::set1(p.D ? p.D[d] : 0.0f), u, y);
    if (p.z) {
        const auto zv = seq_load<V>(p.z + row * L, L, l, n, rev);
        o = V::mul(o, vsilu<V>(zv));
    }
    seq_store<V>(p.out + row * L, L, l, o, n, rev);
}

// Δ, Δ·u, u (and the raw softplus input) for one row in scan order, vectorised over steps.
template <class V>
inline void prepare_delta(const Problem& p, int64_t b, int64_t d, RowBuffers& r) {
    const int64_t L = p.length, row = b * p.dim + d;
    for (int64_t l = 0; l < L; l += V::W) {
        const auto s = load_delta_steps<V>(p, row, d, l, L - l);
        V::store(r.dtraw + l, s.raw);
        V::store(r.dt + l, s.dt);
        V::store(r.us + l, s.u);
        V::store(r.dtu + l, V::mul(s.dt, s.u));
    }
}

// One lane group of the forward recurrence over the whole row. Writes y (or adds to it), the
// checkpoints (state before each chunk) if ck is not null, and the final state into hlast.
// (RowBuffers is taken by value: intrinsic stores may alias anything, and a local copy lets the
// compiler keep its pointers in registers.) Used by the backward to rebuild missing checkpoints.
template <class V, int G, bool want_y>
inline void forward_group(const Problem& p, int64_t b, int64_t d, int64_t off, RowBuffers r,
                          bool first_group, float* ck, int64_t ck_stride, float* hlast) {
    using T = typename V::T;
    const int64_t L = p.length, np = p.npad;
    T a2[G], h[G];
    for (int k = 0; k < G; ++k) {
        a2[k] = V::load(p.A2 + d * np + off + k * V::W);
        h[k] = V::zero();
    }
    const float* Bt = p.Bt + b * L * np + off;
    const float* Ct = p.Ct + b * L * np + off;
    for (int64_t c = 0; c < p.nchunks; ++c) {
        if (ck)
            for (int k = 0; k < G; ++k) V::store(ck + c * ck_stride + k * V::W, h[k]);
        const int64_t l1 = (c + 1) * kChunk < L ? (c + 1) * kChunk : L;
        // Blocks of W steps: the W per-step partial sums of y are reduced together.
        for (int64_t lb = c * kChunk; lb < l1; lb += V::W) {
            const int jn = l1 - lb < V::W ? int(l1 - lb) : V::W;
            T accs[V::W];
            for (int j = 0; j < jn; ++j) {
                const int64_t l = lb + j;
                const T dt = V::set1(r.dt[l]);
                const T x = V::set1(r.dtu[l]);
                const float* Bl = Bt + l * np;
                const float* Cl = Ct + l * np;
                T acc = V::zero();
                for (int k = 0; k < G; ++k) {
                    T da = decay<V>(dt, a2[k]);
                    h[k] = V::fmadd(da, h[k], V::mul(x, V::load(Bl + k * V::W)));
                    if constexpr (want_y) acc = V::fmadd(h[k], V::load(Cl + k * V::W), acc);
                }
                accs[j] = acc;
            }
            if constexpr (want_y) {
                for (int j = jn; j < V::W; ++j) accs[j] = V::zero();
                T yv = V::reduce_many(accs);
                // Row buffers are padded to 64 floats, so a full store past the row end is safe.
                V::store(r.y + lb, first_group ? yv : V::add(V::load(r.y + lb), yv));
            }
        }
    }
    if (hlast)
        for (int k = 0; k < G; ++k) V::store(hlast + k * V::W, h[k]);
}

// The forward recurrence of R rows (channels d0..d0+R-1 of one batch element) over one lane
// group of G vectors each, interleaved step by step. One row's recurrence is a single dependent
// multiply-add per step and lane group; R independent chains fill the pipeline, and the rows
// share the loads of B and C. Writes (or adds to) each row's y, its checkpoints (ck[i] non-null)
// and its final state (hlast non-null: R·G·W floats, row-major).
template <class V, int G, int R>
inline void forward_block(const Problem& p, int64_t b, int64_t d0, int64_t off, const RowBuffers* rows,
                          bool first_group, float* const* ck, float* hlast) {
    using T = typename V::T;
    const int64_t L = p.length, np = p.npad;
    // Local copies: intrinsic stores may alias anything, locals stay in registers.
    const float* dt[R];
    const float* dtu[R];
    float* y[R];
    float* ckr[R];
    T a2[R][G], h[R][G];
    for (int i = 0; i < R; ++i) {
        dt[i] = rows[i].dt;
        dtu[i] = rows[i].dtu;
        y[i] = rows[i].y;
        ckr[i] = ck[i];
        for (int k = 0; k < G; ++k) {
            a2[i][k] = V::load(p.A2 + (d0 + i) * np + off + k * V::W);
            h[i][k] = V::zero();
        }
    }
    const float* Bt = p.Bt + b * L * np + off;
    const float* Ct = p.Ct + b * L * np + off;
    for (int64_t c = 0; c < p.nchunks; ++c) {
        for (int i = 0; i < R; ++i)
            if (ckr[i])
                for (int k = 0; k < G; ++k) V::store(ckr[i] + c * np + k * V::W, h[i][k]);
        const int64_t l1 = (c + 1) * kChunk < L ? (c + 1) * kChunk : L;
        for (int64_t lb = c * kChunk; lb < l1; lb += V::W) {
            const int jn = l1 - lb < V::W ? int(l1 - lb) : V::W;
            T accs[R][V::W];
            auto step = [&](int j) {
                const int64_t l = lb + j;
                T bv[G], cv[G];
                for (int k = 0; k < G; ++k) {
                    bv[k] = V::load(Bt + l * np + k * V::W);
                    cv[k] = V::load(Ct + l * np + k * V::W);
                }
                for (int i = 0; i < R; ++i) {
                    const T dtv = V::set1(dt[i][l]);
                    const T x = V::set1(dtu[i][l]);
                    T acc = V::zero();
                    for (int k = 0; k < G; ++k) {
                        const T da = decay<V>(dtv, a2[i][k]);
                        h[i][k] = V::fmadd(da, h[i][k], V::mul(x, bv[k]));
                        acc = k == 0 ? V::mul(h[i][k], cv[k]) : V::fmadd(h[i][k], cv[k], acc);
                    }
                    accs[i][j] = acc;
                }
            };
            if (jn == V::W) {
                for (int j = 0; j < V::W; ++j) step(j);
            } else {
                for (int j = 0; j < jn; ++j) step(j);
                for (int i = 0; i < R; ++i)
                    for (int j = jn; j < V::W; ++j) accs[i][j] = V::zero();
            }
            for (int i = 0; i < R; ++i) {
                const T yv = V::reduce_many(accs[i]);
                // Row buffers are padded to 64 floats, so a full store past the row end is safe.
                V::store(y[i] + lb, first_group ? yv : V::add(V::load(y[i] + lb), yv));
            }
        }
    }
    if (hlast)
        for (int i = 0; i < R; ++i)
            for (int k = 0; k < G; ++k) V::store(hlast + (i * G + k) * V::W, h[i][k]);
}

template <class V, class F>
inline void for_groups(int64_t npad, F&& f) {
    // Lane groups of up to 4 registers; npad is a multiple of 16, hence of W.
    const int64_t nv = npad / V::W;
    for (int64_t v = 0; v < nv; v += 4) {
        int64_t g = nv - v < 4 ? nv - v : 4;
        f(v * V::W, g);
    }
}

// Rows of a forward work item interleaved together: as many as keep G·R ≤ 4 vector chains
// (each needs its state, its decay rates and the exp temporaries in registers).
template <class V>
inline int forward_interleave(int64_t npad, int64_t nrows) {
    const int64_t g = npad / V::W;
    int64_t r = g >= 4 ? 1 : 4 / g;
    return int(r < nrows ? r : nrows);
}

// One forward work item: rows d0..d0+nrows-1 (nrows ≤ kRowBlock) of batch element b; scratch
// holds nrows row scratch areas of `per_row` floats.
template <class V>
void forward_rows(const Problem& p, int64_t b, int64_t d0, int64_t nrows, float* scratch, int64_t per_row) {
    const int64_t L = p.length, np = p.npad;
    RowBuffers rb[kRowBlock];
    for (int64_t i = 0; i < nrows; ++i) {
        rb[i] = split_scratch(p, scratch + i * per_row);
        prepare_delta<V>(p, b, d0 + i, rb[i]);
    }
    alignas(64) float hlast[kRowBlock * 64];
    const int R = forward_interleave<V>(np, nrows);
    for (int64_t i0 = 0; i0 < nrows; i0 += R) {
        const int r = int(nrows - i0 < R ? nrows - i0 : R);
        bool first = true;
        for_groups<V>(np, [&](int64_t off, int64_t g) {
            float* ck[kRowBlock];
            for (int i = 0; i < r; ++i)
                ck[i] = p.ckpt ? p.ckpt + (b * p.dim + d0 + i0 + i) * p.nchunks * np + off : nullptr;
            float* hl = p.last_state ? hlast : nullptr;
            const RowBuffers* rows = rb + i0;
            const int64_t d = d0 + i0;
            // (g, r) pairs with g·r ≤ 4, see forward_interleave.
            switch (g * 4 + r) {
                case 1 * 4 + 1: forward_block<V, 1, 1>(p, b, d, off, rows, first, ck, hl); break;
                case 1 * 4 + 2: forward_block<V, 1, 2>(p, b, d, off, rows, first, ck, hl); break;
                case 1 * 4 + 3: forward_block<V, 1, 3>(p, b, d, off, rows, first, ck, hl); break;
                case 1 * 4 + 4: forward_block<V, 1, 4>(p, b, d, off, rows, first, ck, hl); break;
                case 2 * 4 + 1: forward_block<V, 2, 1>(p, b, d, off, rows, first, ck, hl); break;
                case 2 * 4 + 2: forward_block<V, 2, 2>(p, b, d, off, rows, first, ck, hl); break;
                case 3 * 4 + 1: forward_block<V, 3, 1>(p, b, d, off, rows, first, ck, hl); break;
                default: forward_block<V, 4, 1>(p, b, d, off, rows, first, ck, hl); break;
            }
            if (p.last_state)
                for (int i = 0; i < r; ++i) {
                    const int64_t row = b * p.dim + d + i;
                    for (int64_t k = 0; k < g * V::W && off + k < p.dstate; ++k)
                        p.last_state[row * p.dstate + off + k] = hlast[i * g * V::W + k];
                }
            first = false;
        });
    }
    for (int64_t i = 0; i < nrows; ++i) {
        const int64_t d = d0 + i;
        for (int64_t l = 0; l < L; l += V::W)
            store_gated_output<V>(p, b * p.dim + d, d, l, L - l, V::load(rb[i].y + l), V::load(rb[i].us + l));
    }
}

// The forward with the channels in the lanes, for npad == W (every dstate up to 16 on AVX-512,
// Vim's 16 included): one work item is a block of up to W channels of one batch element, and
// register k holds state k of all W channels. Each step is then W independent exp/multiply-add
// chains with B[k] and C[k] broadcast from memory, and the C-contraction is an in-lane multiply-
// add: no horizontal sums. (With the states in the lanes, as forward_rows has them, every step of
// every row ends in a horizontal sum; their transpose-and-add trees were about a fifth of the
// vector instructions.) The caller's rows meet the lanes through W×W transposes: three per W steps
// (Δ and Δ·u in, y out) and one per checkpoint.
//
// The work goes chunk by chunk (kChunk steps), so its buffers stay in L1: (1) Δ (bias, softplus)
// and Δ·u per row, vectorised over steps, transposed to (step, channel); (2) the recurrence,
// writing y as (step, channel), after the chunk's checkpoint; (3) y transposed back and
// out = (y + D·u)·silu(z) per row. The W rows' next chunks of Δ, u, z and out are prefetched
// during the recurrence: 4·W streams at once are more than the hardware prefetchers follow.
// Passes (1) and (3) of a whole chunk go row by row through staging rows in L1, two rows at a time:
// W rows of the caller's tensors at the same time offset are L·4 bytes apart, which for L near a
// multiple of 1024 puts all W lines in one set of the 12-way L1, and going across the rows a tile
// at a time evicted lines before their second half was read (the gate took 25% longer).
// Channels past the block's end have Δ = Δ·u = 0 and A = 0: their states stay zero and nothing of
// theirs is stored. Scratch: lanes_scratch_floats.
template <class V>
void forward_lanes(const Problem& p, int64_t b, int64_t d0, int64_t nrows, float* scratch, int64_t c_begin,
                   int64_t c_end, float* states) {
    using T = typename V::T;
    constexpr int W = V::W;
    static_assert(kChunk % W == 0, "chunks are whole W-step tiles");
    // The recurrence takes the states in groups whose exponentials are interleaved (V::exp2_many);
    // 4 and 8 measured the same, and 4 leaves registers for the 16 states.
    constexpr int kStateGroup = 4;
    const int64_t L = p.length, np = p.npad;
    const bool rev = p.reverse != 0;
    float* dtT = scratch;
    float* xT = dtT + kChunk * W;
    float* yT = xT + kChunk * W;
    float* dtR = yT + kChunk * W;
    float* xR = dtR + kChunk * W;
    constexpr int kRowVectors = kChunk / W;
    auto row_of = [&](int i) { return b * p.dim + d0 + i; };
    const float* bias = p.bias;
    const float* Dskip = p.D;
    const bool softplus = p.softplus;
    // A whole chunk (W rows, kChunk steps from scan step l) is read and written as rows of times
    // chunk_time(l).. in the caller's order. In a reverse scan those hold the scan steps backwards,
    // so the W×W tile of scan steps l+j.. is the columns from the other end, and after its
    // transpose the vector of scan step l+j+jj is the one at tile_slot(jj): reversing the order of
    // transposed vectors costs nothing, reversing every row vector a permute.
    auto chunk_time = [&](int64_t l) { return rev ? L - l - kChunk : l; };
    auto tile_slot = [&](int j) { return rev ? W - 1 - j : j; };

    // a2t[k] = A[d0..d0+W-1][k]·log2 e: the decay rates of state k across the block's channels.
    alignas(64) float a2t[W * W];
    {
        T rows[W];
        for (int i = 0; i < W; ++i) rows[i] = i < nrows ? V::load(p.A2 + (d0 + i) * np) : V::zero();
        V::transpose(rows);
        for (int k = 0; k < W; ++k) V::store(a2t + k * W, rows[k]);
    }
    // States (W registers of W channels) in the caller's per-row layout: a transpose, then row stores.
    auto store_states = [&](const T* h, float* base, int64_t row_stride, int64_t count) {
        T cols[W];
        for (int k = 0; k < W; ++k) cols[k] = h[k];
        V::transpose(cols);
        for (int i = 0; i < nrows; ++i) store_n<V>(base + row_of(i) * row_stride, cols[i], count);
    };
    // The next chunk's part of each row of Δ, u, z (and out, for writing) is prefetched during the
    // recurrence: 64 steps of a row are four 64-byte lines, five when they do not start on a line.
    // Step j of the chunk takes line j%4 of row j/4 (and the fifth line with the fourth), at element
    // offset row_start[i] + line_at[j%4]. The offsets are worked out once per chunk: worked out per
    // step, their scalar arithmetic took issue slots on the ports the FMAs use. prefetch_line is
    // always inlined: as a function of its own it would be a call without side effects (GCC counts
    // none for __builtin_prefetch), and GCC deletes those.
    static_assert(kChunk == 64, "four lines of a row per chunk");
    int64_t row_start[W];
    for (int i = 0; i < W; ++i) row_start[i] = row_of(i) * L;
    // The whole-chunk passes take rows in pairs, kPairVectors registers: vector q of the pair from
    // row i is in row pair_row(i, q), at pair_at(i, q, t0) in the caller's tensors (the chunk's
    // first time t0) and at pair_staged(i, q) in the staging rows.
    constexpr int kPairVectors = 2 * kRowVectors;
    auto pair_row = [&](int i, int q) { return i + q / kRowVectors; };
    auto pair_at = [&](int i, int q, int64_t t0) { return row_start[pair_row(i, q)] + t0 + q % kRowVectors * W; };
    auto pair_staged = [&](int i, int q) { return int64_t(pair_row(i, q)) * kChunk + q % kRowVectors * W; };
    int64_t line_at[5];
    bool prefetching = false;
    auto plan_prefetch = [&](int64_t l) {
        prefetching = l < L;
        if (!prefetching) return;
        const int64_t t0 = rev ? (L - l - kChunk > 0 ? L - l - kChunk : 0) : l;
        const int64_t last = (rev ? L - l : (l + kChunk < L ? l + kChunk : L)) - t0 - 1;
        for (int m = 0; m < 4; ++m) line_at[m] = t0 + (m * 16 < last ? m * 16 : last);
        line_at[4] = t0 + last;
    };
    auto prefetch_line = [&](int64_t j) __attribute__((always_inline)) {
        const int64_t i = j >> 2, m = j & 3;
        if (!prefetching || i >= nrows) return;
        const int64_t at = row_start[i] + line_at[m];
        __builtin_prefetch(p.delta + at);
        __builtin_prefetch(p.u + at);
        if (p.z) __builtin_prefetch(p.z + at);
        __builtin_prefetch(p.out + at, 1);
        if (m == 3) {
            const int64_t end = row_start[i] + line_at[4];
            __builtin_prefetch(p.delta + end);
            __builtin_prefetch(p.u + end);
            if (p.z) __builtin_prefetch(p.z + end);
            __builtin_prefetch(p.out + end, 1);
        }
    };

    T h[W];
    for (int k = 0; k < W; ++k) h[k] = c_begin == 0 ? V::zero() : V::load(states + k * W);
    const float* Bt = p.Bt + b * L * np;
    const float* Ct = p.Ct + b * L * np;
    plan_prefetch(c_begin * kChunk);
    for (int64_t j = 0; j < kChunk; ++j) prefetch_line(j);
    for (int64_t c = c_begin; c < c_end; ++c) {
        const int64_t l0 = c * kChunk;
        const int64_t l1 = l0 + kChunk < L ? l0 + kChunk : L;
        const bool whole = nrows == W && l1 - l0 == kChunk;
        if (whole) {
            // Row by row into the staging rows dtR and xR (Δ after bias and softplus, and Δ·u, in
            // the caller's time order), two rows (8 registers) at a time so their softplus chains
            // overlap; then W×W transposes into (step, channel) order.
            const int64_t t0 = chunk_time(l0);
#pragma GCC unroll 1
            for (int i = 0; i < W; i += 2) {
                T v[kPairVectors];
#pragma GCC unroll 8
                for (int q = 0; q < kPairVectors; ++q) {
                    v[q] = V::load(p.delta + pair_at(i, q, t0));
                    if (bias) v[q] = V::add(v[q], V::set1(bias[d0 + pair_row(i, q)]));
                }
                if (softplus) softplus_many<V, kPairVectors>(v);
#pragma GCC unroll 8
                for (int q = 0; q < kPairVectors; ++q) {
                    V::store(dtR + pair_staged(i, q), v[q]);
                    V::store(xR + pair_staged(i, q), V::mul(v[q], V::load(p.u + pair_at(i, q, t0))));
                }
            }
            for (int64_t j = 0; j < kChunk; j += W) {
                T dtv[W], xv[W];
                const int64_t col = rev ? kChunk - W - j : j;
                for (int i = 0; i < W; ++i) {
                    dtv[i] = V::load(dtR + i * kChunk + col);
                    xv[i] = V::load(xR + i * kChunk + col);
                }
                V::transpose(dtv);
                V::transpose(xv);
                for (int jj = 0; jj < W; ++jj) {
                    V::store(dtT + (j + jj) * W, dtv[tile_slot(jj)]);
                    V::store(xT + (j + jj) * W, xv[tile_slot(jj)]);
                }
            }
        } else {
            for (int64_t l = l0; l < l1; l += W) {
                const int64_t n = L - l;
                T dtv[W], xv[W];
                for (int i = 0; i < W; ++i) {
                    if (i >= nrows) { dtv[i] = V::zero(); xv[i] = V::zero(); continue; }
                    const auto s = load_delta_steps<V>(p, row_of(i), d0 + i, l, n);
                    dtv[i] = s.dt;
                    xv[i] = V::mul(s.dt, s.u);
                }
                V::transpose(dtv);
                V::transpose(xv);
                for (int j = 0; j < W; ++j) {
                    V::store(dtT + (l - l0 + j) * W, dtv[j]);
                    V::store(xT + (l - l0 + j) * W, xv[j]);
                }
            }
        }

        if (p.ckpt) store_states(h, p.ckpt + c * np, p.nchunks * np, np);
        plan_prefetch(l1);
        for (int64_t l = l0; l < l1; ++l) {
            const T dtv = V::load(dtT + (l - l0) * W);
            const T xv = V::load(xT + (l - l0) * W);
            const float* Bl = Bt + l * np;
            const float* Cl = Ct + l * np;
            T acc = V::zero();
            // Unrolled, or the states would live in memory (GCC keeps the 16-iteration loop).
#pragma GCC unroll 16
            for (int k0 = 0; k0 < W; k0 += kStateGroup) {
                T da[kStateGroup];
                decay_many<V, kStateGroup>(dtv, a2t + k0 * W, W, da);
#pragma GCC unroll 16
                for (int j = 0; j < kStateGroup; ++j)
                    h[k0 + j] = V::fmadd(da[j], h[k0 + j], V::mul(xv, V::set1(Bl[k0 + j])));
#pragma GCC unroll 16
                for (int j = 0; j < kStateGroup; ++j) acc = V::fmadd(h[k0 + j], V::set1(Cl[k0 + j]), acc);
            }
            V::store(yT + (l - l0) * W, acc);
            // The next chunk's lines, a few per step: a burst of 200 would queue behind the
            // line-fill buffers and stall the recurrence.
            prefetch_line(l - l0);
        }

        if (whole) {
            // y back to the caller's rows (staged in dtR, free again), then row by row, two rows
            // at a time: out = (y + D·u)·silu(z).
            float* yR = dtR;
            for (int64_t j = 0; j < kChunk; j += W) {
                T yv[W];
                for (int jj = 0; jj < W; ++jj) yv[jj] = V::load(yT + (j + tile_slot(jj)) * W);
                V::transpose(yv);
                const int64_t col = rev ? kChunk - W - j : j;
                for (int i = 0; i < W; ++i) V::store(yR + i * kChunk + col, yv[i]);
            }
            const int64_t t0 = chunk_time(l0);
#pragma GCC unroll 1
            for (int i = 0; i < W; i += 2) {
                T o[kPairVectors];
#pragma GCC unroll 8
                for (int q = 0; q < kPairVectors; ++q)
                    o[q] = V::fmadd(V::set1(Dskip ? Dskip[d0 + pair_row(i, q)] : 0.0f), V::load(p.u + pair_at(i, q, t0)),
                                    V::load(yR + pair_staged(i, q)));
                if (p.z) {
                    T g[kPairVectors];
#pragma GCC unroll 8
                    for (int q = 0; q < kPairVectors; ++q) g[q] = V::load(p.z + pair_at(i, q, t0));
                    silu_many<V, kPairVectors>(g);
#pragma GCC unroll 8
                    for (int q = 0; q < kPairVectors; ++q) o[q] = V::mul(o[q], g[q]);
                }
#pragma GCC unroll 8
                for (int q = 0; q < kPairVectors; ++q) V::store(p.out + pair_at(i, q, t0), o[q]);
            }
            continue;
        }
        // Steps past L in the last tile were not computed: zero, so the transpose moves no stale
        // values (they are not stored either way).
        for (int64_t l = l1; l < (l1 - l0 + W - 1) / W * W + l0; ++l) V::store(yT + (l - l0) * W, V::zero());
        for (int64_t l = l0; l < l1; l += W) {
            const int64_t n = L - l;
            T yv[W];
            for (int j = 0; j < W; ++j) yv[j] = V::load(yT + (l - l0 + j) * W);
            V::transpose(yv);
            for (int i = 0; i < nrows; ++i)
                store_gated_output<V>(p, row_of(i), d0 + i, l, n, yv[i], seq_load<V>(p.u + row_of(i) * L, L, l, n, rev));
        }
    }
    if (c_end < p.nchunks) {
        for (int k = 0; k < W; ++k) V::store(states + k * W, h[k]);
    } else if (p.last_state) {
        store_states(h, p.last_state, p.dstate, p.dstate);
    }
}

// The backward of R rows (channels d0..d0+R-1 of one batch element) over one lane group of G
// vectors each, interleaved step by step as in forward_block: per chunk (reverse chunk order)
// recompute the states from the checkpoints ck[i] (stride ck_stride per chunk), then run the
// adjoint recurrences backwards through the chunk. With R > 1 the rows' contributions to dB and
// dC of a step are summed in registers before one read-modify-write; backward_rows uses R = 1.
template <class V, int G, int R, bool want_y>
inline void backward_block(const Problem& p, int64_t b, int64_t d0, int64_t off, const RowBuffers* rows,
                           const float* const* ck, int64_t ck_stride, bool first_group,
                           float* gBt, float* gCt, bool store_gbc) {
    using T = typename V::T;
    const int64_t L = p.length, np = p.npad;
    constexpr int GW = G * V::W;
    // Local copies: intrinsic stores may alias anything, locals stay in registers.
    const float* dt[R];
    const float* dtu[R];
    const float* us[R];
    const float* gyr[R];
    float* y[R];
    float* gdtr[R];
    float* gur[R];
    float* hbuf[R];
    float* abuf[R];
    T a2[R][G], a[R][G], gh[R][G], ga[R][G];
    for (int i = 0; i < R; ++i) {
        const RowBuffers& r = rows[i];
        dt[i] = r.dt; dtu[i] = r.dtu; us[i] = r.us; gyr[i] = r.gy; y[i] = r.y;
        gdtr[i] = r.gdt; gur[i] = r.gu; hbuf[i] = r.hbuf; abuf[i] = r.abuf;
        for (int k = 0; k < G; ++k) {
            a2[i][k] = V::load(p.A2 + (d0 + i) * np + off + k * V::W);
            a[i][k] = V::load(p.A + (d0 + i) * np + off + k * V::W);
            gh[i][k] = V::zero();
            ga[i][k] = V::zero();
        }
    }
    const float* Bt = p.Bt + b * L * np + off;
    const float* Ct = p.Ct + b * L * np + off;
    float* gB = gBt + b * L * np + off;
    float* gC = gCt + b * L * np + off;
    for (int64_t c = p.nchunks - 1; c >= 0; --c) {
        const int64_t l0 = c * kChunk;
        const int64_t l1 = l0 + kChunk < L ? l0 + kChunk : L;
        // Recompute: hbuf[j] = state before step l0+j, abuf[j] = decay at step l0+j.
        T h[R][G];
        for (int i = 0; i < R; ++i)
            for (int k = 0; k < G; ++k) h[i][k] = V::load(ck[i] + c * ck_stride + k * V::W);
        for (int64_t lb = l0; lb < l1; lb += V::W) {
            const int jn = l1 - lb < V::W ? int(l1 - lb) : V::W;
            T accs[R][V::W];
            auto step = [&](int jj) {
                const int64_t l = lb + jj, j = l - l0;
                T bv[G], cv[G];
                for (int k = 0; k < G; ++k) {
                    bv[k] = V::load(Bt + l * np + k * V::W);
                    if constexpr (want_y) cv[k] = V::load(Ct + l * np + k * V::W);
                }
                for (int i = 0; i < R; ++i) {
                    const T dtv = V::set1(dt[i][l]);
                    const T x = V::set1(dtu[i][l]);
                    T acc = V::zero();
                    for (int k = 0; k < G; ++k) {
                        V::store(hbuf[i] + j * GW + k * V::W, h[i][k]);
                        const T da = decay<V>(dtv, a2[i][k]);
                        V::store(abuf[i] + j * GW + k * V::W, da);
                        h[i][k] = V::fmadd(da, h[i][k], V::mul(x, bv[k]));
                        if constexpr (want_y) acc = k == 0 ? V::mul(h[i][k], cv[k]) : V::fmadd(h[i][k], cv[k], acc);
                    }
                    if constexpr (want_y) accs[i][jj] = acc;
                }
            };
            if (jn == V::W) {
                for (int jj = 0; jj < V::W; ++jj) step(jj);
            } else {
                for (int jj = 0; jj < jn; ++jj) step(jj);
            }
            if constexpr (want_y) {
                for (int i = 0; i < R; ++i) {
                    for (int jj = jn; jj < V::W; ++jj) accs[i][jj] = V::zero();
                    const T yv = V::reduce_many(accs[i]);
                    V::store(y[i] + lb, first_group ? yv : V::add(V::load(y[i] + lb), yv));
                }
            }
        }
        for (int i = 0; i < R; ++i)
            for (int k = 0; k < G; ++k) V::store(hbuf[i] + (l1 - l0) * GW + k * V::W, h[i][k]);
        // Adjoint: gh holds dL/dh_l; carried backwards through the decay.
        const int64_t nblocks = (l1 - l0 + V::W - 1) / V::W;
        for (int64_t bi = nblocks - 1; bi >= 0; --bi) {
            const int64_t lb = l0 + bi * V::W;
            const int jn = l1 - lb < V::W ? int(l1 - lb) : V::W;
            T r1s[R][V::W], r2s[R][V::W];
            auto step = [&](int jj) {
                const int64_t l = lb + jj, j = l - l0;
                T bv[G], cv[G], gbs[G], gcs[G];
                for (int k = 0; k < G; ++k) {
                    bv[k] = V::load(Bt + l * np + k * V::W);
                    cv[k] = V::load(Ct + l * np + k * V::W);
                }
                for (int i = 0; i < R; ++i) {
                    const T gy = V::set1(gyr[i][l]);
                    const T dtv = V::set1(dt[i][l]);
                    const T x = V::set1(dtu[i][l]);
                    T r1 = V::zero(), r2 = V::zero();
                    for (int k = 0; k < G; ++k) {
                        const T hcur = V::load(hbuf[i] + (j + 1) * GW + k * V::W);
                        const T hprev = V::load(hbuf[i] + j * GW + k * V::W);
                        const T da = V::load(abuf[i] + j * GW + k * V::W);
                        gh[i][k] = V::fmadd(gy, cv[k], gh[i][k]);
                        // A single row adds straight into dB and dC (one fused multiply-add each),
                        // or stores its part where the buffers hold nothing yet (store_gbc).
                        const T gc0 = R == 1 && !store_gbc ? V::load(gC + l * np + k * V::W) : V::zero();
                        const T gb0 = R == 1 && !store_gbc ? V::load(gB + l * np + k * V::W) : V::zero();
                        gcs[k] = V::fmadd(gy, hcur, i == 0 ? gc0 : gcs[k]);
                        gbs[k] = V::fmadd(gh[i][k], x, i == 0 ? gb0 : gbs[k]);
                        r2 = V::fmadd(gh[i][k], bv[k], r2);
                        gh[i][k] = V::mul(gh[i][k], da);   // dL/dh of the previous step
                        const T s = V::mul(gh[i][k], hprev);   // dL/d(Δ·A) per state
                        ga[i][k] = V::fmadd(s, dtv, ga[i][k]);
                        r1 = V::fmadd(s, a[i][k], r1);
                    }
                    r1s[i][jj] = r1;
                    r2s[i][jj] = r2;
                }
                for (int k = 0; k < G; ++k) {
                    float* gCl = gC + l * np + k * V::W;
                    float* gBl = gB + l * np + k * V::W;
                    V::store(gCl, R == 1 ? gcs[k] : V::add(V::load(gCl), gcs[k]));
                    V::store(gBl, R == 1 ? gbs[k] : V::add(V::load(gBl), gbs[k]));
                }
            };
            if (jn == V::W) {
                for (int jj = V::W - 1; jj >= 0; --jj) step(jj);
            } else {
                for (int jj = jn - 1; jj >= 0; --jj) step(jj);
                for (int i = 0; i < R; ++i)
                    for (int jj = jn; jj < V::W; ++jj) r1s[i][jj] = r2s[i][jj] = V::zero();
            }
            // dL/dΔ += Σ_n s·A + u·Σ_n gh·B;  dL/du += Δ·Σ_n gh·B  (W steps at once)
            for (int i = 0; i < R; ++i) {
                const T s1 = V::reduce_many(r1s[i]), s2 = V::reduce_many(r2s[i]);
                T gdt = V::fmadd(V::load(us[i] + lb), s2, s1);
                T gu = V::mul(V::load(dt[i] + lb), s2);
                if (!first_group) {
                    gdt = V::add(gdt, V::load(gdtr[i] + lb));
                    gu = V::add(gu, V::load(gur[i] + lb));
                }
                V::store(gdtr[i] + lb, gdt);
                V::store(gur[i] + lb, gu);
            }
        }
    }
    for (int i = 0; i < R; ++i)
        for (int k = 0; k < G; ++k)
            V::store(p.gA_part + (b * p.dim + d0 + i) * np + off + k * V::W, ga[i][k]);
}

// The elementwise tail of one row's backward: softplus derivative, D skip, gate.
template <class V>
inline void backward_row_tail(const Problem& p, int64_t b, int64_t d, const RowBuffers& r) {
    const int64_t L = p.length, row = b * p.dim + d;
    const bool rev = p.reverse != 0;
    const float* z = p.z ? p.z + row * L : nullptr;
    const float* dout = p.dout + row * L;
    const float Dd = p.D ? p.D[d] : 0.0f;
    auto Dv = V::set1(Dd);
    auto gD = V::zero(), gbias = V::zero();
    float* du = p.du + row * L;
    float* ddelta = p.ddelta + row * L;
    float* dz = (z && p.dz) ? p.dz + row * L : nullptr;
    for (int64_t l = 0; l < L; l += V::W) {
        int64_t n = L - l;
        auto gdt = V::load(r.gdt + l);
        if (p.softplus) gdt = V::mul(gdt, vsigmoid<V>(V::load(r.dtraw + l)));
        auto uv = V::load(r.us + l);
        auto gy = V::load(r.gy + l);
        if (n < V::W) {
            // Lanes past the row end must not enter the reductions.
            alignas(64) float t1[V::W], t2[V::W];
            V::store(t1, gdt); V::store(t2, gy);
            for (int64_t i = n; i < V::W; ++i) { t1[i] = 0.0f; t2[i] = 0.0f; }
            gdt = V::load(t1); gy = V::load(t2);
        }
        seq_store<V>(ddelta, L, l, gdt, n, rev);
        gbias = V::add(gbias, gdt);
        seq_store<V>(du, L, l, V::fmadd(gy, Dv, V::load(r.gu + l)), n, rev);
        gD = V::fmadd(gy, uv, gD);
        if (dz) {
            // dL/dz = dout·(y + D·u)·silu'(z), silu'(z) = σ(z)(1 + z(1-σ(z)))
            auto zv = seq_load<V>(z, L, l, n, rev);
            auto sg = vsigmoid<V>(zv);
            auto one = V::set1(1.0f);
            auto dsilu = V::mul(sg, V::fmadd(zv, V::sub(one, sg), one));
            auto o = V::fmadd(Dv, uv, V::load(r.y + l));
            seq_store<V>(dz, L, l, V::mul(V::mul(seq_load<V>(dout, L, l, n, rev), o), dsilu), n, rev);
        }
    }
    if (p.gD_part) p.gD_part[row] = V::reduce(gD);
    if (p.gbias_part) p.gbias_part[row] = V::reduce(gbias);
}

template <class V, bool want_y>
inline void backward_dispatch(int64_t g, const Problem& p, int64_t b, int64_t d, int64_t off, const RowBuffers* row,
                              const float* const* ck, int64_t stride, bool first, float* gBt, float* gCt,
                              bool store_gbc) {
    switch (g) {
        case 1: backward_block<V, 1, 1, want_y>(p, b, d, off, row, ck, stride, first, gBt, gCt, store_gbc); break;
        case 2: backward_block<V, 2, 1, want_y>(p, b, d, off, row, ck, stride, first, gBt, gCt, store_gbc); break;
        case 3: backward_block<V, 3, 1, want_y>(p, b, d, off, row, ck, stride, first, gBt, gCt, store_gbc); break;
        default: backward_block<V, 4, 1, want_y>(p, b, d, off, row, ck, stride, first, gBt, gCt, store_gbc); break;
    }
}

// One backward work item: rows d0..d0+nrows-1 (nrows ≤ kRowBlock) of batch element b, one after
// the other (R = 1 in backward_block: interleaving 4 rows measured ~4% slower, their chunk buffers
// of states and decays, 8 KiB per row and lane group of 16, crowd L1 next to the B, C, dB and dC
// rows of the chunk); accumulates into the dB and dC buffers gBt, gCt, or with store_gbc, whose
// previous contents it ignores, overwrites them (its first row writes every step and lane).
template <class V>
void backward_rows(const Problem& p, int64_t b, int64_t d0, int64_t nrows, float* scratch, float* gBt, float* gCt,
                   bool store_gbc) {
    const int64_t L = p.length, np = p.npad;
    const bool rev = p.reverse != 0;
    const bool want_y = p.z && p.dz;
    for (int64_t i = 0; i < nrows; ++i) {
        const int64_t d = d0 + i, row = b * p.dim + d;
        RowBuffers r = split_scratch(p, scratch);
        prepare_delta<V>(p, b, d, r);
        const float* z = p.z ? p.z + row * L : nullptr;
        const float* dout = p.dout + row * L;
        // dL/dy = dout·silu(z)
        for (int64_t l = 0; l < L; l += V::W) {
            int64_t n = L - l;
            auto g = seq_load<V>(dout, L, l, n, rev);
            if (z) {
                auto zv = seq_load<V>(z, L, l, n, rev);
                g = V::mul(g, V::mul(zv, vsigmoid<V>(zv)));
            }
            V::store(r.gy + l, g);
        }
        bool first = true;
        for_groups<V>(np, [&](int64_t off, int64_t g) {
            const float* ck;
            int64_t stride;
            if (p.ckpt_in) {
                ck = p.ckpt_in + row * p.nchunks * np + off;
                stride = np;
            } else {
                // No checkpoints from the forward: one forward pass of this group records them.
                stride = g * V::W;
                switch (g) {
                    case 1: forward_group<V, 1, false>(p, b, d, off, r, true, r.ckrow, stride, nullptr); break;
                    case 2: forward_group<V, 2, false>(p, b, d, off, r, true, r.ckrow, stride, nullptr); break;
                    case 3: forward_group<V, 3, false>(p, b, d, off, r, true, r.ckrow, stride, nullptr); break;
                    default: forward_group<V, 4, false>(p, b, d, off, r, true, r.ckrow, stride, nullptr); break;
                }
                ck = r.ckrow;
            }
            const bool store = store_gbc && i == 0;
            if (want_y) backward_dispatch<V, true>(g, p, b, d, off, &r, &ck, stride, first, gBt, gCt, store);
            else backward_dispatch<V, false>(g, p, b, d, off, &r, &ck, stride, first, gBt, gCt, store);
            first = false;
        });
        backward_row_tail<V>(p, b, d, r);
    }
}

}  // namespace kernel
}  // namespace vimdense_scan
