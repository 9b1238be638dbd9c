/* Maximum error in ulp of ember's float32 vector math over all 2^32 inputs.
 *
 * Built and run by benchmarks/vecmath_ulp.py, which writes "vecmath_generated.h": the
 * helpers exactly as ember's C code generator emits them (the scalar twin
 * ember_F_float32 and the vector form ember_F_float32xW), plus VM_LANES, VM_VEC(F) and
 * the vector typedef vm_vec. For every float x (step VM_STEP) and every function this
 * compares the vector and the scalar result with the double-precision libm value
 * rounded nowhere: error = |y - ref| / ulp(ref), ulp(ref) = 2^(e - 23) of ref's binade
 * (2^-149 for denormals). A non-finite mismatch is a NaN where ref is not, or the other
 * way round, or an infinity where float(ref) is not the same infinity. The scalar form is
 * compared with the vector form bit for bit on every input; where they are equal its
 * error is the vector form's, elsewhere it is measured on its own.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "vecmath_generated.h"

#ifndef VM_STEP
#define VM_STEP 1
#endif

static double ref_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

typedef struct {
  const char* name;
  double (*ref)(double);
  float (*scalar)(float);
  vm_vec (*vector)(vm_vec);
} fn_t;

#define FN(F, R) {#F, R, ember_##F##_float32, VM_VEC(F)}
static const fn_t FNS[] = {
    FN(exp, exp), FN(log, log), FN(log1p, log1p),
    FN(sigmoid, ref_sigmoid), FN(tanh, tanh), FN(erf, erf),
};
#define NFN ((int)(sizeof FNS / sizeof FNS[0]))

typedef struct {
  double max_ulp;
  float at;
  uint64_t nonfinite;  /* non-finite mismatches (must be 0) */
  uint64_t differ;     /* vector and scalar results with different bits (must be 0) */
} stat_t;

static float from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t to_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* 1 / ulp of a double's binade, by its exponent field (2^-149 below FLT_MIN). */
static double INV_ULP[2048];

static void init_ulps(void) {
  for (int e = 0; e < 2048; ++e) {
    int binade = e - 1023;
    INV_ULP[e] = ldexp(1.0, 23 - (binade < -126 ? -126 : binade));
  }
}

static void check(stat_t* s, float x, float y, double ref) {
  if (isnan(ref) || isnan(y)) {
    if (!(isnan(ref) && isnan(y))) s->nonfinite++;
    return;
  }
  float rounded = (float)ref;
  if (isinf(rounded) || isinf(y)) {
    if (rounded != y) s->nonfinite++;
    return;
  }
  uint64_t bits;
  memcpy(&bits, &ref, 8);
  double err = fabs((double)y - ref) * INV_ULP[(bits >> 52) & 0x7ff];
  if (err > s->max_ulp || (err == s->max_ulp && fabsf(x) < fabsf(s->at))) {
    s->max_ulp = err;
    s->at = x;
  }
}

int main(void) {
  init_ulps();
  const int64_t chunk = (int64_t)VM_LANES * VM_STEP;
  const int64_t n_chunks = ((int64_t)1 << 32) / chunk;
  for (int f = 0; f < NFN; ++f) {
    double vmax = 0, smax = 0;
    float vat = 0, sat = 0;
    uint64_t vnf = 0, snf = 0, diff = 0;
#pragma omp parallel
    {
      stat_t v = {0, 0, 0, 0}, s = {0, 0, 0, 0};
#pragma omp for schedule(dynamic, 4096)
      for (int64_t c = 0; c < n_chunks; ++c) {
        vm_vec x;
        for (int l = 0; l < VM_LANES; ++l) x[l] = from_bits((uint32_t)(c * chunk + l * VM_STEP));
        vm_vec y = FNS[f].vector(x);
        for (int l = 0; l < VM_LANES; ++l) {
          double ref = FNS[f].ref((double)x[l]);
          float ys = FNS[f].scalar(x[l]);
          check(&v, x[l], y[l], ref);
          /* the scalar form's error is measured where its bits differ (nowhere, so far) */
          if (to_bits(ys) != to_bits(y[l]) && !(isnan(ys) && isnan(y[l]))) {
            v.differ++;
            check(&s, x[l], ys, ref);
          }
        }
      }
#pragma omp critical
      {
        if (v.max_ulp > vmax) { vmax = v.max_ulp; vat = v.at; }
        if (s.max_ulp > smax) { smax = s.max_ulp; sat = s.at; }
        vnf += v.nonfinite;
        snf += s.nonfinite;
        diff += v.differ;
      }
    }
    if (smax < vmax) { smax = vmax; sat = vat; } /* equal bits elsewhere: the same errors */
    snf += vnf;
    printf("%-8s %10.3f %16.9g %10.3f %16.9g %10llu %10llu %10llu\n", FNS[f].name, vmax,
           (double)vat, smax, (double)sat, (unsigned long long)vnf, (unsigned long long)snf,
           (unsigned long long)diff);
    fflush(stdout);
  }
  return 0;
}
