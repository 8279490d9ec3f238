package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"math"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/kub-demo/kub-demo/harness"
	"github.com/kub-demo/kub-demo/harness/pgtest"
	"github.com/kub-demo/kub-demo/platform/web"
)

// The PostgreSQL run (issue 13): tasks processes with DATABASE_URL on a PostgreSQL server of
// the run's own (durable: fsync on), seeded with the tasks binary's -import from the same
// tasks.txt files, and each path by turns with its floor, the same statement the store runs,
// sent through pgx with no HTTP (and so no token check):
//
//	(iv)  the store's list query for GET /tasks, whole, as the demo user;
//	(v)   the store's statements for POST /tasks, one task per transaction, as the demo
//	      user (whose row is locked until each commit: one after the other). The store
//	      batches concurrent appends into one transaction; the floor does not;
//	(vi)  the page of 50 at random offsets in the big store.
//
// The statements are read from services/tasks/internal/pgstore/pgstore.go itself, so the
// floor cannot drift from the store.

// pgStoreSources hold the statements the floors run.
var pgStoreSources = []string{"services/tasks/internal/pgstore/pgstore.go", "services/tasks/internal/pgstore/commit.go"}

// poolSize is DB_MAX_CONNS's default: the services and the floors get as many connections.
const poolSize = 4

// pgFigures is what the PostgreSQL run measured, as writeReport prints it.
type pgFigures struct {
	header   string
	loads    []loadRow
	floors   []floorRow
	services []serviceRow
}

// storeStatements returns the store's SQL constants named names, from its source.
func storeStatements(root string, names ...string) (map[string]string, error) {
	found := map[string]string{}
	for _, source := range pgStoreSources {
		file, err := parser.ParseFile(token.NewFileSet(), filepath.Join(root, source), nil, 0)
		if err != nil {
			return nil, err
		}
		ast.Inspect(file, func(n ast.Node) bool {
			spec, ok := n.(*ast.ValueSpec)
			if !ok {
				return true
			}
			for i, name := range spec.Names {
				if i >= len(spec.Values) {
					break
				}
				if lit, ok := spec.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					if s, err := strconv.Unquote(lit.Value); err == nil {
						found[name.Name] = s
					}
				}
			}
			return true
		})
	}
	for _, name := range names {
		if found[name] == "" {
			return nil, fmt.Errorf("%v have no string constant %s: the floors run the store's statements", pgStoreSources, name)
		}
	}
	return found, nil
}

// tokenUID is the uid claim of a token issued by auth: the owner of the demo user's tasks.
func tokenUID(tok string) (string, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", errors.New("the token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", err
	}
	var claims struct{ UID string }
	if err := json.Unmarshal(payload, &claims); err != nil || claims.UID == "" {
		return "", fmt.Errorf("no uid in the token: %v", err)
	}
	return claims.UID, nil
}

// pgDatabase is one database of the run, seeded from a tasks.txt, with a tasks process on it.
type pgDatabase struct {
	name     string
	url      string
	tasks    *process
	pool     *pgxpool.Pool
	imported time.Duration
	seeded   int
	idleRSS  int64
}

// postgres runs the PostgreSQL part of the bench: small (100 tasks, for GET and POST), 1k and
// big (for the pages), by turns with the floors.
func (b *bench) postgres(bins harness.Binaries, authAddress, tok string, seeds map[string]string, counts map[string]int) (*pgFigures, error) {
	root, err := harness.RepoRoot()
	if err != nil {
		return nil, err
	}
	s := b.s
	sql, err := storeStatements(root, "viewSQL", "ensureOwnersSQL", "lockOwnersSQL", "insertTasksSQL", "updateOwnersSQL")
	if err != nil {
		return nil, err
	}
	uid, err := tokenUID(tok)
	if err != nil {
		return nil, err
	}
	b.logf("starting PostgreSQL (fsync on)")
	srv, err := pgtest.Start(pgtest.Options{Durable: true})
	if err != nil {
		return nil, fmt.Errorf("%w (BENCH_POSTGRES=off leaves the PostgreSQL run out)", err)
	}
	b.pg = srv
	ctx := context.Background()

	dbs := map[string]*pgDatabase{}
	for _, name := range []string{"small", "k1", "big"} {
		db := &pgDatabase{name: name, url: srv.URL(name), seeded: counts[name]}
		if err := srv.CreateDatabase(name); err != nil {
			return nil, err
		}
		b.logf("importing %d tasks into PostgreSQL (%s -import)", db.seeded, filepath.Base(bins.Tasks))
		began := time.Now()
		cmd := exec.Command(bins.Tasks, "-import", filepath.Join(seeds[name], "tasks.txt"))
		cmd.Env = []string{"DATABASE_URL=" + db.url}
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("tasks -import: %v\n%s", err, out)
		}
		db.imported = time.Since(began)
		// What autovacuum does in time: statistics and the visibility map of the new rows.
		conn, err := pgx.Connect(ctx, db.url)
		if err != nil {
			return nil, err
		}
		_, err = conn.Exec(ctx, "VACUUM ANALYZE")
		conn.Close(ctx)
		if err != nil {
			return nil, err
		}
		env := []string{authAddress, "DATABASE_URL=" + db.url, "TASKS_FOLDER=" + filepath.Join(b.dir, "pg-unused-"+name),
			"TASKS_PER_USER=0", "TASK_BYTES_PER_USER=0"}
		if db.tasks, err = b.start("tasks", bins.Tasks, env, 30*time.Second); err != nil {
			return nil, err
		}
		if db.idleRSS, _, err = db.tasks.Memory(); err != nil {
			return nil, err
		}
		if db.pool, err = newFloorPool(db.url); err != nil {
			return nil, err
		}
		defer db.pool.Close()
		dbs[name] = db
	}
	small, k1, big := dbs["small"], dbs["k1"], dbs["big"]

	conc, slice := s.concurrency, s.duration/time.Duration(s.rounds)
	warm := func(name string, targets vegeta.Targeter, want int) {
		if s.warmup > 0 {
			attack(name, targets, conc, s.warmup, want)
		}
	}

	// GET /tasks (100 stored), whole list, by turns with floor (iv).
	listTargets := roundRobin([]vegeta.Target{{Method: http.MethodGet, URL: small.tasks.URL + "/tasks", Header: bearer(tok)}})
	listFloor := func() loadResult {
		return pgFloor(conc, slice, func(ctx context.Context, _ *rand.Rand) error {
			return viewPage(ctx, small.pool, sql["viewSQL"], uid, 0, math.MaxInt)
		})
	}
	warm("pg GET /tasks", listTargets, http.StatusOK)
	listFloor()
	stop := b.profile("pg GET /tasks", []*process{small.tasks}, 2*s.duration)
	list, floorList := interleave(s.rounds, func() loadResult { return attack("pg GET /tasks", listTargets, conc, slice, http.StatusOK) }, listFloor)
	stop()
	b.logf("%-20s %8.1f /s  p99 %-8s floor %8.1f /s", "pg GET /tasks", list.Rate, formatDuration(list.P99), floorList.Rate)

	// POST /tasks by turns with floor (v), both as the demo user; then every 201 and every
	// floor insert must be one row.
	postBody, _ := json.Marshal(benchTask)
	answer, _ := web.Marshal(benchTask)
	recordBytes := len(answer) + len(`,"owner":""`) + len(uid)
	postTargets := roundRobin([]vegeta.Target{{Method: http.MethodPost, URL: small.tasks.URL + "/tasks", Body: postBody, Header: jsonHeader(bearer(tok))}})
	var mu sync.Mutex
	created, inserted := 0, 0
	postPath := func(dur time.Duration) loadResult {
		r := attack("pg POST /tasks", postTargets, conc, dur, http.StatusCreated)
		created += r.OK
		return r
	}
	postFloor := func() loadResult {
		r := pgFloor(conc, slice, func(ctx context.Context, _ *rand.Rand) error {
			return insertOne(ctx, small.pool, sql, uid, int64(recordBytes), string(answer))
		})
		mu.Lock()
		inserted += r.OK
		mu.Unlock()
		return r
	}
	if s.warmup > 0 {
		postPath(s.warmup)
	}
	stop = b.profile("pg POST /tasks", []*process{small.tasks}, 2*s.duration)
	post, floorPost := interleave(s.rounds, func() loadResult { return postPath(slice) }, postFloor)
	stop()
	b.logf("%-20s %8.1f /s  p99 %-8s floor %8.1f /s", "pg POST /tasks", post.Rate, formatDuration(post.P99), floorPost.Rate)
	commits, err := commitStats(small.tasks.MetricsURL + "/metrics")
	if err != nil {
		return nil, err
	}
	b.logf("pg POST /tasks: %s", commits.describe("commit"))
	var rows int
	if err := small.pool.QueryRow(ctx, "SELECT count(*) FROM tasks").Scan(&rows); err != nil {
		return nil, err
	}
	if rows != small.seeded+created+inserted {
		return nil, fmt.Errorf("the database holds %d tasks after %d answers 201 and %d floor inserts to %d seeded: each must be one row", rows, created, inserted, small.seeded)
	}

	// GET ?limit=50 at random offsets: big and 1k by turns with floor (vi) on big.
	pageFloor := func() loadResult {
		return pgFloor(conc, slice, func(ctx context.Context, rng *rand.Rand) error {
			return viewPage(ctx, big.pool, sql["viewSQL"], uid, rng.IntN(big.seeded-50), 50)
		})
	}
	warm("pg page big", pageTargets(big.tasks.URL, big.seeded, tok), http.StatusOK)
	warm("pg page 1k", pageTargets(k1.tasks.URL, k1.seeded, tok), http.StatusOK)
	var pageBig, page1k, floorPage loadResult
	for range s.rounds {
		floorPage = merge(floorPage, pageFloor())
		page1k = merge(page1k, attack("pg page 1k", pageTargets(k1.tasks.URL, k1.seeded, tok), conc, slice, http.StatusOK))
		pageBig = merge(pageBig, attack("pg page big", pageTargets(big.tasks.URL, big.seeded, tok), conc, slice, http.StatusOK))
	}
	b.logf("%-20s p99 %-8s at 1k %-8s floor p99 %s", "pg GET ?limit=50", formatDuration(pageBig.P99), formatDuration(page1k.P99), formatDuration(floorPage.P99))

	f := &pgFigures{}
	bigName := count(big.seeded)
	f.loads = []loadRow{
		{Path: "`GET /tasks` (100 stored), PostgreSQL", Result: list, Floor: "(iv)", FloorValue: formatRate(floorList.Rate) + " /s", Ratio: ratio(list.Rate, floorList.Rate)},
		{Path: "`POST /tasks`, PostgreSQL", Result: post, Floor: "(v)", FloorValue: formatRate(floorPost.Rate) + " /s", Ratio: ratio(post.Rate, floorPost.Rate)},
		{Path: "`GET /tasks?limit=50` (1k stored), PostgreSQL", Result: page1k},
		{Path: fmt.Sprintf("`GET /tasks?limit=50` (%s stored), PostgreSQL", bigName), Result: pageBig, Floor: "p99 at 1k",
			FloorValue: formatDuration(page1k.P99), Ratio: ratio(float64(pageBig.P99), float64(page1k.P99)), Target: atMost(2)},
	}
	f.floors = []floorRow{
		{Name: "(iv) pgx list query", Value: fmt.Sprintf("%s /s (p50 %s, p99 %s)", formatRate(floorList.Rate), formatDuration(floorList.P50), formatDuration(floorList.P99)),
			Meaning: fmt.Sprintf("the store's list query (%s, viewSQL), the whole list of 100, rows read as the store reads them; %d goroutines on a pool of %d connections, no HTTP, no token check", pgStoreSources[0], conc, poolSize)},
		{Name: "(v) pgx insert", Value: fmt.Sprintf("%s /s (p50 %s, p99 %s)", formatRate(floorPost.Rate), formatDuration(floorPost.P50), formatDuration(floorPost.P99)),
			Meaning: fmt.Sprintf("the store's statements for one task (commit.go: ensure, lock and update the owner's row, insert), one transaction per task, committed with synchronous_commit on, as the demo user; %d goroutines, pool of %d. `POST /tasks` meanwhile: %s; the database holds exactly one row per 201 and per floor insert", conc, poolSize, commits.describe("commit"))},
		{Name: fmt.Sprintf("(vi) pgx page of 50 at %s", bigName), Value: fmt.Sprintf("%s /s (p50 %s, p99 %s)", formatRate(floorPage.Rate), formatDuration(floorPage.P50), formatDuration(floorPage.P99)),
			Meaning: fmt.Sprintf("the store's list query with limit 50 at random offsets in %s tasks; %d goroutines, pool of %d", bigName, conc, poolSize)},
	}
	for _, db := range []*pgDatabase{small, k1, big} {
		row := serviceRow{Name: "tasks", Data: fmt.Sprintf("PostgreSQL, %s tasks", count(db.seeded)), Ready: db.tasks.Ready, IdleRSS: db.idleRSS, Targeted: true}
		if _, row.PeakRSS, err = db.tasks.Memory(); err != nil {
			return nil, err
		}
		f.services = append(f.services, row)
	}
	f.header = fmt.Sprintf("#### PostgreSQL\n\nThe tasks on PostgreSQL %s (its own server for the run, fsync on, default settings), "+
		"seeded with `tasks -import` from the same tasks.txt files: %s tasks in %s (%s tasks/s), then VACUUM ANALYZE. "+
		"tasks runs with DB_MAX_CONNS=%d; the floors are the store's own statements through pgx with no HTTP.",
		serverVersion(ctx, small.pool), bigName, big.imported.Round(100*time.Millisecond), formatRate(float64(big.seeded)/big.imported.Seconds()), poolSize)
	return f, nil
}

// insertOne stores one task as the store's batch does, alone in its transaction.
func insertOne(ctx context.Context, pool *pgxpool.Pool, sql map[string]string, owner string, size int64, answer string) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		owners := []string{owner}
		if _, err := tx.Exec(ctx, sql["ensureOwnersSQL"], owners); err != nil {
			return err
		}
		var tasks, bytes int64
		if err := tx.QueryRow(ctx, sql["lockOwnersSQL"], owners).Scan(new(string), &tasks, &bytes); err != nil {
			return err
		}
		writes := &pgx.Batch{}
		writes.Queue(sql["insertTasksSQL"], owners, []int64{tasks}, []string{answer})
		writes.Queue(sql["updateOwnersSQL"], owners, []int64{tasks + 1}, []int64{bytes + size})
		return tx.SendBatch(ctx, writes).Close()
	})
}

func newFloorPool(url string) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	pc.MaxConns = poolSize
	pc.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	return pgxpool.NewWithConfig(context.Background(), pc)
}

// viewPage runs the store's list query and reads the rows as the store does.
func viewPage(ctx context.Context, pool *pgxpool.Pool, viewSQL, viewer string, offset, limit int) error {
	rows, err := pool.Query(ctx, viewSQL, viewer, int64(offset), int64(limit))
	if err != nil {
		return err
	}
	defer rows.Close()
	var list []byte
	var total int64
	for rows.Next() {
		if err := rows.Scan(&total, nil); err != nil {
			return err
		}
		if task := rows.RawValues()[1]; task != nil {
			list = append(append(list, ','), task...)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(list) == 0 {
		return errors.New("an empty page")
	}
	return nil
}

// pgFloor calls op on conc goroutines for dur, each calling again as soon as its last call
// returned (as the load's workers do), and times every call.
func pgFloor(conc int, dur time.Duration, op func(ctx context.Context, rng *rand.Rand) error) loadResult {
	var mu sync.Mutex
	var r loadResult
	began := time.Now()
	deadline := began.Add(dur)
	var wg sync.WaitGroup
	for w := range conc {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			var latencies []time.Duration
			ok, failed, sample := 0, 0, ""
			for time.Now().Before(deadline) {
				start := time.Now()
				err := op(context.Background(), rng)
				latencies = append(latencies, time.Since(start))
				if err != nil {
					failed++
					sample = err.Error()
				} else {
					ok++
				}
			}
			mu.Lock()
			defer mu.Unlock()
			r.Requests += ok + failed
			r.OK += ok
			r.Errors += failed
			if r.Sample == "" {
				r.Sample = sample
			}
			r.latencies = append(r.latencies, latencies...)
		})
	}
	wg.Wait()
	r.elapsed = time.Since(began)
	return r.summed()
}

func serverVersion(ctx context.Context, pool *pgxpool.Pool) string {
	var v string
	if err := pool.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil {
		return "(version unknown)"
	}
	return strings.Fields(v)[0]
}

// pgDisabled reads BENCH_POSTGRES: "off", "0" or "false" leaves the PostgreSQL run out.
func pgDisabled(getenv func(string) string) bool {
	switch strings.ToLower(getenv("BENCH_POSTGRES")) {
	case "off", "0", "false", "no":
		return true
	}
	return false
}
