package kubernetes

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
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

// kube-score must find nothing CRITICAL and nothing WARNING in what each kustomization
// renders: deploy/k8s, every lesson and every overlay.
func TestKubeScore(t *testing.T) {
	for _, dir := range renderedSets {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			set := loadSet(t, dir)
			cmd := exec.Command(kubeScore(t), "score", "--kubernetes-version", "v1.32", "--output-format", "ci", "-")
			cmd.Stdin = bytes.NewReader(set.Stream)
			scoreClean(t, cmd)
		})
	}
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

// Every check switched off with a kube-score/ignore annotation must be explained by a
// comment that names the check, in the document that sets the annotation. The annotations
// are those each kustomization renders; each is traced to the documents under deploy/ (the
// manifests, the patches, the kustomizations with their inline patches) that set its value.
func TestKubeScoreIgnoresAreExplained(t *testing.T) {
	sources := ignoreSources(t)
	n := 0
	for _, dir := range renderedSets {
		set := loadSet(t, dir)
		for _, o := range set.Objects {
			meta, ok := o.Obj.(interface{ GetAnnotations() map[string]string })
			if !ok {
				continue
			}
			ignored := meta.GetAnnotations()["kube-score/ignore"]
			if ignored == "" {
				continue
			}
			docs := sources[ignored]
			if len(docs) == 0 {
				t.Errorf("%s: kube-score/ignore %q, set by no document under deploy/", o, ignored)
			}
			for _, doc := range docs {
				for _, check := range strings.Split(ignored, ",") {
					check = strings.TrimSpace(check)
					n++
					if !regexp.MustCompile(`\b` + regexp.QuoteMeta(check) + `\b`).MatchString(doc.comments) {
						t.Errorf("%s (%s): ignores kube-score check %q without a comment naming it and saying why", o, doc.where, check)
					}
				}
			}
		}
	}
	t.Logf("%d ignored checks", n)
}

// ignoreSource is a document that sets a kube-score/ignore annotation, and its comments.
type ignoreSource struct {
	where    string // file#document
	comments string
}

// ignoreSources maps each kube-score/ignore value to the documents of the files under
// deploy/ (YAML files and kustomizations, inline patches included) that set it.
func ignoreSources(t *testing.T) map[string][]ignoreSource {
	t.Helper()
	annotation := regexp.MustCompile(`(?m)^\s*kube-score/ignore:\s*["']?([^"'\s#]+)`)
	sources := map[string][]ignoreSource{}
	err := filepath.WalkDir(filepath.Join(repoRoot, "deploy"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch filepath.Ext(path) {
		case ".yaml", ".yml":
		default:
			if d.Name() != "Kustomization" {
				return nil
			}
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, path)
		for i, doc := range splitDocuments(data) {
			var comments strings.Builder
			for _, line := range strings.Split(doc, "\n") {
				if i := strings.Index(line, "#"); i >= 0 {
					comments.WriteString(line[i:] + "\n")
				}
			}
			for _, m := range annotation.FindAllStringSubmatch(doc, -1) {
				sources[m[1]] = append(sources[m[1]], ignoreSource{fmt.Sprintf("%s#%d", rel, i+1), comments.String()})
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sources
}
