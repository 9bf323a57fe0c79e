# Peak RSS of one node (pid p) from scripts/bench.sh's samples ("unix-seconds pid kB anon-kB
# file-kB", every 10 s followed by the store's block-cache, memtable and table-reader
# bytes): over all runs, and when the overload ran (ran > 0), in its first minute after the
# load tool's setup (from s) and in its last minute (up to e). Each window prints the peak
# in all with the anonymous and file-mapped parts of that same sample, then, from the
# window's last store sample, what RocksDB holds (cache + memtables + table readers) and
# the rest of the anonymous memory. "-" for a window without samples.
function mib(kb) { return sprintf("%.0f", kb / 1024) }
function show(w) {
  if (!(w in rss)) return "-"
  text = sprintf("%s MiB (%s + %s)", mib(rss[w]), mib(anon[w]), mib(file[w]))
  if (w in cache) text = text sprintf(", store %s + %s + %s, rest %s", \
    mib(cache[w] / 1024), mib(mem[w] / 1024), mib(readers[w] / 1024), \
    mib(sanon[w] - (cache[w] + mem[w] + readers[w]) / 1024))
  return text
}
function take(w) {
  if ($3 > rss[w]) { rss[w] = $3; anon[w] = $4; file[w] = $5 }
  if (NF >= 8) { cache[w] = $6; mem[w] = $7; readers[w] = $8; sanon[w] = $4 }
}
$2 == p { take("all") }
$2 == p && $1 >= s && $1 < s + 60 { take("first") }
$2 == p && $1 >= e - 60 && $1 <= e { take("last") }
END {
  if (ran > 0) printf "pid %s: %s; %s; %s\n", p, show("all"), show("first"), show("last")
  else printf "pid %s: %s; no overload run\n", p, show("all")
}
