/* mcsec: secure IP multicast for media pipelines
 * Copyright (C) 2026 The mcsec authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * lkh.c: the key tree of the controller and the keyring of a member
 * (mcsec-lkh.h, docs/mike-protocol.md "Key tree").
 *
 * The tree is kept balanced the way Wong, Gouda and Lam join: a new member
 * goes under the shallowest node with a free place; when every node is
 * full, the shallowest leaf is split (a new node takes its place, with the
 * old leaf and the newcomer below).  A leave frees the leaf, and nodes left
 * without children.  Nodes live in one array (free places reused); the
 * shallowest candidates are found through one list per depth, cleaned as
 * they are read.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "mcsec-private.h"
#include "mcsec/mcsec-lkh.h"

#define MAX_DEPTH 64

enum {
  N_ALIVE = 1 << 0,
  N_LEAF = 1 << 1,
  N_MARKED = 1 << 2, /* gets a new key at the next commit */
  N_NEW = 1 << 3,    /* a leaf joined since the last commit */
  N_DIRTY = 1 << 4,  /* changed since the changes were last taken */
};

typedef struct {
  uint32_t parent;
  uint8_t key[MCSEC_LKH_KEY_LEN];
  uint8_t n_children, depth, flags;
} node_t;

typedef struct {
  uint32_t *v;
  size_t n, cap;
} vec_t;

struct mcsec_lkh {
  unsigned d;
  node_t *nodes;
  uint32_t *children; /* d per node */
  size_t n_nodes, cap, members, pending;
  vec_t free_ids, marked, new_leaves;
  vec_t dirty;             /* nodes with N_DIRTY (mcsec_lkh_export_changes) */
  vec_t open[MAX_DEPTH];   /* inner nodes that may have a free place */
  vec_t leaves[MAX_DEPTH]; /* leaves, by depth */
  mcsec_lkh_entry_t *entries;
  size_t n_entries, entries_cap;
  EVP_CIPHER_CTX *ctx;
  EVP_CIPHER *wrap; /* fetched once: no name lookup per wrap */
};

static int
vec_push (vec_t *v, uint32_t x)
{
  if (v->n == v->cap) {
    size_t cap = v->cap ? v->cap * 2 : 16;
    uint32_t *nv = realloc (v->v, cap * sizeof *nv);
    if (nv == NULL)
      return 0;
    v->v = nv;
    v->cap = cap;
  }
  v->v[v->n++] = x;
  return 1;
}

/* ---- SA keys of a key tree group ---- */

static EVP_KDF *hkdf_kdf;

static void
hkdf_fetch (void)
{
  hkdf_kdf = EVP_KDF_fetch (NULL, "HKDF", NULL);
}

/* HKDF, fetched once for the process (a fetch looks the name up). */
static EVP_KDF *
hkdf (void)
{
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once (&once, hkdf_fetch);
  return hkdf_kdf;
}

mcsec_status_t
mcsec_lkh_derive_sa_key (const uint8_t *group_key, const char *group,
                         uint32_t spi, mcsec_suite_t suite, uint8_t *out,
                         size_t len)
{
  static const char label[] = "mcsec sa v1";
  uint8_t info[sizeof label + 255 + 1 + 5];
  size_t glen = group ? strlen (group) : 0, ilen = 0;
  EVP_KDF *kdf;
  EVP_KDF_CTX *kctx;
  OSSL_PARAM params[4];
  int ok;

  if (group_key == NULL || out == NULL || glen < 1 || glen > 255 || len == 0 ||
      len != mcsec_suite_key_material_len (suite))
    return MCSEC_ERR_INVALID_ARG;
  memcpy (info, label, sizeof label); /* with its terminating 0 */
  ilen = sizeof label;
  memcpy (info + ilen, group, glen);
  ilen += glen;
  info[ilen++] = 0;
  mcsec_store_be32 (info + ilen, spi);
  ilen += 4;
  info[ilen++] = (uint8_t)suite;
  kdf = hkdf ();
  kctx = kdf ? EVP_KDF_CTX_new (kdf) : NULL;
  if (kctx == NULL)
    return MCSEC_ERR_CRYPTO;
  params[0] = OSSL_PARAM_construct_utf8_string (OSSL_KDF_PARAM_DIGEST,
                                                (char *)"SHA256", 0);
  params[1] = OSSL_PARAM_construct_octet_string (
      OSSL_KDF_PARAM_KEY, (void *)group_key, MCSEC_LKH_KEY_LEN);
  params[2] =
      OSSL_PARAM_construct_octet_string (OSSL_KDF_PARAM_INFO, info, ilen);
  params[3] = OSSL_PARAM_construct_end ();
  ok = EVP_KDF_derive (kctx, out, len, params) == 1;
  EVP_KDF_CTX_free (kctx);
  return ok ? MCSEC_OK : MCSEC_ERR_CRYPTO;
}

/* ---- key wrap (RFC 3394, AES-128) ---- */

static mcsec_status_t
wrap_with (EVP_CIPHER_CTX *ctx, const EVP_CIPHER *cipher, int enc,
           const uint8_t *kek, const uint8_t *in, size_t in_len, uint8_t *out,
           size_t want)
{
  int len = 0, fin = 0;

  EVP_CIPHER_CTX_set_flags (ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  if (EVP_CipherInit_ex2 (ctx, cipher, kek, NULL, enc, NULL) != 1 ||
      EVP_CipherUpdate (ctx, out, &len, in, (int)in_len) != 1 ||
      EVP_CipherFinal_ex (ctx, out + len, &fin) != 1 ||
      (size_t)(len + fin) != want)
    return enc ? MCSEC_ERR_CRYPTO : MCSEC_ERR_AUTH;
  return MCSEC_OK;
}

mcsec_status_t
mcsec_lkh_wrap (const uint8_t *kek, const uint8_t *key, uint8_t *out)
{
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new ();
  mcsec_status_t st;
  if (ctx == NULL)
    return MCSEC_ERR_NO_MEMORY;
  st = wrap_with (ctx, EVP_aes_128_wrap (), 1, kek, key, MCSEC_LKH_KEY_LEN, out,
                  MCSEC_LKH_WRAPPED_LEN);
  EVP_CIPHER_CTX_free (ctx);
  return st;
}

mcsec_status_t
mcsec_lkh_unwrap (const uint8_t *kek, const uint8_t *wrapped, uint8_t *out)
{
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new ();
  uint8_t tmp[MCSEC_LKH_WRAPPED_LEN];
  mcsec_status_t st;
  if (ctx == NULL)
    return MCSEC_ERR_NO_MEMORY;
  st = wrap_with (ctx, EVP_aes_128_wrap (), 0, kek, wrapped,
                  MCSEC_LKH_WRAPPED_LEN, tmp, MCSEC_LKH_KEY_LEN);
  if (st == MCSEC_OK)
    memcpy (out, tmp, MCSEC_LKH_KEY_LEN);
  OPENSSL_cleanse (tmp, sizeof tmp);
  EVP_CIPHER_CTX_free (ctx);
  return st;
}

/* ---- the tree ---- */

static uint32_t *
kids (mcsec_lkh_t *t, uint32_t id)
{
  return t->children + (size_t)id * t->d;
}

/* The node changed (made, freed, moved, a new key): in the next changes. */
static int
touch (mcsec_lkh_t *t, uint32_t id)
{
  if (t->nodes[id].flags & N_DIRTY)
    return 1;
  t->nodes[id].flags |= N_DIRTY;
  return vec_push (&t->dirty, id);
}

/* A fresh node with a fresh key; MCSEC_LKH_NO_NODE when out of memory. */
static uint32_t
node_alloc (mcsec_lkh_t *t, uint32_t parent, unsigned depth, uint8_t flags)
{
  uint32_t id;
  node_t *n;
  uint8_t dirty;

  if (depth >= MAX_DEPTH)
    return MCSEC_LKH_NO_NODE;
  if (t->free_ids.n > 0) {
    id = t->free_ids.v[--t->free_ids.n];
    /* a freed node: its freeing may be a change not taken yet */
    dirty = t->nodes[id].flags & N_DIRTY;
  } else {
    dirty = 0; /* a new place: nothing set there */
    if (t->n_nodes == t->cap) {
      size_t cap = t->cap ? t->cap * 2 : 64;
      /* not realloc: the nodes hold keys, the old array is wiped */
      node_t *nn = malloc (cap * sizeof *nn);
      uint32_t *nc;
      if (nn == NULL)
        return MCSEC_LKH_NO_NODE;
      if (t->nodes) {
        memcpy (nn, t->nodes, t->cap * sizeof *nn);
        OPENSSL_cleanse (t->nodes, t->cap * sizeof *nn);
        free (t->nodes);
      }
      t->nodes = nn;
      nc = realloc (t->children, cap * t->d * sizeof *nc);
      if (nc == NULL)
        return MCSEC_LKH_NO_NODE;
      t->children = nc;
      t->cap = cap;
    }
    if (t->n_nodes >= MCSEC_LKH_NO_NODE - 1)
      return MCSEC_LKH_NO_NODE;
    id = (uint32_t)t->n_nodes++;
  }
  n = &t->nodes[id];
  memset (n, 0, sizeof *n);
  n->parent = parent;
  n->depth = (uint8_t)depth;
  n->flags = (uint8_t)(flags | N_ALIVE | dirty);
  if (RAND_bytes (n->key, sizeof n->key) != 1 || !touch (t, id)) {
    OPENSSL_cleanse (n->key, sizeof n->key);
    n->flags &= N_DIRTY;
    vec_push (&t->free_ids, id);
    return MCSEC_LKH_NO_NODE;
  }
  return id;
}

static int
node_free (mcsec_lkh_t *t, uint32_t id)
{
  int ok = touch (t, id);
  OPENSSL_cleanse (&t->nodes[id], sizeof t->nodes[id]);
  t->nodes[id].flags = N_DIRTY; /* touched: its freeing is a change */
  return vec_push (&t->free_ids, id) && ok;
}

static void
child_remove (mcsec_lkh_t *t, uint32_t parent, uint32_t child)
{
  node_t *p = &t->nodes[parent];
  uint32_t *k = kids (t, parent);
  for (unsigned i = 0; i < p->n_children; i++)
    if (k[i] == child) {
      k[i] = k[--p->n_children];
      return;
    }
}

/* Every node from id to the root gets a new key at the commit. */
static int
mark_path (mcsec_lkh_t *t, uint32_t id)
{
  while (id != MCSEC_LKH_NO_NODE && !(t->nodes[id].flags & N_MARKED)) {
    t->nodes[id].flags |= N_MARKED;
    if (!vec_push (&t->marked, id))
      return 0;
    id = t->nodes[id].parent;
  }
  return 1;
}

mcsec_status_t
mcsec_lkh_new (unsigned degree, mcsec_lkh_t **out)
{
  mcsec_lkh_t *t;

  if (out == NULL)
    return MCSEC_ERR_INVALID_ARG;
  if (degree == 0)
    degree = MCSEC_LKH_DEGREE_DEFAULT;
  if (degree < 2 || degree > MCSEC_LKH_DEGREE_MAX)
    return MCSEC_ERR_INVALID_ARG;
  t = calloc (1, sizeof *t);
  if (t == NULL)
    return MCSEC_ERR_NO_MEMORY;
  t->d = degree;
  t->ctx = EVP_CIPHER_CTX_new ();
  t->wrap = EVP_CIPHER_fetch (NULL, "AES-128-WRAP", NULL);
  if (t->ctx == NULL || t->wrap == NULL ||
      node_alloc (t, MCSEC_LKH_NO_NODE, 0, 0) != MCSEC_LKH_ROOT ||
      !vec_push (&t->open[0], MCSEC_LKH_ROOT)) {
    mcsec_lkh_free (t);
    return MCSEC_ERR_NO_MEMORY;
  }
  *out = t;
  return MCSEC_OK;
}

void
mcsec_lkh_free (mcsec_lkh_t *t)
{
  if (t == NULL)
    return;
  if (t->nodes)
    OPENSSL_cleanse (t->nodes, t->cap * sizeof *t->nodes);
  if (t->entries)
    OPENSSL_cleanse (t->entries, t->entries_cap * sizeof *t->entries);
  free (t->nodes);
  free (t->children);
  free (t->entries);
  free (t->free_ids.v);
  free (t->marked.v);
  free (t->new_leaves.v);
  free (t->dirty.v);
  for (int i = 0; i < MAX_DEPTH; i++) {
    free (t->open[i].v);
    free (t->leaves[i].v);
  }
  EVP_CIPHER_CTX_free (t->ctx);
  EVP_CIPHER_free (t->wrap);
  free (t);
}

/* The shallowest inner node with a free place, or NO_NODE. */
static uint32_t
shallowest_open (mcsec_lkh_t *t)
{
  for (int d = 0; d < MAX_DEPTH; d++) {
    vec_t *v = &t->open[d];
    while (v->n > 0) {
      uint32_t id = v->v[v->n - 1];
      node_t *n = &t->nodes[id];
      if ((n->flags & N_ALIVE) && !(n->flags & N_LEAF) && n->depth == d &&
          n->n_children < t->d)
        return id;
      v->n--; /* stale */
    }
  }
  return MCSEC_LKH_NO_NODE;
}

static uint32_t
shallowest_leaf (mcsec_lkh_t *t)
{
  for (int d = 0; d < MAX_DEPTH; d++) {
    vec_t *v = &t->leaves[d];
    while (v->n > 0) {
      uint32_t id = v->v[v->n - 1];
      node_t *n = &t->nodes[id];
      if ((n->flags & N_ALIVE) && (n->flags & N_LEAF) && n->depth == d)
        return id;
      v->n--;
    }
  }
  return MCSEC_LKH_NO_NODE;
}

mcsec_status_t
mcsec_lkh_join (mcsec_lkh_t *t, uint32_t *member)
{
  uint32_t parent, leaf;

  if (t == NULL || member == NULL)
    return MCSEC_ERR_INVALID_ARG;
  parent = shallowest_open (t);
  if (parent == MCSEC_LKH_NO_NODE) {
    /* every place taken: the shallowest leaf makes room under a new node
     * that takes its place */
    uint32_t old = shallowest_leaf (t), up, inner;
    if (old == MCSEC_LKH_NO_NODE)
      return MCSEC_ERR_NO_MEMORY;
    up = t->nodes[old].parent;
    inner = node_alloc (t, up, t->nodes[old].depth, 0);
    if (inner == MCSEC_LKH_NO_NODE)
      return MCSEC_ERR_NO_MEMORY;
    child_remove (t, up, old);
    kids (t, up)[t->nodes[up].n_children++] = inner;
    kids (t, inner)[0] = old;
    t->nodes[inner].n_children = 1;
    t->nodes[old].parent = inner;
    t->nodes[old].depth++;
    if (!touch (t, old) || !vec_push (&t->leaves[t->nodes[old].depth], old) ||
        !vec_push (&t->open[t->nodes[inner].depth], inner))
      return MCSEC_ERR_NO_MEMORY;
    parent = inner;
  }
  leaf = node_alloc (t, parent, t->nodes[parent].depth + 1u, N_LEAF | N_NEW);
  if (leaf == MCSEC_LKH_NO_NODE)
    return MCSEC_ERR_NO_MEMORY;
  kids (t, parent)[t->nodes[parent].n_children++] = leaf;
  if (!vec_push (&t->leaves[t->nodes[leaf].depth], leaf) ||
      !vec_push (&t->new_leaves, leaf) || !mark_path (t, parent))
    return MCSEC_ERR_NO_MEMORY;
  t->members++;
  t->pending++;
  *member = leaf;
  return MCSEC_OK;
}

mcsec_status_t
mcsec_lkh_leave (mcsec_lkh_t *t, uint32_t member)
{
  uint32_t p;
  int ok;

  if (t == NULL || member >= t->n_nodes || member == MCSEC_LKH_ROOT ||
      (t->nodes[member].flags & (N_ALIVE | N_LEAF)) != (N_ALIVE | N_LEAF))
    return MCSEC_ERR_INVALID_ARG;
  p = t->nodes[member].parent;
  child_remove (t, p, member);
  ok = node_free (t, member);
  /* inner nodes left without children go too */
  while (p != MCSEC_LKH_ROOT && t->nodes[p].n_children == 0) {
    uint32_t up = t->nodes[p].parent;
    child_remove (t, up, p);
    ok &= node_free (t, p);
    p = up;
  }
  if (!ok || !vec_push (&t->open[t->nodes[p].depth], p) || !mark_path (t, p))
    return MCSEC_ERR_NO_MEMORY;
  t->members--;
  t->pending++;
  return MCSEC_OK;
}

mcsec_status_t
mcsec_lkh_refresh (mcsec_lkh_t *t)
{
  if (t == NULL)
    return MCSEC_ERR_INVALID_ARG;
  if (!mark_path (t, MCSEC_LKH_ROOT))
    return MCSEC_ERR_NO_MEMORY;
  t->pending++;
  return MCSEC_OK;
}

size_t
mcsec_lkh_pending (const mcsec_lkh_t *t)
{
  return t->pending;
}

/* Deepest first (children before parents): a counting sort by depth. */
static mcsec_status_t
sort_marked (mcsec_lkh_t *t)
{
  size_t count[MAX_DEPTH] = {0}, pos[MAX_DEPTH];
  uint32_t *out;
  size_t k = 0;

  for (size_t i = 0; i < t->marked.n; i++)
    count[t->nodes[t->marked.v[i]].depth]++;
  for (int d = MAX_DEPTH - 1; d >= 0; d--) {
    pos[d] = k;
    k += count[d];
  }
  out = malloc ((t->marked.n ? t->marked.n : 1) * sizeof *out);
  if (out == NULL)
    return MCSEC_ERR_NO_MEMORY;
  for (size_t i = 0; i < t->marked.n; i++)
    out[pos[t->nodes[t->marked.v[i]].depth]++] = t->marked.v[i];
  memcpy (t->marked.v, out, t->marked.n * sizeof *out);
  free (out);
  return MCSEC_OK;
}

/* Put back the keys and marks of the first `done` marked nodes: a commit
 * that fails leaves the tree as it was. */
static void
commit_undo (mcsec_lkh_t *t, const uint8_t *old_keys, size_t done)
{
  for (size_t i = 0; i < done; i++) {
    node_t *node = &t->nodes[t->marked.v[i]];
    const uint8_t *old = old_keys + i * (MCSEC_LKH_KEY_LEN + 1);
    if (!old[MCSEC_LKH_KEY_LEN])
      continue; /* skipped: freed since it was marked */
    memcpy (node->key, old, MCSEC_LKH_KEY_LEN);
    node->flags |= N_MARKED;
  }
  if (t->n_entries)
    OPENSSL_cleanse (t->entries, t->n_entries * sizeof *t->entries);
  t->n_entries = 0;
}

mcsec_status_t
mcsec_lkh_commit (mcsec_lkh_t *t, const mcsec_lkh_entry_t **entries, size_t *n)
{
  mcsec_status_t st;
  size_t need = 0, done = 0;
  uint8_t *old_keys;

  if (t == NULL || entries == NULL || n == NULL)
    return MCSEC_ERR_INVALID_ARG;
  if (t->n_entries)
    OPENSSL_cleanse (t->entries, t->n_entries * sizeof *t->entries);
  t->n_entries = 0;
  *entries = t->entries;
  *n = 0;
  if (t->marked.n == 0) {
    t->pending = 0;
    return MCSEC_OK;
  }
  st = sort_marked (t);
  if (st)
    return st;
  /* all or nothing: every allocation first, the old keys kept until the
   * last wrap succeeded */
  for (size_t i = 0; i < t->marked.n; i++) {
    node_t *node = &t->nodes[t->marked.v[i]];
    if ((node->flags & (N_ALIVE | N_MARKED)) == (N_ALIVE | N_MARKED))
      need += node->n_children;
  }
  if (need > t->entries_cap) {
    size_t cap = t->entries_cap ? t->entries_cap * 2 : 64;
    mcsec_lkh_entry_t *ne;
    while (cap < need)
      cap *= 2;
    ne = malloc (cap * sizeof *ne);
    if (ne == NULL)
      return MCSEC_ERR_NO_MEMORY;
    if (t->entries) {
      OPENSSL_cleanse (t->entries, t->entries_cap * sizeof *ne);
      free (t->entries);
    }
    t->entries = ne;
    t->entries_cap = cap;
    *entries = t->entries;
  }
  /* room to note every new key as a change: touch cannot fail below */
  if (t->dirty.cap < t->dirty.n + t->marked.n) {
    size_t cap = t->dirty.n + t->marked.n;
    uint32_t *nv = realloc (t->dirty.v, cap * sizeof *nv);
    if (nv == NULL)
      return MCSEC_ERR_NO_MEMORY;
    t->dirty.v = nv;
    t->dirty.cap = cap;
  }
  old_keys = calloc (t->marked.n, MCSEC_LKH_KEY_LEN + 1);
  if (old_keys == NULL)
    return MCSEC_ERR_NO_MEMORY;
  for (done = 0; done < t->marked.n; done++) {
    uint32_t id = t->marked.v[done];
    node_t *node = &t->nodes[id];
    uint32_t *k = kids (t, id);
    uint8_t key[MCSEC_LKH_KEY_LEN];
    uint8_t *old = old_keys + done * (MCSEC_LKH_KEY_LEN + 1);
    /* a node freed (or freed and reused) since it was marked */
    if ((node->flags & (N_ALIVE | N_MARKED)) != (N_ALIVE | N_MARKED))
      continue;
    memcpy (old, node->key, MCSEC_LKH_KEY_LEN);
    old[MCSEC_LKH_KEY_LEN] = 1;
    if (RAND_bytes (key, sizeof key) != 1) {
      st = MCSEC_ERR_CRYPTO;
      goto undo;
    }
    for (unsigned c = 0; c < node->n_children; c++) {
      node_t *child = &t->nodes[k[c]];
      mcsec_lkh_entry_t *e;
      if (child->flags & N_NEW)
        continue; /* a newcomer gets its path by unicast */
      e = &t->entries[t->n_entries++];
      e->node = id;
      e->wrapper = k[c];
      st = wrap_with (t->ctx, t->wrap, 1, child->key, key, sizeof key,
                      e->wrapped, MCSEC_LKH_WRAPPED_LEN);
      if (st) {
        OPENSSL_cleanse (key, sizeof key);
        goto undo;
      }
    }
    node->flags &= (uint8_t)~N_MARKED;
    memcpy (node->key, key, sizeof key);
    OPENSSL_cleanse (key, sizeof key);
  }
  OPENSSL_cleanse (old_keys, t->marked.n * (MCSEC_LKH_KEY_LEN + 1));
  free (old_keys);
  for (size_t i = 0; i < t->marked.n; i++)
    if (t->nodes[t->marked.v[i]].flags & N_ALIVE)
      (void)touch (t, t->marked.v[i]);
  for (size_t i = 0; i < t->new_leaves.n; i++)
    t->nodes[t->new_leaves.v[i]].flags &= (uint8_t)~N_NEW;
  t->new_leaves.n = 0;
  t->marked.n = 0;
  t->pending = 0;
  *entries = t->entries;
  *n = t->n_entries;
  return MCSEC_OK;

undo:
  commit_undo (t, old_keys, done);
  OPENSSL_cleanse (old_keys, t->marked.n * (MCSEC_LKH_KEY_LEN + 1));
  free (old_keys);
  return st;
}

size_t
mcsec_lkh_path (const mcsec_lkh_t *t, uint32_t member, mcsec_lkh_key_t *out,
                size_t max)
{
  size_t n = 0;
  uint32_t id = member;

  if (t == NULL || member >= t->n_nodes ||
      (t->nodes[member].flags & (N_ALIVE | N_LEAF)) != (N_ALIVE | N_LEAF))
    return 0;
  while (id != MCSEC_LKH_NO_NODE && n < max) {
    out[n].node = id;
    memcpy (out[n].key, t->nodes[id].key, MCSEC_LKH_KEY_LEN);
    n++;
    id = t->nodes[id].parent;
  }
  return id == MCSEC_LKH_NO_NODE ? n : 0;
}

const uint8_t *
mcsec_lkh_group_key (const mcsec_lkh_t *t)
{
  return t->nodes[MCSEC_LKH_ROOT].key;
}

size_t
mcsec_lkh_members (const mcsec_lkh_t *t)
{
  return t->members;
}

unsigned
mcsec_lkh_depth (const mcsec_lkh_t *t)
{
  for (int d = MAX_DEPTH - 1; d > 0; d--)
    for (size_t i = 0; i < t->leaves[d].n; i++) {
      const node_t *n = &t->nodes[t->leaves[d].v[i]];
      if ((n->flags & N_ALIVE) && (n->flags & N_LEAF) && n->depth == d)
        return (unsigned)d;
    }
  return 0;
}

size_t
mcsec_lkh_memory (const mcsec_lkh_t *t)
{
  size_t bytes = sizeof *t + t->cap * (sizeof *t->nodes + t->d * 4) +
                 (t->free_ids.cap + t->marked.cap + t->new_leaves.cap) * 4 +
                 t->entries_cap * sizeof *t->entries;
  for (int d = 0; d < MAX_DEPTH; d++)
    bytes += (t->open[d].cap + t->leaves[d].cap) * 4;
  return bytes;
}

/* ---- export and import (docs/cluster.md, "Key trees in etcd") ----
 *
 * version (1: 1) | degree (1) | n (4) | n nodes by increasing number:
 * number (4) | parent (4) | leaf (1: 0 or 1) | key (16); big-endian, the
 * root first.  Children, depths and the free numbers follow from the
 * parents; numbers above the highest are free too. */

#define EXPORT_HEAD 6
#define EXPORT_NODE 25
#define IMPORT_MAX_NODES (1u << 24)
/* Numbers up to 16 per node plus 65,536: the array a tree is held in is
 * as long as its highest number, so a few bytes cannot ask for a
 * gigabyte.  A tree that shrank far below its peak may exceed it (its
 * import is refused; a controller then makes a new tree). */
#define IMPORT_SPREAD(n) ((uint64_t)(n)*16 + 65536)

size_t
mcsec_lkh_export_len (const mcsec_lkh_t *t)
{
  size_t alive = 0;
  if (t == NULL || t->pending || t->marked.n)
    return 0;
  for (size_t i = 0; i < t->n_nodes; i++)
    alive += (t->nodes[i].flags & N_ALIVE) != 0;
  return EXPORT_HEAD + alive * EXPORT_NODE;
}

mcsec_status_t
mcsec_lkh_export (const mcsec_lkh_t *t, uint8_t *out, size_t len)
{
  size_t need = mcsec_lkh_export_len (t), alive;
  uint8_t *p = out;

  if (need == 0 || out == NULL)
    return MCSEC_ERR_INVALID_ARG;
  if (len < need)
    return MCSEC_ERR_BUFFER_TOO_SMALL;
  alive = (need - EXPORT_HEAD) / EXPORT_NODE;
  *p++ = 1;
  *p++ = (uint8_t)t->d;
  mcsec_store_be32 (p, (uint32_t)alive);
  p += 4;
  for (size_t i = 0; i < t->n_nodes; i++) {
    const node_t *n = &t->nodes[i];
    if (!(n->flags & N_ALIVE))
      continue;
    mcsec_store_be32 (p, (uint32_t)i);
    mcsec_store_be32 (p + 4, n->parent);
    p[8] = (n->flags & N_LEAF) ? 1 : 0;
    memcpy (p + 9, n->key, MCSEC_LKH_KEY_LEN);
    p += EXPORT_NODE;
  }
  return MCSEC_OK;
}

/* Depths from the parents; 0 when a walk up does not reach the root
 * within MAX_DEPTH (a cycle, or too deep).  The root's depth is 0 and
 * every other node's starts as 0xff (unknown). */
static int
import_depths (mcsec_lkh_t *t)
{
  uint32_t chain[MAX_DEPTH];
  for (size_t i = 1; i < t->n_nodes; i++) {
    unsigned n = 0, d;
    uint32_t id = (uint32_t)i;
    if (!(t->nodes[i].flags & N_ALIVE))
      continue;
    while (id != MCSEC_LKH_ROOT && t->nodes[id].depth == 0xff) {
      if (n == MAX_DEPTH)
        return 0;
      chain[n++] = id;
      id = t->nodes[id].parent;
    }
    d = t->nodes[id].depth;
    while (n > 0) {
      if (++d >= MAX_DEPTH)
        return 0;
      t->nodes[chain[--n]].depth = (uint8_t)d;
    }
  }
  return 1;
}

mcsec_status_t
mcsec_lkh_import (const uint8_t *data, size_t len, mcsec_lkh_t **out)
{
  mcsec_lkh_t *t;
  mcsec_status_t st;
  uint32_t n, last = 0;
  const uint8_t *p;
  unsigned d;

  if (data == NULL || out == NULL)
    return MCSEC_ERR_INVALID_ARG;
  *out = NULL;
  if (len < EXPORT_HEAD || data[0] != 1 || data[1] < 2 ||
      data[1] > MCSEC_LKH_DEGREE_MAX)
    return MCSEC_ERR_MALFORMED;
  d = data[1];
  n = mcsec_load_be32 (data + 2);
  if (n == 0 || n > IMPORT_MAX_NODES ||
      (len - EXPORT_HEAD) / EXPORT_NODE != n ||
      (len - EXPORT_HEAD) % EXPORT_NODE != 0)
    return MCSEC_ERR_MALFORMED;
  /* numbers increase from the root's, parents are numbers too */
  p = data + EXPORT_HEAD;
  for (uint32_t i = 0; i < n; i++, p += EXPORT_NODE) {
    uint32_t id = mcsec_load_be32 (p), parent = mcsec_load_be32 (p + 4);
    if ((i == 0) != (id == MCSEC_LKH_ROOT) || (i > 0 && id <= last) ||
        id >= IMPORT_MAX_NODES || p[8] > 1 ||
        (id == MCSEC_LKH_ROOT) != (parent == MCSEC_LKH_NO_NODE) ||
        (id == MCSEC_LKH_ROOT && p[8]) ||
        (parent != MCSEC_LKH_NO_NODE && parent >= IMPORT_MAX_NODES))
      return MCSEC_ERR_MALFORMED;
    last = id;
  }
  if (last >= IMPORT_SPREAD (n))
    return MCSEC_ERR_MALFORMED;
  t = calloc (1, sizeof *t);
  if (t == NULL)
    return MCSEC_ERR_NO_MEMORY;
  t->d = d;
  t->cap = t->n_nodes = (size_t)last + 1;
  t->nodes = calloc (t->cap, sizeof *t->nodes);
  t->children = calloc (t->cap * d, sizeof *t->children);
  t->ctx = EVP_CIPHER_CTX_new ();
  t->wrap = EVP_CIPHER_fetch (NULL, "AES-128-WRAP", NULL);
  st = MCSEC_ERR_NO_MEMORY;
  if (t->nodes == NULL || t->children == NULL || t->ctx == NULL ||
      t->wrap == NULL)
    goto fail;
  p = data + EXPORT_HEAD;
  for (uint32_t i = 0; i < n; i++, p += EXPORT_NODE) {
    node_t *node = &t->nodes[mcsec_load_be32 (p)];
    node->parent = mcsec_load_be32 (p + 4);
    node->flags = (uint8_t)(N_ALIVE | (p[8] ? N_LEAF : 0));
    node->depth = i == 0 ? 0 : 0xff;
    memcpy (node->key, p + 9, MCSEC_LKH_KEY_LEN);
  }
  st = MCSEC_ERR_MALFORMED;
  /* every parent is an inner node that is there, with room */
  for (size_t i = 1; i < t->n_nodes; i++) {
    node_t *node = &t->nodes[i], *up;
    if (!(node->flags & N_ALIVE))
      continue;
    if (node->parent >= t->n_nodes)
      goto fail;
    up = &t->nodes[node->parent];
    if ((up->flags & (N_ALIVE | N_LEAF)) != N_ALIVE || up->n_children >= d)
      goto fail;
    kids (t, node->parent)[up->n_children++] = (uint32_t)i;
  }
  if (!import_depths (t))
    goto fail;
  st = MCSEC_ERR_NO_MEMORY;
  for (size_t i = t->n_nodes; i-- > 0;) {
    node_t *node = &t->nodes[i];
    int ok;
    if (!(node->flags & N_ALIVE)) {
      ok = vec_push (&t->free_ids, (uint32_t)i);
    } else if (node->flags & N_LEAF) {
      t->members++;
      ok = vec_push (&t->leaves[node->depth], (uint32_t)i);
    } else if (node->n_children == 0 && i != MCSEC_LKH_ROOT) {
      st = MCSEC_ERR_MALFORMED; /* the tree frees such nodes */
      goto fail;
    } else {
      ok = node->n_children == d ||
           vec_push (&t->open[node->depth], (uint32_t)i);
    }
    if (!ok)
      goto fail;
  }
  *out = t;
  return MCSEC_OK;

fail:
  mcsec_lkh_free (t);
  return st;
}

/* ---- changes: what moved since they were last taken ---- */

size_t
mcsec_lkh_changes_len (const mcsec_lkh_t *t)
{
  if (t == NULL || t->pending || t->marked.n)
    return 0;
  return EXPORT_HEAD + t->dirty.n * EXPORT_NODE;
}

void
mcsec_lkh_changes_clear (mcsec_lkh_t *t)
{
  for (size_t i = 0; i < t->dirty.n; i++)
    t->nodes[t->dirty.v[i]].flags &= (uint8_t)~N_DIRTY;
  t->dirty.n = 0;
}

mcsec_status_t
mcsec_lkh_export_changes (mcsec_lkh_t *t, uint8_t *out, size_t len)
{
  size_t need = mcsec_lkh_changes_len (t);
  uint8_t *p = out;

  if (need == 0 || out == NULL)
    return MCSEC_ERR_INVALID_ARG;
  if (len < need)
    return MCSEC_ERR_BUFFER_TOO_SMALL;
  *p++ = 1;
  *p++ = (uint8_t)t->d;
  mcsec_store_be32 (p, (uint32_t)t->dirty.n);
  p += 4;
  for (size_t i = 0; i < t->dirty.n; i++, p += EXPORT_NODE) {
    uint32_t id = t->dirty.v[i];
    const node_t *n = &t->nodes[id];
    mcsec_store_be32 (p, id);
    if (n->flags & N_ALIVE) {
      mcsec_store_be32 (p + 4, n->parent);
      p[8] = (n->flags & N_LEAF) ? 1 : 0;
      memcpy (p + 9, n->key, MCSEC_LKH_KEY_LEN);
    } else {
      mcsec_store_be32 (p + 4, MCSEC_LKH_NO_NODE);
      p[8] = 2; /* freed */
      memset (p + 9, 0, MCSEC_LKH_KEY_LEN);
    }
  }
  mcsec_lkh_changes_clear (t);
  return MCSEC_OK;
}

/* A header of an export or of changes: its record count, or -1. */
static long
log_count (const uint8_t *data, size_t len, unsigned d)
{
  uint32_t n;
  if (data == NULL || len < EXPORT_HEAD || data[0] != 1 ||
      (d && data[1] != d) || (len - EXPORT_HEAD) % EXPORT_NODE != 0)
    return -1;
  n = mcsec_load_be32 (data + 2);
  if ((len - EXPORT_HEAD) / EXPORT_NODE != n || n > IMPORT_MAX_NODES)
    return -1;
  return (long)n;
}

mcsec_status_t
mcsec_lkh_import_log (const uint8_t *snapshot, size_t len,
                      const uint8_t *const *changes, const size_t *lens,
                      size_t n_changes, mcsec_lkh_t **out)
{
  uint32_t max = 0, count = 0;
  uint64_t total = 0;
  uint8_t *recs = NULL, *present = NULL, *merged = NULL, *p;
  size_t merged_len = 0;
  mcsec_status_t st = MCSEC_ERR_MALFORMED;
  unsigned d;

  if (out == NULL || (n_changes && (changes == NULL || lens == NULL)))
    return MCSEC_ERR_INVALID_ARG;
  *out = NULL;
  if (log_count (snapshot, len, 0) < 1 || snapshot[1] < 2 ||
      snapshot[1] > MCSEC_LKH_DEGREE_MAX)
    return MCSEC_ERR_MALFORMED;
  d = snapshot[1];
  /* the highest number, every count and length checked */
  for (size_t c = 0; c <= n_changes; c++) {
    long k =
        log_count (c ? changes[c - 1] : snapshot, c ? lens[c - 1] : len, d);
    if (k < 0)
      return MCSEC_ERR_MALFORMED;
    total += (uint64_t)k;
  }
  for (size_t c = 0; c <= n_changes; c++) {
    const uint8_t *x = c ? changes[c - 1] : snapshot;
    size_t xl = c ? lens[c - 1] : len;
    long k = log_count (x, xl, d);
    if (k < 0)
      return MCSEC_ERR_MALFORMED;
    for (long i = 0; i < k; i++) {
      uint32_t id = mcsec_load_be32 (x + EXPORT_HEAD + EXPORT_NODE * i);
      if (id >= IMPORT_MAX_NODES || id >= IMPORT_SPREAD (total))
        return MCSEC_ERR_MALFORMED;
      max = id > max ? id : max;
    }
  }
  recs = calloc ((size_t)max + 1, EXPORT_NODE);
  present = calloc ((size_t)max + 1, 1);
  if (recs == NULL || present == NULL) {
    st = MCSEC_ERR_NO_MEMORY;
    goto out;
  }
  /* later records replace earlier ones; a freed node goes */
  for (size_t c = 0; c <= n_changes; c++) {
    const uint8_t *x = c ? changes[c - 1] : snapshot;
    long k = log_count (x, c ? lens[c - 1] : len, d);
    for (long i = 0; i < k; i++) {
      const uint8_t *r = x + EXPORT_HEAD + EXPORT_NODE * i;
      uint32_t id = mcsec_load_be32 (r);
      if (r[8] > 2 || (c == 0 && r[8] == 2))
        goto out;
      count -= present[id];
      present[id] = r[8] != 2;
      count += present[id];
      memcpy (recs + (size_t)id * EXPORT_NODE, r, EXPORT_NODE);
    }
  }
  merged_len = EXPORT_HEAD + (size_t)count * EXPORT_NODE;
  merged = malloc (merged_len);
  if (merged == NULL) {
    st = MCSEC_ERR_NO_MEMORY;
    goto out;
  }
  merged[0] = 1;
  merged[1] = (uint8_t)d;
  mcsec_store_be32 (merged + 2, count);
  p = merged + EXPORT_HEAD;
  for (size_t id = 0; id <= max; id++)
    if (present[id]) {
      memcpy (p, recs + id * EXPORT_NODE, EXPORT_NODE);
      p += EXPORT_NODE;
    }
  st = mcsec_lkh_import (merged, merged_len, out);
out:
  if (recs)
    OPENSSL_cleanse (recs, ((size_t)max + 1) * EXPORT_NODE);
  if (merged)
    OPENSSL_cleanse (merged, merged_len);
  free (recs);
  free (present);
  free (merged);
  return st;
}

int
mcsec_lkh_is_member (const mcsec_lkh_t *t, uint32_t member)
{
  return t && member < t->n_nodes && member != MCSEC_LKH_ROOT &&
         (t->nodes[member].flags & (N_ALIVE | N_LEAF)) == (N_ALIVE | N_LEAF);
}

/* ---- member side ---- */

static int
ring_find (const mcsec_lkh_keyring_t *kr, uint32_t node)
{
  for (size_t i = 0; i < kr->n; i++)
    if (kr->keys[i].node == node)
      return (int)i;
  return -1;
}

void
mcsec_lkh_keyring_set (mcsec_lkh_keyring_t *kr, const mcsec_lkh_key_t *path,
                       size_t n)
{
  mcsec_lkh_keyring_clear (kr);
  if (n > MCSEC_LKH_KEYRING_MAX)
    n = MCSEC_LKH_KEYRING_MAX;
  for (size_t i = 0; i < n; i++) {
    kr->keys[i].node = path[i].node;
    kr->keys[i].parent = i + 1 < n ? path[i + 1].node : MCSEC_LKH_NO_NODE;
    memcpy (kr->keys[i].key, path[i].key, MCSEC_LKH_KEY_LEN);
  }
  kr->n = n;
}

/* Keep only the path: from the leaf (index 0) along the parents. */
static void
ring_prune (mcsec_lkh_keyring_t *kr)
{
  mcsec_lkh_keyring_t keep;
  uint32_t id;
  size_t guard = 0;

  if (kr->n == 0)
    return;
  memset (&keep, 0, sizeof keep);
  id = kr->keys[0].node;
  while (id != MCSEC_LKH_NO_NODE && guard++ < MCSEC_LKH_KEYRING_MAX) {
    int i = ring_find (kr, id);
    if (i < 0)
      break;
    keep.keys[keep.n++] = kr->keys[i];
    id = kr->keys[i].parent;
  }
  OPENSSL_cleanse (kr, sizeof *kr);
  *kr = keep;
  OPENSSL_cleanse (&keep, sizeof keep);
}

size_t
mcsec_lkh_keyring_apply (mcsec_lkh_keyring_t *kr,
                         const mcsec_lkh_entry_t *entries, size_t n,
                         mcsec_status_t *status)
{
  EVP_CIPHER_CTX *ctx;
  size_t learnt = 0;

  if (status)
    *status = MCSEC_OK;
  if (kr == NULL || entries == NULL || n == 0 || kr->n == 0)
    return 0;
  ctx = EVP_CIPHER_CTX_new ();
  if (ctx == NULL) {
    if (status)
      *status = MCSEC_ERR_NO_MEMORY;
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    const mcsec_lkh_entry_t *e = &entries[i];
    int w = ring_find (kr, e->wrapper), k;
    uint8_t key[MCSEC_LKH_KEY_LEN + 8];
    if (w < 0 || e->node == e->wrapper)
      continue;
    if (wrap_with (ctx, EVP_aes_128_wrap (), 0, kr->keys[w].key, e->wrapped,
                   MCSEC_LKH_WRAPPED_LEN, key, MCSEC_LKH_KEY_LEN) != MCSEC_OK) {
      if (status)
        *status = MCSEC_ERR_AUTH;
      continue;
    }
    k = ring_find (kr, e->node);
    if (k < 0) {
      if (kr->n == MCSEC_LKH_KEYRING_MAX) {
        OPENSSL_cleanse (key, sizeof key);
        continue;
      }
      k = (int)kr->n++;
      kr->keys[k].node = e->node;
      kr->keys[k].parent = MCSEC_LKH_NO_NODE;
    }
    memcpy (kr->keys[k].key, key, MCSEC_LKH_KEY_LEN);
    OPENSSL_cleanse (key, sizeof key);
    /* the wrapper's parent is this node now (a split moves a leaf down) */
    kr->keys[w].parent = e->node;
    learnt++;
  }
  EVP_CIPHER_CTX_free (ctx);
  ring_prune (kr);
  return learnt;
}

const uint8_t *
mcsec_lkh_keyring_group_key (const mcsec_lkh_keyring_t *kr)
{
  return kr->n ? kr->keys[kr->n - 1].key : NULL;
}

void
mcsec_lkh_keyring_clear (mcsec_lkh_keyring_t *kr)
{
  OPENSSL_cleanse (kr, sizeof *kr);
}
