#!/usr/bin/env bash
# bench-fio.sh — run the same jobs with fio and with `usrpt bench` and compare
# IOPS and CPU time per I/O.
#
# usage: scripts/bench-fio.sh [DIR]
#
#   DIR            where the 1 GiB test file lives (default /var/tmp); its
#                  file system must support O_DIRECT (tmpfs does not)
#
# environment:
#   RUNTIME=10     seconds per run
#   CPU=<first>    the CPU both tools run on (fio --cpus_allowed, usrpt --cores)
#   OUT=<tmpdir>   where the JSON results are kept
#   FIO_EXTRA=     more fio options for the io_uring job (e.g. "--fixedbufs --registerfiles")
#   GO=go
#
# Jobs (4 KiB, one job each):
#   1. random reads, O_DIRECT, QD32: fio ioengine=io_uring vs usrpt --engine uring,
#      the latter with reactors busy-polling (--idle busy) and sleeping when
#      idle (--idle adaptive);
#   2. random reads, QD1: fio ioengine=null vs usrpt --engine null (the
#      harness's own ceiling).
#
# CPU per I/O: fio's (usr_cpu + sys_cpu) % × job runtime / I/Os from its JSON
# (fio measures its job thread); usrpt's total.cpu_ns_per_io, the whole
# process's getrusage (user + system) over the measured window divided by
# the I/Os (reactors, runtime and engine threads included).
set -euo pipefail

DIR=${1:-/var/tmp}
RUNTIME=${RUNTIME:-10}
GO=${GO:-go}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
USRPT=$ROOT/bin/usrpt
FILE=$DIR/usrpt-bench-fio.dat
SIZE=$((1 << 30))
OUT=${OUT:-$(mktemp -d /tmp/usrpt-bench-fio.XXXXXX)}
mkdir -p "$OUT"

say() { printf '%s\n' "$*" >&2; }

# --- fio -------------------------------------------------------------------
if ! command -v fio >/dev/null 2>&1; then
	say "fio not found: installing it with apt-get"
	SUDO=
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null 2>&1 || { say "need root or sudo to install fio"; exit 1; }
		SUDO=sudo
	fi
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fio >/dev/null
fi
command -v python3 >/dev/null 2>&1 || { say "python3 is needed to read the JSON results"; exit 1; }

# --- usrpt -----------------------------------------------------------------
say "building $USRPT"
(cd "$ROOT" && "$GO" build -o bin/usrpt ./cmd/usrpt)

# --- the test file ----------------------------------------------------------
[ -d "$DIR" ] || { say "$DIR is not a directory"; exit 1; }
if [ "$(stat -f -c %T "$DIR")" = tmpfs ]; then
	say "$DIR is on tmpfs, which has no O_DIRECT: pick a directory on a disk file system"
	exit 1
fi
if [ -f "$FILE" ] && [ "$(stat -c %s "$FILE")" -ge "$SIZE" ]; then
	say "reusing $FILE"
else
	say "writing $FILE (1 GiB of random data, so reads hit allocated blocks)"
	dd if=/dev/urandom of="$FILE" bs=1M count=1024 oflag=direct conv=fsync status=none
fi

CPU=${CPU:-$(cut -d, -f1 /sys/devices/system/cpu/online | cut -d- -f1)}
say "both tools on CPU $CPU, $RUNTIME s per run, results in $OUT"

# --- runs ------------------------------------------------------------------
fio_uring() {
	# shellcheck disable=SC2086 # FIO_EXTRA is a list of options
	fio --name=randread --ioengine=io_uring --filename="$FILE" --size=1g --direct=1 \
		--rw=randread --bs=4k --iodepth=32 --numjobs=1 --time_based --runtime="$RUNTIME" \
		--cpus_allowed="$CPU" --group_reporting --output-format=json ${FIO_EXTRA:-} >"$OUT/fio-uring.json"
}
fio_null() {
	fio --name=null --ioengine=null --size=1g --rw=randread --bs=4k --iodepth=1 --numjobs=1 \
		--time_based --runtime="$RUNTIME" --cpus_allowed="$CPU" --group_reporting \
		--output-format=json >"$OUT/fio-null.json"
}
usrpt_run() { # name, then usrpt bench flags
	local name=$1
	shift
	"$USRPT" bench --cores "[$CPU]" --runtime "${RUNTIME}s" --rw randread --bs 4k --jobs 1 \
		--output-format json --output "$OUT/$name.json" "$@"
}

say "fio: io_uring randread 4k QD32"
fio_uring
say "usrpt: uring randread 4k QD32, busy polling"
usrpt_run usrpt-uring-busy --engine uring --filename "$FILE" --size 1g --direct --iodepth 32 --idle busy
say "usrpt: uring randread 4k QD32, adaptive idle"
usrpt_run usrpt-uring-adaptive --engine uring --filename "$FILE" --size 1g --direct --iodepth 32 --idle adaptive
say "fio: null randread 4k QD1"
fio_null
say "usrpt: null randread 4k QD1"
usrpt_run usrpt-null --engine null --size 1g --iodepth 1 --idle busy

# --- report ----------------------------------------------------------------
python3 - "$OUT" <<'EOF'
import json, os, sys

out = sys.argv[1]

def fio(name):
    j = json.load(open(os.path.join(out, name)))["jobs"][0]
    r = j["read"]
    ios = r["total_ios"]
    runtime_ms = r["runtime"] or j.get("job_runtime", 0)
    cpu_pct = j["usr_cpu"] + j["sys_cpu"]
    cpu_ns = cpu_pct / 100 * runtime_ms * 1e6 / ios if ios else float("nan")
    return r["iops"], cpu_ns, r["clat_ns"]["percentile"].get("99.000000", 0) / 1e3

def usrpt(name):
    t = json.load(open(os.path.join(out, name)))["total"]
    return t["iops"], t["cpu_ns_per_io"], t["lat_ns"]["p99"] / 1e3

rows = [
    ("io_uring randread 4k QD32", "fio io_uring", fio("fio-uring.json")),
    ("", "usrpt uring, busy", usrpt("usrpt-uring-busy.json")),
    ("", "usrpt uring, adaptive", usrpt("usrpt-uring-adaptive.json")),
    ("null randread 4k QD1", "fio null", fio("fio-null.json")),
    ("", "usrpt null", usrpt("usrpt-null.json")),
]
print(f"{'job':<27} {'tool':<23} {'IOPS':>12} {'CPU ns/IO':>10} {'p99 us':>8} {'IOPS ×fio':>10} {'CPU ×fio':>9}")
base = None
for job, tool, (iops, cpu, p99) in rows:
    if job:
        base = (iops, cpu)
        ratio = ("", "")
    else:
        ratio = (f"{iops / base[0]:.2f}" if base[0] else "-", f"{cpu / base[1]:.2f}" if base[1] else "-")
    print(f"{job:<27} {tool:<23} {iops:>12,.0f} {cpu:>10,.0f} {p99:>8.1f} {ratio[0]:>10} {ratio[1]:>9}")
print()
print("CPU ns/IO: fio = (usr+sys)% × runtime / ios of its job thread; usrpt = process getrusage over the")
print("measured window / ios. A busy-polling reactor burns its whole core by design: compare IOPS per core.")
print(f"JSON results: {out}")
EOF
