/*
 * The NEON ternary kernels again, with SDOT (compiled with
 * -march=armv8.2-a+dotprod; chosen when the hwcaps list asimddp). One
 * source, two builds: see ternary_neon.c.
 */
#define BN_NEON_DOTPROD 1
#include "ternary_neon.c"
