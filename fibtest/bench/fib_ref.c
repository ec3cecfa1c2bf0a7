/* Reference for fibtest's fast loop: the loop of Indeed's Fibtest (a chain of dependent
 * additions, the deadline checked every 1,000,000 steps), written again in C so that
 * scripts/bench-fib.sh can compare fibtest's Rust loop with what `cc -O3` makes of it.
 * Usage: fib_ref SECONDS  -> prints "steps N seconds S" */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 5.0;
    unsigned long a = 0, b = 1, c, steps = 0;
    double start = now(), end = start + seconds, t;
    do {
        for (int j = 0; j < 1000000; j++) {
            steps++;
            c = a + b;
            a = b;
            b = c;
        }
    } while ((t = now()) < end);
    /* Print the result so the chain cannot be dropped. */
    printf("steps %lu seconds %.6f fib %lu\n", steps, t - start, a);
    return 0;
}
