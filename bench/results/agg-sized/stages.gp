set terminal pngcairo size 900,560 noenhanced
set output 'stages.png'
set title 'trove cpu (2 OpenMP threads), emit update: time per batch by stage'
set bmargin 5
set xlabel 'offered rate (events/s)' offset 0,-1
set ylabel 'ms per batch'
set style data histograms
set style histogram rowstacked
set style fill solid 0.8 border -1
set boxwidth 0.7
set grid ytics
set key left top
plot 'stages.dat' using 2:xtic(1) title 'decode (generate)', \
     '' using 3 title 'h2d', '' using 4 title 'kernels', \
     '' using 5 title 'extract', '' using 6 title 'encode', \
     '' using 7 title 'sink'
