module github.com/kub-demo/kub-demo/cmd/smoke

go 1.26.0

// The integration test starts the real services through the shared harness.
require github.com/kub-demo/kub-demo/harness v0.0.0

replace github.com/kub-demo/kub-demo/harness => ../../harness
