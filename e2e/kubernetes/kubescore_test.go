package kubernetes

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// kubeScore finds the pinned kube-score that "make k8s-tools" (a prerequisite of
// "make test") installs: $KUBE_SCORE, or bin/tools/kube-score-<version>/kube-score
// with the version mk/k8s.mk pins.
func kubeScore(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("KUBE_SCORE"); p != "" {
		return p
	}
	mk, err := os.ReadFile(filepath.Join(repoRoot, "mk", "k8s.mk"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^KUBE_SCORE_VERSION\s*\??=\s*(\S+)`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("mk/k8s.mk pins no KUBE_SCORE_VERSION")
	}
	p := filepath.Join(repoRoot, "bin", "tools", "kube-score-"+string(m[1]), "kube-score")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("kube-score %s not installed (%v): run \"make k8s-tools\" (make test does)", m[1], err)
	}
	return p
}

// kube-score must find nothing CRITICAL and nothing WARNING in deploy/k8s.
func TestKubeScore(t *testing.T) {
	files := manifestFiles(t, "deploy/k8s")
	cmd := exec.Command(kubeScore(t), append([]string{"score", "--kubernetes-version", "v1.32", "--output-format", "ci"}, files...)...)
	cmd.Dir = repoRoot
	scoreClean(t, cmd)
}

// scoreClean runs kube-score's cmd (output format "ci") and fails the test on each CRITICAL
// or WARNING it reports, or when it reports no check at all.
func scoreClean(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	// kube-score exits 1 on CRITICAL; the output below says why.
	if err != nil && len(out) == 0 {
		t.Fatalf("kube-score: %v\n%s", err, stderr.String())
	}
	var ok, skipped, bad int
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "[OK]"):
			ok++
		case strings.HasPrefix(line, "[SKIPPED]"):
			skipped++
		case line == "":
		default: // [CRITICAL], [WARNING], or anything unexpected
			bad++
			t.Error(line)
		}
	}
	if ok == 0 {
		t.Fatalf("kube-score reported no checks:\n%s\n%s", out, stderr.String())
	}
	t.Logf("kube-score: %d OK, %d skipped, %d CRITICAL or WARNING", ok, skipped, bad)
}

// Every check switched off with a kube-score/ignore annotation must be explained by
// a comment in the same document that names the check.
func TestKubeScoreIgnoresAreExplained(t *testing.T) {
	set := loadSet(t, "deploy/k8s")
	n := 0
	for _, o := range set.Objects {
		meta, ok := o.Obj.(interface{ GetAnnotations() map[string]string })
		if !ok {
			continue
		}
		ignored := meta.GetAnnotations()["kube-score/ignore"]
		if ignored == "" {
			continue
		}
		var comments strings.Builder
		for _, line := range strings.Split(o.Text, "\n") {
			if i := strings.Index(line, "#"); i >= 0 {
				comments.WriteString(line[i:] + "\n")
			}
		}
		for _, check := range strings.Split(ignored, ",") {
			check = strings.TrimSpace(check)
			n++
			if !strings.Contains(comments.String(), check) {
				t.Errorf("%s: ignores kube-score check %q without a comment naming it and saying why", o, check)
			}
		}
	}
	t.Logf("%d ignored checks", n)
}
