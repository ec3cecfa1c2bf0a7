// Command gomaxprocs-server is a user-style Go HTTP service for throttlebench scenarios:
// every GET costs a fixed amount of CPU, split over goroutines that run in parallel, the
// way a fork-join handler or a worker pool sized by runtime.GOMAXPROCS(0) splits its
// work, and may allocate garbage and hold a live heap, so the Go garbage collector's
// parallel marking runs too.
//
//	gomaxprocs-server -port PORT [-work 30ms] [-fanout 0] [-alloc 0] [-live 0]
//
// The CPU cost is a number of loop iterations calibrated against this thread's CPU clock
// at start (so a throttled or busy start does not skew it); -fanout 0 means one
// goroutine per GOMAXPROCS. GOMAXPROCS itself is the Go runtime's: the number of CPUs
// the process may run on (Go 1.19 does not read the cgroup quota), unless the
// GOMAXPROCS environment variable says otherwise. The first line on stderr says what
// was chosen, for the result folder.
//
// Once it listens (after calibrating and building the -live heap) it writes the record
// header of throttlebench's workload records on stdout (docs/metrics.md, "A program of
// your own"): its time zero, where the run's measured window starts, so its start-up's
// CPU and throttling are not counted as the service's.
//
// Standard library only: it builds offline with Debian's golang-go
// (scripts/build-services.sh).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// node is a small object with a pointer: a heap of them is what the collector marks.
type node struct {
	next *node
	pad  [6]uint64
}

var (
	// live holds the -live heap for the whole run, so every GC cycle marks it.
	live []*node
	// sink keeps results of the CPU loop and the allocations observable, so the
	// compiler keeps them.
	sink   uint64
	sinkMu sync.Mutex
)

// spin runs n rounds of a multiply-xorshift mix: pure CPU, no memory traffic.
func spin(n int64, seed uint64) uint64 {
	x := seed | 1
	for i := int64(0); i < n; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		x *= 0x9E3779B97F4A7C15
	}
	return x
}

// threadCPU is this thread's CPU time (CLOCK_THREAD_CPUTIME_ID).
func threadCPU() time.Duration {
	var ts syscall.Timespec
	const clockThreadCPUTimeID = 3
	_, _, e := syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0)
	if e != 0 {
		fmt.Fprintf(os.Stderr, "gomaxprocs-server: clock_gettime: %v\n", e)
		os.Exit(1)
	}
	return time.Duration(ts.Nano())
}

// monotonicNs is CLOCK_MONOTONIC in ns, the clock of throttlebench's samples.
func monotonicNs() int64 {
	var ts syscall.Timespec
	const clockMonotonic = 1
	_, _, e := syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, clockMonotonic, uintptr(unsafe.Pointer(&ts)), 0)
	if e != 0 {
		fmt.Fprintf(os.Stderr, "gomaxprocs-server: clock_gettime: %v\n", e)
		os.Exit(1)
	}
	return ts.Nano()
}

// calibrate returns spin rounds per millisecond of CPU: the fastest of a few short
// tries, each timed on the thread's own CPU clock.
func calibrate() float64 {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const rounds = 1 << 20
	best := 0.0
	for try := 0; try < 5; try++ {
		start := threadCPU()
		sink += spin(rounds, uint64(try))
		took := threadCPU() - start
		if took <= 0 {
			continue
		}
		perMs := rounds / (float64(took) / 1e6)
		if perMs > best {
			best = perMs
		}
	}
	if best == 0 {
		fmt.Fprintln(os.Stderr, "gomaxprocs-server: could not calibrate the CPU loop")
		os.Exit(1)
	}
	return best
}

// garbage allocates about bytes of short-lived nodes in a chain and drops them.
func garbage(bytes int64) uint64 {
	var head *node
	size := int64(unsafe.Sizeof(node{}))
	for b := int64(0); b < bytes; b += size {
		head = &node{next: head}
		head.pad[0] = uint64(b)
	}
	if head == nil {
		return 0
	}
	return head.pad[0]
}

func main() {
	port := flag.Int("port", 0, "loopback port to listen on")
	work := flag.Duration("work", 30*time.Millisecond, "CPU time of one request, over all its goroutines")
	fanout := flag.Int("fanout", 0, "goroutines one request's work is split over (0: GOMAXPROCS)")
	allocKiB := flag.Int64("alloc", 0, "KiB of short-lived garbage one request allocates")
	liveMiB := flag.Int64("live", 0, "MiB of pointer-linked heap held for the whole run")
	flag.Parse()
	if *port <= 0 || *port > 65535 {
		fmt.Fprintln(os.Stderr, "gomaxprocs-server: -port PORT is required (1-65535)")
		os.Exit(2)
	}
	if *work < 0 || *fanout < 0 || *allocKiB < 0 || *liveMiB < 0 {
		fmt.Fprintln(os.Stderr, "gomaxprocs-server: -work, -fanout, -alloc and -live cannot be negative")
		os.Exit(2)
	}
	procs := runtime.GOMAXPROCS(0)
	ways := *fanout
	if ways == 0 {
		ways = procs
	}
	perMs := calibrate()
	rounds := int64(perMs * float64(*work) / 1e6 / float64(ways))
	allocEach := *allocKiB * 1024 / int64(ways)

	nodes := *liveMiB * 1024 * 1024 / int64(unsafe.Sizeof(node{}))
	live = make([]*node, 0, nodes)
	for i := int64(0); i < nodes; i++ {
		n := &node{}
		if i > 0 {
			n.next = live[i-1]
		}
		live = append(live, n)
	}

	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		var wg sync.WaitGroup
		results := make([]uint64, ways)
		for g := 0; g < ways; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				v := spin(rounds, uint64(g))
				if allocEach > 0 {
					v ^= garbage(allocEach)
				}
				results[g] = v
			}(g)
		}
		wg.Wait()
		var x uint64
		for _, v := range results {
			x ^= v
		}
		sinkMu.Lock()
		sink ^= x
		sinkMu.Unlock()
		body := strconv.FormatUint(x, 16) + "\n"
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write([]byte(body))
	})

	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintf(os.Stderr, "gomaxprocs-server: listen on 127.0.0.1:%d: %v\n", *port, err)
		os.Exit(1)
	}
	args, _ := json.Marshal(os.Args[1:])
	fmt.Printf("{\"type\":\"header\",\"version\":1,\"mode\":\"serve\",\"pid\":%d,\"start_monotonic_ns\":%d,\"args\":%s}\n",
		os.Getpid(), monotonicNs(), args)
	fmt.Fprintf(os.Stderr, "gomaxprocs-server: GOMAXPROCS=%d NumCPU=%d fanout=%d work=%v rounds_per_goroutine=%d alloc_kib=%d live_mib=%d %s\n",
		procs, runtime.NumCPU(), ways, *work, rounds, *allocKiB, *liveMiB, runtime.Version())
	if err := http.Serve(ln, nil); err != nil {
		fmt.Fprintf(os.Stderr, "gomaxprocs-server: %v\n", err)
		os.Exit(1)
	}
}
