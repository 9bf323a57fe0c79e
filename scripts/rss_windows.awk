# Peak RSS of one node (pid p) from scripts/bench.sh's samples ("unix-seconds pid kB"):
# over all runs, and when the overload ran (ran > 0), in its first minute after the load
# tool's setup (from s) and in its last minute (up to e). "-" for a window without samples.
function mib(kb) { return kb ? sprintf("%.0f MiB", kb / 1024) : "-" }
$2 == p && $3 > all { all = $3 }
$2 == p && $1 >= s && $1 < s + 60 && $3 > first { first = $3 }
$2 == p && $1 >= e - 60 && $1 <= e && $3 > last { last = $3 }
END {
  if (ran > 0) printf "pid %s: %s; %s; %s\n", p, mib(all), mib(first), mib(last)
  else printf "pid %s: %s; no overload run\n", p, mib(all)
}
