// AVX2+FMA instantiation of the CPU selective-scan row kernels (see the AVX-512 file for the
// compilation scheme); used on CPUs without AVX-512.
#include <immintrin.h>
#include <stdint.h>

#include "selective_scan_cpu_internal.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#pragma GCC push_options
#pragma GCC target("avx2,fma")

namespace {

struct V256 {
    static constexpr int W = 8;
    using T = __m256;
    static T zero() { return _mm256_setzero_ps(); }
    static T set1(float x) { return _mm256_set1_ps(x); }
    static T load(const float* p) { return _mm256_loadu_ps(p); }
    static void store(float* p, T v) { _mm256_storeu_ps(p, v); }
    static T add(T a, T b) { return _mm256_add_ps(a, b); }
    static T sub(T a, T b) { return _mm256_sub_ps(a, b); }
    static T mul(T a, T b) { return _mm256_mul_ps(a, b); }
    static T div(T a, T b) { return _mm256_div_ps(a, b); }
    static T fmadd(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
    static T max(T a, T b) { return _mm256_max_ps(a, b); }
    static T neg_abs(T a) { return _mm256_or_ps(a, _mm256_set1_ps(-0.0f)); }
    static T reverse(T v) { return _mm256_permutevar8x32_ps(v, _mm256_setr_epi32(7, 6, 5, 4, 3, 2, 1, 0)); }
    static float reduce(T v) {
        __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        q = _mm_add_ps(q, _mm_movehl_ps(q, q));
        q = _mm_add_ss(q, _mm_movehdup_ps(q));
        return _mm_cvtss_f32(q);
    }
    // r[j] = sum of v[j] for 8 vectors (transpose-and-add tree).
    static T reduce_many(const T* v) {
        T t[4];
        for (int k = 0; k < 4; ++k)
            t[k] = _mm256_add_ps(_mm256_unpacklo_ps(v[2 * k], v[2 * k + 1]), _mm256_unpackhi_ps(v[2 * k], v[2 * k + 1]));
        T q0 = _mm256_add_ps(_mm256_shuffle_ps(t[0], t[1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm256_shuffle_ps(t[0], t[1], _MM_SHUFFLE(3, 2, 3, 2)));
        T q1 = _mm256_add_ps(_mm256_shuffle_ps(t[2], t[3], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm256_shuffle_ps(t[2], t[3], _MM_SHUFFLE(3, 2, 3, 2)));
        return _mm256_add_ps(_mm256_permute2f128_ps(q0, q1, 0x20), _mm256_permute2f128_ps(q0, q1, 0x31));
    }
    // 2^x = 2^floor(x) · p(x - floor(x)) with the polynomial kExp2Poly on [0, 1);
    // the exponent is built in the float's bits, so inputs are clamped to the normal range (2^x
    // below 2^-126 comes out as ~2^-126·p instead of 0). exp2_shifted(y) = 2^(y - 1), the same way
    // with the polynomial halved (exactly) and the clamp moved up by one (see kernel::decay).
    static T exp2(T x) { return exp2_scaled<false>(x); }
    static T exp2_shifted(T y) { return exp2_scaled<true>(y); }
    template <bool Shifted>
    static T exp2_scaled(T x) {
        const float lo = Shifted ? -125.0f : -126.0f, scale = Shifted ? 0.5f : 1.0f;
        x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(lo)), _mm256_set1_ps(128.0f));
        T n = _mm256_floor_ps(x);
        T f = _mm256_sub_ps(x, n);
        T p = _mm256_set1_ps(scale * vimdense_scan::kExp2Poly[0]);
        for (int i = 1; i < 6; ++i) p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(scale * vimdense_scan::kExp2Poly[i]));
        __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
        return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
    }
};

}  // namespace

#include "selective_scan_cpu_kernel.h"
#include "selective_scan_cpu_conv_kernel.h"

namespace vimdense_scan {
Kernels kernels_avx2() {
    // No 8×8 transpose here: B and C go to scan order one element at a time, as in the scalar set.
    return Kernels{"avx2", kernels_scalar().to_steps, &kernel::forward_rows<V256>, &kernel::backward_rows<V256>,
                   &kernel::conv_forward_row<V256>, &kernel::conv_backward_row<V256>, nullptr, 0};
}
}  // namespace vimdense_scan

#pragma GCC pop_options
#else
namespace vimdense_scan {
Kernels kernels_avx2() { return Kernels{nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 0}; }
}  // namespace vimdense_scan
#endif
