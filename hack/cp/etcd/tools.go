//go:build tools

// Package tools keeps go.etcd.io/etcd/server/v3 (etcd's main package) in this
// module's dependency graph so `go mod tidy` keeps the requirements.
package tools

import _ "go.etcd.io/etcd/server/v3"
