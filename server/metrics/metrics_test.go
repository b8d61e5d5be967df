package metrics

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/usrpt/usrpt/server/control/controltest"
)

func TestLUNMetrics(t *testing.T) {
	c := NewCollector(controltest.New())
	// LUN 0: 600 commands ≤ 1.024 µs, 400 ≤ 2.048 µs; LUN 1: 500 above
	// the last bound (controltest.Sample).
	want := `
# HELP usrpt_lun_commands_total SCSI commands completed on the LUN.
# TYPE usrpt_lun_commands_total counter
usrpt_lun_commands_total{lun="0"} 1000
usrpt_lun_commands_total{lun="1"} 500
# HELP usrpt_lun_errors_total Commands on the LUN that did not end GOOD.
# TYPE usrpt_lun_errors_total counter
usrpt_lun_errors_total{lun="0"} 2
usrpt_lun_errors_total{lun="1"} 0
# HELP usrpt_lun_read_bytes_total Bytes read from the LUN (data-in).
# TYPE usrpt_lun_read_bytes_total counter
usrpt_lun_read_bytes_total{lun="0"} 4.194304e+06
usrpt_lun_read_bytes_total{lun="1"} 2.097152e+06
# HELP usrpt_lun_size_bytes Capacity of the LUN.
# TYPE usrpt_lun_size_bytes gauge
usrpt_lun_size_bytes{backend="mem",engine="mem",lun="0"} 2.68435456e+08
usrpt_lun_size_bytes{backend="uring",engine="uring",lun="1"} 1.073741824e+09
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"usrpt_lun_commands_total", "usrpt_lun_errors_total", "usrpt_lun_read_bytes_total", "usrpt_lun_size_bytes"); err != nil {
		t.Error(err)
	}
}

func TestLatencyHistogram(t *testing.T) {
	body := scrape(t)
	for _, want := range []string{
		`usrpt_lun_latency_seconds_bucket{lun="0",le="1.024e-06"} 600`,
		`usrpt_lun_latency_seconds_bucket{lun="0",le="2.048e-06"} 1000`,
		`usrpt_lun_latency_seconds_bucket{lun="0",le="4.294967296"} 1000`,
		`usrpt_lun_latency_seconds_bucket{lun="0",le="+Inf"} 1000`,
		`usrpt_lun_latency_seconds_sum{lun="0"} 0.0015`,
		`usrpt_lun_latency_seconds_count{lun="0"} 1000`,
		`usrpt_lun_latency_seconds_bucket{lun="1",le="4.294967296"} 0`,
		`usrpt_lun_latency_seconds_bucket{lun="1",le="+Inf"} 500`,
		`usrpt_lun_latency_seconds_count{lun="1"} 500`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if n := strings.Count(body, `usrpt_lun_latency_seconds_bucket{lun="0"`); n != 24 {
		t.Errorf("%d buckets, want 23 bounds and +Inf", n)
	}
}

func TestChannelReactorAndTargetMetrics(t *testing.T) {
	body := scrape(t)
	ch1 := `{channel="1",initiator="0xfe800000000000000002c90300a1b2c3",session="7"}`
	ch2 := `{channel="2",initiator="0xfe800000000000000002c90300a1b2c3",session="7"}`
	for _, want := range []string{
		"usrpt_channel_commands_total" + ch1 + " 1000",
		"usrpt_channel_commands_total" + ch2 + " 500",
		"usrpt_channel_read_bytes_total" + ch1 + " 4.194304e+06",
		"usrpt_channel_write_bytes_total" + ch1 + " 1.048576e+06",
		"usrpt_channel_check_conditions_total" + ch1 + " 2",
		"usrpt_channel_aborted_total" + ch2 + " 1",
		"usrpt_channel_credit_overruns_total" + ch1 + " 1",
		"usrpt_channel_cred_reqs_total" + ch1 + " 5",
		"usrpt_channel_protocol_errors_total" + ch2 + " 1",
		"usrpt_channel_transport_errors_total" + ch2 + " 1",
		"usrpt_channel_buffer_waits_total" + ch1 + " 3",
		"usrpt_channel_send_waits_total" + ch1 + " 4",
		"usrpt_channel_credits" + ch1 + " 31",
		`usrpt_reactor_busy_ratio{cpu="2",reactor="0"} 0.75`,
		`usrpt_reactor_busy_ratio{cpu="3",reactor="1"} 0.5`,
		`usrpt_reactor_busy_seconds_total{cpu="2",reactor="0"} 3`,
		`usrpt_reactor_idle_seconds_total{cpu="2",reactor="0"} 1`,
		"usrpt_logins_total 3",
		`usrpt_login_rejects_total{reason="acl"} 1`,
		`usrpt_login_rejects_total{reason="channel_limit"} 1`,
		"usrpt_sessions 1",
		"usrpt_channels 2",
		"usrpt_commands_total 1500",
		"usrpt_credit_overruns_total 1",
		"usrpt_uptime_seconds 3600",
		// The Go runtime's and the process's collectors.
		"go_goroutines ",
		"process_cpu_seconds_total ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	problems, err := testutil.GatherAndLint(NewRegistry(controltest.New()))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "usrpt_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
}

func TestPanickingAPIFailsTheScrapeOnly(t *testing.T) {
	fake := controltest.New()
	srv := httptest.NewServer(Handler(fake))
	defer srv.Close()
	fake.SetPanic(true)
	// promhttp recovers nothing: the collector's panic must not kill the
	// process. net/http recovers a handler's panic and drops the
	// connection, so the scrape fails and the next one works.
	if resp, err := http.Get(srv.URL); err == nil {
		resp.Body.Close()
	}
	fake.SetPanic(false)
	if b := get(t, srv.URL); !strings.Contains(b, "usrpt_logins_total 3") {
		t.Error("scrape after a failed one")
	}
}

func TestServe(t *testing.T) {
	// Find a free port, then serve on it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(t.Context())
	stop, err := Serve(ctx, addr, controltest.New())
	if err != nil {
		t.Fatal(err)
	}
	if b := get(t, "http://"+addr+"/metrics"); !strings.Contains(b, "usrpt_sessions 1") {
		t.Errorf("/metrics:\n%s", b)
	}
	if _, err := Serve(t.Context(), addr, controltest.New()); err == nil {
		t.Error("a second Serve on a bound address succeeded")
	}
	cancel()
	stop() // after the context: must not block or panic
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still listening after stop")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func scrape(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(Handler(controltest.New()))
	defer srv.Close()
	return get(t, srv.URL)
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
	}
	return string(b)
}
