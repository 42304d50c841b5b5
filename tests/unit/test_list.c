/* test_list.c - unit tests for the intrusive list (src/common/list.h):
 * push at either end, insert after a node, remove (idempotent), pop, and
 * list_entry back to the containing object. */
#include <stddef.h>

#include "check.h"
#include "common/list.h"

struct item {
    int value;
    struct list_node node;
    struct list_node other; /* the same object on a second list */
};

/* Checks that the list holds exactly the items with the given values in
 * order, walking forwards and backwards. */
static void check_order(const struct list_node *h, const int *want, size_t n)
{
    size_t i = 0;
    for (const struct list_node *p = h->next; p != h; p = p->next, i++) {
        if (!CHECK(i < n))
            return;
        CHECK_EQ(list_entry(p, const struct item, node)->value, want[i]);
        CHECK(p->next->prev == p);
    }
    CHECK_EQU(i, n);
    for (const struct list_node *p = h->prev; p != h; p = p->prev) {
        if (!CHECK(i > 0))
            return;
        CHECK_EQ(list_entry(p, const struct item, node)->value, want[--i]);
    }
    CHECK_EQU(i, 0);
    CHECK_EQ(list_empty(h), n == 0);
}

static void test_empty(void)
{
    struct list_node h;
    list_init(&h);
    CHECK(list_empty(&h));
    CHECK(!list_linked(&h));
    CHECK(h.next == &h && h.prev == &h);
    CHECK(list_pop_front(&h) == NULL);
    CHECK(list_empty(&h));
    check_order(&h, NULL, 0);
}

static void test_push_pop(void)
{
    struct item it[5];
    struct list_node h;
    list_init(&h);
    for (int i = 0; i < 5; i++) {
        it[i].value = i;
        list_init(&it[i].node);
        CHECK(!list_linked(&it[i].node));
    }
    list_push_back(&h, &it[1].node);
    list_push_back(&h, &it[2].node);
    list_push_front(&h, &it[0].node);
    list_push_back(&h, &it[4].node);
    list_insert_after(&it[2].node, &it[3].node);
    check_order(&h, (const int[]){0, 1, 2, 3, 4}, 5);
    for (int i = 0; i < 5; i++)
        CHECK(list_linked(&it[i].node));

    struct list_node *n = list_pop_front(&h);
    CHECK(n == &it[0].node);
    CHECK(!list_linked(n)); /* popped nodes are unlinked, not dangling */
    CHECK_EQ(list_entry(n, struct item, node)->value, 0);
    check_order(&h, (const int[]){1, 2, 3, 4}, 4);

    while ((n = list_pop_front(&h)) != NULL)
        CHECK(!list_linked(n));
    CHECK(list_empty(&h));
    check_order(&h, NULL, 0);
}

static void test_remove(void)
{
    struct item it[4];
    struct list_node h;
    list_init(&h);
    for (int i = 0; i < 4; i++) {
        it[i].value = i;
        list_init(&it[i].node);
        list_push_back(&h, &it[i].node);
    }
    list_remove(&it[2].node); /* middle */
    CHECK(!list_linked(&it[2].node));
    CHECK(it[2].node.next == &it[2].node && it[2].node.prev == &it[2].node);
    check_order(&h, (const int[]){0, 1, 3}, 3);
    list_remove(&it[2].node); /* again: a no-op */
    check_order(&h, (const int[]){0, 1, 3}, 3);
    list_remove(&it[0].node); /* head */
    list_remove(&it[3].node); /* tail */
    check_order(&h, (const int[]){1}, 1);
    list_remove(&it[3].node);
    list_remove(&it[1].node); /* last */
    CHECK(list_empty(&h));
    list_remove(&it[1].node);
    CHECK(list_empty(&h));
    check_order(&h, NULL, 0);

    /* Removed nodes can be put back, anywhere. */
    list_push_back(&h, &it[2].node);
    list_push_front(&h, &it[1].node);
    list_insert_after(&it[2].node, &it[3].node);
    list_insert_after(&h, &it[0].node);
    check_order(&h, (const int[]){0, 1, 2, 3}, 4);
}

static void test_two_lists(void)
{
    struct item it[3];
    struct list_node a, b;
    list_init(&a);
    list_init(&b);
    for (int i = 0; i < 3; i++) {
        it[i].value = i;
        list_init(&it[i].node);
        list_init(&it[i].other);
        list_push_back(&a, &it[i].node);
        list_push_front(&b, &it[i].other);
    }
    /* Leaving one list does not disturb the other. */
    list_remove(&it[1].node);
    check_order(&a, (const int[]){0, 2}, 2);
    int seen[3], n = 0;
    for (struct list_node *p = b.next; p != &b && n < 3; p = p->next)
        seen[n++] = list_entry(p, struct item, other)->value;
    CHECK_EQ(n, 3);
    CHECK(seen[0] == 2 && seen[1] == 1 && seen[2] == 0);
    CHECK(list_entry(&it[1].other, struct item, other) == &it[1]);
}

int main(void)
{
    test_empty();
    test_push_pop();
    test_remove();
    test_two_lists();
    return check_report("test_list");
}
