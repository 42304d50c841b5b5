/* py_layout.c - prints the layout of the public sized structs as the C
 * compiler sees it, one "struct field offset size" line per member plus a
 * "struct - sizeof 0" line per struct, for tests/python/test_layout.py to
 * compare with the ctypes mirrors in python/src/p2c2r/_ffi.py.  Usage:
 * py_layout (no arguments). */
#include <stddef.h>
#include <stdio.h>

#include "p2c2r/client.h"

#define F(S, m) printf("%s %s %zu %zu\n", #S, #m, offsetof(struct S, m), sizeof(((struct S *)0)->m))
#define Z(S) printf("%s - %zu 0\n", #S, sizeof(struct S))

int main(void)
{
    Z(p2c2r_client_options);
    F(p2c2r_client_options, size);
    F(p2c2r_client_options, token);
    F(p2c2r_client_options, name);
    F(p2c2r_client_options, connect_timeout_ms);
    F(p2c2r_client_options, max_result_bytes);
    F(p2c2r_client_options, spin_us);
    F(p2c2r_client_options, reserved_);
    F(p2c2r_client_options, reconnect_ms);
    F(p2c2r_client_options, reconnect_max_ms);
    F(p2c2r_client_options, local_fallback_us);
    F(p2c2r_client_options, local_frame_us);
    F(p2c2r_client_options, tls_ca_file);
    F(p2c2r_client_options, tls_server_name);
    Z(p2c2r_task);
    F(p2c2r_task, size);
    F(p2c2r_task, type);
    F(p2c2r_task, min_version);
    F(p2c2r_task, deadline_ms);
    F(p2c2r_task, priority);
    F(p2c2r_task, params);
    F(p2c2r_task, params_len);
    F(p2c2r_task, input);
    F(p2c2r_task, input_len);
    F(p2c2r_task, blobs);
    F(p2c2r_task, nblobs);
    F(p2c2r_task, flags);
    F(p2c2r_task, need_gpu);
    F(p2c2r_task, min_cores);
    F(p2c2r_task, min_mem_bytes);
    F(p2c2r_task, user);
    Z(p2c2r_result);
    F(p2c2r_result, size);
    F(p2c2r_result, ticket);
    F(p2c2r_result, status);
    F(p2c2r_result, output);
    F(p2c2r_result, output_len);
    F(p2c2r_result, exec_us);
    F(p2c2r_result, peer_id);
    F(p2c2r_result, attempts);
    F(p2c2r_result, flags);
    F(p2c2r_result, user);
    Z(p2c2r_pressure);
    F(p2c2r_pressure, size);
    F(p2c2r_pressure, inflight);
    F(p2c2r_pressure, max_inflight);
    F(p2c2r_pressure, rejected_queue_full);
    F(p2c2r_pressure, rejected_deadline);
    F(p2c2r_pressure, last_reject_ms_ago);
    F(p2c2r_pressure, reject_ratio);
    F(p2c2r_pressure, unsent_bytes);
    F(p2c2r_pressure, timed_out);
    F(p2c2r_pressure, late);
    F(p2c2r_pressure, last_miss_ms_ago);
    F(p2c2r_pressure, miss_ratio);
    Z(p2c2r_frame_advice);
    F(p2c2r_frame_advice, size);
    F(p2c2r_frame_advice, fit);
    F(p2c2r_frame_advice, quality);
    F(p2c2r_frame_advice, rtt_p90_us);
    F(p2c2r_frame_advice, inflight);
    F(p2c2r_frame_advice, miss_ratio);
    return 0;
}
