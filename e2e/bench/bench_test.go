package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kub-demo/kub-demo/harness"
)

func TestTargetsAndRatios(t *testing.T) {
	tests := []struct {
		target target
		value  float64
		want   string
	}{
		{atLeast(0.7), 0.71, "yes"}, {atLeast(0.7), 0.7, "yes"}, {atLeast(0.7), 0.69, "**no**"},
		{atMost(2), 1.5, "yes"}, {atMost(2), 2, "yes"}, {atMost(2), 2.1, "**no**"},
		{target{}, 123, "—"},
	}
	for _, tt := range tests {
		if got := tt.target.met(tt.value); got != tt.want {
			t.Errorf("%s met(%g) = %q, want %q", tt.target, tt.value, got, tt.want)
		}
	}
	if got := ratio(50, 100); got != 0.5 {
		t.Errorf("ratio(50, 100) = %g", got)
	}
	if got := ratio(1, 0); got != 0 {
		t.Errorf("ratio(1, 0) = %g, want 0 (no floor measured)", got)
	}
}

func TestFormatting(t *testing.T) {
	for d, want := range map[time.Duration]string{
		850 * time.Microsecond: "850 µs", 2500 * time.Microsecond: "2.5 ms", 42 * time.Millisecond: "42 ms", 1500 * time.Millisecond: "1.50 s",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%s) = %q, want %q", d, got, want)
		}
	}
	for v, want := range map[float64]string{31.66: "31.7", 5219.4: "5219", 2.345: "2.35"} {
		if got := formatRate(v); got != want {
			t.Errorf("formatRate(%g) = %q, want %q", v, got, want)
		}
	}
}

func TestMergeAndQuantiles(t *testing.T) {
	a := loadResult{Requests: 3, OK: 3, elapsed: time.Second, latencies: []time.Duration{1, 2, 3}}.summed()
	b := loadResult{Requests: 2, OK: 1, Errors: 1, Sample: "status 500", elapsed: time.Second, latencies: []time.Duration{100, 4}}.summed()
	m := merge(a, b)
	if m.Requests != 5 || m.OK != 4 || m.Errors != 1 || m.Rate != 2 || m.Sample != "status 500" {
		t.Errorf("merge = %+v", m)
	}
	if m.P50 != 3 || m.P99 != 100 {
		t.Errorf("p50 %d p99 %d, want 3 and 100", m.P50, m.P99)
	}
}

func TestReportHasEveryRowAndRatio(t *testing.T) {
	var out strings.Builder
	writeReport(&out, "header", []loadRow{
		{Path: "`GET /tasks`", Result: loadResult{Rate: 7000, P50: time.Millisecond, P99: 5 * time.Millisecond}, Floor: "(i)", FloorValue: "10000 /s", Ratio: 0.7, Target: atLeast(0.7)},
		{Path: "`POST /tasks`", Result: loadResult{Rate: 900, Requests: 10, Errors: 1, Sample: "status 500 |x"}, Floor: "(iii)", FloorValue: "1000 /s", Ratio: 0.9, Target: atLeast(1)},
	}, []floorRow{{Name: "(i)", Value: "10000 /s", Meaning: "bare"}},
		[]serviceRow{{Name: "auth", Ready: 5 * time.Millisecond, IdleRSS: 11 << 20, Targeted: true}, {Name: "tasks", Ready: 2 * time.Second, IdleRSS: 200 << 20}},
		[]cpuRow{{Path: "GET /tasks", Procs: "tasks + auth", PerRequest: 90 * time.Microsecond, FloorProcs: "front + upstream", FloorPerRequest: 45 * time.Microsecond}})
	for _, want := range []string{
		"| `GET /tasks` | 7000 | 1.0 ms | 5.0 ms | 0 | (i) | 10000 /s | 0.70 | ≥ 0.7 | yes |",
		"| `POST /tasks` | 900 | 0 µs | 0 µs | 1 of 10 (status 500 /x) | (iii) | 1000 /s | 0.90 | ≥ 1 | **no** |",
		"| auth |  | 5.0 ms | 11.0 MB | 0.0 MB | yes |",
		"| GET /tasks | 90 µs (tasks + auth) | 45 µs (front + upstream) | 2.00 |",
		"| tasks |  | 2.00 s | 200.0 MB | 0.0 MB | — (no target with this store) |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// TestSeededFileLoadsInTheRealTasksService seeds tasks.txt as the harness does and has the
// real tasks binary (behind a stand-in auth) answer a page from its end.
func TestSeededFileLoadsInTheRealTasksService(t *testing.T) {
	folder := t.TempDir()
	if err := seedTasks(folder, 1000); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(folder, "tasks.txt"))
	if err != nil {
		t.Fatal(err)
	}
	records := strings.Split(string(raw), taskSplit)
	if len(records) != 1001 || records[1000] != "" {
		t.Fatalf("%d pieces split on TASK_SPLIT, want 1000 records and an empty tail", len(records))
	}
	for _, record := range records[:1000] {
		var task map[string]string
		if err := json.Unmarshal([]byte(record), &task); err != nil || task["title"] == "" || len(task) != 2 {
			t.Fatalf("record %q: %v", record, err)
		}
	}

	bins, err := harness.BuildPackages(t.TempDir(), harness.BuildOptions{}, "./services/tasks/cmd/tasks")
	if err != nil {
		t.Fatal(err)
	}
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"message":"Valid token.","uid":"u"}`)
	}))
	defer auth.Close()
	tasks, err := launch("tasks", bins["tasks"], nil, []string{"TASKS_FOLDER=" + folder, "AUTH_ADDRESS=" + strings.TrimPrefix(auth.URL, "http://")}, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer tasks.Stop()
	a, err := harness.Do(http.MethodGet, tasks.URL+"/tasks?limit=2&offset=998", "any", nil)
	want := `{"message":"Tasks loaded.","tasks":[{"title":"Task 998","text":"Seeded by make bench: task 998 of 1000."},{"title":"Task 999","text":"Seeded by make bench: task 999 of 1000."}],"total":1000,"offset":998,"limit":2}`
	if err != nil || a.Status != http.StatusOK || a.Raw != want {
		t.Fatalf("GET a page: %d %v\n%s\nwant\n%s", a.Status, err, a.Raw, want)
	}
	if rss, peak, err := tasks.Memory(); err != nil || rss <= 0 || peak < rss {
		t.Errorf("memory: rss %d, peak %d, %v", rss, peak, err)
	}
}

// TestFloorsRunTheStoresStatements: the PostgreSQL floors read the store's statements from
// its source; a rename there must fail here, not at the next make bench.
func TestFloorsRunTheStoresStatements(t *testing.T) {
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	sql, err := storeStatements(root, "viewSQL", "ensureOwnersSQL", "lockOwnersSQL", "insertTasksSQL", "updateOwnersSQL")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sql["insertTasksSQL"], "INSERT INTO tasks") || !strings.Contains(sql["viewSQL"], "task_view_start") {
		t.Fatalf("not the store's statements: %q", sql)
	}
}
