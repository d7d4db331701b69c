#!/usr/bin/env bash
# hotcell-init's reading of the kernel command line (docs/protocol.md, "Kernel command line"),
# through its --check-cmdline test entry: quoting, volumes (percent-encoded paths, :ro),
# defaults, unknown keys, "--", and refusals.
source "$(dirname "$0")/../lib.sh"
INIT=${HOTCELL_INIT:-$HOTCELL_TOP/$BUILD/bin/hotcell-init}

if [ ! -x "$INIT" ]; then
	skip guest-cmdline "hotcell-init not built ($INIT)"
	exit 0
fi

out=$("$INIT" --check-cmdline 'console=ttyS0 quiet hotcell.root=virtiofs  hotcell.channel=serial' 2>&1)
expect_eq cmdline-minimal "$out" "root=virtiofs
channel=serial
hostname=hotcell
debug=0"

out=$("$INIT" --check-cmdline 'hotcell.root=block hotcell.channel=vsock "hotcell.vol=hcvol0:/a%20b%3Ac:ro" hotcell.vol=hcvol1:/data:rw hotcell.hostname=box-1 hotcell.debug=1 hotcell.future=x -- hotcell.root=virtiofs' 2>&1)
expect_eq cmdline-full "$out" "root=block
channel=vsock
hostname=box-1
debug=1
vol=hcvol0|/a b:c|ro
vol=hcvol1|/data|rw"

for bad in 'hotcell.root=nfs' 'hotcell.channel=pipe' 'hotcell.vol=hcvol0:relative' \
	'hotcell.vol=hcvol0:/a/../etc' 'hotcell.vol=bad%tag:/x' 'hotcell.vol=hcvol0:/a%00' \
	'hotcell.hostname=no_underscore'; do
	if out=$("$INIT" --check-cmdline "$bad" 2>&1); then
		fail "cmdline-refuses $bad" "accepted: $out"
	elif [[ $out != "hotcell-init: fatal: "* ]]; then
		fail "cmdline-refuses $bad" "no fatal line: $out"
	else
		pass "cmdline-refuses $bad"
	fi
done
finish
