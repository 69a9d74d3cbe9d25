package main

import (
	"embed"
	"fmt"
	"path"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

//go:generate bash gen-crds.sh

// crds holds the prometheus-operator CRDs generated from its Go types by gen-crds.sh.
//
//go:embed crds/*.yaml
var crds embed.FS

// crdSchema is one served version of a CRD: its schema as the API server uses it.
type crdSchema struct {
	structural *structuralschema.Structural
	validator  apiservervalidation.SchemaValidator
}

// loadCRDSchemas reads the embedded CRDs, keyed by group/version/kind.
func loadCRDSchemas() (map[schema.GroupVersionKind]crdSchema, error) {
	entries, err := crds.ReadDir("crds")
	if err != nil {
		return nil, err
	}
	out := map[schema.GroupVersionKind]crdSchema{}
	for _, e := range entries {
		b, err := crds.ReadFile(path.Join("crds", e.Name()))
		if err != nil {
			return nil, err
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(b, &crd); err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		for _, v := range crd.Spec.Versions {
			if !v.Served || v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
				continue
			}
			var internal apiextensions.JSONSchemaProps
			if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v.Schema.OpenAPIV3Schema, &internal, nil); err != nil {
				return nil, fmt.Errorf("%s %s: %w", e.Name(), v.Name, err)
			}
			structural, err := structuralschema.NewStructural(&internal)
			if err != nil {
				return nil, fmt.Errorf("%s %s: not a structural schema: %w", e.Name(), v.Name, err)
			}
			validator, _, err := apiservervalidation.NewSchemaValidator(&internal)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", e.Name(), v.Name, err)
			}
			gvk := schema.GroupVersionKind{Group: crd.Spec.Group, Version: v.Name, Kind: crd.Spec.Names.Kind}
			out[gvk] = crdSchema{structural: structural, validator: validator}
		}
	}
	return out, nil
}

// validateAgainstCRD defaults the object from the CRD's schema and validates it, as the API
// server does for a custom resource on create.
func validateAgainstCRD(s crdSchema, obj map[string]interface{}) field.ErrorList {
	structuraldefaulting.Default(obj, s.structural)
	return apiservervalidation.ValidateCustomResource(nil, obj, s.validator)
}
