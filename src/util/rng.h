/* Seeded pseudo-random numbers: one generator per purpose (init, pool,
 * augmentation, sampling, forest) so runs are reproducible and a generator's
 * state can be saved and restored. xoshiro256** seeded through splitmix64. */
#ifndef RM_RNG_H
#define RM_RNG_H

#include <stdint.h>

typedef struct rng {
    uint64_t s[4];
} rng;

void rng_seed(rng *r, uint64_t seed);
uint64_t rng_u64(rng *r);
/* A well-mixed 64-bit function of x (one splitmix64 step): seeds derived
 * from other seeds. */
uint64_t rng_hash64(uint64_t x);
/* Uniform in [0, 1) with 53 random bits. */
double rng_uniform(rng *r);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t rng_below(rng *r, uint64_t n);
/* Standard normal (Box-Muller). */
double rng_normal(rng *r);
/* Fisher-Yates shuffle of an int array. */
void rng_shuffle(rng *r, int *a, int n);

#endif
