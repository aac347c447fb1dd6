module varco.dev/firmware-sim

go 1.26

require (
	github.com/creack/pty v1.1.24
	go.bug.st/serial v1.8.0
	go.uber.org/goleak v1.3.0
	golang.org/x/sys v0.43.0
	varco.dev/protocol v0.0.0
)

replace varco.dev/protocol => ../protocol
