// Package gcheadroom gives the garbage collector a floor of free heap to grow into, so a
// process whose live heap is small does not collect every few megabytes.
//
// Go's default (GOGC=100) sets the next collection at about twice the live heap, and at
// least 4 MiB. The tap keeps about 1 MiB live and allocates about 14 KiB a call, so by default it
// collects every ~200 calls, and the calls a collection overlaps are its slowest percent: the
// p99 the tap adds. With a headroom H the goal is live + max(live, H): a small heap collects
// every H of allocation, a large one (the detector's baselines in `mcpwatch run`) as by
// default. While the live heap is steady this costs at most H of memory; the percent is
// capped at 400, so a heap that grows faster than the percent follows it is at most five
// times its live size, where Go's default allows twice.
//
// An operator's GOGC setting is left alone; GOMEMLIMIT still caps the heap as usual.
package gcheadroom
