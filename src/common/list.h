/* list.h - intrusive circular doubly linked list.  The node lives inside the
 * object, so putting an object on a list never allocates.  An unlinked node
 * points to itself, which makes list_remove idempotent. */
#ifndef P2C2R_LIST_H
#define P2C2R_LIST_H

#include <stddef.h>

struct list_node {
    struct list_node *prev, *next;
};

static inline void list_init(struct list_node *h) { h->prev = h->next = h; }
static inline int list_empty(const struct list_node *h) { return h->next == h; }
static inline int list_linked(const struct list_node *n) { return n->next != n; }

static inline void list_insert_after(struct list_node *pos, struct list_node *n)
{
    n->prev = pos;
    n->next = pos->next;
    pos->next->prev = n;
    pos->next = n;
}

static inline void list_push_back(struct list_node *h, struct list_node *n) { list_insert_after(h->prev, n); }
static inline void list_push_front(struct list_node *h, struct list_node *n) { list_insert_after(h, n); }

static inline void list_remove(struct list_node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

static inline struct list_node *list_pop_front(struct list_node *h)
{
    if (list_empty(h))
        return NULL;
    struct list_node *n = h->next;
    list_remove(n);
    return n;
}

#define list_entry(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#endif
