// Fused AdamW and SGD steps against double-precision references written from torch.optim's
// documented update rules, a hand-computed two-step AdamW case, denormal gradients and error
// codes. Runs without .NET: `ctest --test-dir artifacts/native`.
#include <cstring>

#include "detection_test_common.h"
#include "vimdense/native.h"

using det_test::Checker;

namespace {

struct Tensors {
    std::vector<std::vector<float>> p, g, m, v;
    std::vector<int64_t> numels;
    std::vector<double> lrs, wds;
};

// Sizes from one element to large (past any vector-width remainder) and an empty tensor.
Tensors random_tensors(uint32_t seed) {
    const std::vector<int64_t> sizes = {1, 7, 0, 65536 + 3, 200000, 33};
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    Tensors t;
    for (size_t i = 0; i < sizes.size(); ++i) {
        const size_t n = size_t(sizes[i]);
        t.numels.push_back(sizes[i]);
        t.p.emplace_back(n);
        t.g.emplace_back(n);
        t.m.emplace_back(n, 0.0f);
        t.v.emplace_back(n, 0.0f);
        for (auto& x : t.p.back()) x = normal(rng);
        // Per-group lr and weight decay as layer-wise decay and no_decay groups give them; one frozen (lr 0).
        t.lrs.push_back(i == 4 ? 0.0 : 1e-3 * double(i + 1));
        t.wds.push_back(i % 2 == 0 ? 0.05 : 0.0);
    }
    return t;
}

void new_gradients(Tensors& t, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (auto& g : t.g)
        for (auto& x : g) x = normal(rng) * 0.1f;
}

template <class V>
std::vector<typename V::value_type::pointer> pointers(V& vs) {
    std::vector<typename V::value_type::pointer> out;
    for (auto& v : vs) out.push_back(v.data());
    return out;
}

// The kernel takes each tensor's scalars as the C# caller computes them from lr, weight decay and step.
int32_t adamw_call(int64_t count, float* const* p, const float* const* g, float* const* m, float* const* v,
                   const int64_t* numels, const double* lrs, const double* wds, double beta1, double beta2, double eps,
                   int64_t step) {
    std::vector<double> decays, step_sizes, bias2_sqrts;
    for (int64_t i = 0; i < count; ++i) {
        decays.push_back(wds[i] != 0 ? 1 - lrs[i] * wds[i] : 1.0);
        step_sizes.push_back(-lrs[i] / (1 - std::pow(beta1, double(step))));
        bias2_sqrts.push_back(std::sqrt(1 - std::pow(beta2, double(step))));
    }
    return vimdense_adamw_step_cpu_f32(count, p, g, m, v, numels, decays.data(), step_sizes.data(), bias2_sqrts.data(),
                                       beta1, beta2, eps);
}

int32_t adamw(Tensors& t, double beta1, int64_t step) {
    auto p = pointers(t.p), m = pointers(t.m), v = pointers(t.v);
    std::vector<const float*> g;
    for (auto& x : t.g) g.push_back(x.data());
    return adamw_call(int64_t(t.p.size()), p.data(), g.data(), m.data(), v.data(), t.numels.data(), t.lrs.data(),
                      t.wds.data(), beta1, 0.999, 1e-8, step);
}

// torch.optim.AdamW in double on float inputs (the reference the float32 kernel must approach).
void adamw_reference(std::vector<double>& p, const std::vector<float>& g, std::vector<double>& m, std::vector<double>& v,
                     double lr, double wd, double beta1, double beta2, double eps, int64_t step) {
    const double bias1 = 1 - std::pow(beta1, double(step)), bias2 = 1 - std::pow(beta2, double(step));
    for (size_t j = 0; j < p.size(); ++j) {
        p[j] *= 1 - lr * wd;
        m[j] = beta1 * m[j] + (1 - beta1) * g[j];
        v[j] = beta2 * v[j] + (1 - beta2) * double(g[j]) * g[j];
        p[j] -= lr / bias1 * m[j] / (std::sqrt(v[j]) / std::sqrt(bias2) + eps);
    }
}

// Two steps of one element, worked by hand: p = 1, lr = 0.1, wd = 0.01, beta1 = 0.9, beta2 = 0.999,
// g1 = 0.5, g2 = -0.25.
//   step 1: p = 1 * (1 - 0.001) = 0.999; m = 0.05; v = 0.00025; m̂ = 0.5, √v̂ = 0.5
//           p = 0.999 - 0.1 * 0.5 / (0.5 + 1e-8) = 0.899000002 (to 9 digits)
//   step 2: p = 0.899000002 * 0.999 = 0.898101002; m = 0.045 - 0.025 = 0.02; v = 0.00024975 + 0.0000625 = 0.00031225
//           m̂ = 0.02 / 0.19 = 0.105263158; v̂ = 0.00031225 / 0.001999 = 0.156203102, √ = 0.395225381
//           p = 0.898101002 - 0.1 * 0.105263158 / 0.395225391 = 0.871467...
void adamw_hand_case(Checker& chk) {
    std::printf("adamw: two hand-computed steps\n");
    float p = 1.0f, g = 0.5f, m = 0.0f, v = 0.0f;
    float* pp = &p;
    const float* gp = &g;
    float* mp = &m;
    float* vp = &v;
    const int64_t n = 1;
    const double lr = 0.1, wd = 0.01;
    int32_t rc = adamw_call(1, &pp, &gp, &mp, &vp, &n, &lr, &wd, 0.9, 0.999, 1e-8, 1);
    chk.expect(rc == 0, "step 1 return code", rc, 0);
    chk.le("step 1 param vs hand value 0.899000002", std::fabs(p - 0.899000002), 1e-7);
    chk.le("step 1 exp_avg vs 0.05", std::fabs(m - 0.05), 1e-8);
    chk.le("step 1 exp_avg_sq vs 0.00025", std::fabs(v - 0.00025), 1e-10);
    g = -0.25f;
    rc = adamw_call(1, &pp, &gp, &mp, &vp, &n, &lr, &wd, 0.9, 0.999, 1e-8, 2);
    chk.expect(rc == 0, "step 2 return code", rc, 0);
    const double expected = 0.898101002 - 0.1 * (0.02 / 0.19) / (std::sqrt(0.00031225 / 0.001999) + 1e-8);
    chk.le("step 2 param vs hand value", std::fabs(p - expected), 2e-7);
    chk.le("step 2 exp_avg vs 0.02", std::fabs(m - 0.02), 1e-8);
    chk.le("step 2 exp_avg_sq vs 0.00031225", std::fabs(v - 0.00031225), 1e-10);
}

void adamw_random_case(Checker& chk) {
    std::printf("adamw: 20 steps on 6 tensors (empty, frozen, per-tensor lr/wd), beta1 per step\n");
    Tensors t = random_tensors(11);
    std::vector<std::vector<double>> rp, rm, rv;
    for (size_t i = 0; i < t.p.size(); ++i) {
        rp.emplace_back(t.p[i].begin(), t.p[i].end());
        rm.emplace_back(t.p[i].size(), 0.0);
        rv.emplace_back(t.p[i].size(), 0.0);
    }
    const std::vector<float> frozen_before = t.p[4];
    double worst = 0;
    for (int64_t step = 1; step <= 20; ++step) {
        // A momentum schedule changes beta1 between steps.
        const double beta1 = 0.85 + 0.005 * double(step % 5);
        new_gradients(t, uint32_t(100 + step));
        const int32_t rc = adamw(t, beta1, step);
        if (rc != 0) chk.expect(false, "return code", rc, 0);
        for (size_t i = 0; i < t.p.size(); ++i)
            adamw_reference(rp[i], t.g[i], rm[i], rv[i], t.lrs[i], t.wds[i], beta1, 0.999, 1e-8, step);
    }
    for (size_t i = 0; i < t.p.size(); ++i)
        worst = std::max(worst, det_test::max_abs_diff(t.p[i], rp[i]));
    // Each step moves a parameter by at most ~lr; float32 rounding of the moments and the update is
    // ~1e-7 relative, so after 20 steps parameters of size ~1 agree with the double reference to ~1e-6.
    chk.le("params vs double reference (max abs)", worst, 5e-6);
    chk.is(std::memcmp(frozen_before.data(), t.p[4].data(), frozen_before.size() * sizeof(float)) == 0,
           "a frozen tensor (lr 0, wd 0.05) is unchanged bit for bit");
}

void sgd_case(Checker& chk) {
    std::printf("sgd: 5 steps with momentum 0.9 and without, vs double reference\n");
    for (double momentum : {0.9, 0.0}) {
        Tensors t = random_tensors(21);
        std::vector<std::vector<double>> rp, rb;
        for (auto& p : t.p) {
            rp.emplace_back(p.begin(), p.end());
            rb.emplace_back(p.size(), 0.0);
        }
        for (int step = 1; step <= 5; ++step) {
            new_gradients(t, uint32_t(200 + step));
            auto p = pointers(t.p), b = pointers(t.m);
            std::vector<const float*> g;
            for (auto& x : t.g) g.push_back(x.data());
            const int32_t rc = vimdense_sgd_step_cpu_f32(int64_t(t.p.size()), p.data(), g.data(),
                                                         momentum != 0 ? b.data() : nullptr, t.numels.data(),
                                                         t.lrs.data(), t.wds.data(), momentum, step == 1);
            if (rc != 0) chk.expect(false, "return code", rc, 0);
            for (size_t i = 0; i < t.p.size(); ++i)
                for (size_t j = 0; j < rp[i].size(); ++j) {
                    double d = t.g[i][j] + t.wds[i] * rp[i][j];
                    if (momentum != 0) d = rb[i][j] = step == 1 ? d : rb[i][j] * momentum + d;
                    rp[i][j] -= t.lrs[i] * d;
                }
        }
        double worst = 0;
        for (size_t i = 0; i < t.p.size(); ++i) worst = std::max(worst, det_test::max_abs_diff(t.p[i], rp[i]));
        chk.le(momentum != 0 ? "momentum 0.9: params vs double (max abs)" : "momentum 0: params vs double (max abs)",
               worst, 1e-6);
    }
}

// Gradients of 1e-21 give second moments below float32's normal range; they are kept (libtorch does not
// flush denormals), and the update stays that of the double reference.
void denormal_case(Checker& chk) {
    std::printf("adamw: gradients whose squares are denormal\n");
    Tensors t = random_tensors(51);
    for (auto& g : t.g) std::fill(g.begin(), g.end(), 1e-21f);
    std::vector<double> rp(t.p[3].begin(), t.p[3].end()), rm(rp.size(), 0.0), rv(rp.size(), 0.0);
    for (int64_t step = 1; step <= 3; ++step) {
        adamw(t, 0.9, step);
        adamw_reference(rp, t.g[3], rm, rv, t.lrs[3], t.wds[3], 0.9, 0.999, 1e-8, step);
    }
    chk.le("params vs double reference (max abs)", det_test::max_abs_diff(t.p[3], rp), 1e-6);
}

void error_cases(Checker& chk) {
    std::printf("error codes\n");
    Tensors t = random_tensors(41);
    chk.is(adamw(t, 0.9, 0) == VIMDENSE_OPT_ERR_BAD_ARGUMENT, "adamw step 0 (bias correction 0) is refused");
    const int64_t negative = -1;
    float* p = nullptr;
    const float* g = nullptr;
    const double lr = 0.1, wd = 0;
    chk.is(adamw_call(1, &p, &g, &p, &p, &negative, &lr, &wd, 0.9, 0.999, 1e-8, 1) ==
               VIMDENSE_OPT_ERR_BAD_SHAPE,
           "a negative element count is refused");
    const int64_t one = 1;
    chk.is(adamw_call(1, &p, &g, &p, &p, &one, &lr, &wd, 0.9, 0.999, 1e-8, 1) ==
               VIMDENSE_OPT_ERR_NULL_POINTER,
           "a null data pointer is refused");
    chk.is(vimdense_sgd_step_cpu_f32(1, &p, &g, nullptr, &one, &lr, &wd, 0.9, 1) == VIMDENSE_OPT_ERR_NULL_POINTER,
           "sgd with momentum and no buffers is refused");
    chk.is(std::strlen(vimdense_opt_error_string(VIMDENSE_OPT_ERR_BAD_SHAPE)) > 0, "error strings exist");
}

}  // namespace

int main() {
    Checker chk;
    adamw_hand_case(chk);
    adamw_random_case(chk);
    sgd_case(chk);
    denormal_case(chk);
    error_cases(chk);
    std::printf("%s: %d failure(s)\n", chk.failures ? "FAILED" : "PASSED", chk.failures);
    return chk.failures ? 1 : 0;
}
