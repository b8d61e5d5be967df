package bench

import (
	"fmt"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// The interval log is HdrHistogram's standard log (format 1.3), readable by
// HistogramLogProcessor and hdrhistogram-go's HistogramLogReader: one
// untagged interval per second with every completion of the measured window
// in nanoseconds, and for mixed workloads the same interval split into
// Tag=read and Tag=write lines. Timestamps are seconds since the StartTime
// header (the start of the measured window).

func (r *runner) startLog() error {
	w := hdrhistogram.NewHistogramLogWriter(r.cfg.HistLog)
	startMs := r.startWall.UnixMilli()
	w.SetBaseTime(startMs)
	err := w.OutputLogFormatVersion()
	if err == nil {
		err = w.OutputComment(fmt.Sprintf("[usrpt bench: rw=%v bs=%d iodepth=%d jobs=%d engine=%s; latency in ns, completion minus submission]",
			r.cfg.RW, r.cfg.BlockSize, r.cfg.IODepth, r.cfg.Jobs, r.info.Engine))
	}
	if err == nil {
		err = w.OutputStartTime(startMs)
	}
	if err == nil {
		err = w.OutputLegend()
	}
	if err != nil {
		return fmt.Errorf("bench: hist-log: %w", err)
	}
	r.hlog = w
	r.lastLog = r.startWall
	for i := range r.logIntv {
		r.logIntv[i] = newHist()
	}
	return nil
}

// logInterval takes every job's finished interval, folds it into the job's
// totals and writes it to the log as the interval [lastLog, now).
func (r *runner) logInterval(now time.Time) error {
	if err := r.swapIntervals(); err != nil {
		return err
	}
	all := r.logIntv[numDirs]
	for _, j := range r.jobs {
		for d, h := range j.spare {
			if h == nil {
				continue
			}
			if h.TotalCount() > 0 {
				j.cum[d].Merge(h)
				r.logIntv[d].Merge(h)
				all.Merge(h)
			}
			h.Reset()
		}
	}
	start, end := r.lastLog.UnixMilli(), now.UnixMilli()
	r.lastLog = now
	hs, tags := []*hdrhistogram.Histogram{all}, []string{""}
	if r.cfg.RW.Mixed() {
		hs = append(hs, r.logIntv[dirRead], r.logIntv[dirWrite])
		tags = append(tags, "read", "write")
	}
	for k, h := range hs {
		h.SetStartTimeMs(start)
		h.SetEndTimeMs(end)
		h.SetTag(tags[k])
		if err := r.hlog.OutputIntervalHistogram(h); err != nil {
			return fmt.Errorf("bench: hist-log: %w", err)
		}
	}
	for _, h := range r.logIntv {
		h.Reset()
	}
	return nil
}
