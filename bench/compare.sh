#!/usr/bin/env bash
# Compares p2c2r with gearmand and NATS request-reply on loopback, in one run,
# so that every figure can also be read as a ratio.
#
# Usage: bench/compare.sh [--quick] [--json-only] [--systems LIST] [--keep-logs]
#                         [--workloads LIST] [--malloc-tuned]
#   --quick         fewer tasks (smoke run; figures are noisy)
#   --json-only     print only JSON lines on stdout (progress is silent)
#   --systems       comma list out of p2c2r,gearman,nats (default: all three)
#   --workloads     comma list out of W1,W2,W3,W4 (default: all four)
#   --keep-logs     keep the temporary directory with server/worker logs
#   --malloc-tuned  export GLIBC_TUNABLES=glibc.malloc.trim_threshold=256MiB to
#                   every process of every system.  glibc returns freed memory
#                   of per-thread arenas with madvise(), whose TLB-shootdown
#                   IPIs are very costly in this VM; libgearman and nats.c pay
#                   it on each 64 KiB message (W4), up to 4x their throughput.
#                   Off by default: the default run is out-of-the-box glibc.
#
# Environment:
#   BUILD            p2c2r build dir (default: <repo>/build); p2c2r is run when
#                    $BUILD/p2c2rd, $BUILD/p2c2r-peer and $BUILD/p2c2r exist
#   COMP_BUILD       where competitor benches are built ($BUILD/bench-competitors)
#   GEARMAND_ARGS    extra gearmand flags (default: --threads=1 --worker-wakeup=1)
#   NATS_SERVER_ARGS extra nats-server flags (default: none)
#   P2C2R_SLOTS      --slots per peer connection (default: ceil(inflight/conns))
#   CLIENT_TIMEOUT   seconds allowed per client run (default: 120)
#
# Workloads (worker/peer = echo: replies with its input unchanged); tasks
# measured after a warm-up run (--quick: about a tenth):
#   W1  1 in flight,   64 B,   2 worker connections, 20000 tasks -> p50/p99 us
#   W2  256 in flight, 64 B,   2 worker connections, 500000 tasks -> tasks/s
#   W3  256 in flight, 64 B, 100 worker connections, 200000 tasks -> tasks/s
#   W4  64 in flight,  64 KiB, 2 worker connections, 10000 tasks -> MB/s
#       (1 MB = 1e6 bytes of payload returned to the client per second)
#
# Method, identical for every system and workload:
#   * a fresh server and fresh workers per (system, workload), so the server's
#     peak RSS (VmHWM from /proc/PID/status, KiB) belongs to that workload;
#   * a warm-up client run first (1000 tasks, W4: 200; same in-flight and
#     size), which also proves that every worker is connected;
#   * server and worker CPU time (utime+stime over all threads; read from
#     /proc/PID/task/*/schedstat for ns resolution, else /proc/PID/stat) is
#     sampled just before and after the measured client run; the client's CPU
#     is its whole-process rusage (bash `times` around `timeout CLIENT ...`);
#     cpu_us_per_task = (server + workers + client) / completed tasks;
#     irq/softirq time (loopback TCP) belongs to no process and is not counted;
#   * throughput and latency are what each client reports for its measured
#     run (first submit to last reply; per-task submit-to-reply latency);
#   * other_cpu_pct: process CPU used on the machine by anything else during
#     the measured run, in % of all cores; over 10% the run is flagged noisy.
# Settings (each the fastest found on this 2-core machine; "config" in JSON):
#   gearman  gearmand --threads=1 --worker-wakeup=1 (the default wakes every
#            idle worker for each job: 4 ms p50 at W1 with 100 workers);
#            libgearman client, add_task + run_tasks, refilled from the
#            completion callback; one job per worker connection at a time.
#   nats     nats-server defaults; nats.c with SendAsap for W1 only (without
#            it the flusher thread adds ~1 ms per hop; with it W2 halves).
#   p2c2r    p2c2rd --local-peers 0; p2c2r-peer --slots ceil(inflight/conns).
#   See bench/competitors/*.c for what "in flight" means for each client.
# Output: one JSON line per (system, workload), a table, and p2c2r/best
# competitor ratios (best = lowest latency/CPU/RSS, highest throughput).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
BUILD=${BUILD:-$root/build}
COMP_BUILD=${COMP_BUILD:-$BUILD/bench-competitors}
GEARMAND_ARGS=${GEARMAND_ARGS:---threads=1 --worker-wakeup=1}
NATS_SERVER_ARGS=${NATS_SERVER_ARGS:-}
CLIENT_TIMEOUT=${CLIENT_TIMEOUT:-120}

quick=0
json_only=0
keep_logs=0
malloc_tuned=0
systems="p2c2r,gearman,nats"
workloads="W1,W2,W3,W4"
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) quick=1 ;;
    --json-only) json_only=1 ;;
    --keep-logs) keep_logs=1 ;;
    --malloc-tuned) malloc_tuned=1 ;;
    --systems) systems=${2:?--systems needs a list}; shift ;;
    --systems=*) systems=${1#--systems=} ;;
    --workloads) workloads=${2:?--workloads needs a list}; shift ;;
    --workloads=*) workloads=${1#--workloads=} ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

log() { [ "$json_only" = 1 ] || echo "compare: $*" >&2; }
warn() { echo "compare: $*" >&2; }

if [ "$malloc_tuned" = 1 ]; then
    export GLIBC_TUNABLES="glibc.malloc.trim_threshold=268435456${GLIBC_TUNABLES:+:$GLIBC_TUNABLES}"
fi

# ------------------------------------------------------------ workloads
# name inflight size connections tasks warmup
if [ "$quick" = 1 ]; then
    WORKLOADS=("W1 1 64 2 2000 200" "W2 256 64 2 20000 500" "W3 256 64 100 20000 500"
               "W4 64 65536 2 1000 100")
else
    WORKLOADS=("W1 1 64 2 20000 1000" "W2 256 64 2 500000 1000" "W3 256 64 100 200000 1000"
               "W4 64 65536 2 10000 200")
fi

# ------------------------------------------------------------ bookkeeping
tmp=$(mktemp -d "${TMPDIR:-/tmp}/p2c2r-compare.XXXXXX")
procs=() # pids started by this script and still alive

stop_procs() {
    local pid
    [ ${#procs[@]} -eq 0 ] && return 0
    for pid in "${procs[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for _ in $(seq 30); do
        local alive=0
        for pid in "${procs[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in "${procs[@]}"; do kill -KILL "$pid" 2>/dev/null; done
    for pid in "${procs[@]}"; do wait "$pid" 2>/dev/null; done
    procs=()
}

cleanup() {
    stop_procs
    if [ "$keep_logs" = 1 ]; then
        warn "logs kept in $tmp"
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# ------------------------------------------------------------ helpers
have_system() { case ",$systems," in *",$1,"*) return 0 ;; esac; return 1; }

port_in_use() {
    local hex
    hex=$(printf ':%04X ' "$1")
    grep -qi -- "$hex" /proc/net/tcp /proc/net/tcp6 2>/dev/null && return 0
    (: <>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    return 1
}

free_port() {
    local p
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 40000))
        port_in_use "$p" || { echo "$p"; return 0; }
    done
    return 1
}

wait_listen() { # port pid seconds
    for _ in $(seq $(($3 * 20))); do
        kill -0 "$2" 2>/dev/null || return 1
        (: <>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

wait_file() { # file pid seconds
    for _ in $(seq $(($3 * 20))); do
        [ -s "$1" ] && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

clk_tck=$(getconf CLK_TCK 2>/dev/null || echo 100)
ncpu=$(nproc 2>/dev/null || echo 1)

# CPU time (utime+stime) of the given pids, all their threads, in
# microseconds.  Read from /proc/PID/task/*/schedstat (nanoseconds on CPU, the
# same quantity /proc/PID/stat reports in 10 ms ticks) when the kernel has it,
# else from /proc/PID/stat; every process here keeps its threads for the run.
cpu_us_of() {
    local total=0 pid t
    for pid in "$@"; do
        [ -r "/proc/$pid/stat" ] || continue
        if [ -r "/proc/$pid/schedstat" ]; then
            t=$(cat "/proc/$pid"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s / 1000 }')
        else
            t=$(sed 's/.*) //' "/proc/$pid/stat" | awk -v tck="$clk_tck" '{ printf "%.0f", ($12 + $13) * 1e6 / tck }')
        fi
        total=$((total + ${t:-0}))
    done
    echo "$total"
}

# Process CPU of the whole machine (user+nice+system; irq and softirq time,
# which loopback networking makes large, belong to no process), microseconds.
machine_busy_us() {
    awk -v tck="$clk_tck" '/^cpu / { printf "%.0f\n", ($2 + $3 + $4) * 1e6 / tck; exit }' /proc/stat
}

hwm_kib_of() {
    local total=0 pid v
    for pid in "$@"; do
        v=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

# JSON number (or string) of KEY in FILE; the object may span lines.
jget() {
    tr -d '\n' <"$2" | grep -o "\"$1\"[[:space:]]*:[[:space:]]*[^,}]*" | tail -n 1 |
        sed 's/^[^:]*:[[:space:]]*//; s/"//g; s/[[:space:]]*$//'
}

# Runs a client command under `timeout`; its stdout goes to $1, its CPU time
# (children rusage of a subshell, so every process of the client is counted)
# in microseconds to $1.cpu.  Returns the client's exit code.
run_client() {
    local out=$1
    shift
    (
        rc=0
        timeout "$CLIENT_TIMEOUT" "$@" >"$out" 2>>"$tmp/clients.err" || rc=$?
        times >"$out.times"
        exit "$rc"
    )
    local rc=$?
    # second line of `times`: children user, children system, e.g. 0m1.234s
    sed -n 2p "$out.times" | awk '{
        us = 0
        for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); us += (a[1] * 60 + a[2]) * 1e6 }
        printf "%.0f\n", us }' >"$out.cpu"
    return "$rc"
}

# ------------------------------------------------------------ systems
# Each start_* sets: server_pid, worker_pids (array), and the client command
# prefix client_cmd (array) to which "--tasks N" style arguments are added by
# client_args_*.  They return non-zero on failure.

start_gearman() { # conns inflight
    local port
    for _ in 1 2 3 4 5; do
        port=$(free_port) || return 1
        # shellcheck disable=SC2086  # GEARMAND_ARGS is a list of flags
        gearmand --listen=127.0.0.1 --port="$port" $GEARMAND_ARGS --log-file="$tmp/gearmand.log" \
            --pid-file="$tmp/gearmand.pid" --verbose=ERROR </dev/null >>"$tmp/gearmand.out" 2>&1 &
        server_pid=$!
        procs+=("$server_pid")
        wait_listen "$port" "$server_pid" 10 && break
        stop_procs
        server_pid=
    done
    [ -n "$server_pid" ] || return 1
    "$COMP_BUILD/gearman_bench" worker --host 127.0.0.1 --port "$port" --connections "$1" \
        </dev/null >>"$tmp/gearman-workers.log" 2>&1 &
    worker_pids=($!)
    procs+=("${worker_pids[@]}")
    gearman_port=$port
}

gearman_client() { # out tasks inflight size conns phase(warmup|measure)
    local extra=()
    [ "$6" = warmup ] && extra=(--wait-workers "$5")
    run_client "$1" "$COMP_BUILD/gearman_bench" client --host 127.0.0.1 --port "$gearman_port" \
        --tasks "$2" --inflight "$3" --size "$4" --timeout 60 "${extra[@]}"
}

# NATS: nats.c's SendAsap (write each publish at once) roughly halves latency
# at one in flight but costs throughput under load, so it is used for W1 only
# (client and workers), the fastest setting for each workload.
nats_asap() { [ "$1" = 1 ] && echo --send-asap; }

start_nats() { # conns inflight
    local port
    for _ in 1 2 3 4 5; do
        port=$(free_port) || return 1
        # shellcheck disable=SC2086
        nats-server -a 127.0.0.1 -p "$port" -l "$tmp/nats-server.log" $NATS_SERVER_ARGS \
            </dev/null >>"$tmp/nats-server.out" 2>&1 &
        server_pid=$!
        procs+=("$server_pid")
        wait_listen "$port" "$server_pid" 10 && break
        stop_procs
        server_pid=
    done
    [ -n "$server_pid" ] || return 1
    rm -f "$tmp/nats.ready"
    # shellcheck disable=SC2046
    "$COMP_BUILD/nats_bench" worker --url "nats://127.0.0.1:$port" --connections "$1" \
        --ready-file "$tmp/nats.ready" $(nats_asap "$2") </dev/null >>"$tmp/nats-workers.log" 2>&1 &
    worker_pids=($!)
    procs+=("${worker_pids[@]}")
    nats_port=$port
    wait_file "$tmp/nats.ready" "${worker_pids[0]}" 30
}

nats_client() { # out tasks inflight size conns phase
    # shellcheck disable=SC2046
    run_client "$1" "$COMP_BUILD/nats_bench" client --url "nats://127.0.0.1:$nats_port" \
        --tasks "$2" --inflight "$3" --size "$4" --timeout 60 $(nats_asap "$3")
}

p2c2r_slots() { # conns inflight
    if [ -n "${P2C2R_SLOTS:-}" ]; then echo "$P2C2R_SLOTS"; else
        local s=$((($2 + $1 - 1) / $1))
        [ "$s" -lt 1 ] && s=1
        echo "$s"
    fi
}

start_p2c2r() { # conns inflight
    rm -f "$tmp/p2c2rd.addr"
    "$BUILD/p2c2rd" --listen 127.0.0.1:0 --ready-file "$tmp/p2c2rd.addr" --local-peers 0 \
        --log-level warn </dev/null >>"$tmp/p2c2rd.log" 2>&1 &
    server_pid=$!
    procs+=("$server_pid")
    wait_file "$tmp/p2c2rd.addr" "$server_pid" 10 || return 1
    p2c2r_addr=$(head -n 1 "$tmp/p2c2rd.addr" | tr -d '[:space:]')
    local slots
    slots=$(p2c2r_slots "$1" "$2")
    worker_pids=()
    if [ "$p2c2r_peer_multi" = 1 ]; then
        "$BUILD/p2c2r-peer" --coordinator "$p2c2r_addr" --slots "$slots" --types echo \
            --connections "$1" </dev/null >>"$tmp/p2c2r-peers.log" 2>&1 &
        worker_pids+=($!)
    else
        for _ in $(seq "$1"); do
            "$BUILD/p2c2r-peer" --coordinator "$p2c2r_addr" --slots "$slots" --types echo \
                </dev/null >>"$tmp/p2c2r-peers.log" 2>&1 &
            worker_pids+=($!)
        done
    fi
    procs+=("${worker_pids[@]}")
    wait_p2c2r_peers "$1"
}

# Waits until the coordinator reports `want` connected peers (p2c2r stats);
# when stats gives no figure, the warm-up run is the only readiness check.
wait_p2c2r_peers() {
    local n
    for _ in $(seq 300); do
        n=$("$BUILD/p2c2r" stats --coordinator "$p2c2r_addr" --json 2>/dev/null |
            grep -o '"peers_connected":[0-9]*' | head -n 1 | cut -d: -f2)
        [ -z "$n" ] && return 0
        [ "$n" -ge "$1" ] && return 0
        sleep 0.1
    done
    warn "p2c2r: only $n of $1 peers connected after 30 s"
    return 1
}

p2c2r_client() { # out tasks inflight size conns phase
    run_client "$1" "$BUILD/p2c2r" bench --coordinator "$p2c2r_addr" --type echo \
        --tasks "$2" --inflight "$3" --size "$4" --json
}

config_of() { # system conns inflight
    case "$1" in
    gearman) echo "gearmand $GEARMAND_ARGS; libgearman client, 1 worker conn = 1 job at a time" ;;
    nats) echo "nats-server ${NATS_SERVER_ARGS:-defaults}; nats.c$( [ "$3" = 1 ] && echo ', send-asap')" ;;
    p2c2r)
        local mode=processes
        [ "$p2c2r_peer_multi" = 1 ] && mode="one process"
        echo "p2c2rd --local-peers 0; p2c2r-peer --slots $(p2c2r_slots "$2" "$3") x $2 conns ($mode)"
        ;;
    esac
}

# ------------------------------------------------------------ prerequisites
active=()
if have_system gearman || have_system nats; then
    if ! bash "$here/competitors/build.sh" "$COMP_BUILD" >"$tmp/build.log" 2>&1; then
        warn "building competitor benches failed (see below); skipping gearman and nats"
        cat "$tmp/build.log" >&2
        systems=${systems//gearman/}
        systems=${systems//nats/}
    fi
fi
if have_system p2c2r; then
    if [ -x "$BUILD/p2c2rd" ] && [ -x "$BUILD/p2c2r-peer" ] && [ -x "$BUILD/p2c2r" ]; then
        active+=(p2c2r)
        p2c2r_peer_multi=0
        "$BUILD/p2c2r-peer" --help 2>&1 | grep -q -- '--connections' && p2c2r_peer_multi=1
    else
        warn "p2c2r binaries not found in $BUILD (p2c2rd, p2c2r-peer, p2c2r); skipping p2c2r"
    fi
fi
p2c2r_peer_multi=${p2c2r_peer_multi:-0}
if have_system gearman; then
    if command -v gearmand >/dev/null; then active+=(gearman); else
        warn "gearmand not installed (bash scripts/deps.sh --bench); skipping gearman"
    fi
fi
if have_system nats; then
    if command -v nats-server >/dev/null; then active+=(nats); else
        warn "nats-server not installed (bash scripts/deps.sh --bench); skipping nats"
    fi
fi
if [ ${#active[@]} -eq 0 ]; then
    warn "nothing to run"
    exit 1
fi
log "systems: ${active[*]}; $ncpu cpus; malloc-tuned=$malloc_tuned; JSON lines on stdout"

# ------------------------------------------------------------ run
results="$tmp/results.jsonl"
: >"$results"
failures=0

emit() { # the JSON line: stdout and the results file
    echo "$1" >>"$results"
    echo "$1"
}

run_one() { # system workload inflight size conns tasks warmup
    local sys=$1 wl=$2 inflight=$3 size=$4 conns=$5 tasks=$6 warmup=$7
    local out="$tmp/$sys-$wl.json" err=""
    server_pid=
    worker_pids=()
    log "$sys $wl: $tasks tasks, $inflight in flight, $size B, $conns worker connections"
    if ! "start_$sys" "$conns" "$inflight"; then
        err="server or workers failed to start"
    else
        # Warm-up; also waits until every worker is connected (retried, as a
        # p2c2r peer may still be registering when the first run starts).
        local ok=0
        for _ in 1 2 3 4 5; do
            if "${sys}_client" "$out.warm" "$warmup" "$inflight" "$size" "$conns" warmup; then
                ok=1
                break
            fi
            sleep 0.5
        done
        [ "$ok" = 1 ] || err="warm-up run failed"
    fi
    local srv0 wk0 srv_cpu=0 wk_cpu=0 client_cpu=0 rss=0 wrss=0 busy0 busy1 t0 t1 other_pct=0
    if [ -z "$err" ]; then
        local rc=0
        srv0=$(cpu_us_of "$server_pid")
        wk0=$(cpu_us_of "${worker_pids[@]}")
        busy0=$(machine_busy_us)
        t0=$(date +%s%N)
        "${sys}_client" "$out" "$tasks" "$inflight" "$size" "$conns" measure || rc=$?
        t1=$(date +%s%N)
        busy1=$(machine_busy_us)
        srv_cpu=$(($(cpu_us_of "$server_pid") - srv0))
        wk_cpu=$(($(cpu_us_of "${worker_pids[@]}") - wk0))
        client_cpu=$(cat "$out.cpu" 2>/dev/null || echo 0)
        # Process CPU used on the machine by anything but this run (other
        # jobs), as % of all cores over the run: a noise gauge.
        other_pct=$(awk -v b="$((busy1 - busy0))" -v o="$((srv_cpu + wk_cpu + client_cpu))" \
            -v w="$(((t1 - t0) / 1000))" -v n="$ncpu" \
            'BEGIN { x = w > 0 ? (b - o) * 100 / (w * n) : 0; if (x < 0) x = 0; printf "%.1f", x }')
        rss=$(hwm_kib_of "$server_pid")
        wrss=$(hwm_kib_of "${worker_pids[@]}")
        [ "$rc" = 124 ] && err="client timed out after ${CLIENT_TIMEOUT}s"
        if [ ! -s "$out" ] || [ -z "$(jget completed "$out")" ]; then
            err="${err:-client exited $rc without a result}"
        fi
    fi
    local cfg
    cfg=$(config_of "$sys" "$conns" "$inflight")
    if [ -n "$err" ]; then
        warn "$sys $wl: $err (see --keep-logs)"
        tail -n 5 "$tmp/clients.err" 2>/dev/null >&2
        emit "{\"system\":\"$sys\",\"workload\":\"$wl\",\"tasks\":$tasks,\"inflight\":$inflight,\"size\":$size,\"connections\":$conns,\"error\":\"$err\",\"config\":\"$cfg\"}"
        stop_procs
        return 1
    fi
    local completed
    completed=$(jget completed "$out")
    local line
    line=$(awk -v sys="$sys" -v wl="$wl" -v tasks="$tasks" -v inflight="$inflight" -v size="$size" \
        -v conns="$conns" -v completed="$completed" -v failed="$(jget failed "$out")" \
        -v timed_out="$(jget timed_out "$out")" -v secs="$(jget seconds "$out")" \
        -v tps="$(jget tasks_per_s "$out")" -v mbps="$(jget mb_per_s "$out")" \
        -v p50="$(jget p50_us "$out")" -v p90="$(jget p90_us "$out")" -v p99="$(jget p99_us "$out")" \
        -v pmax="$(jget max_us "$out")" -v rss="$rss" -v wrss="$wrss" \
        -v scpu="$srv_cpu" -v wcpu="$wk_cpu" -v ccpu="${client_cpu:-0}" -v cfg="$cfg" \
        -v other="$other_pct" -v tuned="$malloc_tuned" '
        function num(v) { return v == "" ? "null" : v }
        BEGIN {
            n = completed + 0
            per = n > 0 ? (scpu + wcpu + ccpu) / n : 0
            printf "{\"system\":\"%s\",\"workload\":\"%s\",\"tasks\":%d,\"inflight\":%d,\"size\":%d,", sys, wl, tasks, inflight, size
            printf "\"connections\":%d,\"completed\":%s,\"failed\":%s,\"timed_out\":%s,\"seconds\":%s,", conns, num(completed), num(failed), num(timed_out), num(secs)
            printf "\"tasks_per_s\":%s,\"mb_per_s\":%s,\"p50_us\":%s,\"p90_us\":%s,\"p99_us\":%s,\"max_us\":%s,", num(tps), num(mbps), num(p50), num(p90), num(p99), num(pmax)
            printf "\"server_rss_kib\":%d,\"workers_rss_kib\":%d,\"cpu_us_server\":%d,", rss, wrss, scpu
            printf "\"cpu_us_workers\":%d,\"cpu_us_client\":%d,", wcpu, ccpu
            printf "\"cpu_us_per_task\":%.2f,\"other_cpu_pct\":%s,", per, other
            printf "\"malloc_tuned\":%s,\"config\":\"%s\"}\n", tuned ? "true" : "false", cfg
        }')
    emit "$line"
    if awk -v x="$other_pct" 'BEGIN { exit !(x > 10) }'; then
        warn "$sys $wl: other processes used ${other_pct}% of the machine during the run; figures are noisy"
    fi
    if [ "$completed" != "$tasks" ]; then
        warn "$sys $wl: only $completed of $tasks tasks completed"
    fi
    stop_procs
    return 0
}

for w in "${WORKLOADS[@]}"; do
    read -r wl inflight size conns tasks warmup <<<"$w"
    case ",$workloads," in *",$wl,"*) ;; *) continue ;; esac
    for sys in "${active[@]}"; do
        run_one "$sys" "$wl" "$inflight" "$size" "$conns" "$tasks" "$warmup" || failures=$((failures + 1))
    done
done

# ------------------------------------------------------------ summary
# Ratios p2c2r / best competitor; "lower" metrics: best = min, else max.
summary=$(awk '
    function get(line, key,    m) {
        if (match(line, "\"" key "\":[^,}]*")) {
            m = substr(line, RSTART, RLENGTH); sub(/^[^:]*:/, "", m); gsub(/"/, "", m); return m
        }
        return ""
    }
    {
        sys = get($0, "system"); wl = get($0, "workload")
        if (!(wl in seenwl)) { seenwl[wl] = 1; wls[++nw] = wl }
        if (!(sys in seensys)) { seensys[sys] = 1; syss[++ns] = sys }
        err[sys, wl] = get($0, "error")
        split("p50_us p99_us tasks_per_s mb_per_s server_rss_kib cpu_us_per_task other_cpu_pct", keys, " ")
        for (k in keys) val[sys, wl, keys[k]] = get($0, keys[k])
    }
    END {
        printf "TABLE\n"
        printf "%-8s %-3s %10s %10s %12s %10s %12s %12s %7s\n", "system", "wl", "p50_us", "p99_us", "tasks/s", "MB/s", "srv_rss_KiB", "cpu_us/task", "other%"
        for (i = 1; i <= nw; i++) for (j = 1; j <= ns; j++) {
            wl = wls[i]; s = syss[j]
            if (!((s, wl, "p50_us") in val)) continue
            if (err[s, wl] != "") { printf "%-8s %-3s  error: %s\n", s, wl, err[s, wl]; continue }
            printf "%-8s %-3s %10s %10s %12s %10s %12s %12s %7s\n", s, wl, val[s, wl, "p50_us"], val[s, wl, "p99_us"], val[s, wl, "tasks_per_s"], val[s, wl, "mb_per_s"], val[s, wl, "server_rss_kib"], val[s, wl, "cpu_us_per_task"], val[s, wl, "other_cpu_pct"]
        }
        # metrics per workload: name, lower-is-better
        m["W1"] = "p50_us:1 p99_us:1 server_rss_kib:1 cpu_us_per_task:1"
        m["W2"] = "tasks_per_s:0 cpu_us_per_task:1 server_rss_kib:1"
        m["W3"] = "tasks_per_s:0 cpu_us_per_task:1 server_rss_kib:1"
        m["W4"] = "mb_per_s:0 cpu_us_per_task:1 server_rss_kib:1"
        for (i = 1; i <= nw; i++) {
            wl = wls[i]
            if (!(("p2c2r", wl, "p50_us") in val) || err["p2c2r", wl] != "") continue
            n = split(m[wl], ms, " ")
            for (q = 1; q <= n; q++) {
                split(ms[q], kv, ":"); key = kv[1]; lower = kv[2] + 0
                best = ""; bestsys = ""; complete = 1
                for (j = 1; j <= ns; j++) {
                    s = syss[j]; if (s == "p2c2r") continue
                    v = val[s, wl, key]
                    if (err[s, wl] != "" || v == "" || v == "null") { complete = 0; continue }
                    if (best == "" || (lower && v + 0 < best + 0) || (!lower && v + 0 > best + 0)) { best = v; bestsys = s }
                }
                pv = val["p2c2r", wl, key]
                if (best == "" || best + 0 == 0 || pv == "" || pv == "null") continue
                r = (pv + 0) / (best + 0)
                printf "RATIO {\"ratio\":\"p2c2r/best\",\"workload\":\"%s\",\"metric\":\"%s\",\"p2c2r\":%s,\"best\":%s,\"best_system\":\"%s\",\"value\":%.3f,\"better\":\"%s\",\"all_competitors\":%s}\n", wl, key, pv + 0, best + 0, bestsys, r, lower ? "lower" : "higher", complete ? "true" : "false"
            }
        }
    }' "$results")

if [ "$json_only" = 1 ]; then
    echo "$summary" | sed -n 's/^RATIO //p'
else
    echo
    echo "$summary" | sed -n '/^TABLE$/,/^RATIO /{/^TABLE$/d; /^RATIO /d; p}'
    if echo "$summary" | grep -q '^RATIO '; then
        echo
        echo "p2c2r / best competitor (ratio; lower-better metrics: <1 means p2c2r wins):"
        echo "$summary" | sed -n 's/^RATIO //p' | awk '
            function get(line, key,    m) {
                if (match(line, "\"" key "\":[^,}]*")) {
                    m = substr(line, RSTART, RLENGTH); sub(/^[^:]*:/, "", m); gsub(/"/, "", m); return m
                }
                return ""
            }
            { printf "  %-3s %-16s %8s  (p2c2r %s vs %s %s; %s is better)\n", get($0, "workload"), get($0, "metric"), get($0, "value"), get($0, "p2c2r"), get($0, "best_system"), get($0, "best"), get($0, "better") }'
        echo "$summary" | sed -n 's/^RATIO //p'
    elif have_system p2c2r && [[ " ${active[*]} " != *" p2c2r "* ]]; then
        echo
        echo "(no p2c2r figures: ratios need the p2c2r binaries in $BUILD)"
    fi
fi

if [ "$failures" -gt 0 ]; then
    warn "$failures run(s) failed"
    exit 1
fi
