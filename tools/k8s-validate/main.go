// Command k8s-validate checks rendered Kubernetes manifests offline, the way an API server
// would on create, without a cluster and without downloading any schema.
//
// For every YAML document (files named on the command line, or stdin with "-" or no
// arguments) it:
//
//  1. parses YAML strictly (duplicate keys are errors);
//  2. decodes the object into its Go API type with strict decoding: an unknown field, a
//     field of the wrong type, an unknown apiVersion/kind are errors;
//  3. for built-in kinds, applies the API server's defaults, converts to the internal
//     version and runs the API server's own validation (k8s.io/kubernetes/pkg/apis/*/validation,
//     called as the registry strategies call it on create), plus its create-time
//     warnings (deprecated fields and the like), which also count as failures;
//  4. with --pod-security=LEVEL (baseline or restricted), checks every pod and pod template
//     against that Pod Security Standards level with the pod-security-admission library,
//     as a namespace labelled pod-security.kubernetes.io/enforce=LEVEL would;
//  5. for the prometheus-operator kinds (ServiceMonitor, PodMonitor, PrometheusRule), decodes
//     strictly into the operator's Go types, checks the metadata like any object, and
//     validates the object against the CRD's OpenAPI schema as the API server would (the
//     CRDs are generated from the same Go types by gen-crds.sh and embedded).
//
// A kind it has no check for is an error, so that nothing passes unchecked.
// Usage: k8s-validate [--pod-security=LEVEL] [FILE|-]...
// Exit status: 0 all valid, 1 at least one invalid document, 2 bad usage or unreadable input.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
	podutil "k8s.io/kubernetes/pkg/api/pod"
	"k8s.io/kubernetes/pkg/apis/apps"
	_ "k8s.io/kubernetes/pkg/apis/apps/install"
	appsvalidation "k8s.io/kubernetes/pkg/apis/apps/validation"
	"k8s.io/kubernetes/pkg/apis/core"
	_ "k8s.io/kubernetes/pkg/apis/core/install"
	corevalidation "k8s.io/kubernetes/pkg/apis/core/validation"
	"k8s.io/kubernetes/pkg/apis/networking"
	_ "k8s.io/kubernetes/pkg/apis/networking/install"
	networkingvalidation "k8s.io/kubernetes/pkg/apis/networking/validation"
	"k8s.io/kubernetes/pkg/apis/policy"
	_ "k8s.io/kubernetes/pkg/apis/policy/install"
	policyvalidation "k8s.io/kubernetes/pkg/apis/policy/validation"
	psaapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"
)

// defaultNamespace is what the API server would take from the request for a namespaced
// object that names none (helm template leaves metadata.namespace unset).
const defaultNamespace = "default"

type document struct {
	source string // file:index, for messages
	raw    []byte // YAML
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(argv []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("k8s-validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	podSecurity := fs.String("pod-security", "", "also check pods and pod templates against this Pod Security Standards level: baseline or restricted")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: k8s-validate [--pod-security=LEVEL] [FILE|-]...  (multi-document YAML; no files = stdin)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(argv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	args := fs.Args()
	v := newValidator()
	if *podSecurity != "" {
		level, err := psaapi.ParseLevel(*podSecurity)
		if err != nil || level == psaapi.LevelPrivileged {
			fmt.Fprintf(stderr, "k8s-validate: --pod-security: %q is not baseline or restricted\n", *podSecurity)
			return 2
		}
		ev, err := psapolicy.NewEvaluator(psapolicy.DefaultChecks(), nil)
		if err != nil {
			fmt.Fprintf(stderr, "k8s-validate: pod security evaluator: %v\n", err)
			return 2
		}
		v.psa = ev
		v.psaLevel = psaapi.LevelVersion{Level: level, Version: psaapi.LatestVersion()}
	}
	if len(args) == 0 {
		args = []string{"-"}
	}
	var docs []document
	for _, a := range args {
		var r io.Reader
		name := a
		if a == "-" {
			r, name = stdin, "<stdin>"
		} else {
			f, err := os.Open(a)
			if err != nil {
				fmt.Fprintf(stderr, "k8s-validate: %v\n", err)
				return 2
			}
			defer f.Close()
			r = f
		}
		d, err := split(name, r)
		if err != nil {
			fmt.Fprintf(stderr, "k8s-validate: %s: %v\n", name, err)
			return 2
		}
		docs = append(docs, d...)
	}

	failed, checked := 0, 0
	for _, d := range docs {
		kind, errs := v.validate(d.raw)
		if kind == "" { // empty document (only comments, or `---` with nothing after)
			continue
		}
		checked++
		if len(errs) == 0 {
			fmt.Fprintf(stdout, "ok      %s %s\n", d.source, kind)
			continue
		}
		failed++
		fmt.Fprintf(stdout, "INVALID %s %s\n", d.source, kind)
		for _, e := range errs {
			fmt.Fprintf(stdout, "  - %s\n", e)
		}
	}
	fmt.Fprintf(stdout, "%d document(s) checked, %d invalid\n", checked, failed)
	if checked == 0 {
		fmt.Fprintln(stderr, "k8s-validate: no Kubernetes object in the input")
		return 2
	}
	if failed > 0 {
		return 1
	}
	return 0
}

func split(name string, r io.Reader) ([]document, error) {
	yr := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var docs []document
	for i := 0; ; i++ {
		b, err := yr.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, document{source: fmt.Sprintf("%s#%d", name, i), raw: b})
	}
}

type validator struct {
	psa        psapolicy.Evaluator // nil: no Pod Security Standards check
	psaLevel   psaapi.LevelVersion
	builtin    runtime.Decoder
	monitoring runtime.Decoder
	monScheme  *runtime.Scheme
	crdSchemas map[schema.GroupVersionKind]crdSchema
}

func newValidator() *validator {
	mon := runtime.NewScheme()
	if err := monitoringv1.AddToScheme(mon); err != nil {
		panic(err)
	}
	crdSchemas, err := loadCRDSchemas()
	if err != nil {
		panic(fmt.Sprintf("embedded CRDs: %v", err))
	}
	opts := kjson.SerializerOptions{Yaml: false, Pretty: false, Strict: true}
	return &validator{
		crdSchemas: crdSchemas,
		builtin:    kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, legacyscheme.Scheme, legacyscheme.Scheme, opts),
		monitoring: kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, mon, mon, opts),
		monScheme:  mon,
	}
}

// validate returns "apiVersion/kind name" (empty for an empty document) and the problems found.
func (v *validator) validate(raw []byte) (string, []string) {
	if len(bytes.TrimSpace(stripComments(raw))) == 0 {
		return "", nil
	}
	js, err := yaml.YAMLToJSONStrict(raw)
	if err != nil {
		return "?", []string{"YAML: " + err.Error()}
	}
	if string(bytes.TrimSpace(js)) == "null" {
		return "", nil
	}
	var tm struct {
		metav1.TypeMeta `json:",inline"`
		Metadata        struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(js, &tm); err != nil {
		return "?", []string{"not a Kubernetes object: " + err.Error()}
	}
	label := fmt.Sprintf("%s/%s %s", tm.APIVersion, tm.Kind, tm.Metadata.Name)
	if tm.APIVersion == "" || tm.Kind == "" {
		return label, []string{"apiVersion and kind are required"}
	}
	gvk := schema.FromAPIVersionAndKind(tm.APIVersion, tm.Kind)

	switch {
	case legacyscheme.Scheme.Recognizes(gvk):
		return label, v.builtinObject(js, gvk)
	case v.monScheme.Recognizes(gvk):
		return label, v.monitoringObject(js, gvk)
	default:
		return label, []string{fmt.Sprintf("unknown apiVersion/kind %s (not a built-in kind of Kubernetes 1.37 nor a prometheus-operator monitoring.coreos.com/v1 kind)", gvk)}
	}
}

func (v *validator) builtinObject(js []byte, gvk schema.GroupVersionKind) []string {
	obj, _, err := v.builtin.Decode(js, nil, nil)
	if err != nil {
		return []string{"decode: " + err.Error()}
	}
	// As the API server does: defaults first, then conversion to the internal version.
	legacyscheme.Scheme.Default(obj)
	psaProblems := v.podSecurity(obj)
	internal, err := legacyscheme.Scheme.ConvertToVersion(obj, schema.GroupVersion{Group: gvk.Group, Version: runtime.APIVersionInternal})
	if err != nil {
		return []string{"convert: " + err.Error()}
	}
	var errs field.ErrorList
	var warnings []string
	ctx := context.Background()
	switch o := internal.(type) {
	case *apps.Deployment:
		setNamespace(&o.ObjectMeta)
		opts := podutil.GetValidationOptionsFromPodTemplate(&o.Spec.Template, nil)
		errs = appsvalidation.ValidateDeployment(o, opts)
		warnings = podutil.GetWarningsForPodTemplate(ctx, field.NewPath("spec", "template"), &o.Spec.Template, nil)
	case *core.Pod:
		setNamespace(&o.ObjectMeta)
		opts := podutil.GetValidationOptionsFromPodSpecAndMeta(&o.Spec, nil, &o.ObjectMeta, nil)
		opts.ResourceIsPod = true
		errs = corevalidation.ValidatePodCreate(o, opts)
		warnings = podutil.GetWarningsForPod(ctx, o, nil)
	case *core.Service:
		setNamespace(&o.ObjectMeta)
		errs = corevalidation.ValidateServiceCreate(o)
	case *core.ConfigMap:
		setNamespace(&o.ObjectMeta)
		errs = corevalidation.ValidateConfigMap(o)
	case *core.Secret:
		setNamespace(&o.ObjectMeta)
		errs = corevalidation.ValidateSecret(o)
	case *core.ServiceAccount:
		setNamespace(&o.ObjectMeta)
		errs = corevalidation.ValidateServiceAccount(o)
	case *policy.PodDisruptionBudget:
		setNamespace(&o.ObjectMeta)
		errs = policyvalidation.ValidatePodDisruptionBudget(o, policyvalidation.PodDisruptionBudgetValidationOptions{})
	case *networking.NetworkPolicy:
		setNamespace(&o.ObjectMeta)
		errs = networkingvalidation.ValidateNetworkPolicy(o, networkingvalidation.NetworkPolicyValidationOptions{})
	default:
		return []string{fmt.Sprintf("no validation wired for %s in tools/k8s-validate (add a case for it)", gvk)}
	}
	out := make([]string, 0, len(errs)+len(warnings)+len(psaProblems))
	out = append(out, psaProblems...)
	for _, e := range errs {
		out = append(out, e.Error())
	}
	for _, w := range warnings {
		out = append(out, "warning: "+w)
	}
	return out
}

// podSecurity checks a pod or a Deployment's pod template against the Pod Security
// Standards level given with --pod-security.
func (v *validator) podSecurity(obj runtime.Object) []string {
	if v.psa == nil {
		return nil
	}
	var meta *metav1.ObjectMeta
	var spec *corev1.PodSpec
	switch o := obj.(type) {
	case *corev1.Pod:
		meta, spec = &o.ObjectMeta, &o.Spec
	case *appsv1.Deployment:
		meta, spec = &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec
	default:
		return nil
	}
	res := psapolicy.AggregateCheckResults(v.psa.EvaluatePod(v.psaLevel, meta, spec))
	if res.Allowed {
		return nil
	}
	out := make([]string, 0, len(res.ForbiddenReasons))
	for i, r := range res.ForbiddenReasons {
		out = append(out, fmt.Sprintf("pod security %q: %s (%s)", v.psaLevel.Level, r, res.ForbiddenDetails[i]))
	}
	return out
}

func (v *validator) monitoringObject(js []byte, gvk schema.GroupVersionKind) []string {
	obj, _, err := v.monitoring.Decode(js, nil, nil)
	if err != nil {
		return []string{"decode: " + err.Error()}
	}
	crd, ok := v.crdSchemas[gvk]
	if !ok {
		return []string{fmt.Sprintf("no CRD schema embedded for %s (see gen-crds.sh)", gvk)}
	}
	var content map[string]interface{}
	if err := yaml.Unmarshal(js, &content); err != nil {
		return []string{"decode: " + err.Error()}
	}
	var crdErrs []string
	for _, e := range validateAgainstCRD(crd, content) {
		crdErrs = append(crdErrs, e.Error())
	}
	acc, ok := obj.(metav1.Object)
	if !ok {
		return []string{"decoded object has no metadata"}
	}
	meta := metav1.ObjectMeta{Name: acc.GetName(), Namespace: acc.GetNamespace(), Labels: acc.GetLabels(), Annotations: acc.GetAnnotations()}
	setNamespace(&meta)
	out := crdErrs
	for _, e := range apimachineryvalidation.ValidateObjectMeta(&meta, true, path.ValidatePathSegmentName, field.NewPath("metadata")) {
		out = append(out, e.Error())
	}
	switch o := obj.(type) {
	case *monitoringv1.PrometheusRule:
		if len(o.Spec.Groups) == 0 {
			out = append(out, "spec.groups: Required value: a PrometheusRule without groups does nothing")
		}
		for gi, g := range o.Spec.Groups {
			if g.Name == "" {
				out = append(out, fmt.Sprintf("spec.groups[%d].name: Required value", gi))
			}
			for ri, r := range g.Rules {
				if (r.Alert == "") == (r.Record == "") {
					out = append(out, fmt.Sprintf("spec.groups[%d].rules[%d]: exactly one of alert or record must be set", gi, ri))
				}
				if r.Expr.String() == "" {
					out = append(out, fmt.Sprintf("spec.groups[%d].rules[%d].expr: Required value", gi, ri))
				}
			}
		}
	case *monitoringv1.ServiceMonitor:
		if len(o.Spec.Endpoints) == 0 {
			out = append(out, "spec.endpoints: Required value")
		}
	case *monitoringv1.PodMonitor:
		if len(o.Spec.PodMetricsEndpoints) == 0 {
			out = append(out, "spec.podMetricsEndpoints: Required value")
		}
	}
	return out
}

func setNamespace(m *metav1.ObjectMeta) {
	if m.Namespace == "" {
		m.Namespace = defaultNamespace
	}
}

func stripComments(b []byte) []byte {
	var out []byte
	for _, line := range strings.Split(string(b), "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") || t == "---" {
			continue
		}
		out = append(out, line...)
		out = append(out, '\n')
	}
	return out
}
