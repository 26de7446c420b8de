# Bar chart of a fio_bench.sh run. Called by the script as
#   gnuplot -e "mibfile='...'; opsfile='...'; outfile='...'; title='...';
#               nmib=N; nops=N; pmib=N; pops=N; cmib='...'; cops='...'" plot.gnuplot
# Each data file: a header line ("job" and one quoted name per path), then
# one line per job: its quoted name and one figure per path ("?" = none).
# nmib / nops: jobs (lines) in each file; pmib / pops: paths (columns) in it;
# cmib / cops: one colour per path column ("#rrggbb" words), so that a path
# has the same colour in both panels.
# Top panel: MiB/s of the sequential jobs; bottom panel: IOPS / files/s of
# the random-read and small-file jobs, on a log scale.
set terminal pngcairo size 1400,1000 font "DejaVu Sans,11" noenhanced
set output outfile
set datafile missing "?"
set key autotitle columnheader  # the header line is never data
set style fill solid 0.85 border -1
set key outside top center horizontal
set grid ytics
set xtics nomirror scale 0
set ytics nomirror

# Bars are drawn as boxes at computed positions (not with the histogram
# style) so that the value labels can use the same x: job j (0-based line)
# at x = j, its n paths side by side, each 1/(n + 1) wide.
barx(j, i, n) = j + (i - 2 - (n - 1) / 2.0) / (n + 1.0)
fmt(v) = v >= 100 ? sprintf("%.0f", v) : sprintf("%.1f", v)
panels = (nmib > 0) + (nops > 0)
set multiplot layout panels, 1

if (nmib > 0) {
  set ylabel "MiB/s"
  set title title . "\nsequential: bs=1M, psync (engine cp: floatmount cp)"
  set xrange [-0.6:nmib - 0.4]
  set yrange [0:*]
  set offsets 0, 0, graph 0.12, 0
  set boxwidth 1.0 / (pmib + 1.0)
  plot mibfile using 0:(NaN):xtic(1) with boxes notitle, \
       for [i=2:pmib+1] mibfile using (barx($0, i, pmib)):i with boxes lc rgb word(cmib, i - 1) title columnheader(i), \
       for [i=2:pmib+1] mibfile using (barx($0, i, pmib)):i:(fmt(column(i))) \
         with labels rotate by 90 left offset 0,0.3 font ",9" notitle
}
if (nops > 0) {
  set ylabel "IOPS / files per second (log)"
  set title (nmib > 0 ? "" : title . "\n") . "4 KiB random read (IOPS, queue depth 1 per job; x16: 16 jobs) and small files (files/s)"
  set xrange [-0.6:nops - 0.4]
  set logscale y
  set yrange [10:*]
  set offsets 0, 0, graph 0.15, 0
  set ytics format "%.0f"
  set boxwidth 1.0 / (pops + 1.0)
  plot opsfile using 0:(NaN):xtic(1) with boxes notitle, \
       for [i=2:pops+1] opsfile using (barx($0, i, pops)):i with boxes lc rgb word(cops, i - 1) title columnheader(i), \
       for [i=2:pops+1] opsfile using (barx($0, i, pops)):i:(fmt(column(i))) \
         with labels rotate by 90 left offset 0,0.3 font ",9" notitle
}
unset multiplot
