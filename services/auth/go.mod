module github.com/kub-demo/kub-demo/services/auth

go 1.26.0

require github.com/kub-demo/kub-demo/platform v0.0.0

require (
	github.com/go-chi/chi/v5 v5.5.0 // indirect
	github.com/golang-jwt/jwt/v5 v5.3.1 // indirect
	github.com/kelseyhightower/envconfig v1.4.0 // indirect
	golang.org/x/crypto v0.58.0 // indirect
)

replace github.com/kub-demo/kub-demo/platform => ../../platform
