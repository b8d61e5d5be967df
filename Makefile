# usrpt — a thin layer over the go tool. `make help` lists the targets.

SHELL     := bash
GO        ?= go
BIN       ?= bin/usrpt
# Packages with goroutines talking to each other: run under the race detector.
RACE_PKGS ?= ./internal/ring/... ./internal/hugemem/... ./poller/... ./ioengine/... ./scsi/... ./bench/... ./verbs/... ./target/... ./initiator/... ./server/...
FUZZTIME  ?= 10s
BENCHTIME ?= 1s
DEMO_TIME ?= 2s
BENCH_DIR ?= /var/tmp

.PHONY: help build test fmt-check vet staticcheck unit race fuzz-seed fuzz bench bench-fio bench-srp lint demo clean

help:
	@echo "make build   build $(BIN)"
	@echo "make test    gofmt check, go vet, staticcheck, unit tests, race tests, fuzz seed corpora"
	@echo "make race    the race detector on $(RACE_PKGS)"
	@echo "make fuzz    every fuzz target for FUZZTIME=$(FUZZTIME) each"
	@echo "make bench   go benchmarks (BENCHTIME=$(BENCHTIME))"
	@echo "make bench-fio  fio beside usrpt bench (io_uring QD32, null QD1) on a 1 GiB file in BENCH_DIR=$(BENCH_DIR)"
	@echo "make bench-srp  usrpt bench --target loop (SRP end to end, null LU) beside fio's null engine, QD32 and QD1"
	@echo "make lint    gofmt check, go vet, staticcheck"
	@echo "make demo    the main job end to end on the embedded default"

build:
	$(GO) build -o $(BIN) ./cmd/usrpt

test: lint unit race fuzz-seed

lint: fmt-check vet staticcheck

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) tool staticcheck ./...

unit:
	$(GO) test -count=1 ./...

race:
	$(GO) test -count=1 -race $(RACE_PKGS)

# Every fuzz target on its seed corpus (and any saved crashers in testdata),
# listed by name so the log shows each one ran.
fuzz-seed:
	@set -o pipefail; $(GO) test -count=1 -run '^Fuzz' -v ./... | grep -E '^(--- |FAIL|panic:)'

fuzz:
	GO="$(GO)" FUZZTIME="$(FUZZTIME)" scripts/fuzz.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

# The main job end to end: an in-process usrpt target (one RAM LU) and the
# user-space SRP initiator on the loop verbs fabric, 4 KiB random reads
# (every block written through SRP first and checked on read) and writes.
demo: build
	$(BIN) bench --target loop --engine mem --size 256MiB --rw randread --bs 4k --iodepth 32 --runtime $(DEMO_TIME) --verify --verify-prefill
	$(BIN) bench --target loop --engine mem --size 256MiB --rw randwrite --bs 4k --iodepth 32 --runtime $(DEMO_TIME)

bench-srp: build
	scripts/bench-srp.sh

bench-fio:
	scripts/bench-fio.sh $(BENCH_DIR)

clean:
	rm -rf bin
