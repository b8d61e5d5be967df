package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// quick are flags for a small, fast run that keeps a 2-CPU machine usable.
var quick = []string{"bench", "--engine", "null", "--size", "64m", "--idle", "adaptive", "--hugepages", "small"}

func benchRun(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	return run(t, append(append([]string{}, quick...), args...)...)
}

func TestBenchJSON(t *testing.T) {
	out, stderr, err := benchRun(t, "--rw", "randread", "--iodepth", "4", "--jobs", "2", "--ios", "1500", "--output-format", "json")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if stderr != "" {
		t.Errorf("stderr not empty (no progress line off a terminal): %q", stderr)
	}
	var rep struct {
		Total struct {
			IOs        uint64             `json:"ios"`
			IOPS       float64            `json:"iops"`
			BWBytes    float64            `json:"bw_bytes"`
			Errors     *uint64            `json:"errors"`
			CPUNsPerIO float64            `json:"cpu_ns_per_io"`
			Lat        map[string]float64 `json:"lat_ns"`
		} `json:"total"`
		Jobs []struct {
			Job, Reactor, CPU int
			IOs               uint64 `json:"ios"`
		} `json:"jobs"`
		CPU []struct {
			Reactor int      `json:"reactor"`
			BusyPct *float64 `json:"busy_pct"`
		} `json:"cpu"`
		Env     map[string]any `json:"env"`
		Options map[string]any `json:"options"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Total.IOs != 3000 || rep.Total.Errors == nil || *rep.Total.Errors != 0 || rep.Total.IOPS <= 0 || rep.Total.BWBytes <= 0 {
		t.Errorf("total %+v", rep.Total)
	}
	for _, k := range []string{"min", "mean", "max", "stddev", "p1", "p50", "p99", "p999", "p9999"} {
		if _, ok := rep.Total.Lat[k]; !ok {
			t.Errorf("total.lat_ns lacks %s", k)
		}
	}
	if len(rep.Jobs) != 2 || rep.Jobs[1].Job != 1 || rep.Jobs[1].IOs != 1500 {
		t.Errorf("jobs %+v", rep.Jobs)
	}
	if len(rep.CPU) != 1 || rep.CPU[0].BusyPct == nil {
		t.Errorf("cpu %+v (default --cores is the first online CPU)", rep.CPU)
	}
	if rep.Options["engine"] != "null" || rep.Options["bs"] != float64(4096) || rep.Options["rw"] != "randread" {
		t.Errorf("options %v", rep.Options)
	}
	for _, k := range []string{"cpu_model", "kernel", "go_version", "engine"} {
		if _, ok := rep.Env[k]; !ok {
			t.Errorf("env lacks %s", k)
		}
	}
}

func TestBenchTextFilesAndLogs(t *testing.T) {
	dir := t.TempDir()
	report, hlog, plot := filepath.Join(dir, "r.txt"), filepath.Join(dir, "lat.hlog"), filepath.Join(dir, "lat.svg")
	out, stderr, err := benchRun(t, "--rw", "randrw", "--rwmixread", "70", "--runtime", "0.3", "--sample-every", "100ms",
		"--output", report, "--hist-log", hlog, "--plot", plot)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if out != "" {
		t.Errorf("--output given, yet stdout has %q", out)
	}
	text, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"rw=randrw (rwmixread=70)", " read: IOPS=", "write: IOPS=", "both: IOPS=",
		"clat percentiles (usec):", "99.99th=[", "busy=", "ns of CPU per I/O", "engine: null"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
	f, err := os.Open(hlog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd := hdrhistogram.NewHistogramLogReader(f)
	n := 0
	for {
		h, err := rd.NextIntervalHistogram()
		if err != nil {
			t.Fatal(err)
		}
		if h == nil {
			break
		}
		n++
	}
	if n < 3 {
		t.Errorf("%d histograms in the interval log", n)
	}
	svg, err := os.ReadFile(plot)
	if err != nil || !bytes.Contains(svg[:min(len(svg), 200)], []byte("<svg")) {
		t.Errorf("plot: %v, starts %q", err, svg[:min(len(svg), 60)])
	}
}

func TestBenchVerifyOnMem(t *testing.T) {
	out, stderr, err := run(t, "bench", "--engine", "mem", "--size", "1m", "--rw", "randrw", "--iodepth", "8",
		"--ios", "2000", "--verify", "--verify-prefill", "--idle", "adaptive", "--hugepages", "small", "-o", "json")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var rep struct {
		Verify struct {
			Checked, Mismatches uint64
		} `json:"verify"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Verify.Checked < 1000 || rep.Verify.Mismatches != 0 {
		t.Errorf("verify %+v", rep.Verify)
	}
}

func TestBenchFlagErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--bs", "1000"}, "multiple of 512"},
		{[]string{"--size", "2k", "--bs", "4k"}, "smaller than --bs"},
		{[]string{"--rw", "trim"}, "--rw"},
		{[]string{"--rwmixread", "101", "--rw", "randrw"}, "--rwmixread"},
		{[]string{"--rwmixread", "-1"}, "--rwmixread"},
		{[]string{"--iodepth", "0"}, "--iodepth"},
		{[]string{"--jobs", "0"}, "--jobs"},
		{[]string{"--bs", "4q"}, "--bs"},
		{[]string{"--size", ""}, "--size"},
		{[]string{"--output-format", "xml"}, "--output-format"},
		{[]string{"--plot", "x.pdf"}, ".svg or .png"},
		{[]string{"--cores", "0x0"}, "--cores"},
		{[]string{"--idle", "nap"}, "--idle"},
		{[]string{"--hugepages", "giant"}, "--hugepages"},
		{[]string{"--verify"}, "null engine"},
		{[]string{"--verify-prefill"}, "--verify-prefill needs --verify"},
		{[]string{"--runtime", "soon"}, "runtime"},
		{[]string{"--engine", "warp"}, "warp"},
		{[]string{"--engine", "uring"}, "uring"}, // no --filename
		{[]string{"stray"}, "stray"},
	}
	for _, tc := range cases {
		_, _, err := benchRun(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one mentioning %q", tc.args, err, tc.want)
		}
	}
	// Buffered I/O takes any block size.
	if _, stderr, err := benchRun(t, "--bs", "1000", "--direct=false", "--ios", "10"); err != nil {
		t.Errorf("--bs 1000 --direct=false: %v\n%s", err, stderr)
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
	}{
		{"4096", 4096}, {"4k", 4096}, {"4K", 4096}, {"4kb", 4096}, {"4KB", 4096}, {"4KiB", 4096}, {"4 KiB", 4096},
		{"1m", 1 << 20}, {"1GiB", 1 << 30}, {"1g", 1 << 30}, {"1.5g", 3 << 29}, {"2t", 2 << 40}, {"512b", 512}, {"512B", 512},
	} {
		got, err := parseSize("--bs", tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "k", "4x", "-1", "4kk", "1.5.5m"} {
		if n, err := parseSize("--bs", bad); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", bad, n)
		}
	}
}

func TestSecondsValue(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{{"10", 10 * time.Second}, {"0.5", 500 * time.Millisecond}, {"1m30s", 90 * time.Second}, {"250ms", 250 * time.Millisecond}} {
		var v secondsValue
		if err := v.Set(tc.in); err != nil || time.Duration(v) != tc.want {
			t.Errorf("Set(%q) = %v, %v; want %v", tc.in, time.Duration(v), err, tc.want)
		}
	}
	for _, bad := range []string{"-1", "-2s", "soon"} {
		var v secondsValue
		if err := v.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
}

func TestIsTerminal(t *testing.T) {
	if isTerminal(&bytes.Buffer{}) {
		t.Error("a buffer is a terminal")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if isTerminal(w) {
		t.Error("a pipe is a terminal")
	}
}

func TestBenchNumjobsAlias(t *testing.T) {
	out, stderr, err := benchRun(t, "--numjobs", "2", "--ios", "100", "-o", "json")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.Contains(out, `"jobs": 2`) {
		t.Errorf("--numjobs 2 not taken as --jobs:\n%s", out)
	}
}

func TestBenchSCSILayer(t *testing.T) {
	out, stderr, err := run(t, "bench", "--engine", "mem", "--size", "64MiB", "--runtime", "1s", "--rw", "randread",
		"--layer", "scsi", "--idle", "adaptive", "--hugepages", "small")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	header, _, _ := strings.Cut(out, "\n")
	if !strings.Contains(header, "layer=scsi (LU 4096-byte blocks, write-through)") || !strings.Contains(out, "errors       : none") {
		t.Errorf("report does not name the scsi layer or has errors:\n%s", out)
	}
	out, stderr, err = run(t, "bench", "--engine", "mem", "--size", "64MiB", "--ios", "2000", "--rw", "randwrite", "--iodepth", "8",
		"--layer", "scsi", "--scsi-wce", "--idle", "adaptive", "--hugepages", "small", "-o", "json")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var rep struct {
		Options struct {
			Layer   string `json:"layer"`
			WCE     bool   `json:"scsi_wce"`
			LBS     int    `json:"scsi_block_size"`
			FUA     *bool  `json:"fua"`
			IODepth int    `json:"iodepth"`
		} `json:"options"`
		Total struct {
			IOs    uint64 `json:"ios"`
			Errors uint64 `json:"errors"`
		} `json:"total"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if o := rep.Options; o.Layer != "scsi" || !o.WCE || o.LBS != 4096 || o.FUA == nil || *o.FUA {
		t.Errorf("options %+v", o)
	}
	if rep.Total.IOs != 2000 || rep.Total.Errors != 0 {
		t.Errorf("total %+v", rep.Total)
	}
	// The plain engine run says so too, for side-by-side comparison.
	out, stderr, err = benchRun(t, "--ios", "100", "--fua", "--rw", "write")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if header, _, _ := strings.Cut(out, "\n"); !strings.Contains(header, "fua=1") || !strings.Contains(header, "layer=engine") {
		t.Errorf("header %q", header)
	}
}

func TestBenchSCSIFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--layer", "srp"}, "--layer"},
		{[]string{"--scsi-wce"}, "--scsi-wce needs --layer scsi"},
		{[]string{"--layer", "scsi", "--bs", "1000", "--direct=false"}, "--layer scsi"},
	} {
		_, _, err := benchRun(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one mentioning %q", tc.args, err, tc.want)
		}
	}
}

// usrpt bench --target loop runs the workload over SRP to an in-process
// target and reports the target's reactors.
func TestBenchTargetLoop(t *testing.T) {
	out, stderr, err := benchRun(t, "--target", "loop", "--engine", "mem", "--size", "8m", "--rw", "randrw",
		"--iodepth", "4", "--ios", "2000", "--verify", "--verify-prefill", "--idle", "busy", "--output-format", "json")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var rep struct {
		Options struct {
			Layer       string `json:"layer"`
			Target      string `json:"target"`
			TargetCores string `json:"target_cores"`
		} `json:"options"`
		Total struct {
			IOs    uint64 `json:"ios"`
			Errors uint64 `json:"errors"`
		} `json:"total"`
		Target *struct {
			BusyNsPerIO float64 `json:"busy_ns_per_io"`
			Reactors    []struct {
				CPU int `json:"cpu"`
			} `json:"reactors"`
		} `json:"target"`
		Verify *struct {
			Checked, Mismatches uint64
		} `json:"verify"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if o := rep.Options; o.Layer != "srp" || o.Target != "loop" || o.TargetCores == "" {
		t.Errorf("options %+v", o)
	}
	if rep.Total.IOs != 2000 || rep.Total.Errors != 0 {
		t.Errorf("total %+v", rep.Total)
	}
	if rep.Target == nil || len(rep.Target.Reactors) != 1 || rep.Target.BusyNsPerIO <= 0 {
		t.Errorf("target %+v", rep.Target)
	}
	if rep.Verify == nil || rep.Verify.Checked == 0 || rep.Verify.Mismatches != 0 {
		t.Errorf("verify %+v", rep.Verify)
	}
}

func TestBenchTargetFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--target-cores", "0"}, "--target-cores needs --target loop"},
		{[]string{"--target", "roce://10.0.0.1:5555"}, "--target"},
		{[]string{"--target", "loop", "--layer", "scsi"}, "leave --layer scsi out"},
		{[]string{"--target", "loop", "--target-cores", "0x100000"}, "--target-cores"},
	} {
		_, _, err := benchRun(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one mentioning %q", tc.args, err, tc.want)
		}
	}
}
