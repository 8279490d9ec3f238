module github.com/kub-demo/kub-demo/services/auth

go 1.26.0

require (
	github.com/go-chi/chi/v5 v5.5.0
	github.com/golang-jwt/jwt/v5 v5.3.1
	github.com/kub-demo/kub-demo/platform v0.0.0
	golang.org/x/crypto v0.58.0
)

require github.com/kelseyhightower/envconfig v1.4.0 // indirect

replace github.com/kub-demo/kub-demo/platform => ../../platform
