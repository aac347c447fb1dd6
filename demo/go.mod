module varco.dev/demo

go 1.26

replace (
	varco.dev/firmware-sim => ../firmware-sim
	varco.dev/protocol => ../protocol
)

require (
	github.com/jackc/pgx/v5 v5.12.0
	varco.dev/firmware-sim v0.0.0
)

require (
	github.com/creack/pty v1.1.24 // indirect
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	golang.org/x/sys v0.43.0 // indirect
	golang.org/x/text v0.41.0 // indirect
	varco.dev/protocol v0.0.0 // indirect
)
