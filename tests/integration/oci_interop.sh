#!/bin/bash
# skopeo copies a multi-layer OCI image built here (umoci) into the
# registry and back to dir:; every blob matches its digest; the same for an image index
# with two platforms; skopeo inspect, list-tags and delete work.
# Runs against regfs-registry and (as the reference) Debian's docker-registry.
. "$(dirname "$0")/lib.sh"

need_regfs_registry
kinds=$(reference_kinds)

img=$(make_image "$WORK/oci" v1 3 300K 100K 20K) || bail "make_image failed"
idx=$(make_index "$WORK/oci" multi) || bail "make_index failed"
# Independent values: the source layout's own manifest and index bytes.
src_digest() { jq -r --arg t "$1" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$WORK/oci/index.json"; }
img_digest=$(src_digest v1)
idx_digest=$(src_digest multi)
img_layers=$(jq -r '.layers[].digest' "$WORK/oci/blobs/sha256/${img_digest#sha256:}" | sort)

for k in $kinds; do
  start_registry "$k" "$WORK/data-$k" || { fail "$k: registry starts"; continue; }
  h=$REGISTRY_HOST
  out=$WORK/out-$k; mkdir -p "$out"

  # --- single image -----------------------------------------------------------
  check "$k: skopeo pushes a 3-layer OCI image" skopeo_copy "$img" "docker://$h/team/app:v1"
  check "$k: second tag" skopeo_copy "$img" "docker://$h/team/app:v1.0"
  check "$k: skopeo pulls it to dir:" skopeo_copy "docker://$h/team/app:v1" "dir:$out/img"
  check "$k: every pulled blob matches its digest" verify_dir_blobs "$out/img"
  check_eq "$k: pulled manifest is the pushed one (sha256 of bytes)" "${img_digest#sha256:}" \
    "$(sha256sum "$out/img/manifest.json" | cut -d' ' -f1)"
  check_eq "$k: pulled layers are the built layers" "$img_layers" \
    "$(for l in $img_layers; do [ -f "$out/img/${l#sha256:}" ] && echo "$l"; done)"
  check_eq "$k: skopeo inspect reports the digest" "$img_digest" \
    "$(skopeo_x inspect "docker://$h/team/app:v1" | jq -r .Digest)"
  check_eq "$k: skopeo inspect --raw is the manifest's bytes" "${img_digest#sha256:}" \
    "$(skopeo_x inspect --raw "docker://$h/team/app:v1" | sha256sum | cut -d' ' -f1)"
  check_eq "$k: skopeo list-tags" "v1 v1.0" \
    "$(skopeo_x list-tags "docker://$h/team/app" | jq -r '.Tags | sort | join(" ")')"
  check "$k: stored blobs all match their digests" verify_store_blobs "$REGISTRY_DATA"

  # --- image index with two platforms ---------------------------------------------
  check "$k: skopeo pushes a 2-platform index (--all)" skopeo_copy --all "$idx" "docker://$h/team/multi:m"
  check "$k: skopeo pulls the index back (--all)" skopeo_copy --all "docker://$h/team/multi:m" "dir:$out/idx"
  check "$k: every blob of the index pull matches its digest" verify_dir_blobs "$out/idx"
  # (hash the bytes straight from the pipe: $( ) would drop a trailing newline)
  check_eq "$k: index bytes unchanged" "${idx_digest#sha256:}" \
    "$(skopeo_x inspect --raw "docker://$h/team/multi:m" | sha256sum | cut -d' ' -f1)"
  raw=$(skopeo_x inspect --raw "docker://$h/team/multi:m")
  check_eq "$k: index lists both platforms" "linux/amd64 linux/arm64" \
    "$(printf '%s' "$raw" | jq -r '[.manifests[].platform | .os + "/" + .architecture] | sort | join(" ")')"
  for arch in amd64 arm64; do
    check "$k: pull of the $arch child by platform" skopeo_copy --override-arch "$arch" \
      "docker://$h/team/multi:m" "dir:$out/idx-$arch"
    check "$k: $arch child blobs match" verify_dir_blobs "$out/idx-$arch"
    check_eq "$k: $arch child config says $arch" "$arch" \
      "$(jq -r .config.digest "$out/idx-$arch/manifest.json" | sed 's/sha256://' |
         xargs -I{} jq -r .architecture "$out/idx-$arch/{}")"
  done

  # --- delete ------------------------------------------------------------------------
  check "$k: skopeo delete" skopeo_x delete "docker://$h/team/app:v1"
  check_fails "$k: deleted image no longer inspects" skopeo_x inspect "docker://$h/team/app:v1"
  check_fails "$k: nor by its other tag (same manifest)" skopeo_x inspect "docker://$h/team/app:v1.0"
  check_eq "$k: index repository untouched by the delete" "$idx_digest" \
    "$(skopeo_x inspect --raw "docker://$h/team/multi:m" | sha256sum | sed 's/^/sha256:/; s/ .*//')"

  stop_pid "$REGISTRY_PID"
done
done_testing
