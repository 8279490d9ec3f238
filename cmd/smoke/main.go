// Command smoke runs the course's flow against a running kub-demo (make run, docker
// compose, minikube) and says, step by step, what works:
//
//	go run ./cmd/smoke --users http://localhost:8080 --tasks http://localhost:8000
//
// It logs in as the demo user, stores a task with a title of its own, lists the tasks and
// looks for it, and checks that a request without a token is refused. Each step prints
// PASS or FAIL with its time; the exit status is 0 when all pass, 1 when any fails, 2 for
// bad flags. With --request-id PREFIX each step sends X-Request-ID: PREFIX-<step>, which the
// services write in every log line of that request (grep `kubectl logs` for it).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
