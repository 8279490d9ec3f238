package kubernetes

import (
	"fmt"
	"path/filepath"
	"regexp"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// A subset of kube-apiserver's validation that strict decoding cannot see (the full
// rules live in k8s.io/kubernetes, which is not meant to be imported): name formats,
// labels, annotations and selectors, container, port, volume and variable names,
// and fields that contradict each other. kubectl apply would be refused on these.
func TestManifestsPassAPIValidation(t *testing.T) {
	for _, dir := range manifestSets {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			set := loadSet(t, dir)
			for _, o := range set.Objects {
				for _, msg := range validateObject(o.Obj) {
					t.Errorf("%s: %s", o, msg)
				}
			}
		})
	}
}

func TestAPIValidationRejectsMistakes(t *testing.T) {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "Users_Deployment"}}
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{}}
	d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "users"}}
	d.Spec.Template.Labels = map[string]string{"app": "users"}
	d.Spec.Template.Spec.Containers = []corev1.Container{{
		Name:  "users",
		Image: "kub-demo-users:0.1.0",
		Ports: []corev1.ContainerPort{{Name: "http-port-too-long", ContainerPort: 8080}},
		Env:   []corev1.EnvVar{{Name: "1BAD"}},
	}}
	if got := validateObject(d); len(got) != 4 {
		t.Errorf("validateObject found %d problems, want 4 (name, rollingUpdate with Recreate, port name, env name): %q", len(got), got)
	}
}

func errs(list field.ErrorList) []string {
	var out []string
	for _, e := range list {
		out = append(out, e.Error())
	}
	return out
}

func each(path string, msgs []string) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, path+": "+m)
	}
	return out
}

func validateMeta(m metav1.ObjectMeta, nameRule func(string) []string) []string {
	out := each("metadata.name", nameRule(m.Name))
	out = append(out, errs(metavalidation.ValidateLabels(m.Labels, field.NewPath("metadata", "labels")))...)
	out = append(out, errs(apivalidation.ValidateAnnotations(m.Annotations, field.NewPath("metadata", "annotations")))...)
	return out
}

func validateSelector(path string, s *metav1.LabelSelector) []string {
	if s == nil {
		return []string{path + ": required"}
	}
	return errs(metavalidation.ValidateLabelSelector(s, metavalidation.LabelSelectorValidationOptions{}, field.NewPath(path)))
}

var sysctlName = regexp.MustCompile(`^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$`)

func validatePortRef(path string, p intstr.IntOrString) []string {
	if p.Type == intstr.String {
		return each(path, validation.IsValidPortName(p.StrVal))
	}
	return each(path, validation.IsValidPortNum(int(p.IntVal)))
}

func validatePodSpec(spec *corev1.PodSpec) []string {
	var out []string
	volumes := map[string]bool{}
	for i, v := range spec.Volumes {
		out = append(out, each(fmt.Sprintf("volumes[%d].name", i), validation.IsDNS1123Label(v.Name))...)
		if volumes[v.Name] {
			out = append(out, fmt.Sprintf("volumes[%d]: duplicate name %q", i, v.Name))
		}
		volumes[v.Name] = true
	}
	if sc := spec.SecurityContext; sc != nil {
		for i, s := range sc.Sysctls {
			if !sysctlName.MatchString(s.Name) {
				out = append(out, fmt.Sprintf("securityContext.sysctls[%d]: invalid name %q", i, s.Name))
			}
		}
	}
	names := map[string]bool{}
	for i, c := range spec.Containers {
		path := fmt.Sprintf("containers[%d]", i)
		out = append(out, each(path+".name", validation.IsDNS1123Label(c.Name))...)
		if names[c.Name] {
			out = append(out, path+": duplicate container name "+c.Name)
		}
		names[c.Name] = true
		if c.Image == "" {
			out = append(out, path+".image: required")
		}
		for j, p := range c.Ports {
			pp := fmt.Sprintf("%s.ports[%d]", path, j)
			if p.Name != "" {
				out = append(out, each(pp+".name", validation.IsValidPortName(p.Name))...)
			}
			out = append(out, each(pp+".containerPort", validation.IsValidPortNum(int(p.ContainerPort)))...)
		}
		for j, e := range c.Env {
			out = append(out, each(fmt.Sprintf("%s.env[%d].name", path, j), validation.IsEnvVarName(e.Name))...)
			if e.Value != "" && e.ValueFrom != nil {
				out = append(out, fmt.Sprintf("%s.env[%d]: value and valueFrom both set", path, j))
			}
		}
		for j, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				out = append(out, fmt.Sprintf("%s.volumeMounts[%d]: no volume %q", path, j, m.Name))
			}
		}
		for kind, pr := range map[string]*corev1.Probe{"readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe} {
			if pr != nil && pr.HTTPGet != nil {
				out = append(out, validatePortRef(path+"."+kind+".httpGet.port", pr.HTTPGet.Port)...)
			}
		}
		for r, q := range c.Resources.Requests {
			if l, ok := c.Resources.Limits[r]; ok && q.Cmp(l) > 0 {
				out = append(out, fmt.Sprintf("%s.resources: %s request %s above its limit %s", path, r, q.String(), l.String()))
			}
		}
	}
	return out
}

// validateObject returns what kube-apiserver would refuse in obj, as messages.
func validateObject(obj any) []string {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		out := validateMeta(o.ObjectMeta, validation.IsDNS1123Subdomain)
		out = append(out, validateSelector("spec.selector", o.Spec.Selector)...)
		out = append(out, errs(metavalidation.ValidateLabels(o.Spec.Template.Labels, field.NewPath("spec", "template", "metadata", "labels")))...)
		if o.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType && o.Spec.Strategy.RollingUpdate != nil {
			out = append(out, "spec.strategy.rollingUpdate: may not be specified when strategy type is Recreate")
		}
		if o.Spec.Replicas != nil && *o.Spec.Replicas < 0 {
			out = append(out, "spec.replicas: negative")
		}
		for _, m := range validatePodSpec(&o.Spec.Template.Spec) {
			out = append(out, "spec.template.spec."+m)
		}
		return out
	case *corev1.Service:
		out := validateMeta(o.ObjectMeta, validation.IsDNS1035Label) // Service names are DNS-1035 labels
		if len(o.Spec.Ports) > 1 {
			for i, p := range o.Spec.Ports {
				if p.Name == "" {
					out = append(out, fmt.Sprintf("spec.ports[%d].name: required when there are several ports", i))
				}
			}
		}
		for i, p := range o.Spec.Ports {
			if p.Name != "" {
				out = append(out, each(fmt.Sprintf("spec.ports[%d].name", i), validation.IsDNS1123Label(p.Name))...)
			}
			out = append(out, each(fmt.Sprintf("spec.ports[%d].port", i), validation.IsValidPortNum(int(p.Port)))...)
			if !(p.TargetPort.Type == intstr.Int && p.TargetPort.IntVal == 0) {
				out = append(out, validatePortRef(fmt.Sprintf("spec.ports[%d].targetPort", i), p.TargetPort)...)
			}
		}
		if len(o.Spec.Ports) == 0 {
			out = append(out, "spec.ports: required")
		}
		out = append(out, errs(metavalidation.ValidateLabels(o.Spec.Selector, field.NewPath("spec", "selector")))...)
		return out
	case *corev1.Secret:
		out := validateMeta(o.ObjectMeta, validation.IsDNS1123Subdomain)
		for k := range o.Data {
			out = append(out, each("data["+k+"]", validation.IsConfigMapKey(k))...)
		}
		for k := range o.StringData {
			out = append(out, each("stringData["+k+"]", validation.IsConfigMapKey(k))...)
		}
		return out
	case *corev1.PersistentVolumeClaim:
		out := validateMeta(o.ObjectMeta, validation.IsDNS1123Subdomain)
		if len(o.Spec.AccessModes) == 0 {
			out = append(out, "spec.accessModes: required")
		}
		if _, ok := o.Spec.Resources.Requests[corev1.ResourceStorage]; !ok {
			out = append(out, "spec.resources.requests.storage: required")
		}
		return out
	case *networkingv1.NetworkPolicy:
		out := validateMeta(o.ObjectMeta, validation.IsDNS1123Subdomain)
		out = append(out, validateSelector("spec.podSelector", &o.Spec.PodSelector)...)
		peers := func(path string, ps []networkingv1.NetworkPolicyPeer) {
			for i, p := range ps {
				pp := fmt.Sprintf("%s[%d]", path, i)
				if p.PodSelector == nil && p.NamespaceSelector == nil && p.IPBlock == nil {
					out = append(out, pp+": must specify a peer")
				}
				if p.PodSelector != nil {
					out = append(out, validateSelector(pp+".podSelector", p.PodSelector)...)
				}
				if p.NamespaceSelector != nil {
					out = append(out, validateSelector(pp+".namespaceSelector", p.NamespaceSelector)...)
				}
			}
		}
		ports := func(path string, ps []networkingv1.NetworkPolicyPort) {
			for i, p := range ps {
				if p.Port != nil {
					out = append(out, validatePortRef(fmt.Sprintf("%s[%d].port", path, i), *p.Port)...)
				}
			}
		}
		for i, r := range o.Spec.Ingress {
			peers(fmt.Sprintf("spec.ingress[%d].from", i), r.From)
			ports(fmt.Sprintf("spec.ingress[%d].ports", i), r.Ports)
		}
		for i, r := range o.Spec.Egress {
			peers(fmt.Sprintf("spec.egress[%d].to", i), r.To)
			ports(fmt.Sprintf("spec.egress[%d].ports", i), r.Ports)
		}
		for _, typ := range o.Spec.PolicyTypes {
			if typ != networkingv1.PolicyTypeIngress && typ != networkingv1.PolicyTypeEgress {
				out = append(out, "spec.policyTypes: unknown "+string(typ))
			}
		}
		return out
	case *policyv1.PodDisruptionBudget:
		out := validateMeta(o.ObjectMeta, validation.IsDNS1123Subdomain)
		out = append(out, validateSelector("spec.selector", o.Spec.Selector)...)
		if (o.Spec.MinAvailable == nil) == (o.Spec.MaxUnavailable == nil) {
			out = append(out, "spec: exactly one of minAvailable and maxUnavailable")
		}
		return out
	}
	return []string{fmt.Sprintf("kind %T not validated here", obj)}
}
