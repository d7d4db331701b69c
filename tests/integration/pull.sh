#!/usr/bin/env bash
# hotcell pull against a real registry (Debian's docker-registry on loopback), with images
# built offline (tests/lib/mkimage.sh) and pushed with skopeo: anonymous and basic-auth pulls,
# auth files, credential helpers refused, unknown tag/repository, wrong credentials, a
# multi-arch index with --platform, plain HTTP refused off loopback, and a corrupted blob that
# must fail naming the blob while leaving the store as it was.
source "$(dirname "$0")/../lib.sh"
source "$HOTCELL_TOP/tests/lib/registry.sh"
source "$HOTCELL_TOP/tests/lib/mkimage.sh"

for t in docker-registry skopeo umoci htpasswd busybox curl python3; do
	if ! command -v $t >/dev/null; then
		skip pull "$t not installed"
		exit 0
	fi
done
[ -x "$HC" ] || { fail pull "no $HC (build first)"; exit 1; }

work=$(mktemp -d /tmp/hcpull.XXXXXX)
export HOTCELL_HOME=$work/home
cleanup() {
	mountpoint -q "$work/full" 2>/dev/null && umount "$work/full"
	registry_stop_all
	rm -rf "$work"
}
trap cleanup EXIT
# Nothing from the caller's environment may leak credentials or auth files into the test.
unset HOTCELL_REGISTRY_USER HOTCELL_REGISTRY_PASSWORD REGISTRY_AUTH_FILE \
	HOTCELL_INSECURE_REGISTRIES XDG_RUNTIME_DIR XDG_CONFIG_HOME
export HOME=$work/userhome
mkdir -p "$HOME"

layout=$work/layout
mkimage "$layout" v1 --entrypoint /bin/sh --entrypoint -c --cmd "echo hello" \
	--env GREETING=hi --workdir /home/hc --user hc || { fail mkimage "cannot build test image"; exit 1; }
d_v1=$(mkimage_digest "$layout" v1)

registry_start REG || { fail registry "anonymous registry did not start"; exit 1; }
registry_start AUTH alice s3cret || { fail registry "htpasswd registry did not start"; exit 1; }
push() { # push TAG DEST [creds]
	skopeo copy -q --dest-tls-verify=false ${3:+--dest-creds "$3"} "oci:$layout:$1" "docker://$2" >/dev/null
}
push v1 "$REG_ADDR/team/tool:v1" || { fail push "skopeo push failed"; exit 1; }
push v1 "$AUTH_ADDR/private/tool:v1" alice:s3cret || { fail push "skopeo push (auth) failed"; exit 1; }

# hc_pull NAME EXPECT_RC ARGS...: runs hotcell pull, keeps stdout in $out, stderr in $errout
hc_pull() {
	local name=$1 want=$2 rc
	shift 2
	out=$("$HC" pull "$@" 2>"$work/stderr")
	rc=$?
	errout=$(cat "$work/stderr")
	if [ "$rc" -ne "$want" ]; then
		fail "$name" "exit $rc (wanted $want): $errout"
		return 1
	fi
	[ -n "$errout" ] && echo "    $name: $errout"
	pass "$name"
	return 0
}
expect_err() { # NAME PATTERN: the error is one line and matches PATTERN
	set -- "$1_message" "$2"
	if [ "$(printf '%s\n' "$errout" | grep -c .)" -ne 1 ]; then
		fail "$1" "error is not one line: $errout"
	elif ! printf '%s' "$errout" | grep -Eq -- "$2"; then
		fail "$1" "error '$errout' does not match '$2'"
	else
		pass "$1"
	fi
}
store_state() { # a fingerprint of the store: names and every blob
	(cd "$HOTCELL_HOME/store" 2>/dev/null && cat index.json 2>/dev/null && find . -type f | sort)
}

# --- anonymous
if hc_pull pull_anonymous 0 "$REG_ADDR/team/tool:v1"; then
	expect_eq pull_anonymous_digest "$out" "$d_v1"
fi
name=$(python3 -c 'import json,sys; print(" ".join(m["annotations"]["org.opencontainers.image.ref.name"] for m in json.load(open(sys.argv[1]))["manifests"]))' "$HOTCELL_HOME/store/index.json")
expect_eq pull_index_name "$name" "$REG_ADDR/team/tool:v1"
# every blob in the store is what its name says
bad=0
for f in "$HOTCELL_HOME"/store/blobs/sha256/*; do
	[ "$(sha256sum <"$f" | cut -d' ' -f1)" = "$(basename "$f")" ] || bad=1
done
expect_eq pull_blobs_verified "$bad" 0
if skopeo inspect "oci:$HOTCELL_HOME/store:$REG_ADDR/team/tool:v1" >"$work/inspect" 2>&1 &&
	grep -q "\"Digest\": \"$d_v1\"" "$work/inspect"; then
	pass pull_skopeo_reads_store
else
	fail pull_skopeo_reads_store "$(head -c 300 "$work/inspect")"
fi
ls -A "$HOTCELL_HOME/store/blobs/sha256" | grep -q '^\.' && fail pull_no_temp_files "temp files left" || pass pull_no_temp_files

# cached: nothing fetched again, same answer
before=$(store_state)
hc_pull pull_cached 0 "$REG_ADDR/team/tool:v1" && expect_eq pull_cached_digest "$out" "$d_v1"
expect_eq pull_cached_store_same "$(store_state)" "$before"

# by digest
hc_pull pull_by_digest 0 "$REG_ADDR/team/tool@$d_v1" && expect_eq pull_by_digest_out "$out" "$d_v1"

# --- errors
hc_pull pull_unknown_tag 125 "$REG_ADDR/team/tool:nope" && expect_err pull_unknown_tag "unknown tag.*nope"
hc_pull pull_unknown_repo 125 "$REG_ADDR/team/nothere:v1" &&
	expect_err pull_unknown_repo "team/nothere: unknown image"
hc_pull pull_unknown_digest 125 "$REG_ADDR/team/tool@sha256:$(printf '%064d' 0)" &&
	expect_err pull_unknown_digest "not found"
hc_pull pull_bad_ref 125 "$REG_ADDR/Team/Tool" && expect_err pull_bad_ref "invalid reference"
hc_pull pull_bad_platform 125 --platform linux "$REG_ADDR/team/tool:v1" &&
	expect_err pull_bad_platform "invalid platform"
# nothing listens on a port we just freed
freeport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
hc_pull pull_no_registry 125 "127.0.0.1:$freeport/team/tool:v1" &&
	expect_err pull_no_registry "cannot connect"

# --- basic auth
hc_pull pull_auth_required 125 "$AUTH_ADDR/private/tool:v1" &&
	expect_err pull_auth_required "authentication required"
HOTCELL_REGISTRY_USER=alice HOTCELL_REGISTRY_PASSWORD=s3cret \
	hc_pull pull_auth_env 0 "$AUTH_ADDR/private/tool:v1" && expect_eq pull_auth_env_digest "$out" "$d_v1"
HOTCELL_REGISTRY_USER=alice HOTCELL_REGISTRY_PASSWORD=wrong \
	hc_pull pull_auth_wrong 125 "$AUTH_ADDR/private/tool:v1" &&
	expect_err pull_auth_wrong "401.*(wrong user or password|Unauthorized)"
HOTCELL_REGISTRY_USER=alice hc_pull pull_auth_env_half 125 "$AUTH_ADDR/private/tool:v1" &&
	expect_err pull_auth_env_half "HOTCELL_REGISTRY_PASSWORD"

b64=$(printf 'alice:s3cret' | base64)
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$AUTH_ADDR" "$b64" >"$work/auth.json"
REGISTRY_AUTH_FILE=$work/auth.json hc_pull pull_auth_file 0 "$AUTH_ADDR/private/tool:v1"
# namespaced key (podman), most specific wins over a wrong registry-wide entry
printf '{"auths":{"%s":{"auth":"%s"},"%s/private":{"auth":"%s"}}}\n' "$AUTH_ADDR" \
	"$(printf 'alice:bad' | base64)" "$AUTH_ADDR" "$b64" >"$work/auth2.json"
REGISTRY_AUTH_FILE=$work/auth2.json hc_pull pull_auth_file_namespaced 0 "$AUTH_ADDR/private/tool:v1"
mkdir -p "$HOME/.docker"
printf '{"auths":{"http://%s/v1/":{"auth":"%s"}}}\n' "$AUTH_ADDR" "$b64" >"$HOME/.docker/config.json"
hc_pull pull_auth_docker_config 0 "$AUTH_ADDR/private/tool:v1"
printf '{"auths":{"%s":{}},"credsStore":"desktop"}\n' "$AUTH_ADDR" >"$HOME/.docker/config.json"
hc_pull pull_creds_store 125 "$AUTH_ADDR/private/tool:v1" && expect_err pull_creds_store "not supported"
printf '{"credHelpers":{"%s":"ecr-login"}}\n' "$AUTH_ADDR" >"$HOME/.docker/config.json"
hc_pull pull_cred_helpers 125 "$AUTH_ADDR/private/tool:v1" && expect_err pull_cred_helpers "not supported"
mkdir -p "$HOME/.config/containers"
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$AUTH_ADDR" "$b64" >"$HOME/.config/containers/auth.json"
hc_pull pull_auth_containers_first 0 "$AUTH_ADDR/private/tool:v1"
rm -rf "$HOME/.docker" "$HOME/.config"

# --- multi-arch index: amd64 and arm64 images under one OCI index
mkimage "$layout" arm --arch arm64 --cmd /bin/true >/dev/null || fail mkimage_arm "cannot build"
d_arm=$(mkimage_digest "$layout" arm)
python3 - "$layout" "$d_v1" "$d_arm" <<'PY' || fail multiarch "cannot write the index"
import hashlib, json, os, sys
lay, amd, arm = sys.argv[1:4]
def size(d): return os.path.getsize(f"{lay}/blobs/sha256/{d[7:]}")
idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm, "size": size(arm),
     "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd, "size": size(amd),
     "platform": {"os": "linux", "architecture": "amd64"}}]}
data = json.dumps(idx).encode()
d = "sha256:" + hashlib.sha256(data).hexdigest()
open(f"{lay}/blobs/sha256/{d[7:]}", "wb").write(data)
top = json.load(open(f"{lay}/index.json"))
top["manifests"].append({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d,
    "size": len(data), "annotations": {"org.opencontainers.image.ref.name": "multi"}})
json.dump(top, open(f"{lay}/index.json", "w"))
PY
if skopeo copy -q --all --dest-tls-verify=false "oci:$layout:multi" "docker://$REG_ADDR/team/multi:1" >/dev/null 2>"$work/skopeo.err"; then
	hc_pull pull_index_host 0 "$REG_ADDR/team/multi:1" && expect_eq pull_index_host_digest "$out" "$d_v1"
	hc_pull pull_index_platform 0 --platform linux/arm64 "$REG_ADDR/team/multi:1" &&
		expect_eq pull_index_platform_digest "$out" "$d_arm"
	hc_pull pull_index_no_platform 125 --platform linux/s390x "$REG_ADDR/team/multi:1" &&
		expect_err pull_index_no_platform "no image for platform linux/s390x.*linux/arm64"
else
	fail multiarch_push "$(cat "$work/skopeo.err")"
fi

# --- Issue 16 item 12: a nested index (the linux/amd64 entry is itself an index) is followed,
# where the message used to say "no image for platform linux/amd64 (available: linux/amd64)".
inner=$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "multi") | .digest' "$layout/index.json")
inner_size=$(stat -c %s "$layout/blobs/sha256/${inner#sha256:}")
jq -nc --arg d "$inner" --argjson n "$inner_size" '{schemaVersion: 2,
	mediaType: "application/vnd.oci.image.index.v1+json", manifests: [{
	mediaType: "application/vnd.oci.image.index.v1+json", digest: $d, size: $n,
	platform: {os: "linux", architecture: "amd64"}}]}' >"$work/nested.json"
code=$(curl -s -o "$work/put.out" -w '%{http_code}' -X PUT \
	-H "Content-Type: application/vnd.oci.image.index.v1+json" --data-binary "@$work/nested.json" \
	"http://$REG_ADDR/v2/team/multi/manifests/nested")
if [ "$code" = 201 ]; then
	if [ "$(uname -m)" = x86_64 ]; then
		hc_pull defect_12_nested_index 0 "$REG_ADDR/team/multi:nested" &&
			expect_eq defect_12_nested_index_digest "$out" "$d_v1"
	else
		skip defect_12_nested_index "the nested index offers linux/amd64 only"
	fi
	hc_pull defect_12_nested_index_message 125 --platform linux/s390x "$REG_ADDR/team/multi:nested" &&
		expect_err defect_12_nested_index_message "no image for platform linux/s390x \(available: linux/amd64\)"
else
	fail defect_12_nested_index "the registry refused the nested index ($code): $(cat "$work/put.out")"
fi

# --- an OCI artifact (not a container image) is refused with the reason
upload_blob() { # REPO FILE: monolithic upload (distribution-spec "Pushing blobs")
	local loc d
	d=sha256:$(sha256sum <"$2" | cut -d' ' -f1)
	loc=$(curl -s -D - -o /dev/null -X POST "http://$REG_ADDR/v2/$1/blobs/uploads/" |
		tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
	case $loc in http*) ;; *) loc=http://$REG_ADDR$loc ;; esac
	curl -sf -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$2" \
		"$loc&digest=$d" >/dev/null && echo "$d"
}
printf '{"kind":"not an image"}' >"$work/artifact-config"
if cd_=$(upload_blob team/artifact "$work/artifact-config"); then
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.example.thing.config.v1+json","digest":"%s","size":%d},"layers":[]}' \
		"$cd_" "$(stat -c %s "$work/artifact-config")" >"$work/artifact-manifest"
	if curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
		--data-binary "@$work/artifact-manifest" "http://$REG_ADDR/v2/team/artifact/manifests/1" >/dev/null; then
		hc_pull pull_artifact_refused 125 "$REG_ADDR/team/artifact:1" &&
			expect_err pull_artifact_refused "not a container image.*vnd.example.thing"
	else
		fail pull_artifact_refused "the registry refused the artifact manifest"
	fi
else
	fail pull_artifact_refused "blob upload failed"
fi

# --- plain HTTP only on loopback addresses: a name that resolves to 127.0.0.1 is not one
alias=""
for h in $(hostname) runsc vm; do
	if [ "$h" != localhost ] && getent hosts "$h" | grep -q '^127\.'; then alias=$h; break; fi
done
if [ -n "$alias" ]; then
	port=${REG_ADDR##*:}
	hc_pull pull_plain_http_refused 125 "$alias:$port/team/tool:v1" &&
		expect_err pull_plain_http_refused "TLS|SSL|connect"
	hc_pull pull_insecure_flag 0 --insecure "$alias:$port/team/tool:v1"
	HOTCELL_INSECURE_REGISTRIES="other:1,$alias:$port" hc_pull pull_insecure_env 0 "$alias:$port/team/tool:v1"
else
	skip pull_plain_http_refused "no non-loopback host name resolving to 127.0.0.1 here"
fi

# --- TLS is verified: a self-signed registry is refused unless --insecure
if REGISTRY_TLS=1 registry_start TLS; then
	if skopeo copy -q --dest-cert-dir "$TLS_DIR/certs.d" --dest-tls-verify=false "oci:$layout:v1" \
		"docker://$TLS_ADDR/team/tool:v1" >/dev/null; then
		hc_pull pull_tls_untrusted 125 "$TLS_ADDR/team/tool:v1" &&
			expect_err pull_tls_untrusted "certificate not trusted.*--insecure"
		hc_pull pull_tls_insecure 0 --insecure "$TLS_ADDR/team/tool:v1" &&
			expect_eq pull_tls_insecure_digest "$out" "$d_v1"
	else
		fail pull_tls "skopeo push to the TLS registry failed"
	fi
	registry_stop TLS
else
	fail pull_tls "TLS registry did not start"
fi

# --- two pulls of one image at once into one empty store: both succeed, the store is sound
export HOTCELL_HOME=$work/home-concurrent
"$HC" pull "$REG_ADDR/team/multi:1" >"$work/c1.out" 2>&1 &
p1=$!
"$HC" pull "$REG_ADDR/team/multi:1" >"$work/c2.out" 2>&1 &
p2=$!
wait "$p1"
r1=$?
wait "$p2"
r2=$?
expect_eq pull_concurrent_status "$r1 $r2" "0 0"
bad=0
for f in "$HOTCELL_HOME"/store/blobs/sha256/*; do
	[ "$(sha256sum <"$f" | cut -d' ' -f1)" = "$(basename "$f")" ] || bad=1
done
expect_eq pull_concurrent_blobs_verified "$bad" 0
n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["manifests"]))' "$HOTCELL_HOME/store/index.json")
expect_eq pull_concurrent_one_name "$n" 1

# --- a corrupted blob: same size, different bytes. Fresh store, so nothing is cached.
export HOTCELL_HOME=$work/home2
mkimage "$layout" v2 --cmd /bin/true --env V=2 >/dev/null || fail mkimage_v2 "cannot build"
push v2 "$REG_ADDR/team/corrupt:v2" || fail push_v2 "skopeo push failed"
layer=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1]+"/blobs/sha256/"+sys.argv[2][7:])); print(m["layers"][-1]["digest"])' "$layout" "$(mkimage_digest "$layout" v2)")
hc_pull pull_seed_store 0 "$REG_ADDR/team/tool:v1"
f=$(registry_blob_path REG "$layer")
if [ -f "$f" ]; then
	printf 'XXXXXXXX' | dd of="$f" bs=1 seek=100 conv=notrunc status=none
	before=$(store_state)
	hc_pull pull_corrupt_blob 125 "$REG_ADDR/team/corrupt:v2" &&
		expect_err pull_corrupt_blob "digest mismatch.*${layer#sha256:}|${layer#sha256:}.*digest mismatch"
	expect_eq pull_corrupt_store_unchanged "$(store_state)" "$before"
	# truncated: shorter than its descriptor
	truncate -s 50 "$f"
	hc_pull pull_truncated_blob 125 "$REG_ADDR/team/corrupt:v2" && expect_err pull_truncated_blob "${layer#sha256:}"
	expect_eq pull_truncated_store_unchanged "$(store_state)" "$before"
else
	fail pull_corrupt_blob "blob file $f not found in the registry storage"
fi

# --- Issue 16 item 3: a damaged blob in the store is found by `check` and fetched again by
# `pull`: a truncated one by a plain pull (sizes are always checked), an altered one of the
# right size by `pull --verify`.
export HOTCELL_HOME=$work/home3
hc_pull defect_3_seed 0 "$REG_ADDR/team/tool:v1"
lay=$(jq -r '.layers[0].digest' "$HOTCELL_HOME/store/blobs/sha256/${d_v1#sha256:}")
blob=$HOTCELL_HOME/store/blobs/sha256/${lay#sha256:}
good=$(sha256sum <"$blob")
store_check() { # NAME WANT_RC [PATTERN]
	local rc
	"$HC" check >"$work/check.out" 2>"$work/check.err"
	rc=$?
	if [ "$rc" -ne "$2" ]; then
		fail "$1" "check exit $rc (wanted $2): $(cat "$work/check.out" "$work/check.err")"
	elif [ -n "${3:-}" ] && ! grep -Eq -- "$3" "$work/check.out"; then
		fail "$1" "check output lacks '$3': $(cat "$work/check.out")"
	else
		pass "$1"
	fi
}
store_check defect_3_check_healthy 0
truncate -s 4096 "$blob"
store_check defect_3_check_truncated 1 "layer 1: blob $lay has 4096 bytes"
hc_pull defect_3_corrupt_blob_refetched 0 "$REG_ADDR/team/tool:v1"
expect_eq defect_3_refetched_content "$(sha256sum <"$blob")" "$good"
store_check defect_3_check_after_pull 0
printf 'XXXXXXXX' | dd of="$blob" bs=1 seek=100 conv=notrunc status=none
store_check defect_3_check_altered 1 "$lay does not match its digest"
hc_pull defect_3_plain_pull_keeps_same_size 0 "$REG_ADDR/team/tool:v1"
store_check defect_3_plain_pull_did_not_read 1
hc_pull defect_3_pull_verify_repairs 0 --verify "$REG_ADDR/team/tool:v1"
expect_eq defect_3_verify_content "$(sha256sum <"$blob")" "$good"
store_check defect_3_check_after_verify 0
# the config is small: a plain pull checks its content too
cfgd=$(jq -r '.config.digest' "$HOTCELL_HOME/store/blobs/sha256/${d_v1#sha256:}")
printf 'X' | dd of="$HOTCELL_HOME/store/blobs/sha256/${cfgd#sha256:}" bs=1 seek=3 conv=notrunc status=none
store_check defect_3_check_altered_config 1 "config: blob $cfgd does not match its digest"
hc_pull defect_3_plain_pull_repairs_config 0 "$REG_ADDR/team/tool:v1"
store_check defect_3_check_after_config_repair 0
if [ -z "$(find "$HOTCELL_HOME" -name '.tmp-*')" ]; then pass defect_3_no_temps; else fail defect_3_no_temps "$(find "$HOTCELL_HOME" -name '.tmp-*')"; fi

# --- a full disk: a 600 KiB tmpfs cannot hold the ~1 MB busybox layer
full=$work/full
mkdir -p "$full"
if mount -t tmpfs -o size=600k hotcell-test "$full" 2>/dev/null; then
	export HOTCELL_HOME=$full/home
	hc_pull pull_disk_full 125 "$REG_ADDR/team/tool:v1" && expect_err pull_disk_full "No space left"
	left=$(find "$full/home/store/blobs" -type f 2>/dev/null | wc -l)
	expect_eq pull_disk_full_no_blobs "$left" 0
	umount "$full"
else
	skip pull_disk_full "cannot mount a tmpfs here (not root?)"
fi

finish
