package netpol

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// Options say where to run the probes.
type Options struct {
	Image     string // the probe image (ProbeImage), already in the cluster
	Namespace string // where deploy/k8s runs
	Kubectl   string // the kubectl command; "kubectl" when empty
	Log       func(format string, args ...any)
}

// ProbeImage is the probe (./probe) as an image FROM scratch, as make netpol-test builds it.
const ProbeImage = "kub-demo-netprobe:0.1.0"

// Run starts one probe pod per role, each trying every target, waits for them to finish,
// reads their results and deletes them.
func Run(ctx context.Context, opts Options) (Report, error) {
	if opts.Kubectl == "" {
		opts.Kubectl = "kubectl"
	}
	if opts.Log == nil {
		opts.Log = func(string, ...any) {}
	}
	authPod, err := kubectl(ctx, opts, nil, "get", "pods", "-l", "app=auth", "--field-selector=status.phase=Running",
		"-o", "jsonpath={.items[0].status.podIP}")
	if err != nil || strings.TrimSpace(authPod) == "" {
		return Report{}, fmt.Errorf("no running auth pod in namespace %s: apply deploy/k8s first (kubectl apply -f deploy/k8s) (%v)", opts.Namespace, err)
	}
	report := Report{Edges: Edges(), Results: map[string]Result{}}
	pods := map[string]Role{}
	for _, role := range Roles {
		var args []string
		for _, e := range report.Edges {
			if e.From.Name == role.Name {
				args = append(args, e.Name()+"="+strings.ReplaceAll(e.To.URL, "{auth-pod}", strings.TrimSpace(authPod)))
			}
		}
		manifest, err := yaml.Marshal(probePod(role, opts.Image, args))
		if err != nil {
			return Report{}, err
		}
		name := podName(role)
		kubectl(ctx, opts, nil, "delete", "pod", name, "--ignore-not-found", "--wait")
		if _, err := kubectl(ctx, opts, manifest, "apply", "-f", "-"); err != nil {
			return Report{}, err
		}
		pods[name] = role
	}
	defer func() {
		for name := range pods {
			kubectl(context.WithoutCancel(ctx), opts, nil, "delete", "pod", name, "--ignore-not-found", "--wait=false")
		}
	}()
	for name := range pods {
		opts.Log("waiting for probe pod %s", name)
		if _, err := kubectl(ctx, opts, nil, "wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/"+name, "--timeout=120s"); err != nil {
			events, _ := kubectl(ctx, opts, nil, "describe", "pod", name)
			return Report{}, fmt.Errorf("probe pod %s did not finish: %v\n%s", name, err, events)
		}
		logs, err := kubectl(ctx, opts, nil, "logs", "pod/"+name)
		if err != nil {
			return Report{}, err
		}
		scanner := bufio.NewScanner(strings.NewReader(logs))
		for scanner.Scan() {
			var r Result
			if err := json.Unmarshal(scanner.Bytes(), &r); err != nil {
				return Report{}, fmt.Errorf("probe pod %s wrote %q: %v", name, scanner.Text(), err)
			}
			report.Results[r.Edge] = r
		}
	}
	for _, e := range report.Edges {
		if _, ok := report.Results[e.Name()]; !ok {
			return Report{}, fmt.Errorf("no result for %s", e.Name())
		}
	}
	return report, nil
}

func podName(role Role) string { return "kub-demo-netprobe-" + role.Name }

// probePod is a pod of role that runs the probe with args once. It never turns Ready (its
// readiness probe has nothing to reach), so no Service whose selector it matches sends it
// traffic, and its labels are not its Deployment's pod-template-hash, so no ReplicaSet adopts
// it. Non-root, read-only, no capability, as the services' pods.
func probePod(role Role, image string, args []string) *corev1.Pod {
	no, yes := false, true
	uid := int64(65532)
	deadline := int64(180)
	quick := int64(1)
	small := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("32Mi")}
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: podName(role), Labels: role.Labels},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			ActiveDeadlineSeconds:         &deadline,
			TerminationGracePeriodSeconds: &quick,
			AutomountServiceAccountToken:  &no,
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot: &yes, RunAsUser: &uid, RunAsGroup: &uid,
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name: "probe", Image: image, ImagePullPolicy: corev1.PullIfNotPresent, Args: args,
				Resources: corev1.ResourceRequirements{Requests: small, Limits: small},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
					HTTPGet: &corev1.HTTPGetAction{Path: "/never", Port: intstr.FromInt32(1)},
				}},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: &no, ReadOnlyRootFilesystem: &yes,
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
		},
	}
}

// kubectl runs one kubectl command in opts' namespace, with stdin when given, within a
// minute at most.
func kubectl(ctx context.Context, opts Options, stdin []byte, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if opts.Namespace != "" {
		args = append([]string{"--namespace", opts.Namespace}, args...)
	}
	cmd := exec.CommandContext(ctx, opts.Kubectl, args...)
	if stdin != nil {
		cmd.Stdin = strings.NewReader(string(stdin))
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
