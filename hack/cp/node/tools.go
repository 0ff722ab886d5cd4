//go:build tools

// Package tools keeps the node's binaries (kubelet, kube-controller-manager,
// kube-scheduler) in this module's dependency graph so `go mod tidy` keeps the
// requirements. Same k8s.io/kubernetes pin as ../kube-apiserver; a module of
// its own so the apiserver's requirements stay exactly what they were.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
