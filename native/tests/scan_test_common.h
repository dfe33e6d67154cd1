// Shared helpers of the selective-scan CTest programs: a naive double-precision forward written
// straight from the definition (the independent oracle), random problems and error measures.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

namespace scan_test {

struct Problem {
    int64_t batch, dim, length, dstate;
    bool has_D, has_z, has_bias, softplus;
    std::vector<float> u, delta, A, B, C, D, z, bias;
};

inline Problem random_problem(int64_t batch, int64_t dim, int64_t length, int64_t dstate, bool has_D,
                              bool has_z, bool has_bias, bool softplus, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_real_distribution<float> uni(0.0f, 1.0f);
    Problem p{batch, dim, length, dstate, has_D, has_z, has_bias, softplus, {}, {}, {}, {}, {}, {}, {}, {}};
    auto fill = [&](std::vector<float>& v, size_t n, auto gen) {
        v.resize(n);
        for (auto& x : v) x = gen();
    };
    const size_t bdl = size_t(batch * dim * length), bnl = size_t(batch * dstate * length);
    fill(p.u, bdl, [&] { return normal(rng); });
    // Δ around the values Mamba sees: softplus input near -4..1, or a direct positive step.
    fill(p.delta, bdl, [&] { return softplus ? normal(rng) - 1.5f : 0.01f + 0.3f * uni(rng); });
    // A = -exp(A_log) with the S4D-real spread 1..dstate, jittered.
    p.A.resize(size_t(dim * dstate));
    for (int64_t d = 0; d < dim; ++d)
        for (int64_t n = 0; n < dstate; ++n) p.A[d * dstate + n] = -(float(n + 1) * (0.5f + uni(rng)));
    fill(p.B, bnl, [&] { return normal(rng); });
    fill(p.C, bnl, [&] { return normal(rng); });
    if (has_D) fill(p.D, size_t(dim), [&] { return normal(rng); });
    if (has_z) fill(p.z, bdl, [&] { return 2.0f * normal(rng); });
    if (has_bias) fill(p.bias, size_t(dim), [&] { return 0.5f * normal(rng); });
    return p;
}

inline const float* ptr(const std::vector<float>& v) { return v.empty() ? nullptr : v.data(); }

// Everything in double; the parameters are taken from the float problem, optionally perturbed
// through `override_*` (used by finite differences).
struct DoubleInputs {
    std::vector<double> u, delta, A, B, C, D, z, bias;
};

inline DoubleInputs to_double(const Problem& p) {
    auto cv = [](const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); };
    return DoubleInputs{cv(p.u), cv(p.delta), cv(p.A), cv(p.B), cv(p.C), cv(p.D), cv(p.z), cv(p.bias)};
}

// out (batch, dim, length) and last state (batch, dim, dstate), straight from the definition.
inline void naive_forward(const Problem& p, const DoubleInputs& x, std::vector<double>& out,
                          std::vector<double>* last) {
    const int64_t Bt = p.batch, Dm = p.dim, L = p.length, N = p.dstate;
    out.assign(size_t(Bt * Dm * L), 0.0);
    if (last) last->assign(size_t(Bt * Dm * N), 0.0);
    std::vector<double> h(static_cast<size_t>(N));
    for (int64_t b = 0; b < Bt; ++b)
        for (int64_t d = 0; d < Dm; ++d) {
            std::fill(h.begin(), h.end(), 0.0);
            for (int64_t l = 0; l < L; ++l) {
                const int64_t i = (b * Dm + d) * L + l;
                double dt = x.delta[size_t(i)] + (p.has_bias ? x.bias[size_t(d)] : 0.0);
                if (p.softplus) dt = dt <= 20.0 ? std::log1p(std::exp(dt)) : dt;
                double y = 0.0;
                for (int64_t n = 0; n < N; ++n) {
                    const double bv = x.B[size_t((b * N + n) * L + l)];
                    const double cv = x.C[size_t((b * N + n) * L + l)];
                    h[size_t(n)] = std::exp(dt * x.A[size_t(d * N + n)]) * h[size_t(n)] + dt * bv * x.u[size_t(i)];
                    y += h[size_t(n)] * cv;
                }
                if (p.has_D) y += x.D[size_t(d)] * x.u[size_t(i)];
                if (p.has_z) {
                    const double zv = x.z[size_t(i)];
                    y *= zv / (1.0 + std::exp(-zv));
                }
                out[size_t(i)] = y;
            }
            if (last)
                for (int64_t n = 0; n < N; ++n) (*last)[size_t((b * Dm + d) * N + n)] = h[size_t(n)];
        }
}

// ||a - b|| / ||b||  (b the expectation); 0 when both are zero.
template <class TA, class TB>
inline double rel_error(const std::vector<TA>& a, const std::vector<TB>& b) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < b.size(); ++i) {
        const double e = double(a[i]) - double(b[i]);
        num += e * e;
        den += double(b[i]) * double(b[i]);
    }
    if (den == 0.0) return std::sqrt(num);
    return std::sqrt(num / den);
}

struct Checker {
    int failures = 0;
    void expect(bool ok, const char* what, double value, double limit) {
        std::printf("  %-58s %.3e (limit %.1e) %s\n", what, value, limit, ok ? "ok" : "FAIL");
        if (!ok) ++failures;
    }
    void le(const char* what, double value, double limit) { expect(value <= limit, what, value, limit); }
};

}  // namespace scan_test
