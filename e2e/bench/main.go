// Command bench is kub-demo's benchmark harness (make bench). It builds the three services,
// starts them on loopback with stores it seeds, puts each public path under fixed-duration
// load at a set concurrency with vegeta, measures the floors in the same run, and prints
// Markdown tables with each figure as a ratio to its floor. See BENCHMARKS.md.
package main

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"golang.org/x/crypto/bcrypt"

	"github.com/kub-demo/kub-demo/harness"
	"github.com/kub-demo/kub-demo/harness/pgtest"
)

type settings struct {
	duration, warmup time.Duration
	concurrency      int
	rounds           int
	bcryptCost       int
	bigTasks         int
	dir              string
	out              string
	pprofDir         string
	serviceEnv       []string
	postgres         bool
}

func main() {
	if err := run(os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("bench", flag.ContinueOnError)
	flags.SetOutput(stderr)
	var s settings
	flags.DurationVar(&s.duration, "duration", envDuration(getenv, "BENCH_DURATION", 8*time.Second), "load time of each path and of floor (i) ($BENCH_DURATION)")
	flags.DurationVar(&s.warmup, "warmup", envDuration(getenv, "BENCH_WARMUP", time.Second), "load before each measured run, not counted ($BENCH_WARMUP)")
	flags.IntVar(&s.concurrency, "concurrency", envInt(getenv, "BENCH_CONCURRENCY", 16), "requests in flight at once ($BENCH_CONCURRENCY)")
	flags.IntVar(&s.rounds, "rounds", envInt(getenv, "BENCH_ROUNDS", 4), "turns each path and its floor take ($BENCH_ROUNDS)")
	flags.IntVar(&s.bcryptCost, "bcrypt-cost", envInt(getenv, "BENCH_BCRYPT_COST", 10), "auth's BCRYPT_COST, and floor (ii)'s ($BENCH_BCRYPT_COST)")
	flags.IntVar(&s.bigTasks, "big-tasks", envInt(getenv, "BENCH_BIG_TASKS", 1_000_000), "tasks in the big store ($BENCH_BIG_TASKS)")
	flags.StringVar(&s.dir, "dir", getenv("BENCH_DIR"), "folder for binaries and stores; a new temporary folder when empty, removed after ($BENCH_DIR)")
	flags.StringVar(&s.out, "out", getenv("BENCH_OUT"), "also write the tables to this file ($BENCH_OUT)")
	flags.StringVar(&s.pprofDir, "pprof", getenv("BENCH_PPROF"), "build the services with -tags benchpprof and save a CPU profile of each service per path into this folder ($BENCH_PPROF)")
	flags.BoolVar(&s.postgres, "postgres", !pgDisabled(getenv), "also run GET and POST /tasks with the tasks on PostgreSQL, against the same statements through pgx; needs PostgreSQL's server binaries ($BENCH_POSTGRES=off to leave out)")
	serviceEnv := flags.String("service-env", getenv("BENCH_SERVICE_ENV"), "extra NAME=value settings for every service, comma-separated, for experiments (e.g. GOGC=200; not a LOG_LEVEL above info, which hides the 'listening' line the harness starts services by) ($BENCH_SERVICE_ENV)")
	floorRole := flags.String("floor-serve", "", "internal: serve floor (i)'s upstream or front")
	floorUpstream := flags.String("floor-upstream", "", "internal: floor (i) front's upstream URL")
	floorBody := flags.Int("floor-body", 0, "internal: floor (i) front's body size")
	if err := flags.Parse(args[1:]); err != nil {
		return err
	}
	if *serviceEnv != "" {
		s.serviceEnv = strings.Split(*serviceEnv, ",")
	}
	if *floorRole != "" {
		return serveFloor(*floorRole, *floorUpstream, *floorBody)
	}
	if s.duration <= 0 || s.concurrency < 1 || s.rounds < 1 || s.bigTasks < 1000 {
		return errors.New("-duration must be positive, -concurrency and -rounds at least 1, -big-tasks at least 1000")
	}
	b := &bench{s: s, log: stderr}
	defer b.close()
	report, err := b.run()
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, report)
	if s.out != "" {
		return os.WriteFile(s.out, []byte(report), 0o644)
	}
	return nil
}

type bench struct {
	s     settings
	log   io.Writer
	dir   string
	temp  bool
	procs []*process
	pg    *pgtest.Server // the PostgreSQL run's server
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "bench: "+format+"\n", args...)
}

func (b *bench) close() {
	for i := len(b.procs) - 1; i >= 0; i-- {
		b.procs[i].Stop()
	}
	if b.pg != nil {
		b.pg.Stop()
	}
	if b.temp {
		os.RemoveAll(b.dir)
	}
}

func (b *bench) start(name, binary string, env []string, timeout time.Duration) (*process, error) {
	p, err := launch(name, binary, nil, append(env, b.s.serviceEnv...), timeout)
	if err != nil {
		return nil, err
	}
	b.procs = append(b.procs, p)
	return p, nil
}

func (b *bench) run() (string, error) {
	s := b.s
	began, loadAtStart := time.Now(), loadAverage()
	var err error
	b.dir = s.dir
	if b.dir == "" {
		if b.dir, err = os.MkdirTemp("", "kub-demo-bench-"); err != nil {
			return "", err
		}
		b.temp = true
	}
	tags := ""
	if s.pprofDir != "" {
		tags = "benchpprof"
		if err := os.MkdirAll(s.pprofDir, 0o755); err != nil {
			return "", err
		}
	}
	b.logf("building the services into %s", b.dir)
	bins, err := harness.BuildServices(filepath.Join(b.dir, "bin"), harness.BuildOptions{Tags: tags, Release: true})
	if err != nil {
		return "", err
	}

	small, medium, big := filepath.Join(b.dir, "tasks-100"), filepath.Join(b.dir, "tasks-1k"), filepath.Join(b.dir, "tasks-big")
	smallNoCache := filepath.Join(b.dir, "tasks-100-no-cache")
	b.logf("seeding 100, 1000 and %d tasks", s.bigTasks)
	for folder, n := range map[string]int{small: 100, smallNoCache: 100, medium: 1000, big: s.bigTasks} {
		if err := seedTasks(folder, n); err != nil {
			return "", err
		}
	}

	secret := crand.Text() + crand.Text()
	auth, err := b.start("auth", bins.Auth, []string{"JWT_SECRET=" + secret, "BCRYPT_COST=" + strconv.Itoa(s.bcryptCost)}, 10*time.Second)
	if err != nil {
		return "", err
	}
	authAddress := "AUTH_ADDRESS=127.0.0.1:" + strconv.Itoa(auth.Port)
	users, err := b.start("users", bins.Users, []string{authAddress, "USERS_FOLDER=" + filepath.Join(b.dir, "users")}, 10*time.Second)
	if err != nil {
		return "", err
	}
	tasks100, err := b.start("tasks", bins.Tasks, []string{authAddress, "TASKS_FOLDER=" + small}, 10*time.Second)
	if err != nil {
		return "", err
	}
	// The same list, with every GET asking auth, as the course's services do.
	tasksNoCache, err := b.start("tasks", bins.Tasks, []string{authAddress, "TASKS_FOLDER=" + smallNoCache, "AUTH_VERIFY_CACHE=0"}, 10*time.Second)
	if err != nil {
		return "", err
	}
	tasks1k, err := b.start("tasks", bins.Tasks, []string{authAddress, "TASKS_FOLDER=" + medium}, 10*time.Second)
	if err != nil {
		return "", err
	}
	tasksBig, err := b.start("tasks", bins.Tasks, []string{authAddress, "TASKS_FOLDER=" + big}, 3*time.Minute)
	if err != nil {
		return "", err
	}

	// The demo user is created in the background at start; log in until it is there.
	var token string
	for try := 0; token == "" && try < 50; try++ {
		a, err := harness.Do(http.MethodPost, users.URL+"/login", "", json.RawMessage(demoLogin))
		if err == nil && a.Status == http.StatusOK {
			if token, _ = a.Body["token"].(string); token == "" {
				return "", fmt.Errorf("login answered %s", a.Raw)
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if token == "" {
		return "", fmt.Errorf("could not log in as the demo user\n%s", users.Logs())
	}
	time.Sleep(300 * time.Millisecond) // let the start settle before reading idle RSS
	serviceRows := []serviceRow{
		{Name: "auth", Data: "—", Targeted: true},
		{Name: "users", Data: "demo user", Targeted: true},
		{Name: "tasks", Data: "100 tasks", Targeted: true},
		{Name: "tasks (`AUTH_VERIFY_CACHE=0`)", Data: "100 tasks", Targeted: true},
		{Name: "tasks", Data: "1000 tasks", Targeted: true},
		{Name: "tasks", Data: fmt.Sprintf("%d tasks", s.bigTasks)},
	}
	serviceProcs := []*process{auth, users, tasks100, tasksNoCache, tasks1k, tasksBig}
	for i, p := range serviceProcs {
		serviceRows[i].Ready = p.Ready
		if serviceRows[i].IdleRSS, _, err = p.Memory(); err != nil {
			return "", err
		}
	}

	// The floors' servers, started now so that each path runs by turns with its floor.
	list, err := harness.Do(http.MethodGet, tasks100.URL+"/tasks", token, nil)
	if err != nil || list.Status != http.StatusOK {
		return "", fmt.Errorf("GET /tasks: %d %v %s", list.Status, err, list.Raw)
	}
	listBody := list.Raw
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	upstream, err := launch("floor-upstream", self, []string{"-floor-serve=upstream"}, nil, 10*time.Second)
	if err != nil {
		return "", err
	}
	b.procs = append(b.procs, upstream)
	front, err := launch("floor-front", self, []string{"-floor-serve=front", "-floor-upstream=" + upstream.URL, "-floor-body=" + strconv.Itoa(len(listBody))}, nil, 10*time.Second)
	if err != nil {
		return "", err
	}
	b.procs = append(b.procs, front)
	bare, err := launch("floor-bare", self, []string{"-floor-serve=bare", "-floor-body=" + strconv.Itoa(len(listBody))}, nil, 10*time.Second)
	if err != nil {
		return "", err
	}
	b.procs = append(b.procs, bare)

	conc, slice := s.concurrency, s.duration/time.Duration(s.rounds)
	load := func(name string, targets vegeta.Targeter, want int) func() loadResult {
		return func() loadResult { return attack(name, targets, conc, slice, want) }
	}
	// pair warms both up, then runs them by turns for s.duration each, profiling procs.
	// cpuRows tells, for paths whose floor runs in processes of its own, the CPU time per
	// request of the services and of the floor's processes.
	var cpuRows []cpuRow
	pair := func(name string, path, floor func() loadResult, warm func(), procs []*process, floorProcs []*process) (loadResult, loadResult) {
		if s.warmup > 0 {
			warm()
		}
		stop := b.profile(name, procs, 2*s.duration)
		cpuBefore, floorCPUBefore := cpuOf(procs), cpuOf(floorProcs)
		p, f := interleave(s.rounds, path, floor)
		cpu, floorCPU := cpuOf(procs)-cpuBefore, cpuOf(floorProcs)-floorCPUBefore
		stop()
		if floorProcs != nil && p.Requests > 0 && f.Requests > 0 {
			cpuRows = append(cpuRows, cpuRow{Path: name, Procs: names(procs), PerRequest: cpu / time.Duration(p.Requests),
				FloorProcs: names(floorProcs), FloorPerRequest: floorCPU / time.Duration(f.Requests)})
		}
		b.logf("%-20s %8.1f /s  p50 %-8s p99 %-8s errors %-4d floor %8.1f /s  p99 %s", name, p.Rate, formatDuration(p.P50), formatDuration(p.P99), p.Errors, f.Rate, formatDuration(f.P99))
		return p, f
	}
	warmAttack := func(name string, targets vegeta.Targeter, want int) func() {
		return func() { attack(name, targets, conc, s.warmup, want) }
	}

	// POST /login (one bcrypt comparison in auth each) by turns with floor (ii).
	loginTargets := roundRobin([]vegeta.Target{{Method: http.MethodPost, URL: users.URL + "/login", Body: []byte(demoLogin), Header: jsonHeader(nil)}})
	password := []byte(harness.DemoPassword)
	hash, err := bcrypt.GenerateFromPassword(password, s.bcryptCost)
	if err != nil {
		return "", err
	}
	loginResult, floorBcrypt := pair("POST /login",
		load("login", loginTargets, http.StatusOK),
		func() loadResult { return bcryptFloor(hash, password, slice) },
		warmAttack("login", loginTargets, http.StatusOK), []*process{users, auth}, nil)

	// GET /tasks with 100 stored (the token verified once, then from the cache; the whole
	// list) by turns with floor (0).
	listTargets := roundRobin([]vegeta.Target{{Method: http.MethodGet, URL: tasks100.URL + "/tasks", Header: bearer(token)}})
	bareTargets := roundRobin([]vegeta.Target{{Method: http.MethodGet, URL: bare.URL + "/tasks", Header: bearer(token)}})
	listResult, floorBare := pair("GET /tasks",
		load("GET /tasks", listTargets, http.StatusOK), load("floor (0)", bareTargets, http.StatusOK),
		func() {
			warmAttack("GET /tasks", listTargets, http.StatusOK)()
			warmAttack("floor (0)", bareTargets, http.StatusOK)()
		},
		[]*process{tasks100, auth}, []*process{bare})
	bare.Stop()

	// The same with AUTH_VERIFY_CACHE=0 (one call to auth per request) by turns with floor (i).
	noCacheTargets := roundRobin([]vegeta.Target{{Method: http.MethodGet, URL: tasksNoCache.URL + "/tasks", Header: bearer(token)}})
	frontTargets := roundRobin([]vegeta.Target{{Method: http.MethodGet, URL: front.URL + "/tasks", Header: bearer(token)}})
	noCacheResult, floorFront := pair("GET /tasks, no cache",
		load("GET /tasks, no cache", noCacheTargets, http.StatusOK), load("floor (i)", frontTargets, http.StatusOK),
		func() {
			warmAttack("GET /tasks, no cache", noCacheTargets, http.StatusOK)()
			warmAttack("floor (i)", frontTargets, http.StatusOK)()
		},
		[]*process{tasksNoCache, auth}, []*process{front, upstream})
	upstream.Stop()
	front.Stop()

	// POST /tasks, durable before its 201, by turns with floor (iii) in the same folder.
	postBody, _ := json.Marshal(benchTask)
	record := append(append([]byte(nil), postBody...), taskSplit...)
	fsyncPath := filepath.Join(small, "fsync-floor.txt")
	defer os.Remove(fsyncPath)
	// Many writers: each user may store TASKS_PER_USER tasks (1,000), and the limits stay on.
	writerTokens, err := writers(users.URL, postWriters)
	if err != nil {
		return "", err
	}
	var postTargets []vegeta.Target
	for _, tok := range writerTokens {
		postTargets = append(postTargets, vegeta.Target{Method: http.MethodPost, URL: tasks100.URL + "/tasks", Body: postBody, Header: jsonHeader(bearer(tok))})
	}
	created := 0
	var floorErr error
	postTargeter := roundRobin(postTargets)
	postResult, floorFsync := pair("POST /tasks",
		func() loadResult {
			r := attack("POST /tasks", postTargeter, conc, slice, http.StatusCreated)
			created += r.OK
			return r
		},
		func() loadResult {
			r, err := fsyncFloor(fsyncPath, record, slice)
			floorErr = cmp.Or(floorErr, err)
			return r
		},
		func() { created += attack("POST /tasks", postTargeter, conc, s.warmup, http.StatusCreated).OK },
		[]*process{tasks100, auth}, nil)
	if floorErr != nil {
		return "", floorErr
	}
	stored, err := os.ReadFile(filepath.Join(small, "tasks.txt"))
	if err != nil {
		return "", err
	}
	if got, want := strings.Count(string(stored), taskSplit), 100+created; got != want {
		return "", fmt.Errorf("tasks.txt holds %d records after %d answers 201 to 100 seeded: each 201 must be one record written", got, created)
	}

	// Group commit: how many fsyncs those records took, from tasks' own metrics.
	commits, err := commitStats(tasks100.MetricsURL + "/metrics")
	if err != nil {
		return "", err
	}
	b.logf("POST /tasks: %s", commits.describe("fsync"))

	// GET /tasks?limit=50 at offsets spread over the whole store, 1k and big by turns.
	pageBig, page1k := pair("GET ?limit=50",
		load("page big", pageTargets(tasksBig.URL, s.bigTasks, token), http.StatusOK), load("page 1k", pageTargets(tasks1k.URL, 1000, token), http.StatusOK),
		func() {
			warmAttack("page big", pageTargets(tasksBig.URL, s.bigTasks, token), http.StatusOK)()
			warmAttack("page 1k", pageTargets(tasks1k.URL, 1000, token), http.StatusOK)()
		},
		[]*process{tasksBig, tasks1k, auth}, nil)

	for i, p := range serviceProcs {
		if _, serviceRows[i].PeakRSS, err = p.Memory(); err != nil {
			return "", err
		}
	}

	// The same paths with the tasks on PostgreSQL (postgres.go), seeded from fresh copies of
	// the files (the small one has had POSTs since).
	var pg *pgFigures
	if s.postgres {
		pgSmall := filepath.Join(b.dir, "pg-seed-100")
		if err := seedTasks(pgSmall, 100); err != nil {
			return "", err
		}
		pg, err = b.postgres(bins, authAddress, token,
			map[string]string{"small": pgSmall, "k1": medium, "big": big}, map[string]int{"small": 100, "k1": 1000, "big": s.bigTasks})
		if err != nil {
			return "", err
		}
	}

	loads := []loadRow{
		{Path: "`POST /login`", Result: loginResult, Floor: "(ii)", FloorValue: formatRate(floorBcrypt.Rate) + " /s",
			Ratio: ratio(loginResult.Rate, floorBcrypt.Rate), Target: atLeast(0.9)},
		{Path: "`GET /tasks` (100 stored)", Result: listResult, Floor: "(0)", FloorValue: formatRate(floorBare.Rate) + " /s",
			Ratio: ratio(listResult.Rate, floorBare.Rate), Target: atLeast(0.7)},
		{Path: "`GET /tasks` (100 stored), `AUTH_VERIFY_CACHE=0`", Result: noCacheResult, Floor: "(i)", FloorValue: formatRate(floorFront.Rate) + " /s",
			Ratio: ratio(noCacheResult.Rate, floorFront.Rate), Target: atLeast(0.65)},
		{Path: "`POST /tasks`", Result: postResult, Floor: "(iii)", FloorValue: formatRate(floorFsync.Rate) + " /s",
			Ratio: ratio(postResult.Rate, floorFsync.Rate), Target: atLeast(1.0)},
		{Path: "`GET /tasks?limit=50` (1k stored)", Result: page1k},
		{Path: fmt.Sprintf("`GET /tasks?limit=50` (%s stored)", count(s.bigTasks)), Result: pageBig, Floor: "p99 at 1k",
			FloorValue: formatDuration(page1k.P99), Ratio: ratio(float64(pageBig.P99), float64(page1k.P99)), Target: atMost(2)},
	}
	floors := []floorRow{
		{Name: "(0) bare server", Value: fmt.Sprintf("%s /s (p50 %s, p99 %s)", formatRate(floorBare.Rate), formatDuration(floorBare.P50), formatDuration(floorBare.P99)),
			Meaning: fmt.Sprintf("net/http server writing a precomputed %d-byte body (the size of `GET /tasks` with 100 tasks), nothing else; same load as the paths", len(listBody))},
		{Name: "(i) bare front + upstream", Value: fmt.Sprintf("%s /s (p50 %s, p99 %s)", formatRate(floorFront.Rate), formatDuration(floorFront.P50), formatDuration(floorFront.P99)),
			Meaning: "(0) after one call, with the services' auth client (`authapi.Client`, no cache), to a bare net/http upstream on loopback answering as auth's `/verify-token`"},
		{Name: "(ii) bcrypt", Value: formatRate(floorBcrypt.Rate) + " /s",
			Meaning: fmt.Sprintf("bcrypt comparisons per second at cost %d, on %d goroutines (GOMAXPROCS)", s.bcryptCost, runtime.GOMAXPROCS(0))},
		{Name: "(iii) append + fsync", Value: formatRate(floorFsync.Rate) + " /s",
			Meaning: fmt.Sprintf("one writer appending a %d-byte record and fsyncing, in turn, in the tasks folder (%s). `POST /tasks` meanwhile: %s; tasks.txt holds exactly one record per 201", len(record), filesystem(small), commits.describe("fsync"))},
	}
	settingsNote := ""
	if len(s.serviceEnv) > 0 {
		settingsNote = fmt.Sprintf(" Services run with %s.", strings.Join(s.serviceEnv, " "))
	}
	header := fmt.Sprintf("Concurrency %d; each path and its floor %s, by turns in %d rounds (after %s warm-up each); bcrypt cost %d. Whole run %s.",
		conc, s.duration, s.rounds, s.warmup, s.bcryptCost, time.Since(began).Round(time.Second))
	header += settingsNote
	header += "\n\n" + machine(small) + fmt.Sprintf(" Load average before the run %s, at its end %s (the run itself keeps both cores busy).", loadAtStart, loadAverage())
	var out strings.Builder
	writeReport(&out, header, loads, floors, serviceRows, cpuRows)
	if pg != nil {
		out.WriteString("\n")
		writeReport(&out, pg.header, pg.loads, pg.floors, pg.services, nil)
	}
	return out.String(), nil
}

// postWriters is how many users POST /tasks is loaded by: at most 1,000 tasks each, they
// take about 100,000 POSTs, more than a run makes.
const postWriters = 100

// commitFigures is what the tasks service's metrics say of its store's writes: records written,
// commits (fsyncs of the file, transactions of the database) and their total time.
type commitFigures struct {
	records, commits float64
	seconds          float64
}

// describe names the commits as what (fsync or commit).
func (c commitFigures) describe(what string) string {
	return fmt.Sprintf("%.0f records in %.0f %ss (%.1f per %s), mean %s %.2f ms", c.records, c.commits, what,
		c.records/c.commits, what, what, 1000*c.seconds/c.commits)
}

// commitStats reads the tasks service's store metrics.
func commitStats(metricsURL string) (commitFigures, error) {
	a, err := harness.Do(http.MethodGet, metricsURL, "", nil)
	if err != nil || a.Status != http.StatusOK {
		return commitFigures{}, fmt.Errorf("GET %s: %d %v", metricsURL, a.Status, err)
	}
	values := map[string]float64{}
	for line := range strings.Lines(a.Raw) {
		name, value, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		if v, err := strconv.ParseFloat(value, 64); err == nil {
			values[name] = v
		}
	}
	c := commitFigures{records: values["tasks_store_batch_records_sum"], commits: values["tasks_store_fsync_seconds_count"], seconds: values["tasks_store_fsync_seconds_sum"]}
	if c.commits == 0 {
		return commitFigures{}, fmt.Errorf("%s has no tasks_store_fsync_seconds_count", metricsURL)
	}
	return c, nil
}

// pageTargets are 1000 GET /tasks?limit=50 at offsets spread over a store of n tasks (the
// same offsets in every run).
func pageTargets(tasksURL string, n int, token string) vegeta.Targeter {
	rng := rand.New(rand.NewPCG(1, 2))
	targets := make([]vegeta.Target, 1000)
	for i := range targets {
		targets[i] = vegeta.Target{Method: http.MethodGet, URL: fmt.Sprintf("%s/tasks?limit=50&offset=%d", tasksURL, rng.IntN(n-50)), Header: bearer(token)}
	}
	return roundRobin(targets)
}

// benchTask is the task every POST /tasks stores.
var benchTask = struct {
	Title string `json:"title"`
	Text  string `json:"text"`
}{"Bench task", "Stored by make bench, on disk before its 201."}

// demoLogin is POST /login's body for the demo user.
var demoLogin = fmt.Sprintf(`{"email":%q,"password":%q}`, harness.DemoEmail, harness.DemoPassword)

// profile captures, when -pprof is set, a CPU profile of each of procs for the next
// duration, and returns a function that waits for them.
func (b *bench) profile(name string, procs []*process, dur time.Duration) func() {
	if b.s.pprofDir == "" {
		return func() {}
	}
	done := make(chan struct{}, len(procs))
	for i, p := range procs {
		file := filepath.Join(b.s.pprofDir, fmt.Sprintf("%s-%d-%s.pprof", slug(name), i, p.Name))
		go func() {
			defer func() { done <- struct{}{} }()
			// A -tags benchpprof build serves net/http/pprof on its metrics port.
			url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", p.MetricsURL, max(1, int(dur.Seconds())))
			profile, err := (&http.Client{Timeout: dur + time.Minute}).Get(url)
			if err != nil {
				b.logf("profile of %s: %v", p.Name, err)
				return
			}
			body, err := io.ReadAll(profile.Body)
			profile.Body.Close()
			if err != nil || profile.StatusCode != http.StatusOK {
				b.logf("profile of %s: %s %v", p.Name, profile.Status, err)
				return
			}
			os.WriteFile(file, body, 0o644)
			// And what the process allocated since it started (cumulative, so the last
			// path's file holds every path before it too).
			if a, err := harness.Do(http.MethodGet, p.MetricsURL+"/debug/pprof/allocs", "", nil); err == nil && a.Status == http.StatusOK {
				os.WriteFile(strings.TrimSuffix(file, ".pprof")+"-allocs.pprof", []byte(a.Raw), 0o644)
			}
		}()
	}
	return func() {
		for range procs {
			<-done
		}
	}
}

func names(procs []*process) string {
	var n []string
	for _, p := range procs {
		n = append(n, p.Name)
	}
	return strings.Join(n, " + ")
}

func slug(s string) string {
	return strings.Trim(strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' {
			return r
		}
		return '-'
	}, s), "-")
}

func count(n int) string {
	switch {
	case n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	default:
		return strconv.Itoa(n)
	}
}

// machine describes where the run happened.
func machine(folder string) string {
	model := "unknown"
	if cpuinfo, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(cpuinfo)) {
			if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
				model = strings.TrimSpace(value)
				break
			}
		}
	}
	memory := "unknown"
	if meminfo, err := os.ReadFile("/proc/meminfo"); err == nil {
		if line, _, ok := strings.Cut(string(meminfo), "\n"); ok {
			fields := strings.Fields(line)
			if kb, err := strconv.ParseInt(fields[len(fields)-2], 10, 64); err == nil {
				memory = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	goVersion := runtime.Version()
	if out, err := exec.CommandContext(context.Background(), "go", "env", "GOVERSION").Output(); err == nil {
		goVersion = strings.TrimSpace(string(out))
	}
	return fmt.Sprintf("Machine: %d CPUs (%s), %s memory, Linux %s, %s, bench folder on %s.",
		runtime.NumCPU(), model, memory, strings.TrimSpace(string(kernel)), goVersion, filesystem(folder))
}

// loadAverage is the 1, 5 and 15 minute load averages.
func loadAverage() string {
	load, _ := os.ReadFile("/proc/loadavg")
	fields := strings.Fields(string(load))
	return strings.Join(fields[:min(3, len(fields))], " ")
}

// filesystem names the file system folder is on.
func filesystem(folder string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(folder, &st); err != nil {
		return "unknown"
	}
	names := map[int64]string{0xEF53: "ext4", 0x01021994: "tmpfs", 0x58465342: "xfs", 0x9123683E: "btrfs", 0x794C7630: "overlayfs", 0x2FC12FC1: "zfs"}
	if name, ok := names[int64(st.Type)]; ok {
		return name
	}
	return fmt.Sprintf("fs type %#x", st.Type)
}

func envDuration(getenv func(string) string, name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(getenv(name)); err == nil {
		return d
	}
	return def
}

func envInt(getenv func(string) string, name string, def int) int {
	if n, err := strconv.Atoi(getenv(name)); err == nil {
		return n
	}
	return def
}
