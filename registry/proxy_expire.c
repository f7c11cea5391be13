/* proxy_expire.c — pull records and expiry of cached repositories (proxy.h,
 * docs/proxy.md "Expiry").
 *
 * A pass (the maintenance thread, every regfs.proxycache.interval), for each
 * upstream with ttl > 0 and each of its cached repositories:
 *  1. gather: tags (digest, last pull), manifest revisions (last pull by
 *     digest or when first seen, what each references) from storage and the
 *     pull records (proxy_pulls.c);
 *  2. decide (proxy_expire_plan.c, pure): stale tags; then the manifests no
 *     remaining tag reaches; then the blobs those manifests held;
 *  3. delete the stale tags as a tag DELETE does (usage_tag_deleted), after
 *     checking again that no pull came in since step 1;
 *  4. gather and decide again (the tags now in storage, pulls since), and
 *     delete each unreached manifest revision as a DELETE by digest does
 *     (usage_manifest_deleted), and this repository's layer links to the
 *     blobs it no longer references;
 *  5. delete every candidate blob that NO manifest of ANY repository (cached
 *     or pushed) references.
 *
 * Step 5 asks the usage model's reference counts rather than running gc_run:
 * a gc_run marks every manifest of every repository and lists every blob, a
 * cost proportional to the whole registry on every pass (every second in
 * tests, every ten minutes by default), while the counts answer per
 * candidate in O(1). The model is what gc's mark phase computes (usage_model.h),
 * kept current by every write path. The deletion follows the sweeper's
 * protocol exactly (gc.c): the writers' notes are pruned behind the gc_rw
 * barrier (gc_recent_prune), blobs whose data is younger than regfs.gc.delay
 * are kept (a push served by another instance may be about to reference
 * them), and under gc_lock a blob is deleted only when it is not in `recent`
 * (a push, mount or HEAD of this process noted it) and the model says no
 * repository references it. So a manifest PUT either sees the blob gone
 * (MANIFEST_BLOB_UNKNOWN, the client uploads it again) or the blob stays.
 * For the notes to exist, writers keep them whenever some upstream has a
 * ttl (server.c sets gc_online from proxy_expire_wanted). While the model's
 * startup walk runs, no blob is deleted (the pass still removes tags and
 * manifests; their blobs are left to garbage collection).
 *
 * Races with pulls of the same cached repository: each tag or manifest is
 * deleted under a claim of its pull record (pulls_claim): the claim checks
 * the record again and fails when a pull came in since the decision, and a
 * pull of the claimed key waits until the delete is done. A pull notes its
 * tag and the manifest it serves before it serves them, and reads them again
 * when a deletion ended since it read them (proxy_manifest.c), so it is
 * either seen by the claim or finds the key gone and fetches it again.
 * Records are whole seconds, so the plan expires only records older than
 * now - ttl (proxy_expire_plan.h). */
#include "proxy.h"

#include "blobdesc.h"
#include "gc.h"
#include "layerindex.h"
#include "manifest_bytes.h"
#include "notify.h"
#include "proxy_expire_plan.h"
#include "proxy_pulls.h"
#include "registry.h"
#include "repo.h"
#include "request.h"
#include "respond.h"
#include "usage.h"
#include "digestset.h"

#include <regfs/layout.h>
#include <regfs/log.h>
#include <regfs/oci.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the contract's entry points for the records ---- */

struct proxy_pulls *proxy_pulls_new(const struct regfs_config *cfg)
{
	return pulls_new((int64_t)time(NULL), cfg->proxycache_interval_s);
}

void proxy_pulls_flush_all(struct registry *r)
{
	int failed = 0;
	bool any = false;
	for (int i = 0; r->proxies && i < r->proxies->n; i++) {
		if (!r->proxies->v[i].pulls)
			continue;
		any = true;
		failed += pulls_flush(r, r->proxies->v[i].pulls);
	}
	if (any && !failed)
		pulls_mark_stopped(r);
}

/* Once per process, before any record is read: after a clean stop (every
 * record saved) stored records are trusted as they are; otherwise a pull in
 * the last interval before the stop may be missing, so every stored record
 * counts as no older than start - interval. */
static void first_pass(struct registry *r)
{
	struct proxies *ps = r->proxies;
	bool set = true;
	for (int i = 0; i < ps->n && set; i++)
		if (ps->v[i].pulls)
			pulls_floor(ps->v[i].pulls, &set);
	if (set)
		return;
	bool clean = pulls_take_stopped(r);
	for (int i = 0; i < ps->n; i++) {
		struct proxy_pulls *pl = ps->v[i].pulls;
		if (!pl)
			continue;
		bool was;
		pulls_set_floor(pl, clean ? 0 : pulls_floor(pl, &was));
	}
	log_info("proxy expiry: %s", clean ? "pull records saved at the last stop: used as stored"
		 : "no clean-stop marker (a first start, or the last stop was not clean): saved "
		   "pull times count as no older than one interval before this start");
}

void proxy_pulls_free(struct proxy_pulls *pl)
{
	pulls_free(pl);
}

bool proxy_expire_wanted(const struct regfs_config *cfg)
{
	for (int i = 0; i < cfg->n_proxies; i++)
		if (cfg->proxies[i].ttl_s > 0)
			return true;
	return false;
}

void proxy_note_pull(struct registry *r, const struct proxy *p, const char *name,
		     const char *tag, const char *digest)
{
	(void)r;
	if (!p || !p->pulls || !name || p->ttl_s <= 0)
		return;
	int64_t now = (int64_t)time(NULL);
	if (tag && tag[0])
		pulls_note(p->pulls, name, tag, now);
	if (digest && digest[0]) {
		char key[REGFS_DIGEST_MAX + 2];
		snprintf(key, sizeof key, "@%s", digest);
		pulls_note(p->pulls, name, key, now);
	}
}

uint64_t proxy_expiry_deletions(const struct proxy *p)
{
	return p && p->pulls ? pulls_releases(p->pulls) : 0;
}

/* ---- gather ---- */

/* One cached repository as the plan needs it; every string owned here. */
struct gathered {
	struct strvec tag_names, tag_digests, revs;
	struct pe_tag *tags;
	struct pe_manifest *mfs;
	struct strvec *refs, *kids;      /* per revision */
	char (*subjects)[REGFS_DIGEST_MAX];
	uint64_t *lens;                  /* per revision: its bytes (0: unreadable) */
};

static void gathered_clear(struct gathered *g)
{
	for (size_t i = 0; i < g->revs.n; i++) {
		if (g->refs)
			strvec_clear(&g->refs[i]);
		if (g->kids)
			strvec_clear(&g->kids[i]);
	}
	free(g->refs);
	free(g->kids);
	free(g->subjects);
	free(g->lens);
	free(g->tags);
	free(g->mfs);
	strvec_clear(&g->tag_names);
	strvec_clear(&g->tag_digests);
	strvec_clear(&g->revs);
	memset(g, 0, sizeof *g);
}

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

/* The time a key counts as pulled at: its record, else (recorded now, so it
 * survives a restart) the link's time, never earlier than the start. */
static int64_t pulled_at(struct proxy_pulls *pl, const char *repo, const char *key,
			 int64_t link_mtime)
{
	int64_t t = pulls_get(pl, repo, key);
	if (t >= 0)
		return t;
	t = max64(link_mtime, pulls_started(pl));
	pulls_default(pl, repo, key, t);
	return t;
}

static int gather_tags(struct registry *r, struct proxy_pulls *pl, const char *repo,
		       struct gathered *g, struct regfs_err *err)
{
	struct strvec names = {0};
	int rc = repo_list_tags(r, repo, &names, err);
	if (rc == -ENOENT) {
		regfs_err_clear(err);
		rc = 0;
	}
	g->tags = calloc(names.n ? names.n : 1, sizeof *g->tags);
	if (!g->tags)
		rc = -ENOMEM;
	for (size_t i = 0; rc == 0 && i < names.n; i++) {
		char d[REGFS_DIGEST_MAX];
		int64_t mtime = 0;
		char *cur = regfs_layout_tag_current(repo, names.v[i]);
		struct regfs_err le = {0};
		int lrc = cur ? repo_read_link(r, cur, d, &mtime, &le) : -ENOMEM;
		free(cur);
		if (lrc) {
			/* a listed tag we cannot read may keep a manifest: decide nothing
			 * (a tag deleted meanwhile is not listed at the next pass) */
			rc = regfs_errf(err, lrc, "reading tag %s: %s", names.v[i], regfs_err_str(&le));
			break;
		}
		rc = strvec_push(&g->tag_names, names.v[i]);
		if (rc == 0)
			rc = strvec_push(&g->tag_digests, d);
		if (rc == 0)
			g->tags[g->tag_names.n - 1].pulled = pulled_at(pl, repo, names.v[i], mtime);
	}
	for (size_t i = 0; rc == 0 && i < g->tag_names.n; i++) {
		g->tags[i].name = g->tag_names.v[i];
		g->tags[i].digest = g->tag_digests.v[i];
	}
	strvec_clear(&names);
	return rc;
}

/* What revision i references. A missing, malformed or corrupt manifest
 * references nothing we know of (gc.c skips it the same way) and can still
 * expire; a storage error fails the repository's pass (deciding on partial
 * knowledge could remove the children of an index that stays). */
static int gather_refs(struct registry *r, struct gathered *g, size_t i, struct regfs_err *err)
{
	struct manifest_entry *e = NULL;
	struct regfs_err le = {0};
	int lrc = manifest_load(r, g->revs.v[i], &e, &le);
	if (lrc == -ENOENT || lrc == -EINVAL || (lrc == -EIO && strstr(le.msg, "corrupt")))
		return 0;
	if (lrc)
		return regfs_errf(err, lrc, "reading manifest %s: %s", g->revs.v[i],
				  regfs_err_str(&le));
	snprintf(g->subjects[i], sizeof g->subjects[i], "%s", e->subject);
	g->lens[i] = e->len;
	struct regfs_manifest *m = NULL;
	int rc = 0;
	if (e->data && regfs_manifest_parse(e->data, e->len, e->media_type, &m, NULL) == 0) {
		if (m->has_config)
			rc = strvec_push(&g->refs[i], m->config.digest);
		for (size_t k = 0; rc == 0 && k < m->n_layers; k++)
			rc = strvec_push(&g->refs[i], m->layers[k].digest);
		for (size_t k = 0; rc == 0 && k < m->n_manifests; k++)
			rc = strvec_push(&g->kids[i], m->manifests[k].digest);
		regfs_manifest_free(m);
	}
	manifest_bytes_release(r->mb, e);
	return rc;
}

static int gather_revs(struct registry *r, struct proxy_pulls *pl, const char *repo,
		       struct gathered *g, struct regfs_err *err)
{
	int rc = repo_list_revisions(r, repo, &g->revs, err);
	if (rc == -ENOENT) {
		regfs_err_clear(err);
		rc = 0;
	}
	size_t n = g->revs.n ? g->revs.n : 1;
	g->mfs = calloc(n, sizeof *g->mfs);
	g->refs = calloc(n, sizeof *g->refs);
	g->kids = calloc(n, sizeof *g->kids);
	g->subjects = calloc(n, sizeof *g->subjects);
	g->lens = calloc(n, sizeof *g->lens);
	if (!g->mfs || !g->refs || !g->kids || !g->subjects || !g->lens)
		rc = rc ? rc : -ENOMEM;
	for (size_t i = 0; rc == 0 && i < g->revs.n; i++) {
		const char *d = g->revs.v[i];
		char key[REGFS_DIGEST_MAX + 2], link_d[REGFS_DIGEST_MAX];
		int64_t mtime = 0;
		char *link = regfs_layout_revision_link(repo, d);
		if (!link || repo_read_link(r, link, link_d, &mtime, NULL) != 0)
			mtime = (int64_t)time(NULL); /* unreadable now: count it as new */
		free(link);
		snprintf(key, sizeof key, "@%s", d);
		rc = gather_refs(r, g, i, err);
		g->mfs[i] = (struct pe_manifest){
			.digest = d, .pulled = pulled_at(pl, repo, key, mtime),
			.subject = g->subjects[i],
			.refs = (const char *const *)g->refs[i].v, .n_refs = g->refs[i].n,
			.kids = (const char *const *)g->kids[i].v, .n_kids = g->kids[i].n};
	}
	return rc;
}

/* Reads the repository and forgets records of what no longer exists. A
 * record younger than the ttl (not before `cutoff`) of a tag or manifest the
 * listing does not show fails the repository's pass (-EAGAIN): either the
 * listing missed it (a storage that answered short) or it came or went a
 * moment ago; deciding from that listing could remove what was just pulled. */
static int gather(struct registry *r, struct proxy_pulls *pl, const char *repo,
		  int64_t cutoff, struct gathered *g, struct regfs_err *err)
{
	int rc = gather_tags(r, pl, repo, g, err);
	if (rc == 0)
		rc = gather_revs(r, pl, repo, g, err);
	struct strvec keep = {0};
	for (size_t i = 0; rc == 0 && i < g->tag_names.n; i++)
		rc = strvec_push(&keep, g->tag_names.v[i]);
	for (size_t i = 0; rc == 0 && i < g->revs.n; i++) {
		char key[REGFS_DIGEST_MAX + 2];
		snprintf(key, sizeof key, "@%s", g->revs.v[i]);
		rc = strvec_push(&keep, key);
	}
	char missing[REGFS_DIGEST_MAX + 2];
	if (rc == 0) {
		strvec_sort(&keep);
		if (pulls_fresh_unseen(pl, repo, &keep, cutoff - 1, missing, sizeof missing))
			rc = regfs_errf(err, -EAGAIN, "%s was pulled within the ttl but is not listed "
					"now; nothing decided this pass", missing);
		else
			pulls_retain(pl, repo, &keep);
	}
	strvec_clear(&keep);
	return rc;
}

/* ---- apply ---- */

struct pass {
	struct registry *r;
	const struct proxy *p;
	int64_t now, cutoff;      /* cutoff: records older than this expire */
	bool blobs_ok;            /* notes kept and the usage model ready */
	long pause_ms;            /* REGFS_EXPIRE_PAUSE_MS (tests), see claim_key */
	uint64_t tags, manifests, blobs, bytes, failed;
};

/* Claims key of repo for its deletion (pulls_claim): false when a pull came
 * in since the plan. REGFS_EXPIRE_PAUSE_MS (tests only) pauses first, as a
 * long pass over many repositories would between its plan and a deletion:
 * the window in which a pull must be seen by the claim's check. */
static bool claim_key(struct pass *x, const char *repo, const char *key)
{
	if (x->pause_ms > 0)
		nanosleep(&(struct timespec){x->pause_ms / 1000, (x->pause_ms % 1000) * 1000000},
			  NULL);
	return pulls_claim(x->p->pulls, repo, key, x->cutoff);
}

/* The delete event a DELETE through the API sends (notify.h), made outside
 * any request: no client address, host or user agent. A tag: `tag`; a
 * manifest or blob: `digest`. */
static void notify_deleted(struct registry *r, const char *repo, const char *tag,
			   const char *digest, bool blob)
{
	struct request q = {.method = "DELETE"};
	snprintf(q.rt.name, sizeof q.rt.name, "%s", repo);
	notify_emit(r, &q, &(struct notify_target){"delete", .digest = digest, .tag = tag,
						    .blob = blob});
}

/* A tag as a tag DELETE removes it, unless a pull came in since the plan. */
static void drop_tag(struct pass *x, const char *repo, const char *tag, const char *digest)
{
	if (!claim_key(x, repo, tag))
		return;
	char *dir = regfs_layout_tag_dir(repo, tag);
	struct regfs_err e = {0};
	int rc = dir ? regfs_storage_del(x->r->st, dir, &e) : -ENOMEM;
	free(dir);
	if (rc == 0)
		usage_tag_deleted(x->r, repo, tag);
	pulls_release(x->p->pulls);
	if (rc == 0) {
		log_info("proxy expiry: tag %s:%s (%s) not pulled for %" PRId64 "s: deleted", repo,
			 tag, digest, x->p->ttl_s);
		notify_deleted(x->r, repo, tag, NULL, false);
		x->tags++;
	} else if (rc != -ENOENT) {
		x->failed++;
		log_warn("proxy expiry: deleting tag %s:%s failed: %s", repo, tag,
			 regfs_err_str(&e));
	}
}

/* A revision as a DELETE by digest removes it (the plan left no tag on it;
 * the caller holds its claim). `len`: its bytes, for the log. */
static bool drop_manifest(struct pass *x, const char *repo, const char *digest, uint64_t len)
{
	char *link = regfs_layout_revision_link(repo, digest);
	char *s = link ? strrchr(link, '/') : NULL;
	struct regfs_err e = {0};
	int rc = -ENOMEM;
	if (s) {
		*s = '\0';
		rc = regfs_storage_del(x->r->st, link, &e);
	}
	free(link);
	if (rc == 0) {
		blobdesc_forget_link(x->r->bd, repo, digest);
		usage_manifest_deleted(x->r, repo, digest);
	}
	if (rc == 0) {
		log_info("proxy expiry: manifest %s of %s (%" PRIu64 " bytes) no longer tagged nor "
			 "pulled for %" PRId64 "s: deleted", digest, repo, len, x->p->ttl_s);
		notify_deleted(x->r, repo, NULL, digest, false);
		x->manifests++;
		return true;
	}
	if (rc != -ENOENT) {
		x->failed++;
		log_warn("proxy expiry: deleting manifest %s of %s failed: %s", digest, repo,
			 regfs_err_str(&e));
	}
	return false;
}

/* The repository's layer link to a blob none of its manifests holds now. */
static void drop_layer_link(struct pass *x, const char *repo, const char *digest)
{
	char *link = regfs_layout_layer_link(repo, digest);
	char *s = link ? strrchr(link, '/') : NULL;
	if (s) {
		*s = '\0';
		regfs_storage_del(x->r->st, link, NULL);
		blobdesc_forget_link(x->r->bd, repo, digest);
	}
	free(link);
}

/* Deletes the blob when nothing references it, under the sweeper's rules
 * (see the top of this file). `repo`: the cached repository that held it
 * (its delete event names it). */
static void drop_blob(struct pass *x, const char *repo, const char *digest)
{
	struct registry *r = x->r;
	char *data = regfs_layout_blob_data(digest);
	char *dir = regfs_layout_blob_dir(digest);
	struct regfs_stat_info st = {0};
	bool exists = data && dir && repo_exists(r, data, &st);
	int64_t delay = r->cfg->gc.delay_s;
	if (exists && !(delay > 0 && st.mtime >= x->now - delay)) {
		bool deleted = false;
		pthread_mutex_lock(&r->gc_lock);
		if (!digestset_has(r->recent, digest) && usage_blob_referenced(r, digest) == 0)
			deleted = regfs_storage_del(r->st, dir, NULL) == 0;
		if (deleted) {
			blobdesc_forget_blob(r->bd, digest);
			usage_blob_deleted(r, digest);
		}
		pthread_mutex_unlock(&r->gc_lock);
		if (deleted) {
			x->blobs++;
			x->bytes += st.size;
			log_info("proxy expiry: blob %s (%" PRIu64 " bytes) referenced by no manifest: "
				 "deleted", digest, st.size);
			notify_deleted(r, repo, NULL, digest, true);
		}
	}
	free(data);
	free(dir);
}

static uint64_t len_of(const struct gathered *g, const char *digest)
{
	for (size_t i = 0; i < g->revs.n; i++)
		if (strcmp(g->revs.v[i], digest) == 0)
			return g->lens[i];
	return 0;
}

static const char *tag_digest(const struct gathered *g, const char *tag)
{
	for (size_t i = 0; i < g->tag_names.n; i++)
		if (strcmp(g->tag_names.v[i], tag) == 0)
			return g->tag_digests.v[i];
	return "?";
}

/* What manifest `digest` of g holds (itself, config, layers), appended. */
static int held_by(const struct gathered *g, const char *digest, struct strvec *out)
{
	for (size_t i = 0; i < g->revs.n; i++) {
		if (strcmp(g->revs.v[i], digest) != 0)
			continue;
		int rc = strvec_push(out, digest);
		for (size_t k = 0; rc == 0 && k < g->refs[i].n; k++)
			rc = strvec_push(out, g->refs[i].v[k]);
		return rc;
	}
	return 0;
}

static bool listed(const struct strvec *v, const char *s)
{
	for (size_t i = 0; i < v->n; i++)
		if (strcmp(v->v[i], s) == 0)
			return true;
	return false;
}

/* Does manifest `digest` of g hold blob b (b is itself, its config or a layer)? */
static bool holds(const struct gathered *g, const char *digest, const char *b)
{
	if (strcmp(digest, b) == 0)
		return true;
	for (size_t i = 0; i < g->revs.n; i++)
		if (strcmp(g->revs.v[i], digest) == 0)
			return listed(&g->refs[i], b);
	return false;
}

/* Planned manifest i under its claim: deleted, then the blobs it held that
 * no manifest kept so far (`held`) nor one planned after it holds (those
 * go with the last of them). A pull of it waits until its blobs are gone
 * too, then fetches it again. false: kept (pulled since the plan, or its
 * delete failed). */
static bool expire_one(struct pass *x, const char *repo, const struct gathered *g,
		       const struct pe_plan *plan, size_t i, const struct strvec *held)
{
	const char *d = plan->manifests.v[i];
	char key[REGFS_DIGEST_MAX + 2];
	snprintf(key, sizeof key, "@%s", d);
	if (!claim_key(x, repo, key))
		return false;
	bool gone = drop_manifest(x, repo, d, len_of(g, d));
	for (size_t k = 0; gone && k < plan->blobs.n; k++) {
		const char *b = plan->blobs.v[k];
		bool later = false;
		for (size_t j = i + 1; j < plan->manifests.n && !later; j++)
			later = holds(g, plan->manifests.v[j], b);
		if (later || !holds(g, d, b) || listed(held, b))
			continue;
		drop_layer_link(x, repo, b);
		if (x->blobs_ok)
			drop_blob(x, repo, b);
	}
	pulls_release(x->p->pulls);
	return gone;
}

/* Steps 4 and 5 for one repository: a fresh look, then each manifest with
 * its layer links and blobs. A planned manifest that stays (pulled
 * meanwhile) keeps what it holds. */
static int expire_manifests(struct pass *x, const char *repo, struct regfs_err *err)
{
	struct gathered g = {0};
	struct pe_plan plan = {0};
	struct strvec held = {0};
	int rc = gather(x->r, x->p->pulls, repo, x->cutoff, &g, err);
	if (rc == 0)
		rc = pe_plan_repo(g.tags, g.tag_names.n, g.mfs, g.revs.n, x->now, x->p->ttl_s,
				  &plan);
	for (size_t i = 0; rc == 0 && i < plan.manifests.n; i++)
		if (!expire_one(x, repo, &g, &plan, i, &held))
			rc = held_by(&g, plan.manifests.v[i], &held);
	strvec_clear(&held);
	pe_plan_clear(&plan);
	gathered_clear(&g);
	return rc;
}

/* Steps 1 to 5 for one cached repository. */
static int expire_repo(struct pass *x, const char *repo, struct regfs_err *err)
{
	pulls_load(x->r, x->p->pulls, repo);
	struct gathered g = {0};
	struct pe_plan plan = {0};
	int rc = gather(x->r, x->p->pulls, repo, x->cutoff, &g, err);
	if (rc == 0)
		rc = pe_plan_repo(g.tags, g.tag_names.n, g.mfs, g.revs.n, x->now, x->p->ttl_s,
				  &plan);
	bool more = rc == 0 && (plan.tags.n || plan.manifests.n);
	for (size_t i = 0; rc == 0 && i < plan.tags.n; i++)
		drop_tag(x, repo, plan.tags.v[i], tag_digest(&g, plan.tags.v[i]));
	pe_plan_clear(&plan);
	gathered_clear(&g);
	if (more)
		rc = expire_manifests(x, repo, err);
	return rc;
}

struct by_proxy {
	struct registry *r;
	struct strvec *names;     /* one list per upstream, r->proxies->v's order */
};

static int sort_repo(const char *name, void *ud)
{
	struct by_proxy *b = ud;
	const char *up = NULL;
	const struct proxy *p = proxy_of(b->r, name, &up);
	if (!p || p->ttl_s <= 0 || !p->pulls)
		return 0;
	return strvec_push(&b->names[p - b->r->proxies->v], name);
}

/* One upstream's share of a pass, and its log line. Returns the blobs freed. */
static uint64_t expire_proxy(struct registry *r, const struct proxy *p, const struct strvec *names,
			 int64_t now, bool blobs_ok, int *removed)
{
	const char *pause = getenv("REGFS_EXPIRE_PAUSE_MS");
	struct pass x = {.r = r, .p = p, .now = now, .cutoff = now - p->ttl_s,
			 .blobs_ok = blobs_ok, .pause_ms = pause ? strtol(pause, NULL, 10) : 0};
	if (x.pause_ms > 10000)
		x.pause_ms = 10000;
	uint64_t t0 = now_us();
	for (size_t i = 0; i < names->n; i++) {
		struct regfs_err e = {0};
		if (expire_repo(&x, names->v[i], &e) != 0) {
			x.failed++;
			log_warn("proxy expiry: %s: %s; the next pass tries again", names->v[i],
				 regfs_err_str(&e));
		}
	}
	int unsaved = pulls_flush(r, p->pulls);
	log_info("proxy expiry: upstream %s (prefix \"%s\", ttl %" PRId64 "s): %zu cached "
		 "repositories, %" PRIu64 " tags, %" PRIu64 " manifests, %" PRIu64 " blobs, %"
		 PRIu64 " bytes freed%s%s (%" PRIu64 " ms)", p->remoteurl, p->prefix, p->ttl_s,
		 names->n, x.tags, x.manifests, x.blobs, x.bytes,
		 blobs_ok ? "" : " (blobs left to gc: storage accounting not ready)",
		 x.failed || unsaved ? "; some steps failed (logged above)" : "",
		 (now_us() - t0) / 1000);
	*removed += (int)x.tags;
	return x.blobs;
}

int proxy_expire_run(struct registry *r, int *removed, struct regfs_err *err)
{
	*removed = 0;
	struct proxies *ps = r->proxies;
	bool any = false;
	for (int i = 0; ps && i < ps->n; i++)
		any |= ps->v[i].ttl_s > 0 && ps->v[i].pulls;
	if (!any)
		return 0;
	first_pass(r);
	int64_t now = (int64_t)time(NULL);
	/* blobs only under the sweeper's protocol: writers' notes and the model */
	bool blobs_ok = r->gc_online && r->recent && usage_ready(r);
	if (blobs_ok)
		gc_recent_prune(r, now - r->cfg->gc.delay_s);
	struct by_proxy b = {.r = r, .names = calloc((size_t)ps->n, sizeof *b.names)};
	if (!b.names)
		return regfs_errf(err, -ENOMEM, "proxy expiry: out of memory");
	int rc = repo_walk(r, sort_repo, &b, err);
	uint64_t freed = 0;
	for (int i = 0; rc == 0 && i < ps->n; i++) {
		if (ps->v[i].ttl_s <= 0 || !ps->v[i].pulls)
			continue;
		strvec_sort(&b.names[i]);
		freed += expire_proxy(r, &ps->v[i], &b.names[i], now, blobs_ok, removed);
	}
	/* indexes of the layers just freed go as gc's would (a failure leaves
	 * only orphaned indexes, which the next gc removes) */
	struct regfs_err lie = {0};
	if (freed && layerindex_gc(r, false, NULL, &lie) != 0)
		log_warn("proxy expiry: layer indexes of freed blobs not removed: %s",
			 regfs_err_str(&lie));
	for (int i = 0; i < ps->n; i++)
		strvec_clear(&b.names[i]);
	free(b.names);
	return rc;
}
