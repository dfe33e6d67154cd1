// Row kernels of the fused depthwise conv1d + bias + SiLU that produces the scan input u in the
// Mamba mixer, written over the same vector abstraction V as selective_scan_cpu_kernel.h (and
// instantiated by the same per-instruction-set files, after that header).
//
// Per (batch, channel) row, with K taps w[0..K-1]:
//   causal (forward branch):        s[t] = bias + Σ_j w[j]·x[t - (K-1) + j]
//   anti-causal (backward branch):  s[t] = bias + Σ_j w[j]·x[t + (K-1) - j]
//   out[t] = silu(s[t]); x is zero outside [0, L).
// The anti-causal form is the causal conv of the time-reversed row, read back in time order.
#pragma once
#include "selective_scan_cpu_internal.h"

namespace vimdense_scan {
namespace kernel {

// Offset of tap j: s[t] reads x[t + conv_offset(j)].
static inline int64_t conv_offset(const ConvProblem& p, int64_t j) {
    return p.reverse ? p.width - 1 - j : j - (p.width - 1);
}

// W consecutive values v[start..start+W-1] of a length-L row, zero outside [0, L).
template <class V>
inline typename V::T load_zero_padded(const float* v, int64_t L, int64_t start) {
    if (start >= 0 && start + V::W <= L) return V::load(v + start);
    alignas(64) float tmp[V::W];
    for (int i = 0; i < V::W; ++i) {
        const int64_t t = start + i;
        tmp[i] = (t >= 0 && t < L) ? v[t] : 0.0f;
    }
    return V::load(tmp);
}

template <class V>
inline typename V::T conv_pre(const ConvProblem& p, const float* x, const float* w, float bias, int64_t t) {
    auto s = V::set1(bias);
    for (int64_t j = 0; j < p.width; ++j)
        s = V::fmadd(V::set1(w[j]), load_zero_padded<V>(x, p.length, t + conv_offset(p, j)), s);
    return s;
}

template <class V>
void conv_forward_row(const ConvProblem& p, int64_t b, int64_t d, float* /*scratch*/) {
    const int64_t L = p.length;
    const float* x = p.x + b * p.x_batch_stride + d * L;
    const float* w = p.weight + d * p.width;
    const float bias = p.bias ? p.bias[d] : 0.0f;
    float* out = p.out + (b * p.dim + d) * L;
    for (int64_t t = 0; t < L; t += V::W) {
        auto s = conv_pre<V>(p, x, w, bias, t);
        store_n<V>(out + t, V::mul(s, vsigmoid<V>(s)), L - t);
    }
}

// Backward of one row: gs = dout·silu'(s) (s recomputed) into scratch; dbias and dweight partials
// of the row; dx[τ] = Σ_j w[j]·gs[τ - offset(j)].
template <class V>
void conv_backward_row(const ConvProblem& p, int64_t b, int64_t d, float* scratch) {
    const int64_t L = p.length, K = p.width, row = b * p.dim + d;
    const float* x = p.x + b * p.x_batch_stride + d * L;
    const float* w = p.weight + d * K;
    const float bias = p.bias ? p.bias[d] : 0.0f;
    const float* dout = p.dout + row * L;
    float* gs = scratch;
    auto one = V::set1(1.0f);
    auto gbias = V::zero();
    typename V::T gw[kMaxConvWidth];
    for (int64_t j = 0; j < K; ++j) gw[j] = V::zero();
    for (int64_t t = 0; t < L; t += V::W) {
        const int64_t n = L - t;
        auto s = conv_pre<V>(p, x, w, bias, t);
        auto sg = vsigmoid<V>(s);
        // silu'(s) = σ(s)·(1 + s·(1 − σ(s))); lanes past the row end have dout = 0.
        auto g = V::mul(load_n<V>(dout + t, n), V::mul(sg, V::fmadd(s, V::sub(one, sg), one)));
        V::store(gs + t, g);
        gbias = V::add(gbias, g);
        for (int64_t j = 0; j < K; ++j)
            gw[j] = V::fmadd(g, load_zero_padded<V>(x, L, t + conv_offset(p, j)), gw[j]);
    }
    for (int64_t j = 0; j < K; ++j) p.gweight_part[row * K + j] = V::reduce(gw[j]);
    if (p.gbias_part) p.gbias_part[row] = V::reduce(gbias);
    float* dx = p.dx + row * L;
    for (int64_t t = 0; t < L; t += V::W) {
        auto acc = V::zero();
        for (int64_t j = 0; j < K; ++j)
            acc = V::fmadd(V::set1(w[j]), load_zero_padded<V>(gs, L, t - conv_offset(p, j)), acc);
        store_n<V>(dx + t, acc, L - t);
    }
}

}  // namespace kernel
}  // namespace vimdense_scan
