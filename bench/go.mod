module github.com/kub-demo/kub-demo/bench

go 1.26.0

require (
	github.com/jackc/pgx/v5 v5.12.0
	github.com/kub-demo/kub-demo/harness v0.0.0
	github.com/kub-demo/kub-demo/platform v0.0.0
	github.com/tsenart/vegeta/v12 v12.13.0
	golang.org/x/crypto v0.58.0
)

require (
	github.com/go-chi/chi/v5 v5.5.0 // indirect
	github.com/influxdata/tdigest v0.0.1 // indirect
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/jackc/puddle/v2 v2.2.3 // indirect
	github.com/josharian/intern v1.0.0 // indirect
	github.com/mailru/easyjson v0.7.7 // indirect
	github.com/rs/dnscache v0.0.0-20230804202142-fc85eb664529 // indirect
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sync v0.24.0 // indirect
	golang.org/x/text v0.43.0 // indirect
)

replace (
	github.com/kub-demo/kub-demo/harness => ../harness
	github.com/kub-demo/kub-demo/platform => ../platform
)
