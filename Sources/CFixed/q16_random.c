/* q16_random.c -- counter-based random bits and stochastic-rounding shift. */
#include "q16.h"

uint32_t q16_rng_u32(uint64_t seed, uint64_t counter) {
    /* SplitMix64 finaliser over (seed, counter): a bijective mix of 64 bits,
       evaluated in unsigned arithmetic only (wrapping is defined). */
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + counter * 0xD1B54A32D192ED03ull + 0x632BE59BD9B4E019ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (uint32_t)(z >> 32);
}

q16_t q16_shift_sr(int64_t v, unsigned shift, uint32_t rnd, uint64_t *sat) {
    if (shift > 62u) shift = 62u;
    /* floor(v / 2^shift) without shifting a negative value: bias to unsigned. */
    uint64_t u = (uint64_t)v ^ 0x8000000000000000ull; /* v + 2^63 as unsigned */
    uint64_t q = u >> shift;                           /* floor((v + 2^63) / 2^s) */
    uint64_t frac = shift ? (u << (64u - shift)) : 0u; /* fraction in the top bits */
    int64_t fl = (int64_t)(q - (0x8000000000000000ull >> shift)); /* floor(v / 2^s), exact */
    if ((uint32_t)(frac >> 32) > rnd) fl += 1;
    if (fl > (int64_t)Q16_MAX) { if (sat) *sat += 1; return Q16_MAX; }
    if (fl < (int64_t)Q16_MIN) { if (sat) *sat += 1; return Q16_MIN; }
    return (q16_t)fl;
}
