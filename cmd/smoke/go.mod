module github.com/kub-demo/kub-demo/cmd/smoke

go 1.26
