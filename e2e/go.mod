module github.com/kub-demo/kub-demo/e2e

go 1.26
