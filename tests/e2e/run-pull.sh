#!/usr/bin/env bash
# hotcell run --pull missing|always|never against a real registry on loopback (Debian's
# docker-registry, images pushed with skopeo): never does not touch the network, missing pulls
# once, always picks up a new push. After each: nothing left behind.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../lib/e2e.sh"
source "$(dirname "$0")/../lib/registry.sh"
e2e_init
if ! command -v docker-registry >/dev/null; then
	skip run-pull "docker-registry is not installed"
	exit 0
fi
registry_start REG 2>"$E2E/work/registry.err" || {
	skip run-pull "the registry did not start: $(cat "$E2E/work/registry.err")"
	exit 0
}
trap 'registry_stop_all; e2e_cleanup' EXIT
source "$HOTCELL_TOP/tests/lib/mkimage.sh"

push() { # push VERSION
	local dir=$E2E/work/layout-v$1
	mkimage "$dir" latest --env "VERSION=$1" >/dev/null 2>&1 &&
		skopeo copy -q --dest-tls-verify=false "oci:$dir:latest" "docker://$REG_ADDR/e2e/bb:latest" >/dev/null 2>&1
}
push 1 || { fail run-pull-setup "pushing the image failed"; exit 1; }
ref=$REG_ADDR/e2e/bb:latest

# never: the image is not in the store, so hotcell's own error, and nothing pulled.
e2e_json --pull never "$ref" true
expect pull-never '[ "$rc" -eq 125 ] && [ "$(jqr .error.kind)" == image ] && [ -z "$("$HC" images | grep e2e/bb)" ]'

# missing (the default): pulled, then run.
e2e_json "$ref" sh -c 'echo "v$VERSION"'
expect pull-missing '[ "$rc" -eq 0 ] && [ "$(jqr .stdout)" == v1 ] && [ "$(jqr .image)" == "$ref" ]'
first=$(jqr .image_digest)
e2e_clean pull-missing

# A new push: missing keeps what the store has, always fetches the new one.
push 2 || { fail run-pull-setup "pushing v2 failed"; exit 1; }
e2e_json --pull missing "$ref" sh -c 'echo "v$VERSION"'
expect pull-missing-keeps '[ "$rc" -eq 0 ] && [ "$(jqr .stdout)" == v1 ] && [ "$(jqr .image_digest)" == "$first" ]'
e2e_clean pull-missing-keeps
e2e_json --pull always "$ref" sh -c 'echo "v$VERSION"'
expect pull-always '[ "$rc" -eq 0 ] && [ "$(jqr .stdout)" == v2 ] && [ "$(jqr .image_digest)" != "$first" ]'
e2e_clean pull-always

finish
