/* test_admission.c - admission by the task's own cost (issue 10, item 1): a type is never
 * locked out by its own earlier ambition.
 *
 * One fake peer serves "echo" and holds each task 1 ms plus 10 us per input byte, so a task's
 * time is proportional to its cost (echo costs its bytes).  Heavy tasks (64 KiB: about 650 ms)
 * with a long deadline teach the coordinator the type; then:
 * - heavy:  heavy tasks with a 200 ms deadline are refused EDEADLINE at once, and the reason
 *           names the estimate and the deadline;
 * - probe:  after more than a second of refusals only, the next heavy task is admitted anyway
 *           (a probe: refusals teach nothing, so a type that refuses everything would never
 *           learn that its estimate went stale);
 * - cheap:  tasks of 64 bytes (about 2 ms) with the same 200 ms deadline are every one
 *           delivered.  The coordinator of before refused them all on the type's attempt p50.
 * Nothing is judged by wall-clock speed: the ratio of heavy to cheap is 300 to 1, and the only
 * time that matters is deadline semantics and the probe's one second, which a sleep passes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define US_PER_BYTE 10
#define HEAVY_BYTES (64u << 10)
#define CHEAP_BYTES 64u
#define WARM 24
#define HEAVY 10
#define CHEAP 20
#define DEADLINE_MS 200

static struct p2c2r_task task_of(const uint8_t *in, size_t n, uint32_t deadline_ms)
{
    struct p2c2r_task t;
    p2c2r_task_init(&t);
    t.type = "echo";
    t.priority = P2C2R_PRIO_REALTIME;
    t.input = in;
    t.input_len = n;
    t.deadline_ms = deadline_ms;
    t.flags = P2C2R_TASK_NOCACHE; /* every one runs: a cache hit is no sample */
    return t;
}

int main(int argc, char **argv)
{
    h_init(argc, argv, "admission");
    h_phase("setup: a coordinator and a fake echo peer whose time follows the input's size");
    h_coord_start(NULL, NULL);
    struct h_fake_peer_cfg fc = {.name = "costly", .types = "echo", .slots = 8, .delay_ms = 1,
                                 .us_per_byte = US_PER_BYTE};
    struct h_fake_peer *fp = h_fake_peer_start(&fc);
    h_wait_peers(1, NULL);
    struct p2c2r_client_options o = {sizeof o, NULL, "admission", h_bound_ms(5000), 0, 0};
    p2c2r_client *c;
    int rc = p2c2r_client_connect(h_addr(), &o, &c);
    H_REQUIRE(rc == 0, "connect to %s: %s", h_addr(), h_err(rc));
    uint8_t *heavy = malloc(HEAVY_BYTES);
    H_REQUIRE(heavy, "out of memory");
    h_fill(heavy, HEAVY_BYTES, 7);

    h_phase("warm-up: %d heavy tasks with a 30 s deadline", WARM);
    p2c2r_ticket tk[WARM];
    for (int i = 0; i < WARM; i++) {
        heavy[0] = (uint8_t)i;
        struct p2c2r_task t = task_of(heavy, HEAVY_BYTES, 30000);
        tk[i] = h_submit(c, &t);
    }
    for (int i = 0; i < WARM; i++) {
        struct p2c2r_result r = h_wait(c, tk[i], 60000);
        H_REQUIRE(r.status == 0, "warm-up task %d: %s", i, h_err(r.status));
        p2c2r_result_release(&r);
    }
    long long p50 = h_type_stat_sampled("echo", "attempt_p50_us", 20);
    h_log("echo: attempt_p50_us %lld after %d heavy tasks", p50, WARM);
    H_REQUIRE(p50 > DEADLINE_MS * 1000, "heavy echo should take more than the %d ms deadline: p50 %lld us",
              DEADLINE_MS, p50);

    h_phase("heavy: %d heavy tasks with a %d ms deadline are refused", HEAVY, DEADLINE_MS);
    int refused = 0, admitted = 0;
    for (int i = 0; i < HEAVY; i++) {
        heavy[0] = (uint8_t)(100 + i);
        struct p2c2r_task t = task_of(heavy, HEAVY_BYTES, DEADLINE_MS);
        struct p2c2r_result r = h_wait(c, h_submit(c, &t), 10000);
        if (r.status == P2C2R_EDEADLINE) {
            if (refused++ == 0) {
                h_log("  refused: %s", (const char *)r.output);
                H_CHECK(r.output && strstr(r.output, "expected for this task (cost ") &&
                            strstr(r.output, "us/unit") && strstr(r.output, "deadline 200 ms"),
                        "EDEADLINE reason should name the estimate and the deadline: '%s'",
                        r.output ? (const char *)r.output : "");
                H_CHECK(r.attempts == 0 && r.peer_id == 0, "a refused task ran: attempts %u peer %u",
                        r.attempts, r.peer_id);
            }
        } else {
            admitted++;
        }
        p2c2r_result_release(&r);
    }
    long long probes = h_stat("counters.admission_probes");
    h_log("heavy: %d refused, %d admitted, admission_probes %lld", refused, admitted, probes);
    /* A stalled machine could make a second pass between two refusals:
     * then one probe is admitted, and only as a probe. */
    H_CHECK(refused >= HEAVY - 1, "%d of %d heavy tasks refused EDEADLINE", refused, HEAVY);
    H_CHECK(admitted == probes, "%d heavy tasks admitted but %lld probes", admitted, probes);

    h_phase("probe: after a second of nothing but refusals, a heavy task is admitted");
    /* Each round lets more than PROBE_AFTER_US pass since the run of
     * refusals began; the first round's task is the probe, or (when the
     * heavy phase itself ended with one, which ends the run) the second's. */
    struct p2c2r_result r = P2C2R_RESULT_INIT;
    int probed = 0;
    for (int round = 0; round < 3 && !probed; round++) {
        h_sleep_ms(1100);
        heavy[0] = (uint8_t)(200 + round);
        struct p2c2r_task t = task_of(heavy, HEAVY_BYTES, DEADLINE_MS);
        r = h_wait(c, h_submit(c, &t), 10000);
        if (r.status != P2C2R_EDEADLINE) {
            probed = 1;
            admitted++;
            h_log("probe: round %d, status %s after %u attempts", round, h_err(r.status), r.attempts);
        }
        p2c2r_result_release(&r);
    }
    H_CHECK(probed, "no heavy task was admitted as a probe after refusals for over a second");
    probes = h_stat("counters.admission_probes");
    H_CHECK(admitted == probes, "%d heavy tasks admitted but %lld probes", admitted, probes);

    h_phase("cheap: %d tasks of %u bytes with the same %d ms deadline are all delivered", CHEAP, CHEAP_BYTES,
            DEADLINE_MS);
    int ok = 0;
    for (int i = 0; i < CHEAP; i++) {
        uint8_t in[CHEAP_BYTES];
        h_fill(in, sizeof in, 1000 + (uint64_t)i);
        struct p2c2r_task t = task_of(in, sizeof in, DEADLINE_MS);
        r = h_wait(c, h_submit(c, &t), 10000);
        if (r.status == 0)
            ok++;
        else
            h_log("  cheap task %d: %s: %s", i, h_err(r.status), r.output ? (const char *)r.output : "");
        p2c2r_result_release(&r);
    }
    h_log("cheap: %d of %d delivered", ok, CHEAP);
    H_CHECK(ok == CHEAP, "%d of %d cheap tasks delivered (a type refused once must admit what fits)", ok,
            CHEAP);

    p2c2r_client_close(c);
    h_fake_peer_stop(fp);
    free(heavy);
    return h_finish();
}
