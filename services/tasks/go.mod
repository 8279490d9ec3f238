module github.com/kub-demo/kub-demo/services/tasks

go 1.26

require (
	github.com/go-chi/chi/v5 v5.5.0
	github.com/kub-demo/kub-demo/platform v0.0.0
)

require github.com/kelseyhightower/envconfig v1.4.0 // indirect

replace github.com/kub-demo/kub-demo/platform => ../../platform
