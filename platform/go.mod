module github.com/kub-demo/kub-demo/platform

go 1.26

require (
	github.com/go-chi/chi/v5 v5.5.0
	github.com/kelseyhightower/envconfig v1.4.0
)
