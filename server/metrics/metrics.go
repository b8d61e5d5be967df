// Package metrics exports usrpt serve's counters to Prometheus: a
// collector that reads the server's stats at scrape time — nothing is
// counted per I/O here; the data plane keeps its per-core counters and
// this package only copies them — and an HTTP endpoint serving /metrics.
//
// docs/control.md lists the metrics and their labels.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/usrpt/usrpt/server"
	"github.com/usrpt/usrpt/target"
)

// API is what the collector reads: *server.Server's reporting methods.
type API interface {
	Sessions() []target.SessionInfo
	LUNs() []server.LUNInfo
	Stats() server.Stats
}

var _ API = (*server.Server)(nil)

const ns = "usrpt"

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(ns+"_"+name, help, labels, nil)
}

var (
	lunLabels     = []string{"lun"}
	channelLabels = []string{"session", "channel", "initiator"}
	reactorLabels = []string{"reactor", "cpu"}

	lunCommands   = desc("lun_commands_total", "SCSI commands completed on the LUN.", lunLabels...)
	lunReadBytes  = desc("lun_read_bytes_total", "Bytes read from the LUN (data-in).", lunLabels...)
	lunWriteBytes = desc("lun_write_bytes_total", "Bytes written to the LUN (data-out).", lunLabels...)
	lunErrors     = desc("lun_errors_total", "Commands on the LUN that did not end GOOD.", lunLabels...)
	lunLatency    = desc("lun_latency_seconds", "Command latency on the LUN, receive to completion by the SCSI core, timed per reactor iteration.", lunLabels...)
	lunSize       = desc("lun_size_bytes", "Capacity of the LUN.", append(lunLabels, "backend", "engine")...)

	chCommands   = desc("channel_commands_total", "SRP_CMDs received on the channel.", channelLabels...)
	chTaskMgmt   = desc("channel_task_mgmt_total", "SRP_TSK_MGMTs received on the channel.", channelLabels...)
	chReadBytes  = desc("channel_read_bytes_total", "Data-in bytes sent to the initiator by RDMA WRITE.", channelLabels...)
	chWriteBytes = desc("channel_write_bytes_total", "Data-out bytes received, by RDMA READ or as immediate data.", channelLabels...)
	chCheckCond  = desc("channel_check_conditions_total", "Responses with CHECK CONDITION.", channelLabels...)
	chAborted    = desc("channel_aborted_total", "Commands aborted by task management.", channelLabels...)
	chOverruns   = desc("channel_credit_overruns_total", "Commands sent beyond the credits granted (a protocol violation).", channelLabels...)
	chCredReqs   = desc("channel_cred_reqs_total", "SRP_CRED_REQs sent to return credits without a response.", channelLabels...)
	chProtoErrs  = desc("channel_protocol_errors_total", "Malformed or unexpected information units.", channelLabels...)
	chXportErrs  = desc("channel_transport_errors_total", "Work completions in error, other than flushes.", channelLabels...)
	chBufWaits   = desc("channel_buffer_waits_total", "Commands that waited for a data buffer.", channelLabels...)
	chSendWaits  = desc("channel_send_waits_total", "Responses that waited for send queue slots.", channelLabels...)
	chCredits    = desc("channel_credits", "Credits held by the initiator, as the target counts them.", channelLabels...)

	reactorBusyRatio = desc("reactor_busy_ratio", "Share of the reactor's time in busy iterations since it started; rate(usrpt_reactor_busy_seconds_total) is the current share.", reactorLabels...)
	reactorBusy      = desc("reactor_busy_seconds_total", "Time the reactor spent in iterations that did work.", reactorLabels...)
	reactorIdle      = desc("reactor_idle_seconds_total", "Time the reactor spent in iterations that found nothing to do.", reactorLabels...)
	reactorSleep     = desc("reactor_sleep_seconds_total", "Time the reactor slept under the adaptive idle policy.", reactorLabels...)

	logins        = desc("logins_total", "SRP logins accepted.")
	loginRejects  = desc("login_rejects_total", "SRP logins rejected, by reason.", "reason")
	sessions      = desc("sessions", "Logged-in I_T nexuses.")
	channels      = desc("channels", "Open channels.")
	totalCommands = desc("commands_total", "SRP_CMDs received on every channel, live and gone.")
	totalOverruns = desc("credit_overruns_total", "Commands beyond the granted credits on every channel, live and gone.")
	totalAborted  = desc("aborted_total", "Commands aborted on every channel, live and gone.")
	tmfDropped    = desc("tmf_parts_dropped_total", "Task management parts for a reactor that could not be delivered.")
	uptime        = desc("uptime_seconds", "Time since usrpt serve started.")

	all = []*prometheus.Desc{
		lunCommands, lunReadBytes, lunWriteBytes, lunErrors, lunLatency, lunSize,
		chCommands, chTaskMgmt, chReadBytes, chWriteBytes, chCheckCond, chAborted, chOverruns, chCredReqs,
		chProtoErrs, chXportErrs, chBufWaits, chSendWaits, chCredits,
		reactorBusyRatio, reactorBusy, reactorIdle, reactorSleep,
		logins, loginRejects, sessions, channels, totalCommands, totalOverruns, totalAborted, tmfDropped, uptime,
	}
)

// latencyBoundsSeconds are the histogram's upper bounds, from target's
// buckets; the last bucket (everything longer) is Prometheus's +Inf.
var latencyBoundsSeconds = func() []float64 {
	ns := target.LatencyBounds()
	b := make([]float64, target.LatencyBuckets-1)
	for i := range b {
		b[i] = float64(ns[i]) / 1e9
	}
	return b
}()

// Collector is a prometheus.Collector reading an API at each scrape.
type Collector struct{ api API }

// NewCollector returns a collector of api's metrics.
func NewCollector(api API) *Collector { return &Collector{api: api} }

// Describe sends every metric's description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range all {
		ch <- d
	}
}

// Collect reads the stats, sessions and LUNs once and sends the metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.api.Stats()
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}

	for n, l := range st.LUNs {
		lun := strconv.Itoa(int(n))
		counter(lunCommands, float64(l.Commands), lun)
		counter(lunReadBytes, float64(l.ReadBytes), lun)
		counter(lunWriteBytes, float64(l.WriteBytes), lun)
		counter(lunErrors, float64(l.Errors), lun)
		ch <- latencyHistogram(l, lun)
	}
	for _, l := range c.api.LUNs() {
		gauge(lunSize, float64(l.SizeBytes), strconv.Itoa(int(l.Number)), l.Backend, l.Engine)
	}

	for _, s := range c.api.Sessions() {
		for _, chn := range s.Channels {
			lv := []string{strconv.FormatUint(s.ID, 10), strconv.FormatUint(chn.ID, 10), s.InitiatorID}
			x := chn.Stats
			counter(chCommands, float64(x.Commands), lv...)
			counter(chTaskMgmt, float64(x.TaskMgmt), lv...)
			counter(chReadBytes, float64(x.ReadBytes), lv...)
			counter(chWriteBytes, float64(x.WriteBytes), lv...)
			counter(chCheckCond, float64(x.CheckCond), lv...)
			counter(chAborted, float64(x.Aborted), lv...)
			counter(chOverruns, float64(x.CreditOverrun), lv...)
			counter(chCredReqs, float64(x.CredReqs), lv...)
			counter(chProtoErrs, float64(x.ProtocolErrs), lv...)
			counter(chXportErrs, float64(x.TransportErrs), lv...)
			counter(chBufWaits, float64(x.BufferWaits), lv...)
			counter(chSendWaits, float64(x.SendWaits), lv...)
			gauge(chCredits, float64(chn.Credits), lv...)
		}
	}

	for _, r := range st.Reactors {
		lv := []string{strconv.Itoa(r.ID), strconv.Itoa(r.CPU)}
		ratio := 0.0
		if t := r.Busy + r.Idle; t > 0 {
			ratio = float64(r.Busy) / float64(t)
		}
		gauge(reactorBusyRatio, ratio, lv...)
		counter(reactorBusy, r.Busy.Seconds(), lv...)
		counter(reactorIdle, r.Idle.Seconds(), lv...)
		counter(reactorSleep, r.Sleep.Seconds(), lv...)
	}

	counter(logins, float64(st.Logins))
	for reason, n := range st.Rejects {
		counter(loginRejects, float64(n), reason)
	}
	gauge(sessions, float64(st.Sessions))
	gauge(channels, float64(st.Channels))
	counter(totalCommands, float64(st.Total.Commands))
	counter(totalOverruns, float64(st.Total.CreditOverrun))
	counter(totalAborted, float64(st.Total.Aborted))
	counter(tmfDropped, float64(st.TMFDropped))
	gauge(uptime, st.Uptime.Seconds())
}

// latencyHistogram turns target's per-bucket counts into Prometheus's
// cumulative ones.
func latencyHistogram(l target.LUNStats, lun string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(latencyBoundsSeconds))
	var cum uint64
	for i, b := range latencyBoundsSeconds {
		cum += l.Latency[i]
		buckets[b] = cum
	}
	count := cum + l.Latency[target.LatencyBuckets-1]
	m, err := prometheus.NewConstHistogram(lunLatency, count, float64(l.LatencyNs)/1e9, buckets, lun)
	if err != nil {
		return prometheus.NewInvalidMetric(lunLatency, err)
	}
	return m
}

// NewRegistry returns a registry with api's collector, the Go runtime's
// and the process's.
func NewRegistry(api API) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		NewCollector(api),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// Handler serves api's metrics in the Prometheus exposition formats.
func Handler(api API) http.Handler {
	reg := NewRegistry(api)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(slog.Default().With("component", "metrics").Handler(), slog.LevelError),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}

// Serve serves /metrics on addr (":9456") until ctx ends or stop is
// called; stop waits up to 5 s for scrapes in progress. The address is
// bound before Serve returns, so a busy port is its error.
func Serve(ctx context.Context, addr string, api API) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", Handler(api))
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprintln(w, "usrpt: metrics at /metrics")
	})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(slog.Default().With("component", "metrics").Handler(), slog.LevelWarn),
	}
	log := slog.Default().With("component", "metrics")
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "err", err)
		}
	}()
	log.Info("metrics listening", "addr", ln.Addr().String())
	done := make(chan struct{})
	var once sync.Once
	stopOnce := func() {
		once.Do(func() {
			close(done)
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		})
	}
	go func() {
		select {
		case <-ctx.Done():
			stopOnce()
		case <-done:
		}
	}()
	return stopOnce, nil
}
