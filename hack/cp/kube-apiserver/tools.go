//go:build tools

// Package tools keeps k8s.io/kubernetes/cmd/kube-apiserver in this module's
// dependency graph so `go mod tidy` keeps the requirements.
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
