package kubernetes

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// The manifest sets under test: the default deployment and each lesson on it, as
// "kubectl apply -k <dir>" renders them (deploy/k8s is also applied with -f, which creates
// the same objects: TestBaseIsItsFiles). Each runs only kub-demo's own images, so each is
// cross-checked against the service binaries.
var manifestSets = []string{
	"deploy/k8s",
	"deploy/lessons/pod-internal",
	"deploy/lessons/service-env",
	"deploy/lessons/cluster-dns",
}

// renderedSets are every kustomization a learner applies: the manifest sets, and those that
// run other images too (nginx, PostgreSQL), which have tests of their own (TestOverlay).
// Each decodes strictly and passes kube-score.
var renderedSets = append(slices.Clip(manifestSets),
	"deploy/lessons/frontend-nginx",
	overlay,
)

// namespace is where every object lands: none of the manifests names one, and the
// course (and AUTH_ADDRESS=auth-service.default) works in "default".
const namespace = "default"

// object is one rendered object, in the order kubectl applies it.
type object struct {
	Set string // the kustomization it comes from, relative to the repository root
	Obj runtime.Object
}

func (o object) String() string {
	meta, _ := o.Obj.(interface{ GetName() string })
	name := ""
	if meta != nil {
		name = meta.GetName()
	}
	return fmt.Sprintf("%s: %s %s", o.Set, o.Obj.GetObjectKind().GroupVersionKind().Kind, name)
}

// manifestSet is what "kubectl apply -k <dir>" creates, in creation order.
type manifestSet struct {
	Dir     string
	Stream  []byte // the rendered YAML, as kubectl kustomize prints it
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

// render builds a kustomization as "kubectl apply -k dir" does: files only from inside its
// folder (a base, with a kustomization of its own, from anywhere), and the objects in
// kustomize's legacy order (Secrets and Services before the Deployments that use them)
// unless the kustomization says otherwise.
func render(t *testing.T, dir string) resmap.ResMap {
	t.Helper()
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionUnspecified
	resources, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), filepath.Join(repoRoot, dir))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	return resources
}

// loadSet renders a kustomization and decodes every object strictly; any error fails t.
func loadSet(t *testing.T, dir string) *manifestSet {
	t.Helper()
	resources := render(t, dir)
	stream, err := resources.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	set := &manifestSet{Dir: dir, Stream: stream}
	for _, r := range resources.Resources() {
		doc, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		obj, err := decodeStrict(doc)
		if err != nil {
			t.Errorf("%s: %s %s: %v", dir, r.GetKind(), r.GetName(), err)
			continue
		}
		set.add(object{Set: dir, Obj: obj})
	}
	if len(set.Objects) == 0 && !t.Failed() {
		t.Errorf("%s: renders no objects", dir)
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
	for _, dir := range renderedSets {
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
			t.Logf("%d objects", len(set.Objects))
		})
	}
}

// TestBaseIsItsFiles: "kubectl apply -f deploy/k8s" (the .yaml files) and "kubectl apply -k
// deploy/k8s" (its Kustomization, the base of every lesson and overlay) create the same
// objects. A manifest added to the folder but not to the Kustomization would be missing
// from every lesson and overlay.
func TestBaseIsItsFiles(t *testing.T) {
	const base = "deploy/k8s"
	fromFiles := map[string]runtime.Object{}
	var order []string
	for _, file := range manifestFiles(t, base) {
		data, err := os.ReadFile(filepath.Join(repoRoot, file))
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range splitDocuments(data) {
			obj, err := decodeStrict([]byte(doc))
			if err != nil {
				t.Fatalf("%s#%d: %v", file, i+1, err)
			}
			key := objectKey(obj)
			if _, dup := fromFiles[key]; dup {
				t.Errorf("%s#%d: %s defined twice", file, i+1, key)
			}
			fromFiles[key] = obj
			order = append(order, key)
		}
	}
	rendered := loadSet(t, base)
	for _, o := range rendered.Objects {
		key := objectKey(o.Obj)
		want, ok := fromFiles[key]
		if !ok {
			t.Errorf("kubectl apply -k %s creates %s, which no .yaml file in it holds", base, key)
			continue
		}
		delete(fromFiles, key)
		if !equality.Semantic.DeepEqual(o.Obj, want) {
			t.Errorf("%s: kustomize renders it differently from its file", key)
		}
	}
	for key := range fromFiles {
		t.Errorf("%s is in a .yaml file of %s but not in its Kustomization's resources: every lesson and overlay would lack it", key, base)
	}
	t.Logf("%d objects in %d files, the same from -f and -k", len(order), len(manifestFiles(t, base)))
}

// objectKey names an object as kubectl does: kind/name.
func objectKey(obj runtime.Object) string {
	name := ""
	if meta, ok := obj.(interface{ GetName() string }); ok {
		name = meta.GetName()
	}
	return obj.GetObjectKind().GroupVersionKind().Kind + "/" + name
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
