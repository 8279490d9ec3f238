module github.com/kub-demo/kub-demo/harness

go 1.26.0
