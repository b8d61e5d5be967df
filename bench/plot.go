package bench

import (
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/HdrHistogram/hdrhistogram-go"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// PlotFormat is the image format for a plot file's name: "svg" or "png".
func PlotFormat(path string) (string, error) {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".svg":
		return "svg", nil
	case ".png":
		return "png", nil
	default:
		return "", fmt.Errorf("--plot %s: want a .svg or .png file name", path)
	}
}

// WritePlot draws two charts, one above the other: the latency percentile
// distribution of the measured window (HdrHistogram's classic chart: the
// x axis stretches the tail, 90 %, 99 %, 99.9 % ... evenly apart), and IOPS
// over time from the per-second samples. format is "svg" or "png".
func (r *IOReport) WritePlot(w io.Writer, format string) error {
	if r.Histogram() == nil {
		return fmt.Errorf("bench: plot: the report has no histograms (read back from JSON?)")
	}
	lat, err := r.latencyPlot()
	if err != nil {
		return err
	}
	iops, err := r.iopsPlot()
	if err != nil {
		return err
	}
	const width, height = 8 * vg.Inch, 9 * vg.Inch
	var (
		canvas vg.CanvasWriterTo
		dc     draw.Canvas
	)
	switch format {
	case "svg":
		c := vgsvg.New(width, height)
		canvas, dc = c, draw.New(c)
	case "png":
		c := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(96))
		canvas, dc = vgimg.PngCanvas{Canvas: c}, draw.New(c)
	default:
		return fmt.Errorf("bench: plot format %q: want svg or png", format)
	}
	plots := [][]*plot.Plot{{lat}, {iops}}
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadX: vg.Millimeter, PadY: 8 * vg.Millimeter,
		PadTop: 4 * vg.Millimeter, PadBottom: 2 * vg.Millimeter, PadLeft: 2 * vg.Millimeter, PadRight: 6 * vg.Millimeter}
	cs := plot.Align(plots, tiles, dc)
	lat.Draw(cs[0][0])
	iops.Draw(cs[1][0])
	if _, err := canvas.WriteTo(w); err != nil {
		return fmt.Errorf("bench: plot: %w", err)
	}
	return nil
}

func (r *IOReport) title() string {
	o := r.Options
	return fmt.Sprintf("usrpt bench rw=%s bs=%s iodepth=%d jobs=%d engine=%s", o.RW, isize(uint64(o.BS)), o.IODepth, o.Jobs, r.Env.Engine.Name)
}

func (r *IOReport) latencyPlot() (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = r.title() + " — latency by percentile"
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "latency (µs)"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = percentileTicks{}
	// Log latency too: a microsecond median and a millisecond tail both
	// stay readable.
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = relabel{plot.LogTicks{}, func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }}
	p.Legend.Top = true
	p.Legend.Left = true
	lines := []any{"all", percentilePoints(r.Histogram())}
	if r.Options.RW == "randrw" || r.Options.RW == "rw" {
		lines = append(lines, "read", percentilePoints(r.DirHistogram(false)), "write", percentilePoints(r.DirHistogram(true)))
	}
	if err := plotutil.AddLinePoints(p, lines...); err != nil {
		return nil, fmt.Errorf("bench: plot: %w", err)
	}
	p.Add(plotter.NewGrid())
	return p, nil
}

// percentilePoints maps the distribution onto x = 1/(1-q): 1 at 0 %, 10 at
// 90 %, 100 at 99 %, and so on until the count runs out of resolution, then
// the maximum.
func percentilePoints(h *hdrhistogram.Histogram) plotter.XYs {
	n := h.TotalCount()
	if n == 0 {
		return plotter.XYs{{X: 1, Y: 0}}
	}
	var pts plotter.XYs
	for i := 0; ; i++ {
		x := math.Pow(10, float64(i)/20) // 20 points per decade
		if x > float64(n) || x > 1e7 {
			break
		}
		q := 100 * (1 - 1/x)
		pts = append(pts, plotter.XY{X: x, Y: usecPos(h.ValueAtQuantile(q))})
	}
	pts = append(pts, plotter.XY{X: max(float64(n), pts[len(pts)-1].X*1.01), Y: usecPos(h.Max())})
	return pts
}

// usecPos is ns in µs, at least 1 ns: a log axis has no zero.
func usecPos(ns int64) float64 { return float64(max(ns, 1)) / 1e3 }

// relabel keeps a Ticker's ticks and rewrites their labels.
type relabel struct {
	plot.Ticker
	f func(float64) string
}

func (r relabel) Ticks(lo, hi float64) []plot.Tick {
	ts := r.Ticker.Ticks(lo, hi)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = r.f(ts[i].Value)
		}
	}
	return ts
}

// percentileTicks labels the 1/(1-q) axis in percent.
type percentileTicks struct{}

func (percentileTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for x := 1.0; x <= hi*10; x *= 10 {
		label := "0%"
		if x > 1 {
			label = strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.6f", 100*(1-1/x)), "0"), ".") + "%"
		}
		ts = append(ts, plot.Tick{Value: x, Label: label})
		for k := 2.0; k < 10; k++ {
			ts = append(ts, plot.Tick{Value: x * k})
		}
	}
	return ts
}

func (r *IOReport) iopsPlot() (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "IOPS over time"
	p.X.Label.Text = "seconds into the measured window"
	p.Y.Label.Text = "IOPS"
	p.Y.Min = 0
	p.X.Min = 0
	p.Y.Tick.Marker = relabel{plot.DefaultTicks{}, kfmt}
	samples := r.Samples
	if len(samples) == 0 {
		// Shorter than one sampling interval: the run's average is the
		// only point there is.
		t := r.Total
		samples = []Sample{{T: float64(t.RuntimeNs) / 1e9, IOPS: t.IOPS}}
		if t.Read != nil {
			samples[0].ReadIOPS = t.Read.IOPS
		}
		if t.Write != nil {
			samples[0].WriteIOPS = t.Write.IOPS
		}
	}
	series := func(f func(Sample) float64) plotter.XYs {
		xy := make(plotter.XYs, len(samples))
		for i, s := range samples {
			xy[i] = plotter.XY{X: s.T, Y: f(s)}
		}
		return xy
	}
	lines := []any{"all", series(func(s Sample) float64 { return s.IOPS })}
	if r.Options.RW == "randrw" || r.Options.RW == "rw" {
		lines = append(lines,
			"read", series(func(s Sample) float64 { return s.ReadIOPS }),
			"write", series(func(s Sample) float64 { return s.WriteIOPS }))
	}
	if err := plotutil.AddLinePoints(p, lines...); err != nil {
		return nil, fmt.Errorf("bench: plot: %w", err)
	}
	p.Add(plotter.NewGrid())
	return p, nil
}
