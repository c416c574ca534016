set terminal pngcairo size 900,560 noenhanced
set output 'latency.png'
set title 'trove cpu (2 OpenMP threads), emit update: open-loop latency vs offered rate'
set xlabel 'offered rate (M events/s)'
set ylabel 'latency (ms)'
set logscale y
set grid
set key left top
set arrow from graph 0, first 250 to graph 1, first 250 nohead dt 2 lc rgb 'red'
set label 'p99 bound 250 ms' at graph 0.02, first 250 offset 0,0.6 tc rgb 'red'
plot 'latency.dat' using 1:2 with linespoints title 'p50', \
     '' using 1:3 with linespoints title 'p90', \
     '' using 1:4 with linespoints lw 2 title 'p99', \
     '' using 1:5 with linespoints title 'p99.9', \
     '' using 1:6 with linespoints title 'max'
