/* test_stats_paging.c - cheap requests stay cheap (issue 12, item 5: STATS).
 *
 * 130 raw peers register with one coordinator.  A renter's STATS without a body lists a
 * page of at most 100 of them and says how many there are (peers_total); a request naming
 * an offset and a limit gets that page, and the pages together list every peer once.  One
 * connection asking ten times back to back gets ten answers: the first in full, one held
 * back to the next --stats-interval and answered in full, the others at once with a small
 * rate_limited document; the counters say so.  `p2c2r stats` asks for the pages in turn and
 * lists all 130. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define NPEERS 130

/* Sends STATS_REQ (with a page when limit > 0) and reads its answer. */
static json_t *stats_page(struct h_raw *r, uint64_t id, uint32_t offset, uint32_t limit)
{
    uint8_t body[8];
    wr32(body, offset);
    wr32(body + 4, limit);
    H_REQUIRE(h_raw_send_frame(r, MSG_STATS_REQ, 0, id, body, limit ? 8 : 0, 2000) == 0, "send STATS_REQ");
    struct h_frame f;
    int rc = h_raw_read(r, &f, h_bound_ms(5000));
    H_REQUIRE(rc == H_RAW_FRAME && f.hdr.type == MSG_STATS && f.hdr.req_id == id, "STATS answer: %d type %u",
              rc, rc == H_RAW_FRAME ? f.hdr.type : 0);
    char *txt = malloc(f.hdr.body_len + 1);
    memcpy(txt, f.body, f.hdr.body_len);
    txt[f.hdr.body_len] = '\0';
    json_t *js = h_json_parse(txt);
    free(txt);
    return js;
}

int main(int argc, char **argv)
{
    h_init(argc, argv, "stats_paging");
    static const char *const args[] = {"--stats-interval", "300", NULL};
    h_coord_start(NULL, args);
    static struct h_raw peers[NPEERS];
    uint8_t caps[256];
    size_t cl = h_caps_one_type(caps, "echo");
    h_phase("register %d raw peers", NPEERS);
    for (int i = 0; i < NPEERS; i++) {
        H_REQUIRE(h_raw_connect(&peers[i], h_addr()) == 0, "connect peer %d", i);
        int rc = h_raw_hello(&peers[i], ROLE_PEER, NULL, NULL);
        H_REQUIRE(rc == 0, "peer HELLO: %s", h_err(rc));
        H_REQUIRE(h_raw_send_register(&peers[i], 1, caps, cl, NULL) == 0, "register peer %d", i);
    }
    h_wait_peers(NPEERS, NULL);

    h_phase("pages");
    struct h_raw r;
    H_REQUIRE(h_raw_connect(&r, h_addr()) == 0, "connect renter");
    int rc = h_raw_hello(&r, ROLE_RENTER, NULL, NULL);
    H_REQUIRE(rc == 0, "renter HELLO: %s", h_err(rc));
    json_t *all = stats_page(&r, 1, 0, 0);
    H_CHECK(h_json_int(all, "peers_total") == NPEERS, "peers_total %lld, expected %d",
            h_json_int(all, "peers_total"), NPEERS);
    size_t first = json_array_size(h_json_at(all, "peers"));
    H_CHECK(first == 100, "a STATS without a page lists %zu peers, expected the first 100", first);
    json_decref(all);
    /* Pages of 40 cover every peer exactly once. */
    static int seen[NPEERS + 1];
    int listed = 0;
    for (uint32_t off = 0; off < NPEERS; off += 40) {
        h_sleep_ms(320); /* one full answer per --stats-interval */
        json_t *pg = stats_page(&r, 10 + off, off, 40);
        json_t *arr = h_json_at(pg, "peers");
        H_CHECK(h_json_int(pg, "peers_offset") == off, "peers_offset %lld, asked %u", h_json_int(pg, "peers_offset"),
                off);
        for (size_t i = 0; i < json_array_size(arr); i++) {
            long long id = json_integer_value(json_object_get(json_array_get(arr, i), "id"));
            if (H_CHECK(id >= 1 && id <= NPEERS, "peer id %lld", id))
                seen[id]++;
            listed++;
        }
        json_decref(pg);
    }
    H_CHECK(listed == NPEERS, "pages listed %d peers, expected %d", listed, NPEERS);
    for (int i = 1; i <= NPEERS; i++)
        H_CHECK(seen[i] == 1, "peer %d listed %d times", i, seen[i]);

    h_phase("rate limit");
    h_sleep_ms(320);
    for (int i = 0; i < 10; i++)
        H_REQUIRE(h_raw_send_frame(&r, MSG_STATS_REQ, 0, 100 + (uint64_t)i, NULL, 0, 2000) == 0, "send STATS_REQ");
    int full = 0, limited = 0;
    for (int i = 0; i < 10; i++) {
        struct h_frame f;
        rc = h_raw_read(&r, &f, h_bound_ms(5000));
        if (!H_CHECK(rc == H_RAW_FRAME && f.hdr.type == MSG_STATS, "STATS answer %d: %d", i, rc))
            break;
        if (f.hdr.body_len < 100 && memmem(f.body, f.hdr.body_len, "\"rate_limited\":true", 19))
            limited++;
        else
            full++;
    }
    H_CHECK(full == 2 && limited == 8, "10 STATS back to back: %d full answers, %d rate_limited (expected 2 and 8)",
            full, limited);
    json_t *st = h_stats(NULL);
    H_CHECK(h_json_int(st, "counters.stats_limited") >= 8, "counters.stats_limited %lld",
            h_json_int(st, "counters.stats_limited"));
    H_CHECK(h_json_int(st, "counters.stats_delayed") >= 1, "counters.stats_delayed %lld",
            h_json_int(st, "counters.stats_delayed"));
    json_decref(st);

    h_phase("p2c2r stats lists every peer, page by page");
    rc = h_cli("stats", "--coordinator", h_addr(), "--json", "--page-peers", "40", NULL);
    H_EXPECT_EXIT(rc, 0, "p2c2r stats --json");
    json_t *doc = h_out_json();
    H_CHECK(doc && json_array_size(h_json_at(doc, "peers")) == NPEERS && h_json_int(doc, "peers_total") == NPEERS,
            "p2c2r stats --json listed %zu of %lld peers", doc ? json_array_size(h_json_at(doc, "peers")) : 0,
            doc ? h_json_int(doc, "peers_total") : -1);
    memset(seen, 0, sizeof(seen));
    for (size_t i = 0; doc && i < json_array_size(h_json_at(doc, "peers")); i++) {
        long long id = json_integer_value(json_object_get(json_array_get(h_json_at(doc, "peers"), i), "id"));
        if (id >= 1 && id <= NPEERS)
            seen[id]++;
    }
    for (int i = 1; i <= NPEERS; i++)
        H_CHECK(seen[i] == 1, "p2c2r stats: peer %d listed %d times", i, seen[i]);
    json_decref(doc);
    rc = h_cli("stats", "--coordinator", h_addr(), NULL); /* one page of 1000 */
    H_EXPECT_EXIT(rc, 0, "p2c2r stats");
    H_CHECK(h_out_has("peers (state"), "p2c2r stats printed no peer table");
    h_raw_close(&r);
    for (int i = 0; i < NPEERS; i++)
        h_raw_close(&peers[i]);
    return h_finish();
}
