# Renames of the mount's cache API (fs/ and the fs unit tests only: the
# registry has its own, different mcache_*). Apply with
#   sed -i -E -f fs/cache/renames.sed FILES
# names cache: what a name points at (catalog, tag lists, tag -> digest)
s/\bstruct ncache\b/struct names_cache/g
s/\bncache_new\b/names_cache_new/g
s/\bncache_free\b/names_cache_free/g
s/\bncache_catalog\b/names_catalog/g
s/\bncache_tags\b/names_tags/g
s/\bncache_resolve\b/names_resolve/g
s/\bncache_resolve_all\b/names_resolve_all/g
s/\bncache_resolve_many\b/names_resolve_many/g
s/\bncache_prefetch_tags\b/names_prefetch_tags/g
s/\bncache_prefetch_bulk\b/names_prefetch_bulk/g
s/\bncache_repo_manifests\b/names_repo_manifests/g
s/\bncache_invalidate\b/names_invalidate/g
s/\bncache_invalidate_tags\b/names_invalidate_tags/g
s/\bncache_tag_removed\b/names_tag_removed/g
# manifest cache: manifests by digest ("store", never "put": the registry's
# mcache_put means "release")
s/\bstruct mcache\b/struct manifest_cache/g
s/\bmcache_new\b/manifest_cache_new/g
s/\bmcache_free\b/manifest_cache_free/g
s/\bmcache_get\b/manifest_cache_get/g
s/\bmcache_put\b/manifest_cache_store/g
s/\bmcache_put_mem\b/manifest_cache_store_mem/g
s/\bmcache_peek\b/manifest_cache_peek/g
s/\bmcache_prefetch\b/manifest_cache_prefetch/g
s/\bmcache_created\b/manifest_cache_created/g
s/\bmcache_missing\b/manifest_cache_missing/g
s/\bmcache_check_exist\b/manifest_cache_check_exist/g
# blob cache: blobs on disk by digest
s/\bstruct bcache\b/struct blob_cache/g
s/\bbcache_new\b/blob_cache_new/g
s/\bbcache_free\b/blob_cache_free/g
s/\bbcache_open\b/blob_cache_open/g
s/\bbcache_put\b/blob_cache_put/g
s/\bbcache_fill\b/blob_cache_fill/g
s/\bbcache_used\b/blob_cache_used/g
