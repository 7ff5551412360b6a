# Plot the per-step values written by `export csv steps FILE`:
#   gnuplot -e "file='steps.csv'" examples/plot_losses.gp     (writes steps.png)
if (!exists("file")) file = 'steps.csv'
set datafile separator ','
set key autotitle columnhead
set terminal pngcairo size 900,600
set output file[1:strlen(file)-4] . '.png'
set multiplot layout 2,1 title 'RMI training of one architecture'
set xlabel 'step'
set ylabel 'loss'
plot file using 1:2 with lines lw 2, '' using 1:3 with lines lw 2
set ylabel 'CKA'
set yrange [0:1]
plot file using 1:4 with lines lw 2, '' using 1:5 with lines lw 2, '' using 1:6 with lines lw 2
unset multiplot
