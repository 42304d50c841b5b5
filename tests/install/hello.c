/* hello.c - the smallest libp2c2r program, as .ci/run builds it from an
 * installed tree: cc hello.c $(pkg-config --cflags --libs p2c2r) */
#include <stdio.h>
#include <p2c2r/client.h>

int main(int argc, char **argv)
{
    p2c2r_client *c;  p2c2r_ticket t;  struct p2c2r_result r = P2C2R_RESULT_INIT;
    if (argc != 2 || p2c2r_client_connect(argv[1], NULL, &c) != 0) return 1;
    struct p2c2r_task task = {.size = sizeof task, .type = "echo", .input = "hello", .input_len = 5 };
    if (p2c2r_client_submit(c, &task, &t) != 0 || p2c2r_client_wait(c, t, 10000, &r) != 0) return 1;
    printf("libp2c2r %s: %.*s\n", p2c2r_version(), (int)r.output_len, (const char *)r.output);
    int ok = r.status == 0;
    p2c2r_result_release(&r);
    struct p2c2r_task bad = {.size = sizeof bad, .type = "no_such_type" };
    if (p2c2r_client_submit(c, &bad, &t) != 0 || p2c2r_client_wait(c, t, 10000, &r) != 0) return 1;
    printf("a refusal: %s\n", p2c2r_strerror(r.status));
    p2c2r_result_release(&r);  p2c2r_client_close(c);
    return ok ? 0 : 1;
}
