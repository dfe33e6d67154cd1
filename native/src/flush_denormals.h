// Flushing denormals to zero while a CPU kernel runs on a thread (the selective scan's workers). The
// fused optimiser steps do not flush: they must round as libtorch, which keeps denormals.
#pragma once
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace vimdense_cpu {

// Denormal inputs and results (decays exp(Δ·A) below 2^-126, products of tiny states) cost
// microcode assists of ~100 cycles each on x86; they are flushed to zero while a kernel runs on a
// thread (values below 1.2e-38 are irrelevant next to the float32 tolerance), and the thread's
// previous mode is restored afterwards (the calling thread belongs to the host program).
class FlushDenormals {
public:
#if defined(__x86_64__) || defined(__i386__)
    FlushDenormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | 0x8040u); }   // FTZ | DAZ
    ~FlushDenormals() { _mm_setcsr(saved_); }
private:
    unsigned saved_;
#endif
};

}  // namespace vimdense_cpu
