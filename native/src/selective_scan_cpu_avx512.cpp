// AVX-512 instantiation of the CPU selective-scan row kernels. Compiled for AVX-512 through a
// target pragma (only this file's code, after every standard header), and only called after the
// driver checked the CPU supports AVX-512F/DQ at run time.
// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized and -Wuninitialized on their own
// _mm512_undefined_ps().
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#include <stdint.h>

#include "selective_scan_cpu_internal.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx2,fma")

namespace {

struct V512 {
    static constexpr int W = 16;
    using T = __m512;
    static T zero() { return _mm512_setzero_ps(); }
    static T set1(float x) { return _mm512_set1_ps(x); }
    static T load(const float* p) { return _mm512_loadu_ps(p); }
    static void store(float* p, T v) { _mm512_storeu_ps(p, v); }
    static T add(T a, T b) { return _mm512_add_ps(a, b); }
    static T sub(T a, T b) { return _mm512_sub_ps(a, b); }
    static T mul(T a, T b) { return _mm512_mul_ps(a, b); }
    static T div(T a, T b) { return _mm512_div_ps(a, b); }
    static T fmadd(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
    static T max(T a, T b) { return _mm512_max_ps(a, b); }
    static T neg_abs(T a) { return _mm512_or_ps(a, _mm512_set1_ps(-0.0f)); }
    static T reverse(T v) {
        return _mm512_permutexvar_ps(_mm512_setr_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), v);
    }
    static float reduce(T v) {
        __m256 s = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
        __m128 q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
        q = _mm_add_ps(q, _mm_movehl_ps(q, q));
        q = _mm_add_ss(q, _mm_movehdup_ps(q));
        return _mm_cvtss_f32(q);
    }
    // r[j] = sum of v[j] for 16 vectors: transpose-and-add tree (45 instructions instead of 16
    // separate horizontal sums).
    static T reduce_many(const T* v) {
        T t[8];
        for (int k = 0; k < 8; ++k)
            t[k] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * k], v[2 * k + 1]), _mm512_unpackhi_ps(v[2 * k], v[2 * k + 1]));
        T q[4];
        for (int m = 0; m < 4; ++m)
            q[m] = _mm512_add_ps(_mm512_shuffle_ps(t[2 * m], t[2 * m + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                                 _mm512_shuffle_ps(t[2 * m], t[2 * m + 1], _MM_SHUFFLE(3, 2, 3, 2)));
        T x0 = _mm512_add_ps(_mm512_shuffle_f32x4(q[0], q[1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(q[0], q[1], _MM_SHUFFLE(3, 1, 3, 1)));
        T x1 = _mm512_add_ps(_mm512_shuffle_f32x4(q[2], q[3], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(q[2], q[3], _MM_SHUFFLE(3, 1, 3, 1)));
        return _mm512_add_ps(_mm512_shuffle_f32x4(x0, x1, _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(x0, x1, _MM_SHUFFLE(3, 1, 3, 1)));
    }
    // In-place 16×16 transpose (v[i] lane j ↔ v[j] lane i): pairs, then quads within 128-bit
    // lanes, then the 128-bit lanes themselves (64 shuffles).
    static void transpose(T* v) {
        T t[16], q[16];
        for (int k = 0; k < 8; ++k) {
            t[2 * k] = _mm512_unpacklo_ps(v[2 * k], v[2 * k + 1]);
            t[2 * k + 1] = _mm512_unpackhi_ps(v[2 * k], v[2 * k + 1]);
        }
        // q[4k+j], 128-bit lane m: element 4m+j of rows 4k..4k+3.
        for (int k = 0; k < 4; ++k) {
            q[4 * k] = _mm512_shuffle_ps(t[4 * k], t[4 * k + 2], _MM_SHUFFLE(1, 0, 1, 0));
            q[4 * k + 1] = _mm512_shuffle_ps(t[4 * k], t[4 * k + 2], _MM_SHUFFLE(3, 2, 3, 2));
            q[4 * k + 2] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], _MM_SHUFFLE(1, 0, 1, 0));
            q[4 * k + 3] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], _MM_SHUFFLE(3, 2, 3, 2));
        }
        for (int j = 0; j < 4; ++j) {
            const T x0 = _mm512_shuffle_f32x4(q[j], q[4 + j], _MM_SHUFFLE(2, 0, 2, 0));
            const T x1 = _mm512_shuffle_f32x4(q[j], q[4 + j], _MM_SHUFFLE(3, 1, 3, 1));
            const T x2 = _mm512_shuffle_f32x4(q[8 + j], q[12 + j], _MM_SHUFFLE(2, 0, 2, 0));
            const T x3 = _mm512_shuffle_f32x4(q[8 + j], q[12 + j], _MM_SHUFFLE(3, 1, 3, 1));
            v[j] = _mm512_shuffle_f32x4(x0, x2, _MM_SHUFFLE(2, 0, 2, 0));
            v[8 + j] = _mm512_shuffle_f32x4(x0, x2, _MM_SHUFFLE(3, 1, 3, 1));
            v[4 + j] = _mm512_shuffle_f32x4(x1, x3, _MM_SHUFFLE(2, 0, 2, 0));
            v[12 + j] = _mm512_shuffle_f32x4(x1, x3, _MM_SHUFFLE(3, 1, 3, 1));
        }
    }
    // 2^x = 2^floor(x) · 2^f with f = x - floor(x) in [0, 1) from vreduceps (rounded down when
    // not representable); 2^f by the degree-5 polynomial kExp2Poly;
    // scalef applies 2^floor(x) itself, giving 0 and +inf for huge finite |x| (where f = 0). This
    // sits in the scan's innermost loop: 8 instructions instead of the 10 of round, subtract and
    // a degree-6 polynomial. No clamp: only x = ±inf would give NaN (an infinite Δ or A).
    static T exp2(T x) {
        exp2_many<1>(&x);
        return x;
    }
    // 2^(y - 1): the same steps with the polynomial halved (exactly), see kernel::decay.
    static T exp2_shifted(T y) {
        exp2_many<1, true>(&y);
        return y;
    }
    // exp2 (or exp2_shifted) of K registers in place, each step of it done for all K before the
    // next. The K dependency chains (7 instructions, about 30 cycles deep) then lie side by side in
    // program order; one after another they filled the out-of-order scheduler with waiting
    // instructions and left the FMA ports idle for a third of the time.
    template <int K, bool Shifted = false>
    static void exp2_many(T* x) {
        const float* c = vimdense_scan::kExp2Poly;
        const float scale = Shifted ? 0.5f : 1.0f;
        T f[K], p[K];
#pragma GCC unroll 16
        for (int k = 0; k < K; ++k) f[k] = _mm512_reduce_ps(x[k], _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
#pragma GCC unroll 16
        for (int k = 0; k < K; ++k) p[k] = _mm512_set1_ps(scale * c[0]);
#pragma GCC unroll 8
        for (int i = 1; i < 6; ++i)
#pragma GCC unroll 16
            for (int k = 0; k < K; ++k) p[k] = _mm512_fmadd_ps(p[k], f[k], _mm512_set1_ps(scale * c[i]));
#pragma GCC unroll 16
        for (int k = 0; k < K; ++k) x[k] = _mm512_scalef_ps(p[k], x[k]);
    }
};

}  // namespace

#include "selective_scan_cpu_kernel.h"
#include "selective_scan_cpu_conv_kernel.h"

namespace vimdense_scan {
Kernels kernels_avx512() {
    return Kernels{"avx512", &kernel::transpose_to_steps<V512>, &kernel::forward_rows<V512>, &kernel::backward_rows<V512>,
                   &kernel::conv_forward_row<V512>, &kernel::conv_backward_row<V512>,
                   &kernel::forward_lanes<V512>, V512::W};
}
}  // namespace vimdense_scan

#pragma GCC pop_options
#else
namespace vimdense_scan {
Kernels kernels_avx512() { return Kernels{nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 0}; }
}  // namespace vimdense_scan
#endif
