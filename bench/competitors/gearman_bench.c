/* gearman_bench: echo round-trip benchmark for gearmand, the p2c2r competitor.
 *
 *   gearman_bench worker --host H --port P --connections N
 *       N threads, each with its own gearman_worker_st (so its own TCP
 *       connection to gearmand) registering function "echo", which returns
 *       its workload unchanged.  Runs until killed.
 *
 *   gearman_bench client --host H --port P --tasks N --inflight K --size B
 *                        [--warmup W] [--wait-workers N] [--timeout SEC]
 *       One gearman_client_st (one connection).  Keeps K foreground jobs
 *       (SUBMIT_JOB) in flight and prints one JSON line (bench_common.h).
 *
 * What "in flight" means here: libgearman has no per-task asynchronous
 * submit; tasks are queued with gearman_client_add_task() and driven by
 * gearman_client_run_tasks().  We start K tasks, then the completion callback
 * of each task adds the next one, so run_tasks() keeps exactly K tasks
 * submitted-or-queued-in-the-client at all times (the library writes newly
 * added tasks to the socket as soon as it has drained what it can read, i.e.
 * refills are batched per read, as in any event loop).  A task's latency runs
 * from gearman_client_add_task() to its WORK_COMPLETE callback, so client-side
 * queueing is included.
 *
 * Gearman protocol limit worth knowing when reading the figures: a worker
 * connection holds at most ONE job at a time (GRAB_JOB -> JOB_ASSIGN ->
 * WORK_COMPLETE -> GRAB_JOB ...), so with 2 worker connections at most 2 jobs
 * are being executed; the other K-2 wait in gearmand's queue.
 *
 * Each job gets an explicit unique id ("<pid>-<seq>"): this stops gearmand
 * from coalescing identical jobs and spares libgearman a UUID per task. */
#define _POSIX_C_SOURCE 200809L

#include "bench_common.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <libgearman/gearman.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define FUNCTION_NAME "echo"

struct opts {
    const char *host;
    unsigned port;
    unsigned long connections;
    unsigned long tasks;
    unsigned long inflight;
    unsigned long warmup;
    unsigned long wait_workers;
    unsigned long timeout_s;
    size_t size;
};

/* ---------------------------------------------------------------- worker */

static void *echo_fn(gearman_job_st *job, void *context, size_t *result_size,
                     gearman_return_t *ret_ptr)
{
    (void)context;
    size_t n = gearman_job_workload_size(job);
    /* libgearman frees the returned buffer with free() after sending it. */
    void *out = malloc(n ? n : 1);
    if (!out) {
        *ret_ptr = GEARMAN_WORK_FAIL;
        *result_size = 0;
        return NULL;
    }
    if (n)
        memcpy(out, gearman_job_workload(job), n);
    *result_size = n;
    *ret_ptr = GEARMAN_SUCCESS;
    return out;
}

static void *worker_thread(void *arg)
{
    const struct opts *o = arg;
    gearman_worker_st *w = gearman_worker_create(NULL);
    if (!w) {
        fprintf(stderr, "gearman_worker_create failed\n");
        exit(1);
    }
    if (gearman_failed(gearman_worker_add_server(w, o->host, (in_port_t)o->port)) ||
        gearman_failed(gearman_worker_add_function(w, FUNCTION_NAME, 0, echo_fn, NULL))) {
        fprintf(stderr, "worker setup: %s\n", gearman_worker_error(w));
        exit(1);
    }
    unsigned failures = 0;
    for (;;) {
        gearman_return_t rc = gearman_worker_work(w);
        if (gearman_success(rc) || rc == GEARMAN_TIMEOUT || rc == GEARMAN_IO_WAIT) {
            failures = 0;
            continue;
        }
        /* Server gone (or not up yet): retry for ~5 s, then give up. */
        if (++failures > 50) {
            fprintf(stderr, "gearman_worker_work: %s\n", gearman_worker_error(w));
            exit(1);
        }
        bench_sleep_ms(100);
    }
    return NULL;
}

static int run_worker(const struct opts *o)
{
    pthread_t *th = calloc(o->connections, sizeof *th);
    if (!th) {
        perror("calloc");
        return 1;
    }
    for (unsigned long i = 0; i < o->connections; i++) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        int e = pthread_create(&th[i], &attr, worker_thread, (void *)o);
        pthread_attr_destroy(&attr);
        if (e != 0) {
            fprintf(stderr, "pthread_create: %s\n", strerror(e));
            return 1;
        }
    }
    for (unsigned long i = 0; i < o->connections; i++)
        pthread_join(th[i], NULL);
    free(th);
    return 0;
}

/* ---------------------------------------------------------------- client */

struct run {
    gearman_client_st *client;
    const unsigned char *payload;
    size_t size;
    unsigned long total;     /* tasks to run in this phase */
    unsigned long submitted; /* tasks handed to add_task */
    unsigned long done;      /* tasks finished (ok or failed) */
    unsigned long completed; /* finished with the right echo */
    unsigned long failed;
    bool add_error;
    uint64_t *start_ns; /* by task sequence number */
    uint64_t *lat_ns;
    size_t n_lat;
    long pid;
};

static struct run g_run;

static void submit_next(struct run *r)
{
    unsigned long id = r->submitted++;
    char unique[48];
    snprintf(unique, sizeof unique, "%ld-%lu", r->pid, id);
    r->start_ns[id] = bench_now_ns();
    gearman_return_t rc;
    gearman_task_st *t =
        gearman_client_add_task(r->client, NULL, (void *)(uintptr_t)(id + 1), FUNCTION_NAME,
                                unique, r->payload, r->size, &rc);
    if (!t || gearman_failed(rc)) {
        fprintf(stderr, "gearman_client_add_task: %s\n", gearman_client_error(r->client));
        r->add_error = true;
        r->failed++;
        r->done++;
    }
}

static void finish_task(struct run *r, gearman_task_st *task, bool ok)
{
    uint64_t now = bench_now_ns();
    unsigned long id = (unsigned long)(uintptr_t)gearman_task_context(task) - 1;
    if (ok) {
        size_t n = gearman_task_data_size(task);
        const void *d = gearman_task_data(task);
        ok = n == r->size && (n == 0 || (d && memcmp(d, r->payload, n) == 0));
    }
    if (ok) {
        r->lat_ns[r->n_lat++] = now - r->start_ns[id];
        r->completed++;
    } else {
        r->failed++;
    }
    r->done++;
    if (r->submitted < r->total && !r->add_error)
        submit_next(r);
}

static gearman_return_t on_complete(gearman_task_st *task)
{
    finish_task(&g_run, task, true);
    return GEARMAN_SUCCESS;
}

static gearman_return_t on_fail(gearman_task_st *task)
{
    finish_task(&g_run, task, false);
    return GEARMAN_SUCCESS;
}

/* Runs `total` tasks with `inflight` in flight; fills g_run.  Returns the
 * wall time from the first submit to the last completion. */
static double run_phase(gearman_client_st *c, const unsigned char *payload, size_t size,
                        unsigned long total, unsigned long inflight, bool *ok_out)
{
    struct run *r = &g_run;
    free(r->start_ns);
    free(r->lat_ns);
    memset(r, 0, sizeof *r);
    r->client = c;
    r->payload = payload;
    r->size = size;
    r->total = total;
    r->pid = (long)getpid();
    r->start_ns = calloc(total ? total : 1, sizeof *r->start_ns);
    r->lat_ns = calloc(total ? total : 1, sizeof *r->lat_ns);
    if (!r->start_ns || !r->lat_ns) {
        perror("calloc");
        exit(1);
    }
    uint64_t t0 = bench_now_ns();
    for (unsigned long i = 0; i < inflight && r->submitted < total && !r->add_error; i++)
        submit_next(r);
    bool ok = true;
    while (r->done < r->submitted || r->submitted < total) {
        if (r->add_error)
            break;
        gearman_return_t rc = gearman_client_run_tasks(c);
        if (gearman_failed(rc)) {
            fprintf(stderr, "gearman_client_run_tasks: %s (%s)\n", gearman_strerror(rc),
                    gearman_client_error(c));
            ok = false;
            break;
        }
        /* run_tasks returns once nothing is running; top up if needed. */
        while (r->submitted - r->done < inflight && r->submitted < total && !r->add_error)
            submit_next(r);
    }
    *ok_out = ok && !r->add_error;
    return (double)(bench_now_ns() - t0) / 1e9;
}

/* Polls gearmand's admin "status" command until at least `want` workers have
 * registered function "echo", so the measured run never waits for workers. */
static int wait_for_workers(const char *host, unsigned port, unsigned long want,
                            unsigned long timeout_s)
{
    uint64_t deadline = bench_now_ns() + (uint64_t)timeout_s * 1000000000u;
    for (;;) {
        unsigned long avail = 0;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        if (fd >= 0 && inet_pton(AF_INET, host, &sa.sin_addr) == 1 &&
            connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
            write(fd, "status\n", 7) == 7) {
            char buf[8192];
            size_t len = 0;
            while (len < sizeof buf - 1) {
                ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
                if (n <= 0)
                    break;
                len += (size_t)n;
                buf[len] = '\0';
                if (strcmp(buf, ".\n") == 0 || strstr(buf, "\n.\n"))
                    break;
            }
            buf[len] = '\0';
            /* Lines: FUNCTION \t TOTAL \t RUNNING \t AVAILABLE_WORKERS */
            for (char *line = buf; line && *line;) {
                char *nl = strchr(line, '\n');
                if (nl)
                    *nl = '\0';
                unsigned long total, running, workers;
                char fn[64];
                if (sscanf(line, "%63[^\t]\t%lu\t%lu\t%lu", fn, &total, &running, &workers) == 4 &&
                    strcmp(fn, FUNCTION_NAME) == 0)
                    avail = workers;
                line = nl ? nl + 1 : NULL;
            }
        }
        if (fd >= 0)
            close(fd);
        if (avail >= want)
            return 0;
        if (bench_now_ns() > deadline) {
            fprintf(stderr, "only %lu of %lu gearman workers registered\n", avail, want);
            return -1;
        }
        bench_sleep_ms(20);
    }
}

static int run_client(const struct opts *o)
{
    if (o->tasks == 0 || o->inflight == 0) {
        fprintf(stderr, "--tasks and --inflight must be > 0\n");
        return 2;
    }
    if (o->wait_workers &&
        wait_for_workers(o->host, o->port, o->wait_workers, o->timeout_s) != 0)
        return 1;

    gearman_client_st *c = gearman_client_create(NULL);
    if (!c || gearman_failed(gearman_client_add_server(c, o->host, (in_port_t)o->port))) {
        fprintf(stderr, "gearman client setup failed\n");
        return 1;
    }
    gearman_client_add_options(c, GEARMAN_CLIENT_FREE_TASKS);
    gearman_client_set_timeout(c, (int)(o->timeout_s * 1000)); /* idle timeout */
    gearman_client_set_complete_fn(c, on_complete);
    gearman_client_set_fail_fn(c, on_fail);
    gearman_client_set_exception_fn(c, on_fail);

    unsigned char *payload = bench_make_payload(o->size);
    bool ok = true;
    if (o->warmup)
        run_phase(c, payload, o->size, o->warmup, o->inflight, &ok);
    if (!ok) {
        fprintf(stderr, "warm-up failed\n");
        return 1;
    }
    uint64_t cpu0 = bench_cpu_us();
    double secs = run_phase(c, payload, o->size, o->tasks, o->inflight, &ok);
    uint64_t cpu1 = bench_cpu_us();

    struct run *r = &g_run;
    struct bench_result res = {
        .system = "gearman",
        .tasks = o->tasks,
        .completed = r->completed,
        .failed = r->failed,
        .timed_out = o->tasks - r->completed - r->failed,
        .inflight = o->inflight,
        .size = o->size,
        .seconds = secs,
        .cpu_us = cpu1 - cpu0,
        .lat_ns = r->lat_ns,
        .n_lat = r->n_lat,
    };
    bench_print_json(&res);

    gearman_client_free(c);
    free(payload);
    free(r->start_ns);
    free(r->lat_ns);
    return (ok && r->completed == o->tasks) ? 0 : 1;
}

/* ---------------------------------------------------------------- main */

static void usage(void)
{
    fprintf(stderr,
            "usage: gearman_bench worker --host H --port P --connections N\n"
            "       gearman_bench client --host H --port P --tasks N --inflight K --size B\n"
            "                            [--warmup W] [--wait-workers N] [--timeout SEC]\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage();
        return 2;
    }
    const char *mode = argv[1];
    struct opts o = {.host = "127.0.0.1",
                     .port = 4730,
                     .connections = 2,
                     .tasks = 10000,
                     .inflight = 1,
                     .size = 64,
                     .timeout_s = 60};
    static const struct option longopts[] = {
        {"host", required_argument, NULL, 'h'},
        {"port", required_argument, NULL, 'p'},
        {"connections", required_argument, NULL, 'c'},
        {"tasks", required_argument, NULL, 'n'},
        {"inflight", required_argument, NULL, 'k'},
        {"size", required_argument, NULL, 's'},
        {"warmup", required_argument, NULL, 'w'},
        {"wait-workers", required_argument, NULL, 'W'},
        {"timeout", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    optind = 2;
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'h': o.host = optarg; break;
        case 'p': o.port = (unsigned)bench_parse_ulong("--port", optarg); break;
        case 'c': o.connections = bench_parse_ulong("--connections", optarg); break;
        case 'n': o.tasks = bench_parse_ulong("--tasks", optarg); break;
        case 'k': o.inflight = bench_parse_ulong("--inflight", optarg); break;
        case 's': o.size = bench_parse_ulong("--size", optarg); break;
        case 'w': o.warmup = bench_parse_ulong("--warmup", optarg); break;
        case 'W': o.wait_workers = bench_parse_ulong("--wait-workers", optarg); break;
        case 't': o.timeout_s = bench_parse_ulong("--timeout", optarg); break;
        default: usage(); return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(mode, "worker") == 0)
        return run_worker(&o);
    if (strcmp(mode, "client") == 0)
        return run_client(&o);
    usage();
    return 2;
}
