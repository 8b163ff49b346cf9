package web

import (
	"fmt"
	"html"
	"html/template"
	"strings"
	"time"
)

// barChart draws values as an SVG bar chart, one bar a label, scaled to
// the largest value, with each bar's value in its title (a tooltip) and
// the axis maximum written with format. Drawn on the server: no script,
// no library.
func barChart(title string, labels []string, values []int64, format func(int64) string) template.HTML {
	const w, h, top, bottom, left = 640, 200, 16, 28, 8
	var peak int64
	for _, v := range values {
		peak = max(peak, v)
	}
	n := max(len(values), 1)
	slot := float64(w-left) / float64(n)
	bar := slot * 0.7
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s">`, w, h, html.EscapeString(title))
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`, left, h-bottom, w, h-bottom)
	fmt.Fprintf(&b, `<text class="peak" x="%d" y="%d">%s</text>`, left, top-4, html.EscapeString(format(peak)))
	for i, v := range values {
		height := 0.0
		if peak > 0 {
			height = float64(v) / float64(peak) * float64(h-top-bottom)
		}
		x := float64(left) + slot*float64(i) + (slot-bar)/2
		label := ""
		if i < len(labels) {
			label = labels[i]
		}
		fmt.Fprintf(&b, `<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s: %s</title></rect>`,
			x, float64(h-bottom)-height, bar, height, html.EscapeString(label), html.EscapeString(format(v)))
		// Month labels ("Jan 2026" or "2026-01") are drawn as the month.
		short := label
		if t, err := time.Parse("2006-01", label); err == nil {
			short = t.Format("Jan")
		} else if len(short) > 3 {
			short = short[:3]
		}
		fmt.Fprintf(&b, `<text class="label" x="%.1f" y="%d">%s</text>`, x+bar/2, h-bottom+16, html.EscapeString(short))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
