package main

import (
	"context"

	"github.com/usrpt/usrpt/server"
)

// TEMPORARY: serve.go declares these; delete on merge.
var (
	startControl func(ctx context.Context, path string, s *server.Server) (stop func(), err error)
	startMetrics func(ctx context.Context, addr string, s *server.Server) (stop func(), err error)
)
