set terminal pngcairo size 900,560 noenhanced
set output 'timeline.png'
set title "trove cpu (2 OpenMP threads), emit update: latency of each batch's oldest event during the run"
set xlabel 'scheduled time (s)'
set ylabel 'latency (ms)'
set logscale y
set grid
set key outside right title 'offered ev/s'
titles = '250k 500k 625k 688k 750k 1M'
set xrange [0:*]
plot for [i=0:5] 'timeline.dat' index i using 1:2 with lines lc i+1 title word(titles, i+1), \
     for [i=0:5] 'rebuilds.dat' index i using 1:2 with points pt 9 ps 1.2 lc i+1 title (i == 0 ? 'table rebuild' : '')
