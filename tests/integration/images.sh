#!/usr/bin/env bash
# hotcell load / images / rmi / prune against real OCI layouts and archives built offline
# (umoci + busybox-static, archives written by skopeo), and the store read back by skopeo and
# umoci. Each case prints PASS/FAIL/SKIP.
source "$(dirname "$0")/../lib.sh"

for tool in umoci skopeo jq flock; do
	if ! command -v $tool >/dev/null; then
		skip images "$tool is not installed"
		exit 0
	fi
done
if [ ! -x /bin/busybox ]; then
	skip images "busybox-static is not installed"
	exit 0
fi
if [ ! -x "$HC" ]; then
	skip images "$HC is not built"
	exit 0
fi

hc_tmp_home
work=$(mktemp -d /tmp/hcimg.XXXXXX)
cleanup() {
	declare -F registry_stop_all >/dev/null && registry_stop_all
	rm -rf "$HOTCELL_HOME" "$work"
}
trap cleanup EXIT
store=$HOTCELL_HOME/store

# A two-layer image: busybox, then /etc and a file on top (tests/lib/mkimage.sh).
echo hello >"$work/hello.txt"
source "$HOTCELL_TOP/tests/lib/mkimage.sh"
if ! mkimage "$work/layout" t1 --cmd /bin/busybox --cmd echo --file "$work/hello.txt:/hello" \
	>"$work/build.log" 2>&1; then
	fail build-layout "mkimage: $(tail -n 3 "$work/build.log")"
	exit 1
fi
skopeo copy -q oci:"$work/layout":t1 oci-archive:"$work/oci.tar" >/dev/null 2>&1 &&
	skopeo copy -q oci:"$work/layout":t1 oci-archive:"$work/oci-named.tar":docker.io/library/named:2 >/dev/null 2>&1 &&
	skopeo copy -q oci:"$work/layout":t1 docker-archive:"$work/docker.tar":x:tag >/dev/null 2>&1 ||
	{ fail build-archives "skopeo copy failed"; exit 1; }

# The store's state: index.json and the set of blobs.
snapshot() { { cat "$store/index.json" 2>/dev/null; ls -a "$store/blobs/sha256" 2>/dev/null; } | sha256sum; }
# runs "$@", wants exit 125 and exactly one line on stderr containing $1
expect_error() {
	local name=$1 want=$2
	shift 2
	local before after rc
	before=$(snapshot)
	"$@" >"$work/out" 2>"$work/err"
	rc=$?
	after=$(snapshot)
	if [ $rc -ne 125 ]; then
		fail "$name" "exit $rc, expected 125: $(cat "$work/err")"
	elif [ "$(wc -l <"$work/err")" -ne 1 ]; then
		fail "$name" "expected one line on stderr, got: $(cat "$work/err")"
	elif ! grep -q -- "$want" "$work/err"; then
		fail "$name" "stderr lacks '$want': $(cat "$work/err")"
	elif [ "$before" != "$after" ]; then
		fail "$name" "the store changed"
	else
		pass "$name"
	fi
}
digest_of() { "$HC" images --json | jq -r --arg n "$1" '.[] | select(.name == $n) | .digest'; }

# --- load: layout directory
"$HC" images >/dev/null # creates the empty store
# A layer whose content no longer matches its digest: the error names the blob. (Before any
# load: blobs already in the store are not read again from a layout.)
cp -r "$work/layout" "$work/bad"
big=$(ls -S "$work/bad/blobs/sha256" | head -n 1)
# The byte is flipped, not overwritten with a constant, which was already there one time in 256.
b=$(od -An -tu1 -j5000 -N1 "$work/bad/blobs/sha256/$big" | tr -d ' ')
printf "\\$(printf %03o $((b ^ 0xff)))" | dd of="$work/bad/blobs/sha256/$big" bs=1 seek=5000 conv=notrunc status=none
expect_error load-digest-mismatch "sha256:$big" "$HC" load --name t:1 "$work/bad"
# Issue 9: umoci names its images by tag only ("t1"): loaded as localhost/<tag>, as docker loads
# an untagged image, and the name is printed. (Removed again: the counts below are of --name'd
# images.)
"$HC" load "$work/layout" >"$work/out" 2>"$work/err"
expect_eq issue-9-load-tag-only-name "$(cat "$work/out")" "Loaded image: localhost/t1:latest"
check issue-9-load-tag-only-listed test -n "$(digest_of localhost/t1:latest)"
check issue-9-load-tag-only-rmi "$HC" rmi localhost/t1:latest
check load-layout-dir "$HC" load --name x:t1 "$work/layout"
expect_eq load-layout-normalised "$("$HC" images --json | jq -r '.[0].name')" "localhost/x:t1"

# --- load: oci-archive, without and with a carried name
expect_error load-oci-archive-needs-name "use --name" "$HC" load "$work/oci.tar"
check load-oci-archive "$HC" load --name localhost:5000/team/oa:1 "$work/oci.tar"
check load-oci-archive-named "$HC" load "$work/oci-named.tar"
expect_eq oci-archive-same-digest "$(digest_of docker.io/library/named:2)" "$(digest_of localhost/x:t1)"

# --- load: a layout whose name points at a multi-platform index: the host's manifest is taken,
# the other platform's blobs need not be there.
cp -r "$work/layout" "$work/multi"
m=$(jq -c '.manifests[0] | del(.annotations)' "$work/multi/index.json")
jq -n --argjson m "$m" '{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
	manifests: [($m + {platform: {os: "linux", architecture: "arm64"}} |
			.digest = "sha256:" + ("0" * 64)),
		($m + {platform: {os: "linux", architecture: "amd64"}})]}' >"$work/multi-index.json"
mi=$(sha256sum "$work/multi-index.json" | cut -d' ' -f1)
cp "$work/multi-index.json" "$work/multi/blobs/sha256/$mi"
jq -n --arg d "sha256:$mi" --argjson n "$(stat -c %s "$work/multi-index.json")" \
	'{schemaVersion: 2, manifests: [{mediaType: "application/vnd.oci.image.index.v1+json",
	digest: $d, size: $n, annotations: {"org.opencontainers.image.ref.name": "multi:1"}}]}' \
	>"$work/multi/index.json"
if [ "$(uname -m)" = x86_64 ]; then
	check load-multi-platform-index "$HC" load "$work/multi"
	expect_eq multi-platform-picks-host "$(digest_of docker.io/library/multi:1)" "$(jq -r .digest <<<"$m")"
	if [ ! -e "$store/blobs/sha256/$mi" ]; then pass multi-index-not-kept; else fail multi-index-not-kept "index blob stored"; fi
	check rmi-multi "$HC" rmi multi:1
else
	skip load-multi-platform-index "the crafted index offers linux/amd64 only"
fi

# --- load: docker-archive (converted into an OCI manifest)
check load-docker-archive "$HC" load "$work/docker.tar"
dd=$(digest_of docker.io/library/x:tag)
if [[ $dd =~ ^sha256:[0-9a-f]{64}$ ]]; then pass docker-archive-listed; else fail docker-archive-listed "digest '$dd'"; fi
mt=$(jq -r .layers[0].mediaType "$store/blobs/sha256/${dd#sha256:}" 2>/dev/null)
expect_eq docker-archive-layer-type "$mt" "application/vnd.oci.image.layer.v1.tar"
check load-again-replaces "$HC" load "$work/docker.tar"
expect_eq one-entry-per-name "$(jq '[.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "docker.io/library/x:tag")] | length' "$store/index.json")" 1

# --- images --json schema (DESIGN.md §5)
json=$("$HC" images --json)
if echo "$json" | jq -e 'type == "array" and length == 4 and all(.[];
	(keys == ["created", "digest", "name", "size", "template_size"]) and (.name | type) == "string" and
	(.template_size | type) == "number" and
	(.digest | test("^sha256:[0-9a-f]{64}$")) and (.size | type) == "number" and .size > 1000000 and
	((.created | type) == "string" or .created == null))' >/dev/null; then
	pass images-json-schema
else
	fail images-json-schema "$json"
fi
if "$HC" images | head -n 1 | grep -q NAME && [ "$("$HC" images | wc -l)" -eq 5 ]; then
	pass images-table
else
	fail images-table "$("$HC" images)"
fi

# --- the store is an OCI layout that skopeo and umoci read
if skopeo inspect "oci:$store:docker.io/library/x:tag" 2>"$work/err" | jq -e '.Layers | length == 2' >/dev/null; then
	pass skopeo-inspect
else
	fail skopeo-inspect "$(cat "$work/err")"
fi
if umoci raw unpack --rootless --image "$store:localhost/x:t1" "$work/unpacked" >/dev/null 2>&1 &&
	[ -x "$work/unpacked/bin/busybox" ] && [ "$(cat "$work/unpacked/hello")" = hello ]; then
	pass umoci-unpack
else
	fail umoci-unpack "umoci could not unpack localhost/x:t1 from the store"
fi
rm -rf "$work/unpacked"

# --- bad input: one line, exit 125, store unchanged
head -c 1500000 "$work/docker.tar" >"$work/truncated.tar"
expect_error load-truncated-archive "load" "$HC" load --name t:1 "$work/truncated.tar"
head -c 100000 /dev/urandom >"$work/garbage.tar"
expect_error load-garbage "load" "$HC" load --name t:1 "$work/garbage.tar"
tar -C "$work/bad" -cf "$work/bad.tar" .
expect_error load-archive-digest-mismatch "sha256:$big" "$HC" load --name t:1 "$work/bad.tar"
printf '[{"Config":"nope.json","RepoTags":["a:b"],"Layers":[]}]' >"$work/manifest.json"
tar -C "$work" -cf "$work/bad-docker.tar" manifest.json
expect_error load-docker-missing-config "nope.json" "$HC" load "$work/bad-docker.tar"
# Hostile member names: refused, whatever else the archive holds.
python3 - "$work" <<'PY'
import io, sys, tarfile
work = sys.argv[1]
def mk(path, members):
    with tarfile.open(path, "w") as t:
        for name, kind, data in members:
            ti = tarfile.TarInfo(name)
            if kind == "sym":
                ti.type = tarfile.SYMTYPE
                ti.linkname = data
                t.addfile(ti)
            else:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
mk(work + "/dotdot.tar", [("manifest.json", "f", b"[]"), ("../escape", "f", b"x")])
mk(work + "/abs.tar", [("/etc/evil", "f", b"x"), ("manifest.json", "f", b"[]")])
mk(work + "/symout.tar", [("manifest.json", "f", b"[]"), ("a/layer.tar", "sym", "../../outside")])
PY
expect_error load-dotdot-member "contains '..'" "$HC" load --name t:1 "$work/dotdot.tar"
expect_error load-absolute-member "absolute name" "$HC" load --name t:1 "$work/abs.tar"
expect_error load-symlink-out "outside the archive" "$HC" load --name t:1 "$work/symout.tar"
gzip -c "$work/docker.tar" >"$work/docker.tar.gz"
check load-gzipped-docker-archive "$HC" load --name gz:1 "$work/docker.tar.gz"
check rmi-gz "$HC" rmi gz:1
# podman's load -i FILE, and load from stdin (an unnamed temporary file: nothing left behind).
expect_eq load-dash-i "$("$HC" load -i "$work/docker.tar.gz" --name li:1 2>&1)" "Loaded image: localhost/li:1"
expect_eq load-stdin "$("$HC" load --name si:1 <"$work/docker.tar.gz" 2>&1)" "Loaded image: localhost/si:1"
expect_eq load-stdin-same-digest "$(digest_of localhost/si:1)" "$(digest_of localhost/li:1)"
expect_error load-stdin-garbage "load" sh -c "head -c 1000 /dev/urandom | \"$HC\" load --name sg:1"
"$HC" rmi li:1 si:1 >/dev/null
expect_error load-missing-path "load" "$HC" load "$work/does-not-exist"
expect_error load-bad-name "load" "$HC" load --name 'UPPER CASE' "$work/docker.tar"

# --- rmi
expect_error rmi-unknown "no such image" "$HC" rmi nosuch:1
exec 9>"$HOTCELL_HOME/rootfs/${dd#sha256:}.lock"
flock -s 9 # what a run of the image holds
expect_error rmi-in-use "in use" "$HC" rmi x:tag
exec 9>&-
check rmi "$HC" rmi x:tag
expect_eq rmi-gone "$(digest_of docker.io/library/x:tag)" ""
if [ -f "$store/blobs/sha256/${dd#sha256:}" ]; then pass rmi-keeps-blobs; else fail rmi-keeps-blobs "blob gone before prune"; fi

# Issue 15, bug 10: a --name without a registry is a local name, as podman tags it
# (localhost/test/bb:1, not docker.io/test/bb:1); the short name still finds it.
out=$("$HC" load --name test/bb:1 "$work/layout" 2>&1)
expect_eq bug-10-load-name-is-local "$out" "Loaded image: localhost/test/bb:1"
check bug-10-listed-as-local test -n "$(digest_of localhost/test/bb:1)"
expect_eq bug-10-no-docker-io-name "$(digest_of docker.io/test/bb:1)" ""
"$HC" load --name registry.test/bb:2 "$work/layout" >/dev/null 2>&1
check bug-10-registry-name-kept test -n "$(digest_of registry.test/bb:2)"
# Issue 15, bug 9: rmi of an id with several names untagged every name silently: refused
# without -f, as podman; with -f each name is printed.
short=$(digest_of localhost/test/bb:1)
short=${short#sha256:}
short=sha256:${short:0:12}
out=$("$HC" rmi "$short" 2>&1)
rc=$?
if [ "$rc" -eq 125 ] && grep -q "names" <<<"$out" && grep -q -- "-f" <<<"$out" &&
	[ -n "$(digest_of localhost/test/bb:1)" ]; then
	pass bug-9-rmi-id-of-several-names-refused
else
	fail bug-9-rmi-id-of-several-names-refused "rc=$rc: $out"
fi
check bug-9-rmi-short-name-local "$HC" rmi test/bb:1
"$HC" load --name test/bb:1 "$work/layout" >/dev/null 2>&1
out=$("$HC" rmi -f "$short" 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && grep -qx "Untagged: localhost/test/bb:1" <<<"$out" &&
	grep -qx "Untagged: registry.test/bb:2" <<<"$out" && grep -qx "Untagged: localhost/x:t1" <<<"$out" &&
	[ -z "$(digest_of localhost/test/bb:1)" ]; then
	pass bug-9-rmi-f-prints-each-name
else
	fail bug-9-rmi-f-prints-each-name "rc=$rc: $out"
fi
"$HC" load --name x:t1 "$work/layout" >/dev/null 2>&1

# --- prune: removes what no image references, skips what is in use
keep=$(digest_of localhost/x:t1)
keep=${keep#sha256:}
gone=${dd#sha256:}
locked=$(printf locked | sha256sum | cut -d' ' -f1)
for h in "$keep" "$gone" "$locked"; do
	mkdir -p "$HOTCELL_HOME/rootfs/$h/root"
	echo '{}' >"$HOTCELL_HOME/rootfs/$h/config.json"
	touch "$HOTCELL_HOME/disks/$h.ext4"
done
exec 9>"$HOTCELL_HOME/rootfs/$locked.lock"
flock -s 9
check prune "$HC" prune
exec 9>&-
if [ ! -e "$store/blobs/sha256/$gone" ] && [ ! -e "$HOTCELL_HOME/rootfs/$gone" ] &&
	[ ! -e "$HOTCELL_HOME/disks/$gone.ext4" ]; then
	pass prune-removes-unreferenced
else
	fail prune-removes-unreferenced "$(ls "$HOTCELL_HOME/rootfs" "$HOTCELL_HOME/disks")"
fi
if [ -d "$HOTCELL_HOME/rootfs/$keep/root" ] && [ -e "$HOTCELL_HOME/disks/$keep.ext4" ] &&
	[ -e "$store/blobs/sha256/$keep" ]; then
	pass prune-keeps-referenced
else
	fail prune-keeps-referenced "$(ls "$HOTCELL_HOME/rootfs" "$HOTCELL_HOME/disks")"
fi
if [ -d "$HOTCELL_HOME/rootfs/$locked/root" ]; then pass prune-skips-in-use; else fail prune-skips-in-use "removed"; fi
if skopeo inspect "oci:$store:localhost/x:t1" >/dev/null 2>"$work/err"; then
	pass prune-store-still-valid
else
	fail prune-store-still-valid "$(cat "$work/err")"
fi
check prune-again "$HC" prune
if [ ! -e "$HOTCELL_HOME/rootfs/$locked" ]; then pass prune-after-release; else fail prune-after-release "still there"; fi

# --- concurrent loads: every name lands, index.json stays valid
pids=()
for i in 1 2 3 4 5 6; do
	"$HC" load --name "conc/img:$i" "$work/docker.tar" >/dev/null 2>"$work/conc.$i.err" &
	pids+=($!)
done
ok=1
for p in "${pids[@]}"; do wait "$p" || ok=0; done
if [ $ok = 1 ] && [ "$("$HC" images --json | jq '[.[] | select(.name | startswith("localhost/conc/img:"))] | length')" = 6 ]; then
	pass concurrent-loads
else
	fail concurrent-loads "$(cat "$work"/conc.*.err)"
fi
if jq -e . "$store/index.json" >/dev/null; then pass index-json-valid; else fail index-json-valid "$(head -c 300 "$store/index.json")"; fi
# No temp file is left behind.
if [ -z "$(find "$store" -name '*.tmp-*' -o -name '.tmp-*')" ]; then pass no-temp-files; else fail no-temp-files "$(find "$store" -name '*tmp*')"; fi

# --- Issue 16 item 3: a damaged blob is found by `check` and re-imported by `load`
if "$HC" check >"$work/out" 2>"$work/err"; then pass defect-3-check-healthy; else fail defect-3-check-healthy "$(cat "$work/out" "$work/err")"; fi
lay=$(jq -r '.layers[0].digest' "$store/blobs/sha256/$keep")
truncate -s 1000 "$store/blobs/sha256/${lay#sha256:}"
"$HC" check >"$work/out" 2>"$work/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "localhost/x:t1: layer 1: blob $lay has 1000 bytes" "$work/out"; then
	pass defect-3-check-finds-truncated
else
	fail defect-3-check-finds-truncated "exit $rc: $(cat "$work/out" "$work/err")"
fi
if "$HC" check --json | jq -e --arg l "$lay" 'type == "array" and length >= 1 and
	all(.[]; (keys == ["object", "problem"])) and any(.[]; .problem | contains($l))' >/dev/null; then
	pass defect-3-check-json
else
	fail defect-3-check-json "$("$HC" check --json)"
fi
# A run that meets it (no cached tree) names the image and the blob, and the repair.
rm -rf "$HOTCELL_HOME/rootfs/$keep" "$HOTCELL_HOME/disks/$keep.ext4"
"$HC" run --rootfs-mode dir --memory 128 x:t1 true >/dev/null 2>"$work/err"
rc=$?
if [ $rc -eq 125 ] && grep -q "image localhost/x:t1: the store is damaged: blob $lay has 1000 bytes" "$work/err" &&
	grep -q '`hotcell pull localhost/x:t1`' "$work/err"; then
	pass defect-3-run-names-corrupt-blob
elif grep -qi "backend\|kernel" "$work/err" && ! grep -q "$lay" "$work/err"; then
	skip defect-3-run-names-corrupt-blob "the run stops before the rootfs here: $(head -c 200 "$work/err")"
else
	fail defect-3-run-names-corrupt-blob "exit $rc: $(cat "$work/err")"
fi
if [ -z "$(find "$HOTCELL_HOME/rootfs" -name '.tmp-*')" ]; then pass defect-3-run-no-temp; else fail defect-3-run-no-temp "$(ls -a "$HOTCELL_HOME/rootfs")"; fi
check defect-3-corrupt-blob-reimported-by-load "$HC" load --name x:t1 "$work/layout"
if "$HC" check >"$work/out" 2>&1; then pass defect-3-check-after-load; else fail defect-3-check-after-load "$(cat "$work/out")"; fi

# --- Issue 16 item 6: SIGKILL during an unpack leaves rootfs/.tmp-*; prune removes it.
mkdir -p "$work/bigl"
head -c 300M /dev/zero >"$work/bigl/zeros"
if mkimage "$work/biglayout" big --cmd /bin/true --layer "$work/bigl" >"$work/build.log" 2>&1 &&
	"$HC" load --name big:1 "$work/biglayout" >/dev/null 2>"$work/err"; then
	rm -rf "$work/bigl"
	# wait_for GLOB PID: until GLOB matches (the event) or PID is gone; true when it matched
	wait_for() {
		local i
		for i in $(seq 1000); do
			compgen -G "$1" >/dev/null && return 0
			kill -0 "$2" 2>/dev/null || return 1
			sleep 0.01
		done
		return 1
	}
	# Issue 16 item 8: SIGINT during the unpack, then during mke2fs: 130 at once, nothing left.
	# cancel_in NAME GLOB MODE
	cancel_in() {
		local pid rc
		"$HC" run --rootfs-mode "$3" --memory 128 big:1 true >/dev/null 2>"$work/run.err" &
		pid=$!
		if ! wait_for "$2" $pid; then
			wait $pid
			skip "$1" "the run never reached that phase: $(head -c 300 "$work/run.err")"
			return
		fi
		kill -INT $pid
		timeout 20 tail --pid=$pid -f /dev/null
		wait $pid
		rc=$?
		if [ $rc -eq 130 ] && ! compgen -G "$2" >/dev/null; then
			pass "$1"
		else
			fail "$1" "exit $rc, left: $(ls -a "$HOTCELL_HOME/rootfs" "$HOTCELL_HOME/disks" 2>&1) $(cat "$work/run.err")"
		fi
	}
	big=$(digest_of localhost/big:1)
	cancel_in defect-8-sigint-during-unpack "$HOTCELL_HOME/rootfs/.tmp-*" dir
	if [ ! -e "$HOTCELL_HOME/rootfs/${big#sha256:}" ]; then pass defect-8-no-tree-after-cancel; else fail defect-8-no-tree-after-cancel "a tree is cached"; fi
	"$HC" run --rootfs-mode dir --memory 128 big:1 true >/dev/null 2>&1 & # builds the tree, then boots
	bpid=$!
	wait_for "$HOTCELL_HOME/rootfs/${big#sha256:}/config.json" $bpid
	kill -KILL $bpid 2>/dev/null
	wait $bpid 2>/dev/null
	if [ -e "$HOTCELL_HOME/rootfs/${big#sha256:}/config.json" ]; then
		cancel_in defect-8-sigint-during-mke2fs "$HOTCELL_HOME/disks/.tmp-*" block
		if [ ! -e "$HOTCELL_HOME/disks/${big#sha256:}.ext4" ]; then pass defect-8-no-disk-after-cancel; else fail defect-8-no-disk-after-cancel "a disk is cached"; fi
	else
		skip defect-8-sigint-during-mke2fs "the tree was not built"
	fi
	rm -rf "$HOTCELL_HOME/rootfs/${big#sha256:}"
	"$HC" run --rootfs-mode dir --memory 128 big:1 true >/dev/null 2>"$work/run.err" &
	pid=$!
	for i in $(seq 400); do
		compgen -G "$HOTCELL_HOME/rootfs/.tmp-*" >/dev/null && break
		kill -0 $pid 2>/dev/null || break
		sleep 0.02
	done
	kill -KILL $pid 2>/dev/null
	wait $pid 2>/dev/null
	if compgen -G "$HOTCELL_HOME/rootfs/.tmp-*" >/dev/null; then
		out=$("$HC" prune 2>&1)
		if ! compgen -G "$HOTCELL_HOME/rootfs/.tmp-*" >/dev/null && [[ $out =~ Removed\ [1-9] ]]; then
			pass defect-6-prune-removes-killed-unpack
		else
			fail defect-6-prune-removes-killed-unpack "$out; left: $(ls -a "$HOTCELL_HOME/rootfs")"
		fi
	else
		skip defect-6-prune-removes-killed-unpack "the run never reached the unpack: $(head -c 300 "$work/run.err")"
	fi
	"$HC" rmi big:1 >/dev/null
	rm -rf "$work/biglayout"
else
	fail defect-6-prune-removes-killed-unpack "cannot build the big image: $(tail -n 3 "$work/build.log") $(cat "$work/err")"
fi

# --- pull (the CLI side): quiet without a terminal, bytes per layer on one
if [ ! -f "$HOTCELL_TOP/tests/lib/registry.sh" ] || ! command -v docker-registry >/dev/null ||
	! command -v script >/dev/null; then
	skip pull-cli "needs tests/lib/registry.sh, docker-registry and script(1)"
else
	source "$HOTCELL_TOP/tests/lib/registry.sh"
	if ! registry_start REG 2>"$work/reg.err"; then
		skip pull-cli "registry did not start: $(cat "$work/reg.err")"
	elif ! skopeo copy -q --dest-tls-verify=false oci:"$work/layout":t1 \
		docker://"$REG_ADDR"/team/bb:1 >/dev/null 2>"$work/err"; then
		fail pull-cli "skopeo push: $(cat "$work/err")"
	else
		out=$("$HC" pull "$REG_ADDR/team/bb:1" 2>"$work/err")
		if [[ $out =~ ^sha256:[0-9a-f]{64}$ ]] && [ ! -s "$work/err" ]; then
			pass pull-quiet-without-terminal
		else
			fail pull-quiet-without-terminal "stdout '$out', stderr '$(cat "$work/err")'"
		fi
		expect_eq pull-listed "$(digest_of "$REG_ADDR/team/bb:1")" "$out"
		# A fresh store, so every blob is fetched and shown.
		HOTCELL_HOME=$work/tty-home script -qec "$HC pull $REG_ADDR/team/bb:1" /dev/null \
			>"$work/tty.out" 2>&1
		if [ "$(grep -c 'done' "$work/tty.out")" -ge 3 ] && grep -q "$out" "$work/tty.out"; then
			pass pull-progress-on-terminal
		else
			fail pull-progress-on-terminal "$(head -c 500 "$work/tty.out" | cat -v)"
		fi
		rm -rf "$work/tty-home"
	fi
	registry_stop_all
fi

finish
