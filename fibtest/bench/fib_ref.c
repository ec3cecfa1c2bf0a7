/* Reference for fibtest's fast loop: Indeed Fibtest's fast thread written again in C, in
 * its shape (a chain of dependent additions c = a + b; a = b; b = c on `long int`, the
 * deadline checked on CLOCK_REALTIME_COARSE every 1,000,000 steps), so that
 * scripts/bench-fib.sh can compare fibtest's Rust loop with what `cc -O3` makes of it.
 * Usage: fib_ref SECONDS
 * Prints: steps N wall_s W cpu_s C fib F   (cpu_s: CLOCK_PROCESS_CPUTIME_ID; one thread) */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static struct timespec endtime;

static double seconds_of(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* Whether the end time has passed, as Fibtest's done(). */
static bool done(void) {
    struct timespec cur;
    clock_gettime(CLOCK_REALTIME_COARSE, &cur);
    if (cur.tv_sec == endtime.tv_sec)
        return cur.tv_nsec > endtime.tv_nsec;
    return cur.tv_sec > endtime.tv_sec;
}

/* Fibtest's fast(): returns the steps done; *fib_res is the last Fibonacci number. */
static unsigned long fast(unsigned long *fib_res) {
    long int a = 0, b = 1, c = 0, i = 0;
    while (!done()) {
        for (int j = 0; j < 1000000; j++) {
            i++;
            c = a + b;
            a = b;
            b = c;
        }
    }
    *fib_res = a;
    return i;
}

int main(int argc, char **argv) {
    int seconds = argc > 1 ? atoi(argv[1]) : 5;
    unsigned long fib;
    clock_gettime(CLOCK_REALTIME_COARSE, &endtime);
    endtime.tv_sec += seconds;
    double cpu0 = seconds_of(CLOCK_PROCESS_CPUTIME_ID), wall0 = seconds_of(CLOCK_MONOTONIC);
    unsigned long steps = fast(&fib);
    double wall = seconds_of(CLOCK_MONOTONIC) - wall0;
    /* Print the result so the chain cannot be dropped. */
    printf("steps %lu wall_s %.6f cpu_s %.6f fib %lu\n", steps, wall,
           seconds_of(CLOCK_PROCESS_CPUTIME_ID) - cpu0, fib);
    return 0;
}
