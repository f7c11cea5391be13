/* proxy_pulls.h — the pull records of one upstream of the pull-through cache
 * (struct proxy_pulls, proxy.h's p->pulls): for each cached repository, when
 * each tag was last pulled, and when each manifest was last pulled by digest.
 * Used by proxy_expire.c only (request threads reach it through
 * proxy_note_pull).
 *
 * Memory: a hash of repositories under one mutex; each repository holds a
 * small array of records (a cached repository has few tags: a linear scan).
 * A pull costs a lookup and a store under the mutex, never storage I/O.
 *
 * Storage: one JSON object per cached repository,
 *   <root>/docker/registry/v2/_regfs/proxy/<name>/_pulls.json
 *   {"tags":{"<tag>":<unix s>,…},"digests":{"<digest>":<unix s>,…}}
 * outside repositories/ and blobs/, so registry:2, the catalog, the usage
 * walk and gc never see it ("_pulls.json" cannot be a repository name
 * component). A repository's object is read the first time an expiry pass
 * looks at it and written by the pass when its records changed (pulls_flush),
 * so at most once per regfs.proxycache.interval and never on a pull.
 *
 * Keys: a tag name, or "@" + digest for a pull by digest ('@' cannot start a
 * tag). */
#ifndef REGFS_PROXY_PULLS_H
#define REGFS_PROXY_PULLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <regfs/strvec.h>

struct registry;
struct proxy_pulls;

/* NULL on ENOMEM. `started`: the process start, what an unrecorded tag
 * counts as pulled at, at the earliest (docs/proxy.md). `slack`: how long
 * records may go unsaved (the flush interval): a stored record counts as
 * no older than started - slack, since a pull in the last interval before a
 * crash may not have been saved. */
struct proxy_pulls *pulls_new(int64_t started, int64_t slack);
void pulls_free(struct proxy_pulls *pl);   /* NULL-safe */
int64_t pulls_started(const struct proxy_pulls *pl);

/* The floor of stored records (pulls_new's started - slack) and whether the
 * first pass confirmed it (*set). pulls_set_floor changes it: to 0 (none)
 * after a clean stop, when every record was saved. Not locked: the
 * maintenance thread alone calls these and pulls_load. */
int64_t pulls_floor(const struct proxy_pulls *pl, bool *set);
void pulls_set_floor(struct proxy_pulls *pl, int64_t floor);

/* The clean-stop marker (<dir>/_stopped): written after every record was
 * saved at stop; taken (read and removed) by the first pass of the next
 * start, which then trusts the stored records as they are. */
int pulls_mark_stopped(struct registry *r);
bool pulls_take_stopped(struct registry *r);

/* Records a pull of key in repo at `when` (later times win); waits while
 * the key is claimed (pulls_claim). Silently drops
 * the record on ENOMEM (logged): the tag then counts as pulled at its link's
 * time, which is never earlier than the start. */
void pulls_note(struct proxy_pulls *pl, const char *repo, const char *key, int64_t when);

/* The record of key, or -1 when there is none. */
int64_t pulls_get(struct proxy_pulls *pl, const char *repo, const char *key);

/* The deletion of one tag or manifest (key) of repo by the expiry, made
 * atomic with respect to pulls: true, and the key is claimed, when its
 * record is older than `cutoff` (or there is none); false, nothing claimed,
 * when it was pulled at or after `cutoff` (or ENOMEM). While the key is
 * claimed, pulls_note of it waits until pulls_release. The puller notes
 * before it serves what it read and reads again when a claim was released
 * meanwhile (pulls_releases, proxy_manifest.c), so a pull is either noted
 * before the claim (the claim fails: nothing is deleted) or finds the key
 * gone and fetches it again. One claim at a
 * time, by the maintenance thread, which releases it right after its delete
 * (never claim again before releasing: pulls of the first key would wait
 * on nothing). */
bool pulls_claim(struct proxy_pulls *pl, const char *repo, const char *key, int64_t cutoff);
void pulls_release(struct proxy_pulls *pl);
/* How many claims were released so far: a puller that read a key before
 * noting it reads it again when this changed in between (a claim taken and
 * released before its note could wait for it). */
uint64_t pulls_releases(struct proxy_pulls *pl);

/* Sets a record only when there is none (the fallback time of an unrecorded
 * tag or manifest, so it survives a restart); marks the repository changed. */
void pulls_default(struct proxy_pulls *pl, const char *repo, const char *key, int64_t when);

/* Drops the records of repo whose key is not in `keep` (sorted): tags and
 * manifests that no longer exist. */
void pulls_retain(struct proxy_pulls *pl, const char *repo, const struct strvec *keep);

/* A record of repo younger than `after` (a pull within the ttl) whose key is
 * not in `seen` (sorted): copied to key (cap bytes) and true. The listing of
 * the repository then missed something that was just pulled, so nothing of
 * it should be decided from that listing. A record reported once and unseen
 * again at the next call is taken as gone (deleted by a DELETE) and no
 * longer reported; pulls_retain then drops it. A pull or a listing that
 * shows it again resets that. */
bool pulls_fresh_unseen(struct proxy_pulls *pl, const char *repo, const struct strvec *seen,
			int64_t after, char *key, size_t cap);

/* Reads repo's stored records once (later: no-op) and merges them (later
 * times win). A missing object is not an error; an unreadable or malformed
 * one is logged (path and reason) and ignored: its tags then count as pulled
 * at the start. */
void pulls_load(struct registry *r, struct proxy_pulls *pl, const char *repo);

/* Writes the object of every repository whose records changed since it was
 * last written (deleted when it has no record left). A failed write is
 * logged and retried at the next pass. Returns how many objects failed. */
int pulls_flush(struct registry *r, struct proxy_pulls *pl);

#endif
