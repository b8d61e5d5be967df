#!/usr/bin/env bash
# bench-srp.sh — the SRP path end to end (usrpt bench --target loop: the
# user-space initiator and an in-process usrpt target on the loop verbs
# fabric, null engine) beside fio's null engine, in one run.
#
# usage: scripts/bench-srp.sh
#
# environment:
#   RUNTIME=10       seconds per run
#   INI_CPU=<first>  the initiator's reactor (fio runs here too)
#   TGT_CPU=<second> the target's reactor
#   OUT=<tmpdir>     where the JSON results are kept
#   GO=go
#
# Jobs (4 KiB random reads, one job):
#   QD32: throughput; the target's reactor busy time per I/O is its CPU
#         cost of a command (it busy-polls, so its core is 100% used anyway).
#   QD1:  latency p50, p99, p99.9 of a command's round trip.
# fio's null engine (no transport, no SCSI, no target) is the ceiling of a
# fio-driven load generator on the same core: the ratio says what SRP and
# the target cost on top of a fio-style loop.
set -euo pipefail

RUNTIME=${RUNTIME:-10}
GO=${GO:-go}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
USRPT=$ROOT/bin/usrpt
OUT=${OUT:-$(mktemp -d /tmp/usrpt-bench-srp.XXXXXX)}
mkdir -p "$OUT"
say() { printf '%s\n' "$*" >&2; }

if ! command -v fio >/dev/null 2>&1; then
	say "fio not found: installing it with apt-get"
	SUDO=
	[ "$(id -u)" -ne 0 ] && SUDO=sudo
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fio >/dev/null
fi
command -v python3 >/dev/null 2>&1 || { say "python3 is needed to read the JSON results"; exit 1; }

say "building $USRPT"
(cd "$ROOT" && "$GO" build -o bin/usrpt ./cmd/usrpt)

online=$(cat /sys/devices/system/cpu/online)
first=$(echo "$online" | cut -d, -f1 | cut -d- -f1)
INI_CPU=${INI_CPU:-$first}
TGT_CPU=${TGT_CPU:-$(python3 -c "
import sys
cpus=[]
for part in '$online'.split(','):
    a,_,b=part.partition('-'); cpus+=range(int(a),int(b or a)+1)
rest=[c for c in cpus if c!=$INI_CPU]
print(rest[0] if rest else $INI_CPU)")}
say "initiator (and fio) on CPU $INI_CPU, target on CPU $TGT_CPU, $RUNTIME s per run, results in $OUT"

fio_null() { # name, iodepth
	fio --name=null --ioengine=null --size=1g --rw=randread --bs=4k --iodepth="$2" --numjobs=1 \
		--time_based --runtime="$RUNTIME" --cpus_allowed="$INI_CPU" --group_reporting \
		--output-format=json >"$OUT/$1.json"
}
usrpt_srp() { # name, iodepth
	"$USRPT" bench --target loop --engine null --size 1g --rw randread --bs 4k --jobs 1 \
		--iodepth "$2" --cores "[$INI_CPU]" --target-cores "[$TGT_CPU]" --idle busy \
		--runtime "${RUNTIME}s" --ramp 1s --output-format json --output "$OUT/$1.json"
}

for qd in 32 1; do
	say "fio: null randread 4k QD$qd"
	fio_null "fio-null-qd$qd" "$qd"
	say "usrpt: SRP over loop, null LU, randread 4k QD$qd"
	usrpt_srp "usrpt-srp-qd$qd" "$qd"
done

python3 - "$OUT" <<'EOF'
import json, os, sys
out = sys.argv[1]

def fio(name):
    j = json.load(open(os.path.join(out, name)))["jobs"][0]
    r = j["read"]
    p = r["clat_ns"]["percentile"]
    return dict(iops=r["iops"], p50=p.get("50.000000", 0), p99=p.get("99.000000", 0), p999=p.get("99.900000", 0), tgt=None)

def usrpt(name):
    rep = json.load(open(os.path.join(out, name)))
    t = rep["total"]
    l = t["lat_ns"]
    tgt = rep.get("target") or {}
    return dict(iops=t["iops"], p50=l["p50"], p99=l["p99"], p999=l["p999"], tgt=tgt.get("busy_ns_per_io"))

print(f"{'job':<22} {'tool':<28} {'IOPS':>12} {'p50 us':>8} {'p99 us':>8} {'p99.9 us':>9} {'target ns/IO':>13} {'IOPS ×fio':>10}")
for qd in (32, 1):
    f, u = fio(f"fio-null-qd{qd}.json"), usrpt(f"usrpt-srp-qd{qd}.json")
    for tool, r in (("fio null (no transport)", f), ("usrpt SRP/loop, null LU", u)):
        tgt = f"{r['tgt']:,.0f}" if r["tgt"] else "-"
        ratio = f"{r['iops'] / f['iops']:.2f}" if r is u else ""
        print(f"{'randread 4k QD%d' % qd:<22} {tool:<28} {r['iops']:>12,.0f} {r['p50']/1e3:>8.2f} {r['p99']/1e3:>8.2f} {r['p999']/1e3:>9.2f} {tgt:>13} {ratio:>10}")
print()
print("target ns/IO: the target reactor's busy time over the measured window / I/Os.")
print(f"JSON results: {out}")
EOF
