/* procstat.h - CPU figures the benchmarks read from /proc (Linux). */
#ifndef P2C2R_BENCH_PROCSTAT_H
#define P2C2R_BENCH_PROCSTAT_H

#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

/* Process CPU of the whole machine (user + nice + system), microseconds. */
static inline uint64_t machine_busy_us(void)
{
    FILE *f = fopen("/proc/stat", "r");
    unsigned long long u = 0, n = 0, s = 0;
    if (f) {
        if (fscanf(f, "cpu %llu %llu %llu", &u, &n, &s) != 3)
            u = n = s = 0;
        fclose(f);
    }
    long tck = sysconf(_SC_CLK_TCK);
    return (uint64_t)((u + n + s) * 1000000ull / (unsigned long long)(tck > 0 ? tck : 100));
}

#endif
