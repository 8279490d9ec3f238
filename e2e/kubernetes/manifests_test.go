package kubernetes

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
)

// The manifest sets under test: the default deployment and each lesson. Each one is
// applied on its own with "kubectl apply -f <dir>", so each is checked on its own.
var manifestSets = []string{
	"deploy/k8s",
	"deploy/k8s/examples/pod-internal",
	"deploy/k8s/examples/service-env",
	"deploy/k8s/examples/cluster-dns",
}

// namespace is where every object lands: none of the manifests names one, and the
// course (and AUTH_ADDRESS=auth-service.default) works in "default".
const namespace = "default"

// object is one decoded document, in the order kubectl applies it.
type object struct {
	File string // path relative to the repository root
	Doc  int    // 1-based document number in File
	Text string // the document's YAML, comments included
	Obj  runtime.Object
}

func (o object) String() string {
	return fmt.Sprintf("%s#%d (%s)", o.File, o.Doc, o.Obj.GetObjectKind().GroupVersionKind().Kind)
}

// manifestSet is what "kubectl apply -f <dir>" creates, in creation order.
type manifestSet struct {
	Dir     string
	Objects []object

	Deployments     []*appsv1.Deployment
	Services        []*corev1.Service
	Secrets         []*corev1.Secret
	Claims          []*corev1.PersistentVolumeClaim
	NetworkPolicies []*networkingv1.NetworkPolicy
	Budgets         []*policyv1.PodDisruptionBudget
}

// strictDecoder is the decoder kube-apiserver uses for a request with
// fieldValidation=Strict: YAML must be plain JSON-compatible YAML, and unknown
// fields, duplicate fields and fields with the wrong case are errors.
var strictDecoder = func() runtime.Decoder {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, networkingv1.AddToScheme, policyv1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	return json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme,
		json.SerializerOptions{Yaml: true, Strict: true})
}()

// splitDocuments splits a YAML stream on "---" lines, as kubectl does. Documents
// with nothing but comments and blank lines are dropped, as kubectl drops them.
func splitDocuments(data []byte) []string {
	var docs []string
	var cur strings.Builder
	flush := func() {
		text := cur.String()
		cur.Reset()
		for _, line := range strings.Split(text, "\n") {
			if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
				docs = append(docs, text)
				return
			}
		}
	}
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if strings.TrimRight(line, " \t\r\n") == "---" {
			flush()
			continue
		}
		cur.WriteString(line)
	}
	flush()
	return docs
}

// decodeStrict decodes one document into its typed k8s.io/api object.
func decodeStrict(doc []byte) (runtime.Object, error) {
	obj, gvk, err := strictDecoder.Decode(doc, nil, nil)
	if err != nil {
		return nil, err
	}
	if gvk.Kind == "" || gvk.Version == "" {
		return nil, fmt.Errorf("apiVersion or kind missing")
	}
	return obj, nil
}

// manifestFiles lists what "kubectl apply -f dir" reads: the .yaml, .yml and .json
// files directly in dir (no recursion without -R), in name order.
func manifestFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(repoRoot, dir))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		switch filepath.Ext(e.Name()) {
		case ".yaml", ".yml", ".json":
			if !e.IsDir() {
				files = append(files, filepath.Join(dir, e.Name()))
			}
		}
	}
	sort.Strings(files)
	return files
}

// loadSet decodes every document of a manifest set; any decoding error fails t.
func loadSet(t *testing.T, dir string) *manifestSet {
	t.Helper()
	set := &manifestSet{Dir: dir}
	files := manifestFiles(t, dir)
	if len(files) == 0 {
		t.Fatalf("%s: no manifests", dir)
	}
	for _, file := range files {
		data, err := os.ReadFile(filepath.Join(repoRoot, file))
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range splitDocuments(data) {
			obj, err := decodeStrict([]byte(doc))
			if err != nil {
				t.Errorf("%s#%d: %v", file, i+1, err)
				continue
			}
			set.add(object{File: file, Doc: i + 1, Text: doc, Obj: obj})
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return set
}

func (s *manifestSet) add(o object) {
	s.Objects = append(s.Objects, o)
	switch obj := o.Obj.(type) {
	case *appsv1.Deployment:
		s.Deployments = append(s.Deployments, obj)
	case *corev1.Service:
		s.Services = append(s.Services, obj)
	case *corev1.Secret:
		s.Secrets = append(s.Secrets, obj)
	case *corev1.PersistentVolumeClaim:
		s.Claims = append(s.Claims, obj)
	case *networkingv1.NetworkPolicy:
		s.NetworkPolicies = append(s.NetworkPolicies, obj)
	case *policyv1.PodDisruptionBudget:
		s.Budgets = append(s.Budgets, obj)
	}
}

func (s *manifestSet) secret(name string) *corev1.Secret {
	for _, sec := range s.Secrets {
		if sec.Name == name {
			return sec
		}
	}
	return nil
}

func (s *manifestSet) claim(name string) *corev1.PersistentVolumeClaim {
	for _, c := range s.Claims {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestManifestsDecodeStrictly(t *testing.T) {
	for _, dir := range manifestSets {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			set := loadSet(t, dir)
			for _, o := range set.Objects {
				meta, ok := o.Obj.(interface {
					GetName() string
					GetNamespace() string
				})
				if !ok || meta.GetName() == "" {
					t.Errorf("%s: no metadata.name", o)
					continue
				}
				if ns := meta.GetNamespace(); ns != "" && ns != namespace {
					t.Errorf("%s: namespace %q; the manifests live in %q", o, ns, namespace)
				}
			}
			t.Logf("%d objects from %d files", len(set.Objects), len(manifestFiles(t, dir)))
		})
	}
}

// The decoder must reject what kube-apiserver's strict field validation rejects:
// otherwise a typo like "replica:" would pass here and be dropped silently by
// "kubectl apply --validate=false".
func TestStrictDecoderRejectsMistakes(t *testing.T) {
	base := "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  replicas: 1\n"
	if _, err := decodeStrict([]byte(base)); err != nil {
		t.Fatalf("valid document rejected: %v", err)
	}
	bad := map[string]string{
		"unknown field":      strings.Replace(base, "replicas:", "replica:", 1),
		"wrong case":         strings.Replace(base, "replicas:", "Replicas:", 1),
		"duplicate field":    base + "  replicas: 2\n",
		"wrong type":         strings.Replace(base, "replicas: 1", "replicas: one", 1),
		"unknown kind":       strings.Replace(base, "kind: Deployment", "kind: Deploymnet", 1),
		"no kind":            strings.Replace(base, "kind: Deployment\n", "", 1),
		"nested unknown":     base + "  template:\n    spec:\n      containers:\n        - name: a\n          imagePullPolicy: IfNotPresent\n          port: 80\n",
		"unknown in Service": "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n    - port: 80\n      targetport: 80\n",
	}
	for name, doc := range bad {
		_, err := decodeStrict([]byte(doc))
		if err == nil {
			t.Errorf("%s: accepted:\n%s", name, doc)
			continue
		}
		t.Logf("%s: %v", name, err)
	}
}

func TestSplitDocuments(t *testing.T) {
	in := "# only a comment\n---\na: 1\n---   \n\n---\n# c\nb: 2\n--- \n"
	got := splitDocuments([]byte(in))
	if len(got) != 2 || !bytes.Contains([]byte(got[0]), []byte("a: 1")) || !bytes.Contains([]byte(got[1]), []byte("b: 2")) {
		t.Fatalf("splitDocuments = %q", got)
	}
}
